"""Column and value checks shared by the feature specs: every error names the feature, the column and the first rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from reclib.checks import ParameterTypeError, require_columns

__all__ = ["COMBINERS", "SHOWN", "check_finite_floats", "check_frame", "check_name",
           "check_no_missing", "for_feature", "numeric_kind", "rows_of", "value_kind"]


COMBINERS = ("mean", "sum")
_KIND_OF = {"integer": "int", "floating": "float", "boolean": "bool", "string": "str"}
_MIXED = ("mixed", "mixed-integer", "mixed-integer-float")
SHOWN = 5  # rows or values quoted in an error message


# -- shared helpers -------------------------------------------------------------------------------------------------

def check_name(what: str, value: object) -> None:
    """``value`` is a non-empty string (a feature or column name); ``what`` names it in the error."""
    if not isinstance(value, str):
        raise ParameterTypeError(f"{what} must be a non-empty string, got {value!r} ({type(value).__name__})")
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")


def for_feature(name: str, check, **values: object) -> None:
    """Run a shared check and prefix its message with the feature name."""
    try:
        check(**values)
    except ValueError as err:  # ParameterTypeError included
        raise type(err)(f"feature {name!r}: {err}") from None


def rows_of(index: pd.Index | np.ndarray, mask: np.ndarray) -> list:
    """The first few index labels where ``mask`` is true."""
    return np.asarray(index)[np.asarray(mask)][:SHOWN].tolist()


def value_kind(values: pd.Series, what: str) -> str | None:
    """Kind of a null-free Series: int, float, str, bool, object (one other type) or a pandas
    inference label such as ``datetime64``; ``None`` when empty. Raise if the values mix kinds."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = pd.Series(values.to_numpy(), index=values.index)
    label = pd.api.types.infer_dtype(values, skipna=False)
    if label == "empty":
        return None
    if label in _KIND_OF:
        return _KIND_OF[label]
    if label not in _MIXED:
        return label
    types = values.map(lambda v: type(v).__name__)
    counts = types.value_counts()
    if len(counts) == 1:
        return "object"
    minority = counts.index[-1]
    is_minority = (types == minority).to_numpy()
    raise ValueError(f"{what} mixes value types ({', '.join(f'{n} {t}' for t, n in counts.items())}); "
                     f"first {minority} values at rows {rows_of(values.index, is_minority)}: "
                     f"{values[is_minority].head(SHOWN).tolist()}. A column must hold one type "
                     f"(1 and '1' are different values): convert it first, e.g. with .astype(str)")


def check_no_missing(values: pd.Series, what: str) -> None:
    """``values`` hold no NaN, None or <NA>; the error names ``what`` and the first rows."""
    missing = values.isna().to_numpy()
    if missing.any():
        raise ValueError(f"{what} holds {int(missing.sum())} missing value(s) (NaN/None/<NA>) at rows "
                         f"{rows_of(values.index, missing)}; fill or drop them first")


def check_finite_floats(values: pd.Series, kind: str | None, what: str) -> None:
    """Float ``values`` (``kind`` from :func:`numeric_kind`) hold no inf; other kinds pass."""
    if kind != "float":
        return
    numbers = values.to_numpy(np.float64)
    bad = ~np.isfinite(numbers)
    if bad.any():
        raise ValueError(f"{what} holds {int(bad.sum())} infinite value(s) at rows {rows_of(values.index, bad)}")


def numeric_kind(dtype: object) -> str | None:
    """``"bool"``, ``"int"`` or ``"float"`` for a numeric pandas or NumPy ``dtype``, else None."""
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    return None


def check_frame(frame: pd.DataFrame, columns: Sequence[str], fitting: bool) -> None:
    """The columns are present, each once; a frame to fit on has rows."""
    needed = list(dict.fromkeys(columns))
    require_columns(frame, *needed)
    duplicated = [c for c in needed if int((frame.columns == c).sum()) > 1]
    if duplicated:
        raise ValueError(f"column {duplicated[0]!r} appears more than once in the frame")
    if fitting and len(frame) == 0:
        raise ValueError("fit needs a frame with at least one row, got an empty frame")

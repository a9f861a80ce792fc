"""Declare features once; every feature-interaction model consumes the same inputs.

Four kinds (as in DeepCTR): :class:`Categorical` (one value per row; vocabulary learned from
training data, index 0 for values never seen there), :class:`MultiCategorical` (a list per row,
e.g. genres; padded to the longest list, 0 = padding or unknown), :class:`Numeric` (a number,
standardised with the training mean and standard deviation) and :class:`Vector` (a pretrained
dense vector per row, e.g. a 384-d BERT title embedding). :class:`FeatureSpace` fits the
vocabularies and statistics on a training frame and turns any frame into a dict of arrays, one per
feature, checking every column first.

Checks, at ``fit`` and at ``transform`` alike (each error names the column, the count and the
first rows by index label):

- a missing value (NaN, ``None``, ``<NA>``) anywhere is an error; so is ±inf in a numeric column
  or in a float categorical column. There is no implicit "missing" category: fill or drop first.
- a (multi-)categorical column holds values of one *kind*: ``int``, ``float``, ``str``, ``bool``
  or ``object`` (one other Python type). A column mixing kinds (``1`` and ``"1"``) is an error,
  and the kind seen at ``fit`` is remembered: a column fitted on ints and transformed on floats
  raises instead of mapping every value to unknown. A numeric column may switch between int and
  float (both are read as float64), not to or from bool.
- a :class:`Vector` table is read once at ``fit``: every vector numeric, one-dimensional, finite
  in float32 and of one length.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reclib.checks import ParameterTypeError, check_choice, check_positive_int, require_columns

__all__ = ["Categorical", "FeatureSpace", "MultiCategorical", "Numeric", "Vector"]

_COMBINERS = ("mean", "sum")
_KIND_OF = {"integer": "int", "floating": "float", "boolean": "bool", "string": "str"}
_MIXED = ("mixed", "mixed-integer", "mixed-integer-float")
_SHOWN = 5  # rows or values quoted in an error message


def _check_name(what: str, value: object) -> None:
    if not isinstance(value, str):
        raise ParameterTypeError(f"{what} must be a non-empty string, got {value!r} ({type(value).__name__})")
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")


def _for_feature(name: str, check, **values: object) -> None:
    """Run a shared check and prefix its message with the feature name."""
    try:
        check(**values)
    except ValueError as err:  # ParameterTypeError included
        raise type(err)(f"feature {name!r}: {err}") from None


@dataclass(frozen=True)
class Categorical:
    """One categorical value per row; ``min_count`` rarer values share the unknown index 0."""

    name: str
    min_count: int = 1

    def __post_init__(self) -> None:
        _check_name("Categorical name", self.name)
        _for_feature(self.name, check_positive_int, min_count=self.min_count)


@dataclass(frozen=True)
class MultiCategorical:
    """A list of categorical values per row, pooled by the model (``combiner``: mean or sum)."""

    name: str
    combiner: str = "mean"

    def __post_init__(self) -> None:
        _check_name("MultiCategorical name", self.name)
        _for_feature(self.name, lambda combiner: check_choice("combiner", combiner, _COMBINERS),
                     combiner=self.combiner)


@dataclass(frozen=True)
class Numeric:
    """A real number per row, standardised with training statistics."""

    name: str

    def __post_init__(self) -> None:
        _check_name("Numeric name", self.name)


@dataclass(frozen=True)
class Vector:
    """A pretrained vector per row, looked up by ``key`` (a column) in ``table`` (key -> vector).

    The table is validated and copied when the :class:`FeatureSpace` is fitted.
    """

    name: str
    key: str
    table: dict = field(repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("Vector name", self.name)
        _check_name(f"feature {self.name!r}: key", self.key)
        if not isinstance(self.table, Mapping):
            raise ParameterTypeError(f"feature {self.name!r}: table must be a dict key -> vector, "
                                     f"got {type(self.table).__name__}")


Spec = Categorical | MultiCategorical | Numeric | Vector


def _rows(index: pd.Index | np.ndarray, mask: np.ndarray) -> list:
    """The first few index labels where ``mask`` is true."""
    return np.asarray(index)[np.asarray(mask)][:_SHOWN].tolist()


def _value_kind(values: pd.Series, what: str) -> str | None:
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
                     f"first {minority} values at rows {_rows(values.index, is_minority)}: "
                     f"{values[is_minority].head(_SHOWN).tolist()}. A column must hold one type "
                     f"(1 and '1' are different values): convert it first, e.g. with .astype(str)")


def _check_no_missing(values: pd.Series, what: str) -> None:
    missing = values.isna().to_numpy()
    if missing.any():
        raise ValueError(f"{what} holds {int(missing.sum())} missing value(s) (NaN/None/<NA>) at rows "
                         f"{_rows(values.index, missing)}; fill or drop them first")


def _check_finite_floats(values: pd.Series, kind: str | None, what: str) -> None:
    if kind != "float":
        return
    numbers = values.to_numpy(np.float64)
    bad = ~np.isfinite(numbers)
    if bad.any():
        raise ValueError(f"{what} holds {int(bad.sum())} infinite value(s) at rows {_rows(values.index, bad)}")


def _numeric_kind(dtype: object) -> str | None:
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    return None


class FeatureSpace:
    """Fitted feature specifications (module doc).

    After ``fit``: ``vocabularies_`` (name -> list of known values as strings, in string order;
    index = position + 1), ``stats_`` (numeric name -> (mean, std)), ``max_lengths_``
    (multi-valued name -> list length), ``kinds_`` and ``dtypes_`` (column -> value kind and
    dtype seen at fit) and ``vectors_`` (vector name -> (keys Index, (n_keys, d) float32 matrix)).
    """

    def __init__(self, specs: Sequence[Spec]) -> None:
        if isinstance(specs, (str, bytes, Mapping)) or not isinstance(specs, Sequence):
            raise ParameterTypeError(f"specs must be a list of Categorical, MultiCategorical, Numeric or "
                                     f"Vector, got {type(specs).__name__}")
        if not specs:
            raise ValueError("specs is empty: declare at least one feature")
        for j, spec in enumerate(specs):
            if not isinstance(spec, (Categorical, MultiCategorical, Numeric, Vector)):
                raise ParameterTypeError(f"specs[{j}] must be a Categorical, MultiCategorical, Numeric or "
                                         f"Vector, got {spec!r} ({type(spec).__name__})")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"feature names must be unique, got {names}")
        self.specs = list(specs)

    def _check(self, frame: pd.DataFrame, fitting: bool) -> None:
        """Columns present and well-formed; at transform, also of the kinds seen at fit."""
        needed = list(dict.fromkeys(s.key if isinstance(s, Vector) else s.name for s in self.specs))
        require_columns(frame, *needed)
        duplicated = [c for c in needed if int((frame.columns == c).sum()) > 1]
        if duplicated:
            raise ValueError(f"column {duplicated[0]!r} appears more than once in the frame")
        if fitting and len(frame) == 0:
            raise ValueError("fit needs a frame with at least one row, got an empty frame")
        for spec in self.specs:
            column = spec.key if isinstance(spec, Vector) else spec.name
            values, what = frame[column], f"column {column!r}"
            if isinstance(spec, Numeric):
                kind = _numeric_kind(values.dtype)
                if kind is None:
                    raise ValueError(f"{what} must be numeric (int, float or bool), got dtype {values.dtype}")
                numbers = values.to_numpy(np.float64, na_value=np.nan)
                bad = ~np.isfinite(numbers)
                if bad.any():
                    raise ValueError(f"{what} holds {int(bad.sum())} missing or infinite value(s) "
                                     f"(NaN/<NA>/±inf) at rows {_rows(values.index, bad)}: "
                                     f"{values[bad].head(_SHOWN).tolist()}; fill or drop them first")
                self._check_kind(column, kind, values.dtype, fitting, numeric=True)
            elif isinstance(spec, Categorical):
                _check_no_missing(values, what)
                kind = _value_kind(values, what)
                _check_finite_floats(values, kind, what)
                self._check_kind(column, kind, values.dtype, fitting)
            elif isinstance(spec, MultiCategorical):
                bad = values.map(lambda v: not isinstance(v, (list, tuple, np.ndarray))).to_numpy(bool)
                if bad.any():
                    raise ValueError(f"{what} must hold lists; {int(bad.sum())} row(s) do not, first "
                                     f"{_rows(values.index, bad)}: {values[bad].head(_SHOWN).tolist()}")
                lengths = values.map(len).to_numpy(np.int64)
                flat = pd.Series([x for v in values for x in v], dtype=object,
                                 index=np.repeat(values.index.to_numpy(), lengths))
                what = f"{what} (list elements)"
                _check_no_missing(flat, what)
                kind = _value_kind(flat, what)
                _check_finite_floats(flat, kind, what)
                self._check_kind(column, kind, values.dtype, fitting)
            else:
                _check_no_missing(values, f"{what} (the key of vector feature {spec.name!r})")

    def _check_kind(self, column: str, kind: str | None, dtype: object, fitting: bool,
                    numeric: bool = False) -> None:
        if fitting:
            self._kinds[column], self._dtypes[column] = kind, str(dtype)
            return
        seen = self.kinds_.get(column)
        if kind is None or seen is None or kind == seen:
            return
        if numeric and {kind, seen} == {"int", "float"}:
            return
        raise ValueError(f"column {column!r} held {seen} values at fit (dtype {self.dtypes_[column]}) but "
                         f"holds {kind} values now (dtype {dtype}); convert it to the fitted kind, or every "
                         f"value would be unknown")

    def fit(self, frame: pd.DataFrame) -> FeatureSpace:
        """Learn vocabularies, list lengths, numeric statistics and vector tables from the training frame."""
        self._kinds: dict[str, str | None] = {}
        self._dtypes: dict[str, str] = {}
        self._check(frame, fitting=True)
        vocabularies, stats, max_lengths, vectors = {}, {}, {}, {}
        for spec in self.specs:
            if isinstance(spec, Categorical):
                counts = frame[spec.name].astype(str).value_counts()
                vocabularies[spec.name] = sorted(counts[counts >= spec.min_count].index)
                if not vocabularies[spec.name]:
                    raise ValueError(f"feature {spec.name!r}: no value occurs min_count={spec.min_count} times "
                                     f"(the most frequent occurs {int(counts.max())} times); the vocabulary "
                                     f"would be empty")
            elif isinstance(spec, MultiCategorical):
                vocabularies[spec.name] = sorted({str(v) for values in frame[spec.name] for v in values})
                max_lengths[spec.name] = max(1, int(frame[spec.name].map(len).max()))
            elif isinstance(spec, Numeric):
                values = frame[spec.name].to_numpy(np.float64)
                with np.errstate(over="ignore", invalid="ignore"):
                    mean, std = float(values.mean()), float(values.std() or 1.0)
                if not (np.isfinite(mean) and np.isfinite(std)):
                    raise ValueError(f"column {spec.name!r}: mean {mean} or standard deviation {std} overflows; "
                                     f"rescale the column")
                stats[spec.name] = (mean, std)
            else:
                vectors[spec.name] = self._fit_vector(spec, frame)
        self.vocabularies_, self.stats_, self.max_lengths_, self.vectors_ = vocabularies, stats, max_lengths, vectors
        self.kinds_, self.dtypes_ = self._kinds, self._dtypes
        return self

    @staticmethod
    def _fit_vector(spec: Vector, frame: pd.DataFrame) -> tuple[pd.Index, np.ndarray]:
        where = f"feature {spec.name!r}"
        if not spec.table:
            raise ValueError(f"{where}: table is empty")
        rows, width = [], None
        for key, vector in spec.table.items():
            try:
                array = np.asarray(vector)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{where}: the vector of key {key!r} is not an array ({err})") from None
            if array.dtype.kind not in "iuf":
                raise ValueError(f"{where}: the vector of key {key!r} must be numeric, got dtype {array.dtype}")
            if array.ndim != 1 or array.size == 0:
                raise ValueError(f"{where}: the vector of key {key!r} must be one-dimensional and non-empty, "
                                 f"got shape {array.shape}")
            if width is None:
                width, first = array.size, key
            elif array.size != width:
                raise ValueError(f"{where}: vectors must all have one length; key {first!r} has {width}, "
                                 f"key {key!r} has {array.size}")
            rows.append(array)
        with np.errstate(over="ignore"):
            matrix = np.stack(rows).astype(np.float32)
        bad = ~np.isfinite(matrix).all(axis=1)
        if bad.any():
            keys = [k for k, b in zip(spec.table, bad) if b]
            raise ValueError(f"{where}: {int(bad.sum())} vector(s) hold NaN or ±inf (in float32), keys "
                             f"{keys[:_SHOWN]}")
        index = pd.Index(list(spec.table), tupleize_cols=False)
        missing = index.get_indexer(frame[spec.key]) < 0
        if missing.any():
            unknown = list(dict.fromkeys(frame[spec.key][missing].tolist()))
            raise ValueError(f"{where}: no vector for {len(unknown)} {spec.key} value(s), first {unknown[:_SHOWN]}")
        return index, matrix

    def _require_fitted(self) -> None:
        if not hasattr(self, "vocabularies_"):
            raise RuntimeError("FeatureSpace is not fitted: call fit(train_frame) first")

    def vocabulary_size(self, name: str) -> int:
        """Embedding rows needed for a (multi-)categorical feature, the unknown index 0 included."""
        self._require_fitted()
        if name not in self.vocabularies_:
            raise ValueError(f"{name!r} is not a (multi-)categorical feature; those are {list(self.vocabularies_)}")
        return len(self.vocabularies_[name]) + 1

    def transform(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Model inputs: int32 indices (n,) or (n, max_length), float32 numbers (n, 1) and vectors
        (n, d); values never seen at fit map to 0."""
        self._require_fitted()
        self._check(frame, fitting=False)
        out: dict[str, np.ndarray] = {}
        for spec in self.specs:
            if isinstance(spec, Categorical):
                index = pd.Index(self.vocabularies_[spec.name])
                out[spec.name] = (index.get_indexer(frame[spec.name].astype(str)) + 1).astype(np.int32)
            elif isinstance(spec, MultiCategorical):
                index = pd.Index(self.vocabularies_[spec.name])
                width = self.max_lengths_[spec.name]
                rows = np.zeros((len(frame), width), dtype=np.int32)
                lists = [list(v)[:width] for v in frame[spec.name]]
                lengths = np.array([len(v) for v in lists], dtype=np.int64)
                flat = [str(x) for v in lists for x in v]
                if flat:
                    codes = index.get_indexer(flat) + 1
                    r = np.repeat(np.arange(len(lists)), lengths)
                    c = np.concatenate([np.arange(n) for n in lengths])
                    rows[r, c] = codes
                out[spec.name] = rows
            elif isinstance(spec, Numeric):
                mean, std = self.stats_[spec.name]
                values = frame[spec.name].to_numpy(np.float64)
                with np.errstate(over="ignore"):
                    scaled = ((values - mean) / std).astype(np.float32)
                bad = ~np.isfinite(scaled)
                if bad.any():
                    raise ValueError(f"column {spec.name!r}: {int(bad.sum())} value(s) overflow float32 once "
                                     f"standardised (mean {mean:g}, std {std:g}), at rows {_rows(frame.index, bad)}")
                out[spec.name] = scaled[:, None]
            else:
                keys, matrix = self.vectors_[spec.name]
                position = keys.get_indexer(frame[spec.key])
                unknown = position < 0
                if unknown.any():
                    values = list(dict.fromkeys(frame[spec.key][unknown].tolist()))
                    raise ValueError(f"feature {spec.name!r}: no vector for {len(values)} {spec.key} value(s), "
                                     f"first {values[:_SHOWN]}")
                out[spec.name] = matrix[position]
        return out

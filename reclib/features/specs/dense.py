"""Dense features: :class:`Numeric` (a standardised number) and :class:`Vector` (a fixed-width
embedding, e.g. of a text)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reclib.checks import ParameterTypeError
from reclib.features.specs.base import FeatureSpec
from reclib.features.specs.checks import SHOWN, check_name, check_no_missing, numeric_kind, rows_of

__all__ = ["Numeric", "Vector"]


@dataclass(frozen=True)
class Numeric(FeatureSpec):
    """A real number per row, standardised with training statistics.

    Input: float32 ``(n, 1)``; field: a learned direction scaled by the value ``(b, dim)``;
    first order: a learned weight times the value.
    """

    name: str

    def __post_init__(self) -> None:
        check_name("Numeric name", self.name)

    @property
    def stats_(self) -> tuple[float, float]:
        """Training (mean, standard deviation; 1 when constant)."""
        return self._state("stats")

    def _validate(self, values: pd.Series, what: str) -> str | None:
        kind = numeric_kind(values.dtype)
        if kind is None:
            raise ValueError(f"{what} must be numeric (int, float or bool), got dtype {values.dtype}")
        numbers = values.to_numpy(np.float64, na_value=np.nan)
        bad = ~np.isfinite(numbers)
        if bad.any():
            raise ValueError(f"{what} holds {int(bad.sum())} missing or infinite value(s) "
                             f"(NaN/<NA>/±inf) at rows {rows_of(values.index, bad)}: "
                             f"{values[bad].head(SHOWN).tolist()}; fill or drop them first")
        return kind

    def _compare_kind(self, kind: str | None, dtype: object) -> None:
        if {kind, self.kind_} == {"int", "float"}:  # both read as float64
            return
        super()._compare_kind(kind, dtype)

    def _learn(self, frame: pd.DataFrame) -> dict[str, Any]:
        values = frame[self.name].to_numpy(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = float(values.mean()), float(values.std() or 1.0)
        if not (np.isfinite(mean) and np.isfinite(std)):
            raise ValueError(f"column {self.name!r}: mean {mean} or standard deviation {std} overflows; "
                             f"rescale the column")
        return {"stats": (mean, std)}

    def _transform(self, frame: pd.DataFrame) -> np.ndarray:
        mean, std = self.stats_
        values = frame[self.name].to_numpy(np.float64)
        with np.errstate(over="ignore"):
            scaled = ((values - mean) / std).astype(np.float32)
        bad = ~np.isfinite(scaled)
        if bad.any():
            raise ValueError(f"column {self.name!r}: {int(bad.sum())} value(s) overflow float32 once "
                             f"standardised (mean {mean:g}, std {std:g}), at rows {rows_of(frame.index, bad)}")
        return scaled[:, None]

    def fitted_state(self) -> dict[str, dict[str, Any]]:
        return {"stats_": {self.name: self.stats_}, **self._kind_state()}



@dataclass(frozen=True)
class Vector(FeatureSpec):
    """A pretrained vector per row, looked up by ``key`` (a column) in ``table`` (key -> vector).

    The table is validated and copied at ``fit``. Input: float32 ``(n, d)``; field: a linear
    projection ``(b, dim)``; first order: a linear function of the vector.
    """

    name: str
    key: str
    table: dict = field(repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        check_name("Vector name", self.name)
        check_name(f"feature {self.name!r}: key", self.key)
        if not isinstance(self.table, Mapping):
            raise ParameterTypeError(f"feature {self.name!r}: table must be a dict key -> vector, "
                                     f"got {type(self.table).__name__}")

    @property
    def column(self) -> str:
        return self.key

    @property
    def vectors_(self) -> tuple[pd.Index, np.ndarray]:
        """(keys Index, (n_keys, d) float32 matrix) read from the table at fit."""
        return self._state("vectors")

    def _validate(self, values: pd.Series, what: str) -> str | None:
        check_no_missing(values, f"{what} (the key of vector feature {self.name!r})")
        return None

    def _learn(self, frame: pd.DataFrame) -> dict[str, Any]:
        where = f"feature {self.name!r}"
        if not self.table:
            raise ValueError(f"{where}: table is empty")
        rows, width = [], None
        for key, vector in self.table.items():
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
            keys = [k for k, b in zip(self.table, bad) if b]
            raise ValueError(f"{where}: {int(bad.sum())} vector(s) hold NaN or ±inf (in float32), keys "
                             f"{keys[:SHOWN]}")
        index = pd.Index(list(self.table), tupleize_cols=False)
        self._positions(frame, index)
        return {"vectors": (index, matrix)}

    def _positions(self, frame: pd.DataFrame, keys: pd.Index) -> np.ndarray:
        """Row of every key of ``frame`` in the table; raise on a key without a vector."""
        position = keys.get_indexer(frame[self.key])
        unknown = position < 0
        if unknown.any():
            values = list(dict.fromkeys(frame[self.key][unknown].tolist()))
            raise ValueError(f"feature {self.name!r}: no vector for {len(values)} {self.key} value(s), "
                             f"first {values[:SHOWN]}")
        return position

    def _transform(self, frame: pd.DataFrame) -> np.ndarray:
        keys, matrix = self.vectors_
        return matrix[self._positions(frame, keys)]

    def _kind_state(self) -> dict[str, dict[str, Any]]:
        return {}  # the key column's kind is not tracked: an unknown key is an error anyway

    def fitted_state(self) -> dict[str, dict[str, Any]]:
        return {"vectors_": {self.name: self.vectors_}}

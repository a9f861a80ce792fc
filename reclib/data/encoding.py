"""Map raw ids (any hashable: ints, strings) to contiguous integers ``0..n-1`` and back."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from reclib.checks import ParameterTypeError, check_choice

__all__ = ["IdEncoder"]


def _as_codes(name: str, codes: object) -> np.ndarray:
    """``codes`` as int64; integral floats are accepted, NaN, ±inf, fractions and bools are not."""
    values = np.asarray(codes)
    if values.size == 0:
        return values.astype(np.int64)
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if values.dtype.kind != "f":
        raise ParameterTypeError(f"{name} indices must be integers, got dtype {values.dtype}")
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        first = values[bad].ravel()[:5].tolist()
        raise ValueError(f"{name} indices must be whole numbers, got {int(bad.sum())} other value(s), "
                         f"e.g. {first}")
    return values.astype(np.int64)


class IdEncoder:
    """A vectorised id <-> index map, fitted on the ids seen in training.

    ``transform`` handles ids not seen at ``fit`` by ``unknown``: ``"error"`` (default) raises
    ``ValueError`` naming the first unknown ids; ``"ignore"`` maps them to ``-1`` so the caller can
    route them to a cold-start fallback. A null id (``None``, NaN, ``NaT``) is never an id: ``fit``
    and ``transform`` reject it whatever ``unknown`` says.

    >>> enc = IdEncoder().fit(["b", "a", "b"])
    >>> enc.classes_.tolist(), enc.transform(["a", "b"]).tolist()
    (['a', 'b'], [0, 1])
    """

    def __init__(self, name: str = "id") -> None:
        if not isinstance(name, str) or not name:
            raise ParameterTypeError(f"name must be a non-empty string, got {name!r}")
        self.name = name

    def _reject_nulls(self, values: np.ndarray, step: str) -> None:
        nulls = pd.isna(values)
        if np.any(nulls):
            where = np.flatnonzero(np.ravel(nulls))
            raise ValueError(f"{step} of the {self.name} encoder: {len(where)} null {self.name} id(s) "
                             f"(None/NaN) at positions {where[:5].tolist()}; drop or fill them first")

    def _check_fitted(self) -> None:
        if not hasattr(self, "index_"):
            raise RuntimeError(f"the {self.name} encoder is not fitted: call fit(ids) first")

    def fit(self, ids: object) -> IdEncoder:
        """Learn the sorted unique ids of a 1-D sequence; ``classes_[j]`` is the id of index ``j``."""
        values = np.asarray(ids)
        if values.ndim != 1:
            raise ValueError(f"fit of the {self.name} encoder: ids must be 1-D, got shape {values.shape}")
        if len(values) == 0:
            raise ValueError(f"cannot fit the {self.name} encoder on no ids")
        self._reject_nulls(values, "fit")
        try:
            index = pd.Index(pd.unique(pd.Series(values))).sort_values()
        except TypeError as err:
            raise ParameterTypeError(f"fit of the {self.name} encoder: ids of mixed types cannot be "
                                     f"sorted ({err})") from None
        self.index_ = index
        self.classes_ = self.index_.to_numpy()
        return self

    def __len__(self) -> int:
        self._check_fitted()
        return len(self.classes_)

    def transform(self, ids: object,
                  unknown: Literal["error", "ignore"] = "error") -> np.ndarray:
        """Indices (int64, the shape of ``ids``) of ``ids``; unknown ids raise or map to -1 (see
        class doc); null ids raise."""
        check_choice("unknown", unknown, ("error", "ignore"))
        self._check_fitted()
        values = np.asarray(ids)
        self._reject_nulls(values, "transform")
        codes = self.index_.get_indexer(values.ravel()).astype(np.int64).reshape(values.shape)
        if unknown == "error" and (codes < 0).any():
            missing = pd.unique(values.ravel()[codes.ravel() < 0])
            raise ValueError(f"{len(missing)} {self.name}(s) not seen at fit, e.g. "
                             f"{missing[:5].tolist()}")
        return codes

    def inverse_transform(self, codes: object) -> np.ndarray:
        """Raw ids of indices ``codes`` (integers in ``[0, len(self))``; whole floats accepted)."""
        self._check_fitted()
        codes = _as_codes(self.name, codes)
        if codes.size and (codes.min() < 0 or codes.max() >= len(self.classes_)):
            raise ValueError(f"{self.name} indices must lie in [0, {len(self.classes_)}), got values in "
                             f"[{codes.min()}, {codes.max()}]")
        return self.classes_[codes]

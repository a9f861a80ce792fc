"""Map raw ids (any hashable: ints, strings) to contiguous integers ``0..n-1`` and back."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

__all__ = ["IdEncoder"]


class IdEncoder:
    """A vectorised id <-> index map, fitted on the ids seen in training.

    ``transform`` handles ids not seen at ``fit`` by ``unknown``: ``"error"`` (default) raises
    ``ValueError`` naming the first unknown ids; ``"ignore"`` maps them to ``-1`` so the caller can
    route them to a cold-start fallback.

    >>> enc = IdEncoder().fit(["b", "a", "b"])
    >>> enc.classes_.tolist(), enc.transform(["a", "b"]).tolist()
    (['a', 'b'], [0, 1])
    """

    def __init__(self, name: str = "id") -> None:
        self.name = name

    def fit(self, ids: object) -> IdEncoder:
        """Learn the sorted unique ids; ``classes_[j]`` is the id of index ``j``."""
        self.index_ = pd.Index(pd.unique(pd.Series(np.asarray(ids)))).sort_values()
        if len(self.index_) == 0:
            raise ValueError(f"cannot fit the {self.name} encoder on no ids")
        self.classes_ = self.index_.to_numpy()
        return self

    def __len__(self) -> int:
        return len(self.classes_)

    def transform(self, ids: object,
                  unknown: Literal["error", "ignore"] = "error") -> np.ndarray:
        """Indices (int64) of ``ids``; unknown ids raise or map to -1 (see class doc)."""
        if unknown not in ("error", "ignore"):
            raise ValueError(f"unknown={unknown!r}: expected 'error' or 'ignore'")
        values = np.asarray(ids)
        codes = self.index_.get_indexer(values.ravel()).astype(np.int64).reshape(values.shape)
        if unknown == "error" and (codes < 0).any():
            missing = pd.unique(values.ravel()[codes.ravel() < 0])
            raise ValueError(f"{len(missing)} {self.name}(s) not seen at fit, e.g. "
                             f"{missing[:5].tolist()}")
        return codes

    def inverse_transform(self, codes: object) -> np.ndarray:
        """Raw ids of indices ``codes``."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.size and (codes.min() < 0 or codes.max() >= len(self.classes_)):
            raise ValueError(f"{self.name} indices must lie in [0, {len(self.classes_)})")
        return self.classes_[codes]

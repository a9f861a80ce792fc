"""Declare features once; every feature-interaction model consumes the same inputs.

Four kinds (as in DeepCTR): :class:`Categorical` (one value per row; vocabulary learned from
training data, index 0 for values never seen there), :class:`MultiCategorical` (a list per row,
e.g. genres; padded to the longest list, 0 = padding or unknown), :class:`Numeric` (a number,
standardised with the training mean and standard deviation) and :class:`Vector` (a pretrained
dense vector per row, e.g. a 384-d BERT title embedding). :class:`FeatureSpace` fits the
vocabularies and statistics on a training frame and turns any frame into a dict of arrays, one per
feature, checking every column first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Categorical", "FeatureSpace", "MultiCategorical", "Numeric", "Vector"]


@dataclass(frozen=True)
class Categorical:
    """One categorical value per row; ``min_count`` rarer values share the unknown index 0."""

    name: str
    min_count: int = 1


@dataclass(frozen=True)
class MultiCategorical:
    """A list of categorical values per row, pooled by the model (``combiner``: mean or sum)."""

    name: str
    combiner: str = "mean"


@dataclass(frozen=True)
class Numeric:
    """A real number per row, standardised with training statistics."""

    name: str


@dataclass(frozen=True)
class Vector:
    """A pretrained vector per row, looked up by ``key`` (a column) in ``table`` (key -> vector)."""

    name: str
    key: str
    table: dict = field(repr=False, default_factory=dict)


Spec = Categorical | MultiCategorical | Numeric | Vector


class FeatureSpace:
    """Fitted feature specifications (module doc).

    After ``fit``: ``vocabularies_`` (name -> list of known values; index = position + 1),
    ``stats_`` (numeric name -> (mean, std)), ``max_lengths_`` (multi-valued name -> list length).
    """

    def __init__(self, specs: Sequence[Spec]) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"feature names must be unique, got {names}")
        for spec in specs:
            if isinstance(spec, MultiCategorical) and spec.combiner not in ("mean", "sum"):
                raise ValueError(f"feature {spec.name!r}: combiner must be 'mean' or 'sum'")
        self.specs = list(specs)

    def _check(self, frame: pd.DataFrame) -> None:
        needed = [s.key if isinstance(s, Vector) else s.name for s in self.specs]
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise ValueError(f"column {missing[0]!r} is missing (features need {needed}); "
                             f"the frame has {list(frame.columns)}")
        for spec in self.specs:
            if isinstance(spec, Numeric) and not pd.api.types.is_numeric_dtype(frame[spec.name]):
                raise ValueError(f"column {spec.name!r} must be numeric, got dtype {frame[spec.name].dtype}")
            if isinstance(spec, MultiCategorical):
                bad = frame[spec.name].map(lambda v: not isinstance(v, (list, tuple, np.ndarray)))
                if bad.any():
                    raise ValueError(f"column {spec.name!r} must hold lists; row {bad.idxmax()} holds "
                                     f"{frame[spec.name][bad.idxmax()]!r}")

    def fit(self, frame: pd.DataFrame) -> FeatureSpace:
        """Learn vocabularies, list lengths and numeric statistics from the training frame."""
        self._check(frame)
        self.vocabularies_, self.stats_, self.max_lengths_ = {}, {}, {}
        for spec in self.specs:
            if isinstance(spec, Categorical):
                counts = frame[spec.name].astype(str).value_counts()
                self.vocabularies_[spec.name] = sorted(counts[counts >= spec.min_count].index)
            elif isinstance(spec, MultiCategorical):
                self.vocabularies_[spec.name] = sorted({str(v) for values in frame[spec.name] for v in values})
                self.max_lengths_[spec.name] = max(1, int(frame[spec.name].map(len).max()))
            elif isinstance(spec, Numeric):
                values = frame[spec.name].to_numpy(np.float64)
                self.stats_[spec.name] = (float(values.mean()), float(values.std() or 1.0))
            elif isinstance(spec, Vector):
                missing = set(frame[spec.key]) - set(spec.table)
                if missing:
                    raise ValueError(f"feature {spec.name!r}: no vector for {spec.key} {sorted(missing)[:5]}")
        return self

    def vocabulary_size(self, name: str) -> int:
        """Embedding rows needed for a (multi-)categorical feature, the unknown index 0 included."""
        return len(self.vocabularies_[name]) + 1

    def transform(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Model inputs: int32 indices, float32 numbers and vectors; unknown values map to 0."""
        if not hasattr(self, "vocabularies_"):
            raise RuntimeError("FeatureSpace is not fitted: call fit(train_frame) first")
        self._check(frame)
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
                lengths = np.array([len(v) for v in lists])
                flat = [str(x) for v in lists for x in v]
                if flat:
                    codes = index.get_indexer(flat) + 1
                    r = np.repeat(np.arange(len(lists)), lengths)
                    c = np.concatenate([np.arange(n) for n in lengths]) if len(lengths) else np.array([], int)
                    rows[r, c] = codes
                out[spec.name] = rows
            elif isinstance(spec, Numeric):
                mean, std = self.stats_[spec.name]
                out[spec.name] = ((frame[spec.name].to_numpy(np.float64) - mean) / std).astype(np.float32)[:, None]
            else:
                keys = frame[spec.key].tolist()
                unknown = [k for k in dict.fromkeys(keys) if k not in spec.table]
                if unknown:
                    raise ValueError(f"feature {spec.name!r}: no vector for {spec.key} {unknown[:5]}")
                out[spec.name] = np.stack([spec.table[k] for k in keys]).astype(np.float32)
        return out

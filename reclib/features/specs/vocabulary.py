"""Features read through a learned vocabulary: :class:`Categorical` (one value per row) and
:class:`MultiCategorical` (a list per row)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reclib.checks import check_choice, check_positive_int
from reclib.features.specs.base import FeatureSpec
from reclib.features.specs.checks import (COMBINERS, SHOWN, check_finite_floats, check_name,
                                          check_no_missing, for_feature, rows_of, value_kind)

__all__ = ["Categorical", "MultiCategorical"]


class _Vocabulary(FeatureSpec):
    """Shared by the categorical kinds: a vocabulary of string forms, index = position + 1."""

    @property
    def vocabulary_(self) -> list[str]:
        """Known values as strings, in string order (index = position + 1; 0 = unknown)."""
        return self._state("vocabulary")

    @property
    def vocabulary_size(self) -> int:
        """Embedding rows needed, the unknown index 0 included."""
        return len(self.vocabulary_) + 1



@dataclass(frozen=True)
class Categorical(_Vocabulary):
    """One categorical value per row; ``min_count`` rarer values share the unknown index 0.

    Input: int32 indices ``(n,)``; field: an embedding ``(b, dim)``, first order: a weight per value.
    """

    name: str
    min_count: int = 1

    def __post_init__(self) -> None:
        check_name("Categorical name", self.name)
        for_feature(self.name, check_positive_int, min_count=self.min_count)

    def _validate(self, values: pd.Series, what: str) -> str | None:
        check_no_missing(values, what)
        kind = value_kind(values, what)
        check_finite_floats(values, kind, what)
        return kind

    def _learn(self, frame: pd.DataFrame) -> dict[str, Any]:
        counts = frame[self.name].astype(str).value_counts()
        vocabulary = sorted(counts[counts >= self.min_count].index)
        if not vocabulary:
            raise ValueError(f"feature {self.name!r}: no value occurs min_count={self.min_count} times "
                             f"(the most frequent occurs {int(counts.max())} times); the vocabulary "
                             f"would be empty")
        return {"vocabulary": vocabulary}

    def _transform(self, frame: pd.DataFrame) -> np.ndarray:
        index = pd.Index(self.vocabulary_)
        return (index.get_indexer(frame[self.name].astype(str)) + 1).astype(np.int32)

    def fitted_state(self) -> dict[str, dict[str, Any]]:
        return {"vocabularies_": {self.name: self.vocabulary_}, **self._kind_state()}



@dataclass(frozen=True)
class MultiCategorical(_Vocabulary):
    """A list of categorical values per row, pooled by the model (``combiner``: mean or sum).

    Input: int32 indices ``(n, max_length)`` padded with 0; field: the masked mean (or sum) of the
    value embeddings ``(b, dim)``; first order: the same pooling of the values' weights.
    """

    name: str
    combiner: str = "mean"

    def __post_init__(self) -> None:
        check_name("MultiCategorical name", self.name)
        for_feature(self.name, lambda combiner: check_choice("combiner", combiner, COMBINERS),
                     combiner=self.combiner)

    @property
    def max_length_(self) -> int:
        """List length of the input (the longest training list, at least 1)."""
        return self._state("max_length")

    def _validate(self, values: pd.Series, what: str) -> str | None:
        bad = values.map(lambda v: not isinstance(v, (list, tuple, np.ndarray))).to_numpy(bool)
        if bad.any():
            raise ValueError(f"{what} must hold lists; {int(bad.sum())} row(s) do not, first "
                             f"{rows_of(values.index, bad)}: {values[bad].head(SHOWN).tolist()}")
        lengths = values.map(len).to_numpy(np.int64)
        flat = pd.Series([x for v in values for x in v], dtype=object,
                         index=np.repeat(values.index.to_numpy(), lengths))
        what = f"{what} (list elements)"
        check_no_missing(flat, what)
        kind = value_kind(flat, what)
        check_finite_floats(flat, kind, what)
        return kind

    def _learn(self, frame: pd.DataFrame) -> dict[str, Any]:
        return {"vocabulary": sorted({str(v) for values in frame[self.name] for v in values}),
                "max_length": max(1, int(frame[self.name].map(len).max()))}

    def _transform(self, frame: pd.DataFrame) -> np.ndarray:
        index = pd.Index(self.vocabulary_)
        width = self.max_length_
        rows = np.zeros((len(frame), width), dtype=np.int32)
        lists = [list(v)[:width] for v in frame[self.name]]
        lengths = np.array([len(v) for v in lists], dtype=np.int64)
        flat = [str(x) for v in lists for x in v]
        if flat:
            codes = index.get_indexer(flat) + 1
            r = np.repeat(np.arange(len(lists)), lengths)
            c = np.concatenate([np.arange(n) for n in lengths])
            rows[r, c] = codes
        return rows

    def fitted_state(self) -> dict[str, dict[str, Any]]:
        return {"vocabularies_": {self.name: self.vocabulary_}, "max_lengths_": {self.name: self.max_length_},
                **self._kind_state()}

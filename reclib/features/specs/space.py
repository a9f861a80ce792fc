"""The :class:`FeatureSpace`: a set of specs fitted together, the inputs of every feature-interaction model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from reclib.checks import ParameterTypeError
from reclib.features.specs.base import FeatureSpec
from reclib.features.specs.checks import check_frame

__all__ = ["FeatureSpace"]


_SUMMARIES = ("vocabularies_", "stats_", "max_lengths_", "kinds_", "dtypes_", "vectors_")


class FeatureSpace:
    """Fitted feature specifications (module doc): a container looping over its specs.

    ``fit`` fits unfitted copies of the declared specs (``specs`` then holds the fitted copies).
    After ``fit``, summaries gathered from the specs: ``vocabularies_`` (name -> list of known
    values as strings, in string order; index = position + 1), ``stats_`` (numeric name ->
    (mean, std)), ``max_lengths_`` (multi-valued name -> list length), ``kinds_`` and ``dtypes_``
    (column -> value kind and dtype seen at fit) and ``vectors_`` (vector name -> (keys Index,
    (n_keys, d) float32 matrix)).
    """

    def __init__(self, specs: Sequence[FeatureSpec]) -> None:
        if isinstance(specs, (str, bytes, Mapping)) or not isinstance(specs, Sequence):
            raise ParameterTypeError(f"specs must be a list of Categorical, MultiCategorical, Numeric or "
                                     f"Vector, got {type(specs).__name__}")
        if not specs:
            raise ValueError("specs is empty: declare at least one feature")
        for j, declared in enumerate(specs):
            if not isinstance(declared, FeatureSpec):  # a type check on the argument, not a dispatch
                raise ParameterTypeError(f"specs[{j}] must be a Categorical, MultiCategorical, Numeric or "
                                         f"Vector, got {declared!r} ({type(declared).__name__})")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"feature names must be unique, got {names}")
        self.specs = list(specs)

    def _check(self, frame: pd.DataFrame, fitting: bool) -> list[str | None]:
        """Columns present and well-formed; at transform, also of the kinds seen at fit."""
        check_frame(frame, [s.column for s in self.specs], fitting)
        return [s.check(frame, fitting) for s in self.specs]

    def fit(self, frame: pd.DataFrame) -> FeatureSpace:
        """Learn vocabularies, list lengths, numeric statistics and vector tables from the training
        frame; every column is checked before anything is learned."""
        fitted = FeatureSpace([s.clone() for s in self.specs])
        kinds = fitted._check(frame, fitting=True)
        summaries: dict[str, dict] = {attr: {} for attr in _SUMMARIES}
        for spec, kind in zip(fitted.specs, kinds):
            spec._fit_checked(frame, kind)
            for attr, values in spec.fitted_state().items():
                summaries[attr].update(values)
        self.specs = fitted.specs
        for attr, values in summaries.items():
            setattr(self, attr, values)
        return self

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
        return {s.name: s._transform(frame) for s in self.specs}

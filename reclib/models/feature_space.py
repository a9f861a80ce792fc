"""Compatibility re-export: the feature declarations live in :mod:`reclib.features.specs`."""

from reclib.features.specs import Categorical, FeatureSpace, FeatureSpec, MultiCategorical, Numeric, Vector

__all__ = ["Categorical", "FeatureSpace", "FeatureSpec", "MultiCategorical", "Numeric", "Vector"]

"""The Keras side of a :class:`~reclib.features.specs.FeatureSpace`: one ``keras.Input`` and one
field embedding per declared feature.

The declarations (:mod:`reclib.features.specs`) say what a feature is and learn its vocabulary
or statistics; this module says how a Keras model reads it, DeepCTR's split of ``feature_column``
and ``inputs``. So the features stage never imports Keras, and each kind's embedding is written
once, here, from the spec's public fitted state (dispatched on the spec's class with
``functools.singledispatch``, so a new kind registers its own input and embedding):

==================  ==========================  =============================================
spec                input                       field (b, dim) / first-order logit (b, 1)
==================  ==========================  =============================================
Categorical         int32 (b,)                  an embedding row / a weight per value
MultiCategorical    int32 (b, max_length)       masked mean (or sum) of the value embeddings
                                                / the same pooling of the values' weights
Numeric             float32 (b, 1)              a learned direction scaled by the value / a
                                                weight times the value
Vector              float32 (b, d)              a linear projection / a linear function
==================  ==========================  =============================================

Layer names are ``<feature>_embedding``, ``<feature>_weight``, ``<feature>_pooling``,
``<feature>_direction`` and ``<feature>_projection`` (models and saved files rely on them).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import keras
from keras import ops

from reclib.checks import ParameterTypeError, check_non_negative, check_positive_int
from reclib.features.specs import Categorical, FeatureSpace, FeatureSpec, MultiCategorical, Numeric, Vector
from reclib.models.layers import MaskedMeanPooling, TableEmbedding

__all__ = ["field_embedding", "keras_input", "keras_inputs", "space_embeddings"]


def _fitted(declared: FeatureSpec) -> FeatureSpec:
    """``declared`` if it is a fitted feature spec (the base-class check, not a dispatch)."""
    if not isinstance(declared, FeatureSpec):
        raise ParameterTypeError(f"spec must be a FeatureSpec, got {type(declared).__name__}")
    if not declared.fitted:
        raise RuntimeError(f"feature {declared.name!r} is not fitted: call fit(train_frame) first")
    return declared


def keras_input(spec: FeatureSpec) -> keras.KerasTensor:
    """The ``keras.Input`` a fitted ``spec`` feeds, named like the feature (module doc)."""
    return _input(_fitted(spec))


@functools.singledispatch
def _input(spec: FeatureSpec) -> keras.KerasTensor:
    raise ParameterTypeError(f"no Keras input for a {type(spec).__name__} feature")


@_input.register
def _(spec: Categorical) -> keras.KerasTensor:
    return keras.Input(shape=(), dtype="int32", name=spec.name)


@_input.register
def _(spec: MultiCategorical) -> keras.KerasTensor:
    return keras.Input(shape=(spec.max_length_,), dtype="int32", name=spec.name)


@_input.register
def _(spec: Numeric) -> keras.KerasTensor:
    return keras.Input(shape=(1,), dtype="float32", name=spec.name)


@_input.register
def _(spec: Vector) -> keras.KerasTensor:
    return keras.Input(shape=(spec.vectors_[1].shape[1],), dtype="float32", name=spec.name)


def field_embedding(spec: FeatureSpec, inputs, dim: int, l2: float = 0.0):
    """``inputs`` (the spec's Keras tensor) -> (field vector (b, dim), first-order logit (b, 1));
    ``l2`` regularises the field embedding (categorical kinds and vectors). ``dim`` a positive
    int and ``l2`` >= 0, checked first."""
    check_positive_int(dim=dim)
    check_non_negative(l2=l2)
    return _embed(_fitted(spec), inputs, dim, l2)


def _vocabulary_embeddings(spec: Categorical | MultiCategorical, inputs, dim: int, l2: float):
    """Field and first-order embeddings of the indices: (..., dim) and (..., 1), as
    ``TableEmbedding`` (float32 gathers under mixed precision)."""
    reg = keras.regularizers.L2(l2) if l2 else None
    vec = TableEmbedding(spec.vocabulary_size, dim, embeddings_regularizer=reg,
                         name=f"{spec.name}_embedding")(inputs)
    lin = TableEmbedding(spec.vocabulary_size, 1, embeddings_initializer="zeros",
                         name=f"{spec.name}_weight")(inputs)
    return vec, lin


@functools.singledispatch
def _embed(spec: FeatureSpec, inputs, dim: int, l2: float):
    raise ParameterTypeError(f"no field embedding for a {type(spec).__name__} feature")


@_embed.register
def _(spec: Categorical, inputs, dim: int, l2: float):
    vec, lin = _vocabulary_embeddings(spec, inputs, dim, l2)
    return vec, ops.reshape(lin, (-1, 1))


@_embed.register
def _(spec: MultiCategorical, inputs, dim: int, l2: float):
    vec, lin = _vocabulary_embeddings(spec, inputs, dim, l2)
    pooling = MaskedMeanPooling(mean=spec.combiner == "mean", name=f"{spec.name}_pooling")
    mask = ops.not_equal(inputs, 0)
    return pooling([vec, mask]), pooling([lin, mask])


@_embed.register
def _(spec: Numeric, inputs, dim: int, l2: float):
    vec = keras.layers.Dense(dim, use_bias=False, name=f"{spec.name}_direction")(inputs)
    lin = keras.layers.Dense(1, use_bias=False, name=f"{spec.name}_weight")(inputs)
    return vec, lin


@_embed.register
def _(spec: Vector, inputs, dim: int, l2: float):
    reg = keras.regularizers.L2(l2) if l2 else None
    vec = keras.layers.Dense(dim, name=f"{spec.name}_projection", kernel_regularizer=reg)(inputs)
    lin = keras.layers.Dense(1, use_bias=False, name=f"{spec.name}_weight")(inputs)
    return vec, lin


def _fitted_space(space: FeatureSpace) -> FeatureSpace:
    if not isinstance(space, FeatureSpace):
        raise ParameterTypeError(f"space must be a fitted FeatureSpace, got {type(space).__name__}")
    if not hasattr(space, "vocabularies_"):
        raise RuntimeError("FeatureSpace is not fitted: call fit(train_frame) first")
    return space


def keras_inputs(space: FeatureSpace) -> dict[str, keras.KerasTensor]:
    """One ``keras.Input`` per feature of a fitted ``space``, keyed and named by feature name."""
    return {spec.name: keras_input(spec) for spec in _fitted_space(space).specs}


def space_embeddings(space: FeatureSpace, inputs: Mapping, dim: int, l2: float = 0.0) -> tuple[list, list]:
    """Every feature's :func:`field_embedding`, in the space's order: lists of field vectors
    (b, dim) and first-order logits (b, 1)."""
    pairs = [field_embedding(spec, inputs[spec.name], dim, l2) for spec in _fitted_space(space).specs]
    return [pair[0] for pair in pairs], [pair[1] for pair in pairs]

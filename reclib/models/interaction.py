r"""Feature-interaction models for click-through prediction: LR, FM, DeepFM, DCN-V2, AutoInt.

All share one input layer built from a :class:`~reclib.features.specs.FeatureSpace`: every
feature becomes a *field* vector :math:`v_f \in \mathbb R^k` (an embedding for categorical values,
a masked mean of embeddings for multi-valued ones, a learned direction scaled by the value for
numbers, a linear projection for pretrained vectors such as BERT title embeddings;
:mod:`reclib.models.feature_inputs`) and a first-order weight :math:`w_f`. On top (each returns a logit; :math:`\sigma` of it is the click
probability):

- **LR**: :math:`b + \sum_f w_f`.
- **FM** (Rendle 2010): LR :math:`+ \sum_{f<g} \langle v_f, v_g\rangle`, computed in :math:`O(kF)` by
  :math:`\sum_{f<g}\langle v_f, v_g\rangle = \tfrac12 \sum_{d=1}^k \big[(\sum_f v_{fd})^2 - \sum_f v_{fd}^2\big]`.
- **DeepFM** (Guo et al. 2017): FM :math:`+` an MLP over the concatenated fields, sharing embeddings.
- **DCN-V2** (Wang et al. 2021): cross layers :math:`x_{l+1} = x_0 \odot (W_l x_l + b_l) + x_l` on
  :math:`x_0 = [v_1; \dots; v_F]` (full-rank :math:`W_l`, or low-rank :math:`U_l V_l^\top`), stacked
  before an MLP or in parallel with it.
- **AutoInt** (Song et al. 2019): multi-head self-attention across the fields with residual
  connections, so each field attends to the fields it interacts with.

Each model is a short builder over the layers of :mod:`reclib.models.layers` (``FMInteraction``,
``CrossLayer``, ``FieldAttention``); :func:`build_ctr_model` is the entry point.

Only Keras layers and ``keras.ops``: the models run on TensorFlow, JAX and PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers, ops

from reclib.checks import (ParameterTypeError, check_choice, check_in_range, check_non_negative,
                           check_non_negative_int, check_positive, check_positive_int)
from reclib.features.specs import FeatureSpace
from reclib.models.feature_inputs import keras_inputs, space_embeddings
from reclib.models.layers import CrossLayer, FieldAttention, FMInteraction, StackFields, fm_interaction
from reclib.models.mlp import check_layer_sizes
from reclib.models.tasks import PointwiseTask

__all__ = ["CrossLayer", "build_ctr_model", "field_embeddings", "field_vectors", "fm_interaction"]

KINDS = ("lr", "fm", "deepfm", "dcnv2", "autoint")


def field_embeddings(space: FeatureSpace, inputs: dict, k: int, l2: float = 0.0):
    """Field vectors (b, F, k) (a :class:`StackFields` layer named ``fields``) and the first-order
    logit (b, 1) of every feature: :func:`~reclib.models.feature_inputs.field_embedding` per feature."""
    check_positive_int(k=k)
    check_non_negative(l2=l2)
    fields, linear = space_embeddings(space, inputs, k, l2)
    return StackFields(name="fields")(fields), ops.sum(ops.concatenate(linear, axis=1), axis=1, keepdims=True)


def field_vectors(model: keras.Model, inputs: dict) -> np.ndarray:
    """The field vectors (n, F, k) a model of :func:`build_ctr_model` computes for ``inputs``
    (``space.transform(frame)``), read from its ``fields`` layer."""
    if not isinstance(model, keras.Model):
        raise ParameterTypeError(f"model must be a Keras model from build_ctr_model, got {type(model).__name__}")
    try:
        fields = model.get_layer("fields").output
    except ValueError:
        raise ValueError(f"model {model.name!r} has no 'fields' layer: build it with build_ctr_model") from None
    return keras.ops.convert_to_numpy(keras.Model(model.input, fields)(inputs, training=False))


def _mlp(x, units: Sequence[int], dropout: float, name: str):
    """ReLU layers of ``units`` (each followed by dropout when > 0): (b, d) -> (b, units[-1])."""
    for j, u in enumerate(units):
        x = layers.Dense(u, activation="relu", name=f"{name}_{j}")(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    return x


@dataclass(frozen=True)
class _Embedded:
    """What every builder starts from: fields (b, F, k), their concatenation (b, F k), the
    first-order logit (b, 1) and a global bias (b, 1)."""

    fields: object
    flat: object
    linear: object
    bias: object


@dataclass(frozen=True)
class _Options:
    embedding_dim: int
    hidden_units: tuple
    dropout: float
    l2: float
    cross_layers: int
    cross_rank: int
    cross_structure: str
    attention_layers: int
    attention_heads: int


def _lr(x: _Embedded, o: _Options):
    """b + sum_f w_f."""
    return x.linear + x.bias


def _fm(x: _Embedded, o: _Options):
    """LR + sum_{f<g} <v_f, v_g>."""
    return x.linear + x.bias + FMInteraction(name="fm")(x.fields)


def _deepfm(x: _Embedded, o: _Options):
    """FM + an MLP over the concatenated fields (shared embeddings)."""
    deep = layers.Dense(1, name="deep_out")(_mlp(x.flat, o.hidden_units, o.dropout, "deep"))
    return x.linear + x.bias + FMInteraction(name="fm")(x.fields) + deep


def _dcnv2(x: _Embedded, o: _Options):
    """Cross layers on x0 = flat fields, then (stacked) or beside (parallel) an MLP."""
    crossed = x.flat
    for j in range(o.cross_layers):
        crossed = CrossLayer(o.cross_rank, o.l2, name=f"cross_{j}")([x.flat, crossed])
    if o.cross_structure == "stacked":
        head = _mlp(crossed, o.hidden_units, o.dropout, "deep")
    else:
        head = ops.concatenate([crossed, _mlp(x.flat, o.hidden_units, o.dropout, "deep")], axis=-1)
    return layers.Dense(1, name="logit")(head)


def _autoint(x: _Embedded, o: _Options):
    """Self-attention layers across the fields, a linear read-out of them, plus the first order."""
    attended = x.fields
    for j in range(o.attention_layers):
        attended = FieldAttention(o.attention_heads, o.embedding_dim, name=f"attention_{j}")(attended)
    n_fields = x.fields.shape[1]
    return layers.Dense(1, name="logit")(ops.reshape(attended, (-1, n_fields * o.embedding_dim))) + x.linear


_BUILDERS: dict[str, Callable[[_Embedded, _Options], object]] = {
    "lr": _lr, "fm": _fm, "deepfm": _deepfm, "dcnv2": _dcnv2, "autoint": _autoint}


def build_ctr_model(kind: str, space: FeatureSpace, embedding_dim: int = 16,
                    hidden_units: Sequence[int] = (128, 64), dropout: float = 0.1, l2: float = 1e-6,
                    cross_layers: int = 2, cross_rank: int = 0, cross_structure: str = "stacked",
                    attention_layers: int = 2, attention_heads: int = 2,
                    learning_rate: float = 1e-3) -> keras.Model:
    """A compiled Keras model ``inputs -> click logit`` of the given ``kind`` (module doc).

    Inputs are named like the features (``space.transform(frame)`` feeds it). Loss: binary
    cross-entropy on the logit; metric: AUC (``auc``). Every argument is checked before any
    layer is built: sizes and counts are ints (``embedding_dim`` and ``attention_heads`` >= 1,
    ``cross_layers``, ``cross_rank`` and ``attention_layers`` >= 0), ``hidden_units`` positive
    ints, ``dropout`` in [0, 1), ``l2`` >= 0, ``learning_rate`` > 0.
    """
    check_choice("kind", kind, KINDS)
    check_choice("cross_structure", cross_structure, ("stacked", "parallel"))
    if not isinstance(space, FeatureSpace):
        raise ParameterTypeError(f"space must be a fitted FeatureSpace, got {type(space).__name__}")
    check_positive_int(embedding_dim=embedding_dim, attention_heads=attention_heads)
    hidden_units = check_layer_sizes("hidden_units", hidden_units)
    check_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
    check_non_negative(l2=l2)
    check_non_negative_int(cross_layers=cross_layers, cross_rank=cross_rank,
                           attention_layers=attention_layers)
    check_positive(learning_rate=learning_rate)
    if not hasattr(space, "vocabularies_"):
        raise ValueError("the FeatureSpace must be fitted on training data first")
    options = _Options(embedding_dim, tuple(hidden_units), dropout, l2, cross_layers, cross_rank,
                       cross_structure, attention_layers, attention_heads)
    inputs = keras_inputs(space)
    fields, linear = field_embeddings(space, inputs, embedding_dim, l2)
    flat = ops.reshape(fields, (-1, len(space.specs) * embedding_dim))
    # built for every kind (only LR, FM and DeepFM use it) so that the initialisers draw their seeds
    # in the same order as before: the recorded numbers stay bit-identical
    bias = layers.Dense(1, name="bias")(ops.ones_like(linear))
    logit = _BUILDERS[kind](_Embedded(fields, flat, linear, bias), options)
    model = keras.Model(inputs, ops.squeeze(logit, axis=-1), name=kind)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=PointwiseTask.compiled_loss(),
                  metrics=[keras.metrics.AUC(name="auc", from_logits=True)])
    return model

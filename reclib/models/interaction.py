r"""Feature-interaction models for click-through prediction: LR, FM, DeepFM, DCN-V2, AutoInt.

All share one input layer built from a :class:`~reclib.models.feature_space.FeatureSpace`: every
feature becomes a *field* vector :math:`v_f \in \mathbb R^k` (an embedding for categorical values,
a masked mean of embeddings for multi-valued ones, a learned direction scaled by the value for
numbers, a linear projection for pretrained vectors such as BERT title embeddings) and a
first-order weight :math:`w_f`. On top (each returns a logit; :math:`\sigma` of it is the click
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

Only Keras layers and ``keras.ops``: the models run on TensorFlow, JAX and PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from reclib.checks import (ParameterTypeError, check_choice, check_in_range, check_non_negative,
                           check_non_negative_int, check_positive, check_positive_int)
from reclib.models.feature_space import Categorical, FeatureSpace, MultiCategorical, Numeric
from reclib.models.mlp import check_layer_sizes

__all__ = ["CrossLayer", "build_ctr_model", "field_embeddings", "fm_interaction"]

KINDS = ("lr", "fm", "deepfm", "dcnv2", "autoint")


@keras.saving.register_keras_serializable(package="reclib")
class CrossLayer(layers.Layer):
    """One DCN-V2 cross layer: ``x0 * (W x + b) + x``; ``rank`` > 0 factorises W = U V^T.

    ``rank`` is an int >= 0 (0: full-rank W), ``l2`` a finite number >= 0.
    """

    def __init__(self, rank: int = 0, l2: float = 0.0, **kwargs) -> None:
        check_non_negative_int(rank=rank)
        check_non_negative(l2=l2)
        super().__init__(**kwargs)
        self.rank, self.l2 = rank, l2

    def build(self, input_shape) -> None:
        dim = input_shape[0][-1]
        reg = keras.regularizers.L2(self.l2) if self.l2 else None
        if self.rank:
            self.u = self.add_weight(shape=(dim, self.rank), initializer="glorot_uniform", regularizer=reg, name="u")
            self.v = self.add_weight(shape=(self.rank, dim), initializer="glorot_uniform", regularizer=reg, name="v")
        else:
            self.w = self.add_weight(shape=(dim, dim), initializer="glorot_uniform", regularizer=reg, name="w")
        self.b = self.add_weight(shape=(dim,), initializer="zeros", name="b")

    def call(self, inputs):
        x0, x = inputs
        projected = ops.matmul(ops.matmul(x, self.u), self.v) if self.rank else ops.matmul(x, self.w)
        return x0 * (projected + self.b) + x

    def get_config(self) -> dict:
        return {**super().get_config(), "rank": self.rank, "l2": self.l2}


def fm_interaction(fields):
    """Sum over field pairs f < g of <v_f, v_g>, by the O(kF) sum-square identity: (b, F, k) -> (b, 1)."""
    square_of_sum = ops.square(ops.sum(fields, axis=1))
    sum_of_squares = ops.sum(ops.square(fields), axis=1)
    return 0.5 * ops.sum(square_of_sum - sum_of_squares, axis=1, keepdims=True)


def field_embeddings(space: FeatureSpace, inputs: dict, k: int, l2: float = 0.0):
    """Field vectors (b, F, k) and the first-order logit (b, 1) of every feature (module doc)."""
    check_positive_int(k=k)
    check_non_negative(l2=l2)
    reg = keras.regularizers.L2(l2) if l2 else None
    fields, linear = [], []
    for spec in space.specs:
        x = inputs[spec.name]
        if isinstance(spec, (Categorical, MultiCategorical)):
            size = space.vocabulary_size(spec.name)
            vec = layers.Embedding(size, k, embeddings_regularizer=reg, name=f"{spec.name}_embedding")(x)
            lin = layers.Embedding(size, 1, embeddings_initializer="zeros", name=f"{spec.name}_weight")(x)
            if isinstance(spec, MultiCategorical):
                mask = ops.expand_dims(ops.cast(ops.not_equal(x, 0), "float32"), -1)
                denominator = ops.maximum(ops.sum(mask, axis=1), 1.0) if spec.combiner == "mean" else 1.0
                vec = ops.sum(vec * mask, axis=1) / denominator
                lin = ops.sum(lin * mask, axis=1) / denominator
            else:
                lin = ops.reshape(lin, (-1, 1))
        elif isinstance(spec, Numeric):
            vec = layers.Dense(k, use_bias=False, name=f"{spec.name}_direction")(x)
            lin = layers.Dense(1, use_bias=False, name=f"{spec.name}_weight")(x)
        else:
            vec = layers.Dense(k, name=f"{spec.name}_projection", kernel_regularizer=reg)(x)
            lin = layers.Dense(1, use_bias=False, name=f"{spec.name}_weight")(x)
        fields.append(vec)
        linear.append(lin)
    return ops.stack(fields, axis=1), ops.sum(ops.concatenate(linear, axis=1), axis=1, keepdims=True)


def _mlp(x, units: Sequence[int], dropout: float, name: str):
    for j, u in enumerate(units):
        x = layers.Dense(u, activation="relu", name=f"{name}_{j}")(x)
        if dropout:
            x = layers.Dropout(dropout)(x)
    return x


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
    inputs = {}
    for spec in space.specs:
        if isinstance(spec, Categorical):
            inputs[spec.name] = keras.Input(shape=(), dtype="int32", name=spec.name)
        elif isinstance(spec, MultiCategorical):
            inputs[spec.name] = keras.Input(shape=(space.max_lengths_[spec.name],), dtype="int32", name=spec.name)
        elif isinstance(spec, Numeric):
            inputs[spec.name] = keras.Input(shape=(1,), dtype="float32", name=spec.name)
        else:
            dim = len(next(iter(spec.table.values())))
            inputs[spec.name] = keras.Input(shape=(dim,), dtype="float32", name=spec.name)
    fields, linear = field_embeddings(space, inputs, embedding_dim, l2)
    n_fields = len(space.specs)
    flat = ops.reshape(fields, (-1, n_fields * embedding_dim))
    bias = layers.Dense(1, name="bias")(ops.ones_like(linear))
    if kind == "lr":
        logit = linear + bias
    elif kind == "fm":
        logit = linear + bias + fm_interaction(fields)
    elif kind == "deepfm":
        deep = layers.Dense(1, name="deep_out")(_mlp(flat, hidden_units, dropout, "deep"))
        logit = linear + bias + fm_interaction(fields) + deep
    elif kind == "dcnv2":
        x = flat
        for j in range(cross_layers):
            x = CrossLayer(cross_rank, l2, name=f"cross_{j}")([flat, x])
        if cross_structure == "stacked":
            head = _mlp(x, hidden_units, dropout, "deep")
        else:
            head = ops.concatenate([x, _mlp(flat, hidden_units, dropout, "deep")], axis=-1)
        logit = layers.Dense(1, name="logit")(head)
    else:
        x = fields
        for j in range(attention_layers):
            attended = layers.MultiHeadAttention(attention_heads, embedding_dim, name=f"attention_{j}")(x, x)
            x = ops.relu(attended + layers.Dense(embedding_dim, use_bias=False, name=f"residual_{j}")(x))
        logit = layers.Dense(1, name="logit")(ops.reshape(x, (-1, n_fields * embedding_dim))) + linear
    model = keras.Model(inputs, ops.squeeze(logit, axis=-1), name=kind)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.AUC(name="auc", from_logits=True)])
    return model

"""Reusable Keras layers with shape contracts, shared by every deep model of reclib.

- :class:`MaskedMeanPooling`: ``(values (b, L, d), mask (b, L))`` -> ``(b, d)``, mean (or sum) of
  the kept vectors; pools multi-valued fields and token sequences.
- :class:`StackFields`: F field vectors ``(b, k)`` -> ``(b, F, k)``.
- :class:`FMInteraction`: ``(b, F, k)`` -> ``(b, 1)``, the sum over field pairs of their dot
  products (and :func:`fm_interaction`, the same as a function).
- :class:`CrossLayer`: DCN-V2's ``x0 * (W x + b) + x`` on ``(b, d)``.
- :class:`FieldAttention`: AutoInt's multi-head self-attention across fields with a residual,
  ``(b, F, k)`` -> ``(b, F, k)``.
- :class:`TableEmbedding`: ``keras.layers.Embedding`` whose table is never cast as a whole to a
  mixed-precision compute dtype: rows are gathered in float32, then cast.
- :func:`build_by_tracing`: the ``build()`` of the subclassed models (NeuMF, TwoTower).

Only Keras layers and ``keras.ops``: they run on TensorFlow, JAX and PyTorch. Registered for
``.keras`` serialisation under the package ``reclib``.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from reclib.checks import ParameterTypeError, check_non_negative, check_non_negative_int, check_positive_int

__all__ = ["CrossLayer", "FMInteraction", "FieldAttention", "MaskedMeanPooling", "StackFields", "TableEmbedding",
           "build_by_tracing", "fm_interaction"]


def build_by_tracing(layer: layers.Layer, input_shape) -> None:
    """Build the sublayers ``layer.call`` uses by running it once on symbolic inputs.

    ``input_shape``: the shapes of ``call``'s ``inputs`` (a dict name -> shape tuple, or one shape).
    This is what Keras does by itself for a layer without a ``build()`` method, in the same order
    (so the weights and their initial values are unchanged); called from a model's ``build`` it
    also tells Keras the model *is* built, so Keras no longer warns about sublayers that ``call``
    never touches (a weightless task, a branch switched off by an argument).
    """
    symbolic = keras.tree.map_shape_structure(lambda shape: keras.KerasTensor(shape), input_shape)
    layer.compute_output_spec(symbolic)


@keras.saving.register_keras_serializable(package="reclib")
class TableEmbedding(layers.Embedding):
    """``keras.layers.Embedding`` (same arguments, weights and float32 results) whose table variable
    is created with ``autocast=False``.

    Why: under a mixed policy (``mixed_bfloat16``), a Keras ``Embedding`` called inside a
    functional model still reads its table through the model's autocast scope, so the whole table
    (e.g. 100,000 x 128) is cast to bfloat16 before the gather, and the gradient is a bfloat16
    scatter-add into a bfloat16 copy of the table: slow where many rows of a batch share an id (a
    Zipf-distributed field: every duplicate is an atomic add into the same row) and a loss of
    gradient precision. Here the batch's rows are gathered in float32 and cast afterwards; the
    gradient is a float32 scatter-add. Under float32 the layer is ``keras.layers.Embedding``.
    Input: integer ids ``(...)``; output ``(..., output_dim)`` in the compute dtype.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.lora_rank or self.quantization_config is not None:
            raise ValueError("TableEmbedding has no LoRA or quantised tables: use keras.layers.Embedding for those")

    def build(self, input_shape=None) -> None:
        if self.built:
            return
        self._embeddings = self.add_weight(shape=(self.input_dim, self.output_dim),
                                           initializer=self.embeddings_initializer, name="embeddings",
                                           regularizer=self.embeddings_regularizer,
                                           constraint=self.embeddings_constraint, trainable=True, autocast=False)
        self.built = True


@keras.saving.register_keras_serializable(package="reclib")
class MaskedMeanPooling(layers.Layer):
    """Mean of the vectors a mask keeps: ``(values (b, L, d), mask (b, L))`` -> ``(b, d)``.

    ``mask`` is boolean or 0/1 (padding = 0); a row with nothing kept pools to the zero vector.
    ``mean=False`` gives the masked *sum* instead (the "sum" combiner of multi-valued fields).
    """

    def __init__(self, mean: bool = True, **kwargs) -> None:
        if not isinstance(mean, bool):
            raise ParameterTypeError(f"mean must be True or False, got {mean!r}")
        super().__init__(**kwargs)
        self.mean = mean

    def call(self, inputs):
        values, mask = inputs
        weights = ops.expand_dims(ops.cast(mask, values.dtype), -1)
        total = ops.sum(values * weights, axis=1)
        if not self.mean:
            return total
        count = ops.maximum(ops.sum(weights, axis=1), ops.cast(1.0, values.dtype))
        return total / count

    def get_config(self) -> dict:
        return {**super().get_config(), "mean": self.mean}


@keras.saving.register_keras_serializable(package="reclib")
class StackFields(layers.Layer):
    """F field vectors, each ``(b, k)``, -> ``(b, F, k)`` (a named point to read fields back from)."""

    def call(self, inputs):
        return ops.stack(list(inputs), axis=1)


def fm_interaction(fields):
    """Sum over field pairs f < g of <v_f, v_g>, by the O(kF) sum-square identity: (b, F, k) -> (b, 1).

    ``sum_{f<g} <v_f, v_g> = 1/2 sum_d [(sum_f v_fd)^2 - sum_f v_fd^2]``.
    """
    square_of_sum = ops.square(ops.sum(fields, axis=1))
    sum_of_squares = ops.sum(ops.square(fields), axis=1)
    return 0.5 * ops.sum(square_of_sum - sum_of_squares, axis=1, keepdims=True)


@keras.saving.register_keras_serializable(package="reclib")
class FMInteraction(layers.Layer):
    """Factorisation-machine pairwise term: ``(b, F, k)`` -> ``(b, 1)`` (:func:`fm_interaction`), O(kF)."""

    def call(self, inputs):
        return fm_interaction(inputs)


@keras.saving.register_keras_serializable(package="reclib")
class CrossLayer(layers.Layer):
    """One DCN-V2 cross layer: ``(x0 (b, d), x (b, d))`` -> ``x0 * (W x + b) + x`` ``(b, d)``.

    ``rank`` is an int >= 0 (0: full-rank W (d, d); > 0 factorises W = U V^T with U (d, rank)),
    ``l2`` a finite number >= 0 regularising W (or U and V).
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


@keras.saving.register_keras_serializable(package="reclib")
class FieldAttention(layers.Layer):
    """One AutoInt interacting layer: ``(b, F, k)`` -> ``relu(MHA(x, x) + x W_res)`` ``(b, F, k)``.

    Multi-head self-attention across the F fields (``heads`` heads of size ``key_dim``, default
    k; output projected back to k), plus a linear residual ``W_res`` (k, k) without bias.
    """

    def __init__(self, heads: int = 2, key_dim: int | None = None, **kwargs) -> None:
        check_positive_int(heads=heads)
        if key_dim is not None:
            check_positive_int(key_dim=key_dim)
        super().__init__(**kwargs)
        self.heads, self.key_dim = heads, key_dim

    def build(self, input_shape) -> None:
        if len(input_shape) != 3:
            raise ValueError(f"FieldAttention expects fields of shape (batch, fields, k), got {input_shape}")
        dim = input_shape[-1]
        # attention built before the residual is made: the initialisers draw their seeds in that order
        self.attention = layers.MultiHeadAttention(self.heads, self.key_dim or dim, name="attention")
        self.attention.build(input_shape, input_shape)
        self.residual = layers.Dense(dim, use_bias=False, name="residual")
        self.residual.build(input_shape)

    def call(self, inputs):
        return ops.relu(self.attention(inputs, inputs) + self.residual(inputs))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "heads": self.heads, "key_dim": self.key_dim}

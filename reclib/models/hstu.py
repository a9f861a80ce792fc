r"""HSTU (Zhai et al., ICML 2024, "Actions Speak Louder than Words"): a next-item encoder whose
attention is pointwise (SiLU) instead of a softmax, with a relative position bias and a gate.

One :class:`HSTUBlock` on hidden states :math:`X` (b, L, d), with :math:`h` heads of size
:math:`d_h = d / h`:

.. math::
   U, V, Q, K = \mathrm{split}\big(\phi(\mathrm{LN}(X) W + b)\big)

   A_{ij} = \phi\big(q_i^\top k_j + r_{i-j}\big) / L \;\cdot\; [j \le i]\,[\text{item } j \text{ is real}]

   Y = X + \big(U \odot \mathrm{LN}(A V)\big) W_o

:math:`\phi` is SiLU, :math:`\mathrm{LN}` a layer norm without learned scale or shift (as the
reference code), :math:`r_{i-j}` a learned bias per relative position (a table of :math:`2L-1`
entries, :math:`L` the window). Unlike softmax attention the weights of a row do not sum to one:
how *much* a user's past says is itself learned, which the authors argue suits non-stationary
streams of actions. The paper's bias also buckets the time gap between events; it is left out
here because the kit's windows carry item codes only (timestamps order the events, nothing more).

:class:`HSTU` stacks ``n_blocks`` such blocks on item + learned position embeddings (the HSTU
paper's MovieLens setting) and, as there, L2-normalises the output and item vectors
(``normalize=True``) so the softmax compares cosines sharpened by ``temperature`` (0.05 there).
The recommender is :class:`reclib.models.sequential.HSTURecommender`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from reclib.checks import check_in_range, check_positive_int
from reclib.models.layers import TableEmbedding
from reclib.models.sequence_encoders import SequenceModel

__all__ = ["HSTU", "HSTUBlock", "hstu_block_numpy"]


def hstu_block_numpy(weights: list[np.ndarray], x: np.ndarray, real: np.ndarray, n_heads: int) -> np.ndarray:
    """One :class:`HSTUBlock` in NumPy (no dropout): the module doc's formulas, line by line.

    weights: the block's ``get_weights()``: the relative bias (2 max_length - 1,), the U/V/Q/K
    kernel (d, 4d) and bias (4d,), the output kernel (d, d) and bias (d,); x: (b, L, d) float;
    real: (b, L) bool. Returns (b, L, d). The check that the Keras layer is what the notebook
    writes down.
    """
    relative_bias, uvqk_kernel, uvqk_bias, out_kernel, out_bias = weights
    b, length, d = x.shape
    silu = lambda v: v / (1.0 + np.exp(-v))                             # noqa: E731

    def norm(v):                                                        # layer norm, no scale/shift
        return (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + 1e-6)

    u, v, q, k = np.split(silu(norm(x) @ uvqk_kernel + uvqk_bias), 4, axis=-1)
    heads = (b, length, n_heads, d // n_heads)
    i, j = np.arange(length)[:, None], np.arange(length)[None, :]
    bias = relative_bias[j - i + (len(relative_bias) + 1) // 2 - 1]     # r_{i-j}, (L, L)
    logits = np.einsum("bihd,bjhd->bhij", q.reshape(heads), k.reshape(heads)) + bias
    keep = (j <= i)[None] & real[:, None, :]                           # (b, L, L)
    weights_ = silu(logits) / length * keep[:, None]
    attended = np.einsum("bhij,bjhd->bihd", weights_, v.reshape(heads)).reshape(b, length, d)
    return x + (u * norm(attended)) @ out_kernel + out_bias


@keras.saving.register_keras_serializable(package="reclib")
class HSTUBlock(layers.Layer):
    """One HSTU layer (module doc): ``call(x (b, L, d), real (b, L) bool)`` -> ``(b, L, d)``.

    dim: d (divisible by ``n_heads``); max_length: the longest window L (the bias table has
    ``2 * max_length - 1`` entries); dropout: on the gated output before :math:`W_o`.
    ``return_attention=True`` also returns A (b, h, L, L), zero above the diagonal and on padding.
    """

    def __init__(self, dim: int, n_heads: int, max_length: int, dropout: float = 0.0, **kwargs) -> None:
        super().__init__(**kwargs)
        check_positive_int(dim=dim, n_heads=n_heads, max_length=max_length)
        check_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        if dim % n_heads:
            raise ValueError(f"dim ({dim}) must be divisible by n_heads ({n_heads})")
        self.dim, self.n_heads, self.max_length, self.dropout = dim, n_heads, max_length, dropout
        self.input_norm = layers.LayerNormalization(epsilon=1e-6, center=False, scale=False)
        self.attention_norm = layers.LayerNormalization(epsilon=1e-6, center=False, scale=False)
        self.uvqk = layers.Dense(4 * dim, activation="silu", name="uvqk")
        self.output_projection = layers.Dense(dim, name="output")
        self.output_dropout = layers.Dropout(dropout)

    def build(self, input_shape) -> None:
        shape = tuple(input_shape)
        self.input_norm.build(shape)
        self.uvqk.build(shape)
        self.attention_norm.build(shape)
        self.output_projection.build(shape)
        self.relative_bias = self.add_weight(shape=(2 * self.max_length - 1,), name="relative_bias",
                                             initializer=keras.initializers.TruncatedNormal(stddev=0.02))

    @staticmethod
    def attention_mask(real):
        """(b, L, L) bool: query i may attend to key j iff j <= i and item j is real (real: (b, L))."""
        positions = ops.arange(ops.shape(real)[1])
        causal = ops.greater_equal(ops.expand_dims(positions, 1), ops.expand_dims(positions, 0))
        return ops.logical_and(ops.expand_dims(causal, 0), ops.expand_dims(real, 1))

    def attention_weights(self, q, k, real):
        """A (b, h, L, L) from queries and keys (b, L, h, d_h) and the real-item mask (b, L)."""
        length = ops.shape(q)[1]
        positions = ops.arange(length)
        offsets = ops.expand_dims(positions, 0) - ops.expand_dims(positions, 1)      # j - i
        bias = ops.take(self.relative_bias, offsets + (self.max_length - 1))          # (L, L)
        logits = ops.einsum("bihd,bjhd->bhij", q, k) + bias
        weights = ops.silu(logits) / ops.cast(length, logits.dtype)
        return weights * ops.expand_dims(ops.cast(self.attention_mask(real), logits.dtype), 1)

    def call(self, x, real, training: bool = False, return_attention: bool = False):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        heads = (batch, length, self.n_heads, self.dim // self.n_heads)
        u, v, q, k = ops.split(self.uvqk(self.input_norm(x)), 4, axis=-1)
        weights = self.attention_weights(ops.reshape(q, heads), ops.reshape(k, heads), real)
        attended = ops.reshape(ops.einsum("bhij,bjhd->bihd", weights, ops.reshape(v, heads)), (batch, length, self.dim))
        gated = u * self.attention_norm(attended)
        y = x + self.output_projection(self.output_dropout(gated, training=training))
        return (y, weights) if return_attention else y

    def get_config(self) -> dict:
        return {**super().get_config(), "dim": self.dim, "n_heads": self.n_heads, "max_length": self.max_length,
                "dropout": self.dropout}


@keras.saving.register_keras_serializable(package="reclib")
class HSTU(SequenceModel):
    """HSTU next-item encoder: ``call(codes (b, L)) -> (b, L, d)`` (module doc).

    max_length: the window L (learned positions 0..L-1, relative biases -(L-1)..L-1);
    embedding_dim: d (divisible by ``n_heads``); n_blocks, n_heads; dropout: on the embeddings
    and inside every block. ``normalize`` (default True) and ``temperature`` as
    :class:`~reclib.models.sequence_encoders.SequenceModel`.
    """

    def __init__(self, n_items: int, max_length: int = 50, embedding_dim: int = 64, n_blocks: int = 2,
                 n_heads: int = 2, dropout: float = 0.2, normalize: bool = True, **kwargs) -> None:
        super().__init__(n_items, embedding_dim, normalize=normalize, **kwargs)
        check_positive_int(max_length=max_length, n_blocks=n_blocks, n_heads=n_heads)
        check_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        self.max_length, self.n_blocks, self.n_heads, self.dropout = max_length, n_blocks, n_heads, dropout
        self.position_embedding = TableEmbedding(max_length, embedding_dim, name="position_embedding")
        self.embedding_dropout = layers.Dropout(dropout)
        self.blocks = [HSTUBlock(embedding_dim, n_heads, max_length, dropout, name=f"block{b}")
                       for b in range(n_blocks)]

    def build(self, input_shape) -> None:
        self.build_tables(input_shape)
        self.position_embedding.build(input_shape)
        for block in self.blocks:
            block.build(tuple(input_shape) + (self.embedding_dim,))

    def call(self, inputs, training: bool = False, return_attention: bool = False):
        items = self.items_of(inputs)
        length = ops.shape(items)[1]
        x = self.item_embedding(items) * (self.embedding_dim ** 0.5) + self.position_embedding(ops.arange(length))
        x = self.embedding_dropout(x, training=training)
        real = ops.greater(items, 0)
        keep = ops.expand_dims(ops.cast(real, x.dtype), -1)
        weights = []
        for block in self.blocks:
            x, a = block(x, real, training=training, return_attention=True)
            x = x * keep                                         # padding stays zero
            weights.append(a)
        out = self.output_vectors(x)
        return (out, weights) if return_attention else out

    def get_config(self) -> dict:
        return {**super().get_config(), "max_length": self.max_length, "n_blocks": self.n_blocks,
                "n_heads": self.n_heads, "dropout": self.dropout}

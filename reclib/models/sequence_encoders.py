r"""Next-item encoders over users' item sequences: an Embedding + GRU/LSTM encoder and SASRec.

Both read a left-padded window of item codes ``(b, L)`` (``0`` = padding, item index + 1
otherwise; :mod:`reclib.data.sequences`) and return a hidden state per position ``(b, L, d)``.
The state at position ``t`` summarises items ``0..t`` only, so it predicts item ``t + 1``: the
logits are its dot products with the **shared** item embedding table, :math:`h_t^\top e_j`
(the input and output embeddings are one matrix, as in SASRec). Training applies
:class:`~reclib.models.tasks.NextItemTask` (a softmax over the catalogue) at every non-padding
position.

- :class:`RecurrentEncoder`: Embedding -> GRU or LSTM (``return_sequences``) with the padding
  masked, so the state before a user's first item is exactly zero. The last state is the user's
  **interest vector**; :func:`recurrent_step` is one step of the cell in NumPy (the serving path,
  and the check that the gates are what the notebook writes down).
- :class:`SASRec` (Kang & McAuley 2018): item + learned position embeddings, ``n_blocks`` of
  pre-norm causal multi-head self-attention and a position-wise feed-forward network, each with
  dropout and a residual connection, and a final layer norm. A causal mask keeps position
  ``t`` from attending to anything after ``t``; a padding mask keeps it from attending to padding.

The recommenders that train and serve them are in :mod:`reclib.models.sequential`.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops

from reclib.checks import check_bool, check_choice, check_in_range, check_positive, check_positive_int
from reclib.models.layers import TableEmbedding
from reclib.models.tasks import NextItemTask, total_loss

__all__ = ["RecurrentEncoder", "SASRec", "SequenceModel", "recurrent_step"]


@keras.saving.register_keras_serializable(package="reclib")
class SequenceModel(keras.Model):
    """Base of the next-item encoders: ``call(codes (b, L)) -> (b, L, d)`` hidden states.

    ``compute_loss`` takes the batch dict ``{"items": (b, L), "targets": (b, L)}`` (codes; a
    target of 0 marks padding) and applies the task at every position whose target is an item.
    top_k: report the task's top-k accuracy of the next item (e.g. ``(10,)``) during training.
    item_embedding: the layer from item codes (b, L) to vectors (b, L, d) (default: a table of
    ``n_items + 1`` rows, row 0 the padding); a subclass may compose items from smaller parts.

    The options reported to matter for SASRec-like models:
    ``separate_output``: score with a second (n_items, d) table instead of the input table;
    ``normalize``: L2-normalise the hidden states and the output table, so logits are cosines
    divided by ``temperature`` (use a small one, e.g. 0.05 as in HSTU's configurations, Zhai et
    al. 2024: cosines lie in [-1, 1]);
    ``loss``, ``n_sampled``, ``calibration``: :class:`~reclib.models.tasks.NextItemTask`
    (``"softmax"``, full or sampled, the loss Klenitskiy & Vasilev 2023 found to matter most, or
    ``"gbce"``, Petrov & Macdonald 2023).
    """

    def __init__(self, n_items: int, embedding_dim: int, temperature: float = 1.0,
                 n_sampled: int | None = None, seed: int = 0, top_k: Sequence[int] = (),
                 item_embedding: layers.Layer | None = None, normalize: bool = False,
                 separate_output: bool = False, loss: str = "softmax", calibration: float = 0.75,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        check_positive_int(n_items=n_items, embedding_dim=embedding_dim)
        check_positive(temperature=temperature)
        check_bool(normalize=normalize, separate_output=separate_output)
        self.n_items, self.embedding_dim, self.temperature, self.n_sampled = n_items, embedding_dim, temperature, n_sampled
        self.normalize, self.separate_output, self.loss_name, self.calibration = (normalize, separate_output,
                                                                                  loss, calibration)
        self.item_embedding = (TableEmbedding(n_items + 1, embedding_dim, name="item_embedding")
                               if item_embedding is None else item_embedding)
        self.output_embedding = (TableEmbedding(n_items, embedding_dim, name="output_embedding")
                                 if separate_output else None)
        self.task = NextItemTask(n_sampled=n_sampled, temperature=temperature, seed=seed, top_k=top_k,
                                 loss=loss, calibration=calibration, name="next_item")

    def build_tables(self, input_shape) -> None:
        """Build the input table (and the output table, if separate) for code windows (b, L)."""
        self.item_embedding.build(input_shape)
        if self.output_embedding is not None:
            self.output_embedding.build(input_shape)

    def output_vectors(self, hidden):
        """The hidden states (b, L, d) as the task compares them: L2-normalised if ``normalize``."""
        return ops.normalize(hidden, axis=-1, epsilon=1e-12) if self.normalize else hidden

    @staticmethod
    def items_of(inputs):
        """The code windows of ``inputs``: the tensor itself or a training batch's ``"items"``."""
        return inputs["items"] if isinstance(inputs, dict) else inputs

    def item_table(self):
        """(n_items, d) output embeddings: the input table without the padding row, or the
        separate output table; L2-normalised rows if ``normalize``."""
        table = (self.item_embedding.embeddings[1:] if self.output_embedding is None
                 else self.output_embedding.embeddings)
        return ops.normalize(table, axis=-1, epsilon=1e-12) if self.normalize else table

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The task's loss summed over the trained positions and divided by all b·L positions
        (padding counts in the divisor, as Keras' ``sum_over_batch_size`` with weight 0 on it).

        Where shapes may vary between steps (TensorFlow and PyTorch without ``jit_compile``) only
        the trained rows are gathered and scored against the catalogue, (n, N) logits instead
        of (b·L, N); under XLA or JAX, which need static shapes, every position is scored and
        padding gets weight 0. Both give the same number.
        """
        targets = ops.reshape(x["targets"], (-1,))
        hidden = ops.reshape(y_pred, (-1, self.embedding_dim))
        if keras.backend.backend() == "jax" or self.jit_compile:
            weight = ops.cast(ops.greater(targets, 0), "float32")
            labels = ops.maximum(targets - 1, 0)                  # padding rows: weight 0
            return total_loss(self, self.task.loss(hidden, labels, self.item_table(), sample_weight=weight))
        rows = ops.nonzero(ops.greater(targets, 0))[0]            # (n,) trained positions
        mean = self.task.loss(ops.take(hidden, rows, axis=0), ops.take(targets, rows) - 1, self.item_table())
        share = ops.cast(ops.shape(rows)[0], "float32") / ops.cast(ops.shape(targets)[0], "float32")
        return total_loss(self, mean * share)

    def get_config(self) -> dict:
        return {**super().get_config(), "n_items": self.n_items, "embedding_dim": self.embedding_dim,
                "temperature": self.temperature, "n_sampled": self.n_sampled, "normalize": self.normalize,
                "separate_output": self.separate_output, "loss": self.loss_name, "calibration": self.calibration}


@keras.saving.register_keras_serializable(package="reclib")
class RecurrentEncoder(SequenceModel):
    """Embedding + GRU or LSTM next-item encoder (GRU4Rec-style, full softmax by default).

    cell: ``"gru"`` or ``"lstm"``; embedding_dim: d, also the number of recurrent units (the
    state is compared with the item embeddings); dropout: on the embeddings and on the states.
    """

    def __init__(self, n_items: int, embedding_dim: int = 64, cell: str = "gru", dropout: float = 0.2,
                 **kwargs) -> None:
        super().__init__(n_items, embedding_dim, **kwargs)
        check_choice("cell", cell, ("gru", "lstm"))
        check_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        self.cell, self.dropout = cell, dropout
        recurrent = layers.GRU if cell == "gru" else layers.LSTM
        self.recurrent = recurrent(embedding_dim, return_sequences=True, name=cell)
        self.input_dropout = layers.Dropout(dropout)
        self.output_dropout = layers.Dropout(dropout)

    def build(self, input_shape) -> None:
        self.build_tables(input_shape)
        self.recurrent.build(tuple(input_shape) + (self.embedding_dim,))

    def call(self, inputs, training: bool = False):
        items = self.items_of(inputs)
        x = self.input_dropout(self.item_embedding(items), training=training)
        return self.output_vectors(self.output_dropout(
            self.recurrent(x, mask=ops.greater(items, 0), training=training), training=training))

    def get_config(self) -> dict:
        return {**super().get_config(), "cell": self.cell, "dropout": self.dropout}


def recurrent_step(cell: str, weights: list[np.ndarray], x: np.ndarray,
                   state: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    r"""One step of a Keras GRU (``reset_after=True``) or LSTM in NumPy.

    weights: the layer's ``get_weights()`` (kernel (d_in, G u), recurrent kernel (u, G u), bias);
    x: (b, d_in) inputs; state: ``(h,)`` for a GRU, ``(h, c)`` for an LSTM, each (b, u).
    Returns the new state. GRU, gates in Keras' order z, r, h:

    .. math:: z = \sigma(x W_z + h U_z + b_z),\; r = \sigma(x W_r + h U_r + b_r),\;
              \tilde h = \tanh(x W_h + b^x_h + r \odot (h U_h + b^h_h)),\;
              h' = z \odot h + (1 - z) \odot \tilde h

    LSTM, gates i, f, c, o: :math:`c' = f \odot c + i \odot \tanh(\cdot)`,
    :math:`h' = o \odot \tanh(c')`.
    """
    kernel, recurrent, bias = weights
    sigmoid = lambda v: 1.0 / (1.0 + np.exp(-v))           # noqa: E731
    if cell == "gru":
        (h,) = state
        u = h.shape[1]
        bias = bias.reshape(2, -1)                          # input and recurrent biases
        xs, hs = x @ kernel + bias[0], h @ recurrent + bias[1]
        z = sigmoid(xs[:, :u] + hs[:, :u])
        r = sigmoid(xs[:, u:2 * u] + hs[:, u:2 * u])
        candidate = np.tanh(xs[:, 2 * u:] + r * hs[:, 2 * u:])
        return (z * h + (1.0 - z) * candidate,)
    check_choice("cell", cell, ("gru", "lstm"))
    h, c = state
    u = h.shape[1]
    gates = x @ kernel + h @ recurrent + bias
    i, f = sigmoid(gates[:, :u]), sigmoid(gates[:, u:2 * u])
    c = f * c + i * np.tanh(gates[:, 2 * u:3 * u])
    return sigmoid(gates[:, 3 * u:]) * np.tanh(c), c


@keras.saving.register_keras_serializable(package="reclib")
class SASRec(SequenceModel):
    """Self-attentive sequential recommendation (Kang & McAuley 2018) in Keras 3.

    max_length: L, the window (learned positions 0..L-1); embedding_dim: d (divisible by
    ``n_heads``); n_blocks, n_heads; dropout: on the embeddings, attention weights and residual
    branches.
    """

    def __init__(self, n_items: int, max_length: int = 50, embedding_dim: int = 64, n_blocks: int = 2,
                 n_heads: int = 2, dropout: float = 0.2, **kwargs) -> None:
        super().__init__(n_items, embedding_dim, **kwargs)
        check_positive_int(max_length=max_length, n_blocks=n_blocks, n_heads=n_heads)
        check_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        if embedding_dim % n_heads:
            raise ValueError(f"embedding_dim ({embedding_dim}) must be divisible by n_heads ({n_heads})")
        self.max_length, self.n_blocks, self.n_heads, self.dropout = max_length, n_blocks, n_heads, dropout
        self.position_embedding = TableEmbedding(max_length, embedding_dim, name="position_embedding")
        self.embedding_dropout = layers.Dropout(dropout)
        self.blocks = []
        for b in range(n_blocks):
            self.blocks.append({
                "attention_norm": layers.LayerNormalization(epsilon=1e-8, name=f"block{b}_attention_norm"),
                "attention": layers.MultiHeadAttention(n_heads, embedding_dim // n_heads, dropout=dropout,
                                                       name=f"block{b}_attention"),
                "attention_dropout": layers.Dropout(dropout),
                "ffn_norm": layers.LayerNormalization(epsilon=1e-8, name=f"block{b}_ffn_norm"),
                "ffn_in": layers.Dense(embedding_dim, activation="relu", name=f"block{b}_ffn_in"),
                "ffn_out": layers.Dense(embedding_dim, name=f"block{b}_ffn_out"),
                "ffn_dropout": layers.Dropout(dropout),
            })
        self.final_norm = layers.LayerNormalization(epsilon=1e-8, name="final_norm")

    def build(self, input_shape) -> None:
        d = self.embedding_dim
        self.build_tables(input_shape)
        self.position_embedding.build(input_shape)
        shape = tuple(input_shape) + (d,)
        for block in self.blocks:
            block["attention_norm"].build(shape)
            block["attention"].build(shape, shape)
            block["ffn_norm"].build(shape)
            block["ffn_in"].build(shape)
            block["ffn_out"].build(shape)
        self.final_norm.build(shape)

    def attention_mask(self, items):
        """(b, L, L) bool: query t may attend to key s iff s <= t and item s is not padding."""
        length = ops.shape(items)[1]
        causal = ops.greater_equal(ops.expand_dims(ops.arange(length), 1), ops.expand_dims(ops.arange(length), 0))
        keys = ops.expand_dims(ops.greater(items, 0), 1)
        return ops.logical_and(ops.expand_dims(causal, 0), keys)

    def call(self, inputs, training: bool = False, return_attention: bool = False):
        items = self.items_of(inputs)
        length = ops.shape(items)[1]
        x = self.item_embedding(items) * (self.embedding_dim ** 0.5)
        x = x + self.position_embedding(ops.arange(length))
        x = self.embedding_dropout(x, training=training)
        mask = self.attention_mask(items)
        real = ops.expand_dims(ops.cast(ops.greater(items, 0), x.dtype), -1)
        scores = []
        for block in self.blocks:
            q = block["attention_norm"](x)
            attended, weights = block["attention"](q, q, attention_mask=mask, training=training,
                                                   return_attention_scores=True)
            x = x + block["attention_dropout"](attended, training=training)
            h = block["ffn_out"](block["ffn_in"](block["ffn_norm"](x)))
            x = (x + block["ffn_dropout"](h, training=training)) * real       # padding stays zero
            scores.append(weights)
        out = self.output_vectors(self.final_norm(x))
        return (out, scores) if return_attention else out

    def get_config(self) -> dict:
        return {**super().get_config(), "max_length": self.max_length, "n_blocks": self.n_blocks,
                "n_heads": self.n_heads, "dropout": self.dropout}

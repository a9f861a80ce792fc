r"""Next-item models over users' item sequences: an Embedding + GRU/LSTM encoder and SASRec.

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
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import keras
import numpy as np
import pandas as pd
import scipy.sparse as sp
from keras import layers, ops

from reclib.base import user_batches
from reclib.checks import (ParameterTypeError, check_choice, check_in_range, check_positive,
                           check_positive_int, require_columns)
from reclib.data.sequences import last_window, pad_histories, training_windows, user_sequences
from reclib.data.validation import validate_interactions
from reclib.features.content import ItemFeatures, check_item_features
from reclib.models.layers import TableEmbedding
from reclib.models.recommenders import KerasRecommender, Validate
from reclib.models.tasks import NextItemTask, total_loss
from reclib.training.data import InBatchDataset

__all__ = ["RecurrentEncoder", "RecurrentRecommender", "SASRec", "SASRecRecommender", "SequenceModel",
           "SequenceScoring", "SequentialRecommender", "recurrent_step"]


@keras.saving.register_keras_serializable(package="reclib")
class SequenceModel(keras.Model):
    """Base of the next-item encoders: ``call(codes (b, L)) -> (b, L, d)`` hidden states.

    ``compute_loss`` takes the batch dict ``{"items": (b, L), "targets": (b, L)}`` (codes; a
    target of 0 marks padding) and applies the task at every position whose target is an item.
    top_k: report the task's top-k accuracy of the next item (e.g. ``(10,)``) during training.
    """

    def __init__(self, n_items: int, embedding_dim: int, temperature: float = 1.0,
                 n_sampled: int | None = None, seed: int = 0, top_k: Sequence[int] = (), **kwargs) -> None:
        super().__init__(**kwargs)
        check_positive_int(n_items=n_items, embedding_dim=embedding_dim)
        check_positive(temperature=temperature)
        self.n_items, self.embedding_dim, self.temperature, self.n_sampled = n_items, embedding_dim, temperature, n_sampled
        self.item_embedding = TableEmbedding(n_items + 1, embedding_dim, name="item_embedding")
        self.task = NextItemTask(n_sampled=n_sampled, temperature=temperature, seed=seed, top_k=top_k,
                                 name="next_item")

    @staticmethod
    def items_of(inputs):
        """The code windows of ``inputs``: the tensor itself or a training batch's ``"items"``."""
        return inputs["items"] if isinstance(inputs, dict) else inputs

    def item_table(self):
        """(n_items, d) output embeddings: the input table without the padding row."""
        return self.item_embedding.embeddings[1:]

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
                "temperature": self.temperature, "n_sampled": self.n_sampled}


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
        self.item_embedding.build(input_shape)
        self.recurrent.build(tuple(input_shape) + (self.embedding_dim,))

    def call(self, inputs, training: bool = False):
        items = self.items_of(inputs)
        x = self.input_dropout(self.item_embedding(items), training=training)
        return self.output_dropout(self.recurrent(x, mask=ops.greater(items, 0), training=training),
                                   training=training)

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
        self.item_embedding.build(input_shape)
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
        out = self.final_norm(x)
        return (out, scores) if return_attention else out

    def get_config(self) -> dict:
        return {**super().get_config(), "max_length": self.max_length, "n_blocks": self.n_blocks,
                "n_heads": self.n_heads, "dropout": self.dropout}


# -- recommenders on the common interface ---------------------------------------------------------
#: defaults chosen on P3's validation event of ML-100K by ``python -m experiments.tune_sequential``
#: (each candidate early-stopped on validation NDCG@10; the best candidate's early-stopped epoch).
#: SASRec: window 50, width 128, rate 0.005 won (validation NDCG@10 0.122) over width 64 (0.102),
#: window 100 (0.110), dropout 0.5 (0.103), rate 0.002 (0.119), overlapping windows (0.117). That
#: search ran before the models took the full catalogue at ``fit``; the winner refitted on train
#: with the catalogue early-stops at epoch 10 (validation NDCG@10 0.113 with the loss over every
#: position, 0.115 with the loss at the trained positions only, the same epoch), so
#: ``SASREC_EPOCHS`` is 10 (it was the earlier search's 17); refitted on train + valid it reaches P3
#: test NDCG@10 0.097 / HR@10 0.181 in about 45 s on two CPU cores. GRU: width 128, rate 0.005
#: (validation 0.116, 18 epochs).
SASREC_EPOCHS = 10
GRU_EPOCHS = 18
#: rows per scoring call; shorter bulk calls are padded to it, single windows (serving) are not
ENCODE_BATCH = 256


class SequenceScoring:
    """What every next-item recommender shares once it can score code windows.

    A subclass sets ``sequences_`` (:func:`~reclib.data.sequences.user_sequences` of the fitted
    events, users in ``user_ids_`` order) and ``max_length``, and implements
    ``score_windows(windows (b, max_length)) -> (b, n_items)``. Then:

    - ``score(users)`` (through ``_score``) reads each user's last ``max_length`` items;
    - ``observe(events)`` appends events that arrived after ``fit`` to the users' sequences
      (no training): the next ``score`` / ``recommend`` reads them, as a served model would;
    - ``score_histories(lists of raw item ids, oldest first)`` scores explicit histories;
    - ``start_state(items)``, ``advance(state, item)``, ``state_scores(state)``: the real-time
      state of ``reclib.serving.RealTimeRecommender``, here the last ``max_length`` codes,
      re-encoded when scored (recurrent models override them with one step per event).
    """

    def score_windows(self, windows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _item_catalogue(self, interactions: pd.DataFrame) -> np.ndarray:
        """The items of ``item_features`` when given (events after ``fit`` may name items that
        were never in training), else those of ``interactions``."""
        features = getattr(self, "item_features_", None)
        return interactions[self.item_col].to_numpy() if features is None else features.item_ids

    def _store_sequences(self, interactions: pd.DataFrame) -> None:
        events = interactions[[self.user_col, self.item_col, self.timestamp_col]]
        self.events_ = events.reset_index(drop=True)
        self.sequences_ = user_sequences(events, self.item_encoder_.transform(events[self.item_col]),
                                         self.user_col, self.timestamp_col)

    def observe(self, events: pd.DataFrame):
        """Append ``events`` (known users and items, with timestamps) to the fitted sequences; returns self.

        Checked as ``fit`` checks its frame (no nulls, numeric finite timestamps, no duplicate
        (user, item, timestamp) row), and an event already stored (from ``fit`` or an earlier
        ``observe``) is refused rather than counted twice. Nothing is stored unless all pass.
        """
        self._check_fitted()
        key = [self.user_col, self.item_col, self.timestamp_col]
        validate_interactions(events, self.user_col, self.item_col, rating_col=None,
                              timestamp_col=self.timestamp_col, required=(self.timestamp_col,))
        self.user_encoder_.transform(events[self.user_col])       # unknown users/items raise, naming them
        self.item_encoder_.transform(events[self.item_col])
        stored = pd.MultiIndex.from_frame(events[key]).isin(pd.MultiIndex.from_frame(self.events_[key]))
        if stored.any():
            first = events.loc[stored, key].head(5)
            raise ValueError(f"{int(stored.sum())} event(s) of observe are already stored (from fit or an "
                             f"earlier observe); first:\n{first.to_string()}")
        self._store_sequences(pd.concat([self.events_, events[list(self.events_.columns)]], ignore_index=True))
        return self

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.score_windows(last_window(self.sequences_, self.max_length)[users])

    def codes(self, items: Sequence[object]) -> np.ndarray:
        """(len(items),) item codes (index + 1) of raw ``items``; an unknown item raises, naming it."""
        items = list(items)
        if not items:
            return np.zeros(0, np.int64)
        return self.item_encoder_.transform(np.asarray(items)) + 1

    def score_histories(self, histories: Sequence[Sequence[object]]) -> np.ndarray:
        """(len(histories), n_items) next-item scores from explicit histories (raw ids, oldest first)."""
        self._check_fitted()
        return self.score_windows(pad_histories([self.codes(h) for h in histories], self.max_length))

    def start_state(self, items: Sequence[object]):
        """The state after ``items`` (raw ids, oldest first): the last ``max_length`` codes."""
        return deque(self.codes(items).tolist(), maxlen=self.max_length)

    def advance(self, state, item: object):
        """The state after one more event ``item``."""
        state.append(int(self.codes([item])[0]))
        return state

    def state_scores(self, state) -> np.ndarray:
        """(n_items,) next-item scores of one state."""
        return self.score_windows(pad_histories([list(state)], self.max_length))[0]


class SequentialRecommender(SequenceScoring, KerasRecommender):
    """A next-item encoder behind ``fit`` / ``score`` / ``recommend`` (raw ids in and out).

    ``fit(interactions, validate=None, item_features=None)`` needs a ``timestamp_col``: each
    user's items in time order (ties by item id) are cut into left-padded windows of
    ``max_length`` that end every ``stride`` events (default: ``max_length``, no overlap;
    :func:`~reclib.data.sequences.training_windows`) and the encoder learns the next item at
    every trained position. ``score(users)`` reads each user's last ``max_length`` fitted
    items and scores every catalogue item for the **next** event; ``score_histories(lists of raw
    item ids, oldest first)`` does the same for explicit histories (events after ``fit``).

    ``item_features``: an optional :class:`~reclib.features.content.ItemFeatures`. Its
    ``item_ids`` are the catalogue (items that never occur in training get an embedding that the
    softmax only ever pushes down, and events naming them can be observed later); its dense
    ``vectors`` (e.g. BERT title embeddings), if any, initialise the item embeddings: projected on
    their first ``embedding_dim`` principal components and scaled to the random initialiser's
    standard deviation (the table stays trainable).

    Scoring, ``observe`` and the real-time state: :class:`SequenceScoring`.
    """

    def __init__(self, max_length: int, embedding_dim: int, temperature: float, n_sampled: int | None,
                 epochs: int, batch_size: int, learning_rate: float, patience: int, monitor: str,
                 random_state: int, verbose: int, timestamp_col: str = "timestamp", stride: int | None = None,
                 **columns: str) -> None:
        super().__init__(epochs, batch_size, learning_rate, patience, monitor, random_state, verbose, **columns)
        check_positive_int(max_length=max_length, embedding_dim=embedding_dim)
        if stride is not None:
            check_positive_int(stride=stride)
            if stride > max_length:
                raise ValueError(f"stride ({stride}) must be at most max_length ({max_length})")
        self.stride = stride
        check_positive(temperature=temperature)
        if n_sampled is not None:
            check_positive_int(n_sampled=n_sampled)
        if not isinstance(timestamp_col, str):
            raise ParameterTypeError(f"timestamp_col must be a column name, got {timestamp_col!r}")
        self.max_length, self.embedding_dim, self.temperature = max_length, embedding_dim, temperature
        self.n_sampled, self.timestamp_col = n_sampled, timestamp_col

    # -- subclass hook --------------------------------------------------------------------------
    def _build_encoder(self, n_items: int) -> SequenceModel:
        raise NotImplementedError

    # -- fitting --------------------------------------------------------------------------------
    def fit(self, interactions: pd.DataFrame, validate: Validate | None = None, *,
            item_features: ItemFeatures | None = None) -> SequentialRecommender:
        """Fit on ``interactions`` (needs ``timestamp_col``); ``validate`` early-stops."""
        require_columns(interactions, self.user_col, self.item_col, self.timestamp_col)
        features = check_item_features(item_features, interactions, self.item_col, need=(),
                                       model=type(self).__name__)
        if features is not None and sp.issparse(features.vectors):
            raise ParameterTypeError(f"{type(self).__name__} initialises item embeddings from "
                                     "item_features.vectors, which must be a dense array")
        self.item_features_ = features
        return super().fit(interactions, validate)

    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
        self._store_sequences(interactions)
        inputs, targets = training_windows(self.sequences_, self.max_length, self.stride)
        if len(inputs) == 0:
            raise ValueError("no user has two events: a next-item model needs sequences of length >= 2")
        dataset = InBatchDataset({"items": inputs, "targets": targets}, min(self.batch_size, len(inputs)),
                                 seed=self.random_state)
        n_items = len(self.item_ids_)

        def build() -> keras.Model:
            self.keras_model_ = self._build_encoder(n_items)
            self.keras_model_.build((None, self.max_length))
            if self.item_features_ is not None and self.item_features_.vectors is not None:
                self._initialise_items(self.keras_model_)
            return self.keras_model_

        self._train(build, dataset)
        self._export()

    def _initialise_items(self, model: SequenceModel) -> None:
        """Item embeddings from the feature vectors' top principal components (class doc)."""
        features = self.item_features_
        vectors = np.asarray(features.vectors, np.float64)[features.rows(self.item_ids_)]
        table = keras.ops.convert_to_numpy(model.item_embedding.embeddings)
        centred = vectors - vectors.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        projected = centred @ vt[:self.embedding_dim].T
        projected = np.pad(projected, ((0, 0), (0, self.embedding_dim - projected.shape[1])))
        projected *= table[1:].std() / max(projected.std(), 1e-12)
        table[1:] = projected
        model.item_embedding.embeddings.assign(table.astype("float32"))

    def _export(self) -> None:
        """Cache the item table (n_items, d) in NumPy for scoring and serving."""
        self.item_table_ = self._current_item_table().astype(np.float32)

    # -- scoring --------------------------------------------------------------------------------
    def encode(self, windows: np.ndarray) -> np.ndarray:
        """(b, d) hidden state at the last position of left-padded code windows (b, max_length)."""
        out = np.empty((len(windows), self.embedding_dim), np.float32)
        for batch in user_batches(len(windows), ENCODE_BATCH):
            rows = windows[batch]
            if 1 < len(rows) < ENCODE_BATCH:        # one shape for every bulk call: no retracing
                rows = np.pad(rows, ((0, ENCODE_BATCH - len(rows)), (0, 0)))
            hidden = self.keras_model_.predict_on_batch(rows)
            out[batch] = np.asarray(hidden)[:batch.stop - batch.start, -1, :]
        return out

    def score_windows(self, windows: np.ndarray) -> np.ndarray:
        return self.encode(windows) @ self._current_item_table().T

    def _current_item_table(self) -> np.ndarray:
        """(n_items, d) item table of the model as it is now (also mid-training, for ``validate``)."""
        return keras.ops.convert_to_numpy(self.keras_model_.item_table())


class RecurrentRecommender(SequentialRecommender):
    """Embedding + GRU/LSTM next-item recommender (:class:`RecurrentEncoder`).

    cell: ``"gru"`` or ``"lstm"``; the other arguments as :class:`SequentialRecommender` and
    :class:`RecurrentEncoder`; defaults chosen on validation (``GRU_EPOCHS``). The user's last hidden state is their **interest vector**
    (``interest_vectors``); a real-time update is one recurrent step in NumPy from the cached
    state (:func:`recurrent_step`), not a re-encoding of the history.
    """

    def __init__(self, cell: str = "gru", max_length: int = 50, embedding_dim: int = 128, dropout: float = 0.2,
                 temperature: float = 1.0, n_sampled: int | None = None, epochs: int = GRU_EPOCHS,
                 batch_size: int = 128, learning_rate: float = 5e-3, patience: int = 3, monitor: str = "ndcg", random_state: int = 42,
                 verbose: int = 0, timestamp_col: str = "timestamp", stride: int | None = None,
                 **columns: str) -> None:
        super().__init__(max_length, embedding_dim, temperature, n_sampled, epochs, batch_size, learning_rate,
                         patience, monitor, random_state, verbose, timestamp_col, stride, **columns)
        check_choice("cell", cell, ("gru", "lstm"))
        check_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        self.cell, self.dropout = cell, dropout

    def _build_encoder(self, n_items: int) -> SequenceModel:
        return RecurrentEncoder(n_items, self.embedding_dim, self.cell, self.dropout, temperature=self.temperature,
                                n_sampled=self.n_sampled, seed=self.random_state)

    def _export(self) -> None:
        super()._export()
        self.embedding_table_ = keras.ops.convert_to_numpy(self.keras_model_.item_embedding.embeddings)
        self.cell_weights_ = [np.asarray(w, np.float32) for w in self.keras_model_.recurrent.get_weights()]

    def interest_vectors(self, histories: Sequence[Sequence[object]]) -> np.ndarray:
        """(len(histories), d) last hidden states after each history (raw ids, oldest first)."""
        self._check_fitted()
        return self.encode(pad_histories([self.codes(h) for h in histories], self.max_length))

    def start_state(self, items: Sequence[object]):
        """The recurrent state after ``items`` (raw ids, oldest first), stepped in NumPy."""
        state = tuple(np.zeros((1, self.embedding_dim), np.float32) for _ in range(1 if self.cell == "gru" else 2))
        for code in self.codes(items)[-self.max_length:]:
            state = recurrent_step(self.cell, self.cell_weights_, self.embedding_table_[code][None], state)
        return state

    def advance(self, state, item: object):
        """One recurrent step with ``item``: O(d^2), independent of the history's length."""
        code = int(self.codes([item])[0])
        return recurrent_step(self.cell, self.cell_weights_, self.embedding_table_[code][None], state)

    def state_scores(self, state) -> np.ndarray:
        """(n_items,) scores of the state's hidden vector against the item table."""
        return state[0][0] @ self.item_table_.T


class SASRecRecommender(SequentialRecommender):
    """SASRec next-item recommender (:class:`SASRec`); a real-time update re-encodes the last
    ``max_length`` items. Arguments as :class:`SequentialRecommender` and :class:`SASRec`;
    defaults chosen on validation (``SASREC_EPOCHS``)."""

    def __init__(self, max_length: int = 50, embedding_dim: int = 128, n_blocks: int = 2, n_heads: int = 2,
                 dropout: float = 0.2, temperature: float = 1.0, n_sampled: int | None = None,
                 epochs: int = SASREC_EPOCHS, batch_size: int = 128, learning_rate: float = 5e-3, patience: int = 3, monitor: str = "ndcg",
                 random_state: int = 42, verbose: int = 0, timestamp_col: str = "timestamp",
                 stride: int | None = None, **columns: str) -> None:
        super().__init__(max_length, embedding_dim, temperature, n_sampled, epochs, batch_size, learning_rate,
                         patience, monitor, random_state, verbose, timestamp_col, stride, **columns)
        check_positive_int(n_blocks=n_blocks, n_heads=n_heads)
        check_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        if embedding_dim % n_heads:
            raise ValueError(f"embedding_dim ({embedding_dim}) must be divisible by n_heads ({n_heads})")
        self.n_blocks, self.n_heads, self.dropout = n_blocks, n_heads, dropout

    def _build_encoder(self, n_items: int) -> SequenceModel:
        return SASRec(n_items, self.max_length, self.embedding_dim, self.n_blocks, self.n_heads, self.dropout,
                      temperature=self.temperature, n_sampled=self.n_sampled, seed=self.random_state)

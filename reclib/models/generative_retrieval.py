r"""Generative retrieval over semantic IDs (TIGER-style, Rajput et al. 2023), on the kit's trainer.

Every item is named by its semantic ID (:mod:`reclib.features.semantic_ids`: residual k-means
codes of its content vector plus a disambiguation code), and the model **spells** the next item
code by code instead of scoring a table of item ids:

- **encoder**: SASRec (:class:`~reclib.models.sequence_encoders.SASRec`) whose input item vector is
  the sum of its codes' embeddings (:class:`CodeEmbedding`), not an item-id row; so an item that
  never occurred in training, or a brand-new one coded from its text, still has a vector;
- **decoder** (:class:`CodeHead`): from the encoder's state :math:`h`, level :math:`l` reads
  :math:`z_l = h + \sum_{m<l} P_m[c^m]` (the prefix spelt so far) and gives logits over the
  level's codes, :math:`W_l\,\mathrm{gelu}(V_l z_l)`;
- **task**: the next item's negative log-probability, summed over its codes, each a softmax over
  only the codes the trie allows after the prefix (the distribution decoding uses; training and
  decoding see the same normaliser);
- **decoding** (:mod:`reclib.models.code_trie`): ``score`` is the exact log-probability of every
  catalogue item (exhaustive; the ranking P3 evaluates), ``recommend`` is trie-constrained beam
  search, so every recommendation is a real item.

A real decoder transformer over code tokens (TIGER's) is the larger version of the head; on two
CPU cores the per-level head keeps a fit within a notebook's budget (the numbers: README).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
import pandas as pd
import scipy.sparse as sp
from keras import layers, ops

from reclib.base import FitContext, user_batches
from reclib.checks import check_non_negative, check_positive_int, require_columns
from reclib.data.sequences import last_window, pad_histories
from reclib.features.content import ItemFeatures, check_item_features
from reclib.features.semantic_ids import ResidualQuantizer, semantic_ids
from reclib.models.code_trie import CodeTrie
from reclib.models.layers import TableEmbedding
from reclib.models.sequence_encoders import SASRec, SequenceModel
from reclib.models.sequential import SASRecRecommender, Validate
from reclib.models.tasks import MASK_LOGIT, total_loss

__all__ = ["CodeEmbedding", "CodeHead", "GenerativeRetrievalRecommender", "GenerativeSASRec"]

#: the median early-stopped epoch of the defaults (2 levels x 64 codes, collaborative weight 1, rate
#: 0.01) over three seeds on P3's validation event of ML-100K (``python -m experiments.tune_generative``
#: chose the codes, ``python -m experiments.sequential_seeds --families generative --patience 10`` the
#: rate and the epochs; their numbers: README)
GENERATIVE_EPOCHS = 26
#: query rows per exhaustive scoring call: (rows x branching prefixes x d) floats at a time
SCORE_ROWS = 64
#: singular vectors of the training matrix in ``collaborative_factors``
COLLABORATIVE_FACTORS = 32


def _token_table(item_codes: np.ndarray, level_sizes: np.ndarray) -> np.ndarray:
    """(n_items + 1, depth) int32 token of each item's code at each level (codes of level ``l``
    offset past the earlier levels', + 1); row 0, the padding item, is token 0 at every level."""
    offsets = np.concatenate([[0], np.cumsum(level_sizes)[:-1]])
    return np.vstack([np.zeros((1, item_codes.shape[1]), np.int64), item_codes + offsets + 1]).astype(np.int32)


@keras.saving.register_keras_serializable(package="reclib")
class CodeEmbedding(layers.Layer):
    """Item codes (b, L) (item index + 1, 0 = padding) -> (b, L, d): the sum of the item's
    semantic-ID code embeddings, one table row per (level, code); padding maps to zeros.

    item_codes: (n_items, depth) semantic IDs; level_sizes: (depth,) codes per level.
    """

    def __init__(self, item_codes, level_sizes, output_dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.item_codes = np.asarray(item_codes, np.int64)
        self.level_sizes = np.asarray(level_sizes, np.int64)
        self.output_dim = output_dim
        self.tokens = _token_table(self.item_codes, self.level_sizes)
        self.table = TableEmbedding(int(self.level_sizes.sum()) + 1, output_dim, name="code_table")

    def build(self, input_shape=None) -> None:
        self.table.build()
        self.built = True

    def call(self, items):
        vectors = ops.sum(self.table(ops.take(self.tokens, items, axis=0)), axis=-2)
        return vectors * ops.expand_dims(ops.cast(ops.greater(items, 0), vectors.dtype), -1)

    def get_config(self) -> dict:
        return {**super().get_config(), "item_codes": self.item_codes.tolist(),
                "level_sizes": self.level_sizes.tolist(), "output_dim": self.output_dim}


@keras.saving.register_keras_serializable(package="reclib")
class CodeHead(layers.Layer):
    """The per-level decoder (module doc): ``logits(level, z (n, d)) -> (n, level_sizes[level])``
    and ``prefix(level, codes (n, level)) -> (n, d)``, the sum of the prefix's code vectors."""

    def __init__(self, level_sizes, embedding_dim: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.level_sizes = [int(k) for k in level_sizes]
        self.embedding_dim = embedding_dim
        depth = len(self.level_sizes)
        self.prefix_tables = [TableEmbedding(k, embedding_dim, name=f"prefix{l}")
                              for l, k in enumerate(self.level_sizes[:-1])]
        self.hidden = [layers.Dense(embedding_dim, activation="gelu", name=f"hidden{l}") for l in range(depth)]
        self.out = [layers.Dense(k, name=f"out{l}") for l, k in enumerate(self.level_sizes)]

    def build(self, input_shape=None) -> None:
        for table in self.prefix_tables:
            table.build()
        for hidden, out in zip(self.hidden, self.out):
            hidden.build((None, self.embedding_dim))
            out.build((None, self.embedding_dim))
        self.built = True

    def logits(self, level: int, z):
        return self.out[level](self.hidden[level](z))

    def prefix(self, level: int, codes):
        vectors = [self.prefix_tables[m](codes[:, m]) for m in range(level)]
        return sum(vectors[1:], vectors[0]) if vectors else None

    def get_config(self) -> dict:
        return {**super().get_config(), "level_sizes": self.level_sizes, "embedding_dim": self.embedding_dim}


@keras.saving.register_keras_serializable(package="reclib")
class GenerativeSASRec(SASRec):
    """SASRec over code-composed item vectors with a code-by-code head (module doc).

    item_codes: (n_items, depth) distinct semantic IDs; the other arguments as :class:`SASRec`.
    ``compute_loss`` takes the batch ``{"items": (b, L), "targets": (b, L)}`` like every
    :class:`SequenceModel` and returns the mean over all b·L positions of the next item's
    trie-constrained negative log-probability (0 at padding).
    """

    def __init__(self, item_codes, max_length: int = 50, embedding_dim: int = 64, n_blocks: int = 2,
                 n_heads: int = 2, dropout: float = 0.2, **kwargs) -> None:
        codes = np.asarray(item_codes, np.int64)
        trie = CodeTrie(codes)
        kwargs.pop("n_items", None)                    # from get_config: it is len(item_codes)
        super().__init__(len(codes), max_length, embedding_dim, n_blocks, n_heads, dropout,
                         item_embedding=CodeEmbedding(codes, trie.level_sizes, embedding_dim, name="item_embedding"),
                         **kwargs)
        self.item_codes, self.level_sizes = codes, trie.level_sizes
        self.head = CodeHead(trie.level_sizes, embedding_dim, name="code_head")
        # per level, (n_items + 1, level size): 0 where the code may follow the item's prefix, else
        # MASK_LOGIT (row 0, the padding target, allows everything; its loss is weighted 0)
        self.masks = [np.vstack([np.zeros((1, k), np.float32),
                                 np.where(trie.children[l][trie.node_of_item[l]] >= 0, 0.0, MASK_LOGIT).astype(np.float32)])
                      for l, k in enumerate(trie.level_sizes)]
        self.target_codes = np.vstack([np.zeros((1, codes.shape[1]), np.int64), codes]).astype(np.int32)

    def build(self, input_shape) -> None:
        super().build(input_shape)
        self.head.build()

    def item_table(self):
        """(n_items, d) each item's input vector (the sum of its code embeddings)."""
        return self.item_embedding(ops.arange(1, len(self.item_codes) + 1))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        targets = ops.reshape(x["targets"], (-1,))
        z = ops.reshape(y_pred, (-1, self.embedding_dim))
        codes = ops.take(self.target_codes, targets, axis=0)                   # (n, depth)
        loss = 0.0
        for level in range(len(self.level_sizes)):
            logits = self.head.logits(level, z) + ops.take(self.masks[level], targets, axis=0)
            loss = loss + keras.losses.sparse_categorical_crossentropy(codes[:, level], logits, from_logits=True)
            if level + 1 < len(self.level_sizes):
                z = z + self.head.prefix_tables[level](codes[:, level])
        weight = ops.cast(ops.greater(targets, 0), "float32")
        return total_loss(self, ops.sum(ops.cast(loss, "float32") * weight) / ops.cast(ops.shape(targets)[0], "float32"))

    def get_config(self) -> dict:
        return {**super().get_config(), "item_codes": self.item_codes.tolist()}


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def collaborative_factors(matrix: sp.spmatrix, n_factors: int = COLLABORATIVE_FACTORS) -> np.ndarray:
    """(n_items, n_factors) unit-length item factors of a users x items training matrix: the top
    right singular vectors of its 0/1 pattern times their singular values (ARPACK from a fixed start
    vector; an item without training events gets zeros). Items bought by the same users get
    nearby factors, so codes quantised from them group co-consumed items."""
    from scipy.sparse.linalg import svds

    pattern = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    pattern.data[:] = 1.0
    k = min(n_factors, min(pattern.shape) - 1)
    u, s, vt = svds(pattern, k=k, v0=np.full(min(pattern.shape), 1.0 / np.sqrt(min(pattern.shape))))
    factors = vt.T * s
    return _unit_rows(factors[:, np.argsort(-s, kind="stable")])


class GenerativeRetrievalRecommender(SASRecRecommender):
    """Generative retrieval behind ``fit`` / ``score`` / ``recommend`` (module doc).

    ``fit(interactions, validate=None, item_features=ItemFeatures(item_ids, vectors=...))``: the
    catalogue is ``item_features.item_ids`` (items absent from training can still be generated);
    their ``vectors`` (e.g. MiniLM title embeddings) are coded by a
    :class:`~reclib.features.semantic_ids.ResidualQuantizer` of ``n_levels`` x ``n_codes`` (seeded
    by ``random_state``) plus a disambiguation code: ``semantic_ids_`` (n_items, n_levels + 1),
    ``trie_``. Then the encoder and head train on the windows of :class:`SequentialRecommender`.

    - ``score(users)``: (n_users, n_items) exact log-probabilities of every item (exhaustive
      decoding); ``score_histories`` and the real-time state (``start_state`` / ``advance`` /
      ``state_scores``) as every sequential model.
    - ``recommend(users, k, exclude_seen=True, beam_width=None)``: trie-constrained beam search
      (``beam_width`` default: the constructor's, at least ``k``); ``score`` is the item's
      log-probability; ties go to the lower beam rank, then the lower code.

    The other arguments as :class:`SASRecRecommender`; defaults chosen on validation.
    """

    def __init__(self, n_levels: int = 2, n_codes: int = 64, collaborative_weight: float = 1.0,
                 beam_width: int = 20, max_length: int = 50,
                 embedding_dim: int = 128, n_blocks: int = 2, n_heads: int = 2, dropout: float = 0.2,
                 epochs: int = GENERATIVE_EPOCHS, batch_size: int = 128, learning_rate: float = 1e-2,
                 patience: int = 3, monitor: str = "ndcg", random_state: int = 42, verbose: int = 0,
                 timestamp_col: str = "timestamp", stride: int | None = None, user_col: str = "user_id",
                 item_col: str = "item_id") -> None:
        super().__init__(max_length, embedding_dim, n_blocks, n_heads, dropout, 1.0, None, epochs, batch_size,
                         learning_rate, patience, monitor, random_state, verbose, timestamp_col, stride,
                         user_col=user_col, item_col=item_col)
        check_positive_int(n_levels=n_levels, n_codes=n_codes, beam_width=beam_width)
        ResidualQuantizer(n_levels, n_codes)                     # checks n_codes >= 2
        check_non_negative(collaborative_weight=collaborative_weight)
        self.n_levels, self.n_codes, self.beam_width = n_levels, n_codes, beam_width
        self.collaborative_weight = collaborative_weight

    def fit(self, interactions: pd.DataFrame, validate: Validate | None = None, *,
            item_features: ItemFeatures | None = None) -> GenerativeRetrievalRecommender:
        """Fit on ``interactions`` (needs ``timestamp_col``); ``item_features.vectors`` are coded."""
        require_columns(interactions, self.user_col, self.item_col, self.timestamp_col)
        check_item_features(item_features, interactions, self.item_col, need=("vectors",),
                            model=type(self).__name__)
        return super().fit(interactions, validate, item_features=item_features)

    def _fit(self, context: FitContext) -> None:
        features = self.item_features_
        vectors = _unit_rows(np.asarray(features.vectors, np.float64)[features.rows(self.item_ids_)])
        if self.collaborative_weight > 0:
            vectors = np.hstack([vectors, self.collaborative_weight * collaborative_factors(context.matrix)])
        self.quantizer_ = ResidualQuantizer(self.n_levels, self.n_codes, random_state=self.random_state)
        self.semantic_ids_ = semantic_ids(self.quantizer_.fit_transform(vectors))
        self.trie_ = CodeTrie(self.semantic_ids_)
        super()._fit(context)

    def _build_encoder(self, n_items: int) -> SequenceModel:
        return GenerativeSASRec(self.semantic_ids_, self.max_length, self.embedding_dim, self.n_blocks,
                                self.n_heads, self.dropout, seed=self.random_state)

    def _initialise_items(self, model: SequenceModel) -> None:
        """Nothing to do: the item vectors are built from the codes of ``item_features.vectors``."""

    # -- decoding ---------------------------------------------------------------------------------
    def decoder_logits(self, hidden: np.ndarray) -> Callable[[int, np.ndarray], np.ndarray]:
        """The ``logits(level, nodes (b, m)) -> (b, m, level size)`` of the trie's decoders for
        encoder states ``hidden`` (b, d), read from the model's current weights."""
        head = self.keras_model_.head
        prefixes = [None] + [keras.ops.convert_to_numpy(head.prefix(level, self.trie_.node_codes[level]))
                             for level in range(1, self.trie_.depth)]

        def logits(level: int, nodes: np.ndarray) -> np.ndarray:
            z = np.broadcast_to(hidden[:, None, :], nodes.shape + hidden.shape[1:])
            if level:
                z = z + prefixes[level][nodes]
            flat = keras.ops.convert_to_numpy(head.logits(level, z.reshape(-1, hidden.shape[1]).astype(np.float32)))
            return flat.reshape(nodes.shape + (-1,))
        return logits

    def greedy_codes(self, histories: list, constrained: bool = True) -> np.ndarray:
        """(len(histories), depth) the code tuple greedy decoding spells after each history (raw
        item ids, oldest first): the best code at every level, among the trie's children of the
        prefix (``constrained``) or among all of the level's codes. Unconstrained, the tuple may
        name no item (``trie_.item_of`` gives -1): why decoding is constrained."""
        self._check_fitted()
        hidden = self.encode(pad_histories([self.codes(h) for h in histories], self.max_length))
        if constrained:
            items, _ = self.trie_.beam_search(self.decoder_logits(hidden), len(hidden), 1, 1)
            return self.semantic_ids_[items[:, 0]]
        head, z = self.keras_model_.head, hidden
        codes = np.zeros((len(hidden), self.trie_.depth), np.int64)
        for level in range(self.trie_.depth):
            codes[:, level] = np.argmax(keras.ops.convert_to_numpy(head.logits(level, z)), axis=1)
            if level + 1 < self.trie_.depth:
                z = z + keras.ops.convert_to_numpy(head.prefix_tables[level](codes[:, level]))
        return codes

    def score_windows(self, windows: np.ndarray) -> np.ndarray:
        """(b, n_items) float32 log-probability of every item after each window (b, max_length)."""
        hidden = self.encode(windows)
        out = np.empty((len(windows), self.trie_.n_items), np.float32)
        for batch in user_batches(len(windows), SCORE_ROWS):
            out[batch] = self.trie_.log_probs(self.decoder_logits(hidden[batch]), batch.stop - batch.start)
        return out

    def recommend(self, user_ids: object, k: int = 10, exclude_seen: bool = True, batch_size: int = 256,
                  beam_width: int | None = None) -> pd.DataFrame:
        """Top-``k`` items per user by trie-constrained beam search (class doc)."""
        width = self.beam_width if beam_width is None else beam_width
        check_positive_int(k=k, beam_width=width, batch_size=batch_size)
        user_ids = np.asarray(user_ids)
        index = self.user_index(user_ids)
        windows = last_window(self.sequences_, self.max_length)[index]
        parts = []
        for batch in user_batches(len(index), batch_size):
            hidden = self.encode(windows[batch])
            exclude = self._seen(index[batch]) if exclude_seen else None
            items, scores = self.trie_.beam_search(self.decoder_logits(hidden), len(hidden), k, max(width, k),
                                                   exclude)
            parts.append(self._recommendation_frame(user_ids[batch], items, scores))
        return pd.concat(parts, ignore_index=True)

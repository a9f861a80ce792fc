r"""Two-tower retrieval with in-batch sampled softmax and log-Q correction (Yi et al. 2019).

A **user tower** maps a user (id embedding + mean of the embeddings of the items in their history)
and an **item tower** maps an item (id embedding + genres + its BERT text vector) to unit vectors
:math:`u, v \in \mathbb R^d`; the score is :math:`s(u, i) = u^\top v_i / \tau`. Items are embedded
once, so retrieval is a nearest-neighbour search.

**In-batch softmax.** A batch holds :math:`B` positive pairs :math:`(u_r, i_r)`; the other
:math:`B-1` items of the batch serve as negatives for row :math:`r`, and the loss is the
cross-entropy of the softmax over the row's logits with the positive on the diagonal. Because
popular items appear in batches more often, they are over-penalised as negatives; the **log-Q
correction** subtracts :math:`\log q_j` (the probability that item :math:`j` is in a batch, here
its share of training interactions) from every logit,
:math:`\ell_{rj} = s(u_r, i_j) - \log q_j`, which makes the sampled softmax an unbiased estimate
of the full one. **Accidental hits** (item :math:`j = i_r` appearing in another row) are masked.

The model computes the two towers' vectors only; the loss belongs to
:class:`~reclib.models.tasks.RetrievalTask`, to which ``compute_loss`` delegates.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import layers, ops

from reclib.checks import (check_bool, check_in_range, check_non_negative, check_non_negative_int,
                           check_positive, check_positive_int)
from reclib.models.layers import MaskedMeanPooling, TableEmbedding, build_by_tracing
from reclib.models.mlp import check_layer_sizes
from reclib.models.tasks import RetrievalTask, total_loss

__all__ = ["TwoTower"]


@keras.saving.register_keras_serializable(package="reclib")
class TwoTower(keras.Model):
    """User and item towers trained with in-batch softmax (module doc).

    Inputs (a dict): ``user`` (b,) user index, 0 = unknown; ``history`` (b, L) item indices of the
    user's history, 0 = padding; ``item`` (b,) item index, 0 = unknown (cold); ``genres``
    (b, n_genres) multi-hot; ``text`` (b, text_dim) BERT vectors; ``log_q`` (b,) for training.
    Item indices are shifted by one (0 is reserved). ``call`` returns ``{"user": (b, d), "item":
    (b, d)}`` unit vectors (the user's history without the row's own item); ``compute_loss``
    hands them, with ``item`` and ``log_q``, to ``task`` (a :class:`RetrievalTask` with
    ``temperature``), so training needs inputs only, no labels.

    Parameters
    ----------
    - n_users, n_items: without the reserved 0 index.
    - embedding_dim: output size; tower_dims: hidden ReLU layers of each tower.
    - n_genres, text_dim: item feature sizes (0 disables a feature).
    - use_history: pool the history into the user tower; use_user_id: add a user-id embedding
      (without it the user tower sees only the history, and generalises to new users).
    - id_dropout: during training, replace this share of item ids by "unknown" so the item tower
      learns to embed an item from its features alone (cold start).
    - temperature, log_q_correction: see module doc; l2: L2 weight on the embeddings.

    Every argument is checked before any layer is built: sizes are positive ints (``n_genres``
    and ``text_dim`` may be 0), ``id_dropout`` in [0, 1), ``temperature`` > 0, ``l2`` >= 0, the
    flags booleans, and ``use_user_id`` or ``use_history`` must be on.
    """

    def __init__(self, n_users: int, n_items: int, embedding_dim: int = 64,
                 tower_dims: Sequence[int] = (128,), n_genres: int = 0, text_dim: int = 0,
                 use_history: bool = True, id_dropout: float = 0.1, temperature: float = 0.05,
                 log_q_correction: bool = True, l2: float = 0.0, use_user_id: bool = True,
                 **kwargs) -> None:
        check_positive_int(n_users=n_users, n_items=n_items, embedding_dim=embedding_dim)
        check_layer_sizes("tower_dims", tower_dims)
        check_non_negative_int(n_genres=n_genres, text_dim=text_dim)
        for name, flag in (("use_history", use_history), ("log_q_correction", log_q_correction),
                           ("use_user_id", use_user_id)):
            check_bool(**{name: flag})
        check_in_range("id_dropout", id_dropout, 0.0, 1.0, high_inclusive=False)
        check_positive(temperature=temperature)
        check_non_negative(l2=l2)
        if not (use_user_id or use_history):
            raise ValueError("the user tower needs use_user_id or use_history")
        super().__init__(**kwargs)
        self.n_users, self.n_items, self.embedding_dim = n_users, n_items, embedding_dim
        self.tower_dims, self.n_genres, self.text_dim = tuple(tower_dims), n_genres, text_dim
        self.use_history, self.id_dropout, self.temperature = use_history, id_dropout, temperature
        self.log_q_correction, self.l2, self.use_user_id = log_q_correction, l2, use_user_id
        reg = keras.regularizers.L2(l2) if l2 else None
        init = keras.initializers.RandomNormal(stddev=0.05)
        self.user_embedding = TableEmbedding(n_users + 1, embedding_dim, embeddings_initializer=init,
                                               embeddings_regularizer=reg, name="user_id")
        self.item_embedding = TableEmbedding(n_items + 1, embedding_dim, embeddings_initializer=init,
                                               embeddings_regularizer=reg, name="item_id")
        self.history_embedding = TableEmbedding(n_items + 1, embedding_dim, embeddings_initializer=init,
                                                  embeddings_regularizer=reg, name="history_item")
        self.genre_projection = layers.Dense(embedding_dim, name="genres") if n_genres else None
        self.text_projection = layers.Dense(embedding_dim, name="text") if text_dim else None

        def tower(name: str) -> list[layers.Layer]:
            return [layers.Dense(d, activation="relu", name=f"{name}_{j}") for j, d in enumerate(self.tower_dims)] + \
                [layers.Dense(embedding_dim, name=f"{name}_out")]

        self.user_layers, self.item_layers = tower("user_tower"), tower("item_tower")
        self.id_drop_rng = keras.random.SeedGenerator(7)
        self.history_pooling = MaskedMeanPooling(name="history_mean")
        self.task = RetrievalTask(temperature, name="retrieval")

    def build(self, input_shape) -> None:
        """Create the embeddings and tower layers ``call`` uses (``input_shape``: the class doc's
        inputs, name -> shape); the ones switched off by ``use_user_id``/``use_history`` stay empty."""
        build_by_tracing(self, input_shape)

    def user_vectors(self, inputs, training: bool = False):
        """Unit user vectors (b, d) from ``user`` and ``history`` (the ``exclude`` item is left out)."""
        parts = [self.user_embedding(inputs["user"])] if self.use_user_id else []
        if self.use_history:
            history = inputs["history"]
            mask = ops.not_equal(history, 0)
            if "exclude" in inputs:
                mask = ops.logical_and(mask, ops.not_equal(history, ops.expand_dims(inputs["exclude"], 1)))
            parts.append(self.history_pooling((self.history_embedding(history), mask)))
        x = ops.concatenate(parts, axis=-1)
        for layer in self.user_layers:
            x = layer(x)
        return ops.normalize(x, axis=-1)

    def item_vectors(self, inputs, training: bool = False):
        """Unit item vectors (b, d) from ``item`` (0 = cold), ``genres`` and ``text``."""
        item = inputs["item"]
        if training and self.id_dropout > 0:
            keep = keras.random.uniform(ops.shape(item), seed=self.id_drop_rng) >= self.id_dropout
            item = ops.where(keep, item, ops.zeros_like(item))
        parts = [self.item_embedding(item)]
        if self.genre_projection is not None:
            parts.append(self.genre_projection(inputs["genres"]))
        if self.text_projection is not None:
            parts.append(self.text_projection(inputs["text"]))
        x = ops.concatenate(parts, axis=-1)
        for layer in self.item_layers:
            x = layer(x)
        return ops.normalize(x, axis=-1)

    def call(self, inputs, training: bool = False):
        users = self.user_vectors({**inputs, "exclude": inputs["item"]}, training=training)
        return {"user": users, "item": self.item_vectors(inputs, training=training)}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The retrieval task's in-batch loss on ``call``'s vectors, plus the L2 penalties."""
        log_q = x["log_q"] if self.log_q_correction and "log_q" in x else None
        loss = self.task.loss(y_pred["user"], y_pred["item"], x["item"], log_q, sample_weight=sample_weight)
        return total_loss(self, loss)

    def get_config(self) -> dict:
        return {**super().get_config(), "n_users": self.n_users, "n_items": self.n_items,
                "embedding_dim": self.embedding_dim, "tower_dims": list(self.tower_dims),
                "n_genres": self.n_genres, "text_dim": self.text_dim, "use_history": self.use_history,
                "id_dropout": self.id_dropout, "temperature": self.temperature,
                "log_q_correction": self.log_q_correction, "l2": self.l2, "use_user_id": self.use_user_id}

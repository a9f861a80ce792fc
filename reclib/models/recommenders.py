"""The Keras models behind the common model interface (``fit`` / ``score`` / ``recommend``).

:class:`NCF` wraps GMF, MLP and NeuMF; :class:`TwoTowerRecommender` wraps the two-tower
retrieval model (ids alone, or with item features given at ``fit``). Both encode raw ids internally, train through
:class:`reclib.training.Trainer` on the input pipelines of ``reclib.training`` (the loss is the
model's task: pointwise, pairwise or retrieval) and accept a ``validate`` function for early
stopping on a ranking metric. ``keras_model_`` is the trained Keras model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras
import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclib.base import FitContext, Recommender, user_batches
from reclib.checks import (ParameterTypeError, check_bool, check_choice, check_in_range, check_monitor,
                           check_non_negative, check_non_negative_int, check_positive, check_positive_int,
                           check_validate_function)
from reclib.features.content import ItemFeatures, check_item_features
from reclib.models.mlp import check_layer_sizes
from reclib.models.ncf import NeuMF, PairwiseScorer, check_neumf_args
from reclib.models.retrieval import TwoTower
from reclib.training.data import InBatchDataset, NegativeSamplingDataset
from reclib.training.trainer import Trainer, check_keras_verbose

__all__ = ["NCF", "KerasRecommender", "TwoTowerRecommender"]

Validate = Callable[[Recommender], dict[str, float]]

#: default ``epochs``: the early-stopped epoch (patience 2, at most 20) on P1's validation carve-out
#: of ML-100K (``P1.split(ratings).fit`` and ``.valid``) with notebook 05's parameters and
#: the other defaults; the two-tower's sizes are chosen on the same carve-out by
#: ``experiments/tune_two_tower.py`` (the numbers: README, "How the defaults were chosen").
NCF_EPOCHS = 8
TWO_TOWER_EPOCHS = 7


class KerasRecommender(Recommender):
    """``fit(interactions, validate=None)`` through the one :class:`~reclib.training.Trainer`.

    ``validate(model) -> {"ndcg": ..., ...}`` is called after every epoch; training stops after
    ``patience`` epochs without a better ``monitor`` value and keeps the best weights.
    After fit: ``keras_model_``, ``history_`` (loss and validation metrics per epoch).

    The training arguments are checked here (``epochs``, ``batch_size`` >= 1; ``learning_rate``
    > 0; ``patience``, ``random_state`` >= 0; ``monitor`` a name; ``verbose`` 0, 1, 2 or "auto").
    A fit that diverges (an epoch's loss or a weight NaN or inf, or the loss grown past
    ``reclib.checks.GROWTH_LIMIT`` times its first batch's) stops ``fit`` with
    ``FloatingPointError`` naming the epoch and ``learning_rate``.
    """

    def __init__(self, epochs: int, batch_size: int, learning_rate: float, patience: int,
                 monitor: str, random_state: int, verbose: int, **columns: str) -> None:
        super().__init__(**columns)
        check_positive_int(epochs=epochs, batch_size=batch_size)
        check_positive(learning_rate=learning_rate)
        check_non_negative_int(patience=patience, random_state=random_state)
        check_monitor(monitor)
        check_keras_verbose(verbose)
        self.epochs, self.batch_size, self.learning_rate = epochs, batch_size, learning_rate
        self.patience, self.monitor, self.random_state, self.verbose = patience, monitor, random_state, verbose

    def fit(self, interactions: pd.DataFrame, validate: Validate | None = None) -> KerasRecommender:
        """Fit on ``interactions``; with ``validate``, early-stop on its ``monitor`` metric."""
        check_validate_function(validate)
        return self._fit_on(interactions, validate=validate)

    def _train(self, build: Callable[[], keras.Model], dataset: keras.utils.PyDataset,
               context: FitContext) -> keras.Model:
        """Seed, build the model (``build()``, which sets ``keras_model_``: ``context.validate``
        scores through it during training), compile and fit it through a :class:`Trainer`; set
        ``history_`` and ``best_epoch_``; return the trained model."""
        trainer = Trainer(self.epochs, self.batch_size, self.learning_rate, self.patience, self.monitor,
                          self.random_state, self.verbose)
        validate = None if context.validate is None else (lambda: context.validate(self))
        self.history_ = trainer.fit(build, dataset, validate=validate, name=type(self).__name__)
        self.best_epoch_ = trainer.best_epoch_
        return trainer.model_


class NCF(KerasRecommender):
    """GMF / MLP / NeuMF (``reclib.models.ncf``) trained on positives and sampled negatives.

    Parameters
    ----------
    - variant, gmf_dim, mlp_dims, l2, dropout: the network (see :class:`~reclib.models.ncf.NeuMF`).
    - loss: ``"bce"`` (pointwise, ``n_negatives`` fresh negatives per positive every epoch) or
      ``"bpr"`` (pairwise triplets).
    - epochs, batch_size, learning_rate (Adam), patience, monitor, random_state, verbose.

    The defaults are notebook 05's validated values; ``epochs`` is their early-stopped epoch on
    P1's validation carve-out of ML-100K. No side data: ``fit(interactions, validate=None)``.
    """

    def __init__(self, variant: str = "neumf", gmf_dim: int = 32, mlp_dims: Sequence[int] = (64, 32, 16),
                 l2: float = 0.0, dropout: float = 0.0, loss: str = "bce", n_negatives: int = 4,
                 epochs: int = NCF_EPOCHS, batch_size: int = 1024, learning_rate: float = 1e-3,
                 patience: int = 3, monitor: str = "ndcg", random_state: int = 42, verbose: int = 0,
                 **columns: str) -> None:
        super().__init__(epochs, batch_size, learning_rate, patience, monitor, random_state, verbose, **columns)
        check_choice("loss", loss, ("bce", "bpr"))
        check_neumf_args(variant, gmf_dim, mlp_dims, l2, dropout)
        check_positive_int(n_negatives=n_negatives)
        self.variant, self.gmf_dim, self.mlp_dims, self.l2, self.dropout = variant, gmf_dim, tuple(mlp_dims), l2, dropout
        self.loss, self.n_negatives = loss, n_negatives

    def _fit(self, context: FitContext) -> None:
        matrix = context.matrix
        coo = matrix.tocoo()
        mode = "pointwise" if self.loss == "bce" else "pairwise"
        dataset = NegativeSamplingDataset(coo.row, coo.col, matrix.shape[1], self.n_negatives,
                                          self.batch_size, mode, random_state=self.random_state)

        def build() -> keras.Model:
            self.keras_model_ = NeuMF(matrix.shape[0], matrix.shape[1], self.variant, self.gmf_dim,
                                      self.mlp_dims, self.l2, self.dropout)
            # the task: NeuMF's pointwise BCE, or BPR on (positive, negative) scores
            return self.keras_model_ if mode == "pointwise" else PairwiseScorer(self.keras_model_)

        self._train(build, dataset, context)

    def _score(self, users: np.ndarray) -> np.ndarray:
        n_items = len(self.item_ids_)
        out = np.empty((len(users), n_items), dtype=np.float32)
        for batch in user_batches(len(users), max(1, 65_536 // n_items)):
            u = np.repeat(users[batch], n_items).astype(np.int32)
            i = np.tile(np.arange(n_items, dtype=np.int32), batch.stop - batch.start)
            logits = self.keras_model_({"user": u, "item": i}, training=False)
            out[batch] = keras.ops.convert_to_numpy(logits).reshape(-1, n_items)
        return out


class TwoTowerRecommender(KerasRecommender):
    """Two-tower retrieval (``reclib.models.retrieval``), from ids alone or with item features.

    Parameters
    ----------
    embedding_dim, tower_dims, use_history, history_length (most recent items kept per user),
    id_dropout, temperature, log_q_correction, l2, use_user_id: the model; epochs, batch_size, learning_rate,
    patience, monitor, random_state, verbose: training. The defaults of ``embedding_dim``,
    ``temperature``, ``use_user_id`` and ``epochs`` were chosen for the ids-only model (no item
    features) on P1's validation carve-out of ML-100K (``python -m experiments.tune_two_tower``:
    best validation NDCG@10 of a 12-point grid; ``epochs`` is its early-stopped epoch), never on
    test; the rest are notebook 05's values (notebook 05 passes its own parameters explicitly).

    Data at ``fit(interactions, validate=None, item_features=None)``: ``item_features`` is an
    optional :class:`~reclib.features.content.ItemFeatures` whose ``vectors`` (dense, e.g. text
    embeddings) and ``categories`` (multi-hot, e.g. genres) feed the item tower. Its ``item_ids`` are the
    catalogue, which may include items absent from training: they are embedded from their
    features alone (the cold start of protocol P5). Without it the model is an ids-only two-tower
    over the items of ``interactions``.

    The arguments are checked before anything is built, as in
    :class:`~reclib.models.retrieval.TwoTower`.
    """

    def __init__(self, embedding_dim: int = 128, tower_dims: Sequence[int] = (128,), use_history: bool = True,
                 history_length: int = 50, id_dropout: float = 0.1, temperature: float = 0.2,
                 log_q_correction: bool = True, l2: float = 0.0, use_user_id: bool = True,
                 epochs: int = TWO_TOWER_EPOCHS, batch_size: int = 512, learning_rate: float = 1e-3,
                 patience: int = 3, monitor: str = "ndcg", random_state: int = 42, verbose: int = 0,
                 timestamp_col: str = "timestamp", **columns: str) -> None:
        super().__init__(epochs, batch_size, learning_rate, patience, monitor, random_state, verbose, **columns)
        check_positive_int(embedding_dim=embedding_dim, history_length=history_length)
        check_layer_sizes("tower_dims", tower_dims)
        for name, flag in (("use_history", use_history), ("log_q_correction", log_q_correction),
                           ("use_user_id", use_user_id)):
            check_bool(**{name: flag})
        if not (use_user_id or use_history):
            raise ValueError("the user tower needs use_user_id or use_history")
        check_in_range("id_dropout", id_dropout, 0.0, 1.0, high_inclusive=False)
        check_positive(temperature=temperature)
        check_non_negative(l2=l2)
        if not isinstance(timestamp_col, str):
            raise ParameterTypeError(f"timestamp_col must be a column name, got {timestamp_col!r}")
        self.embedding_dim, self.tower_dims, self.use_history = embedding_dim, tuple(tower_dims), use_history
        self.history_length, self.id_dropout, self.temperature = history_length, id_dropout, temperature
        self.log_q_correction, self.l2, self.timestamp_col = log_q_correction, l2, timestamp_col
        self.use_user_id = use_user_id

    def fit(self, interactions: pd.DataFrame, validate: Validate | None = None, *,
            item_features: ItemFeatures | None = None) -> TwoTowerRecommender:
        """Fit on ``interactions`` (with ``validate``, early-stop); ``item_features``: class doc."""
        features = check_item_features(item_features, interactions, self.item_col,
                                       model=type(self).__name__)
        if features is not None and sp.issparse(features.vectors):
            raise ParameterTypeError("item_features.vectors must be a dense array for "
                                     "TwoTowerRecommender (the item tower is dense)")
        self.item_features_ = features
        return super().fit(interactions, validate)

    def _item_catalogue(self, interactions: pd.DataFrame) -> np.ndarray:
        if self.item_features_ is None:
            return super()._item_catalogue(interactions)
        return self.item_features_.item_ids

    def _fit(self, context: FitContext) -> None:
        matrix, interactions = context.matrix, context.interactions
        n_users, n_items = matrix.shape
        counts = np.asarray((matrix > 0).sum(axis=0)).ravel()
        # keras item index: 1 + catalogue index for items seen in training, 0 ("unknown") otherwise
        self._keras_item = np.where(counts > 0, np.arange(1, n_items + 1), 0).astype(np.int32)
        features = self.item_features_
        rows = None if features is None else features.rows(self.item_ids_)      # rows follow item_ids_
        self._genres = None if features is None or features.categories is None else \
            np.asarray(features.categories, np.float32)[rows]
        self._text = None if features is None or features.vectors is None else \
            np.asarray(features.vectors, np.float32)[rows]
        self._history = self._histories(interactions)
        users = self.user_encoder_.transform(interactions[self.user_col])
        items = self.item_encoder_.transform(interactions[self.item_col])
        log_q = np.log(counts / counts.sum(), where=counts > 0, out=np.zeros(n_items)).astype(np.float32)
        features = {"user": (users + 1).astype(np.int32), "item": self._keras_item[items],
                    "log_q": log_q[items], "row": items.astype(np.int32), "user_row": users.astype(np.int32)}
        lookups = {"history": (self._history, "user_row")}
        if self._genres is not None:
            lookups["genres"] = (self._genres, "row")
        if self._text is not None:
            lookups["text"] = (self._text, "row")
        dataset = InBatchDataset(features, self.batch_size, random_state=self.random_state, lookups=lookups)

        def build() -> keras.Model:                  # trained on its RetrievalTask
            self.keras_model_ = TwoTower(n_users, n_items, self.embedding_dim, self.tower_dims,
                                         0 if self._genres is None else self._genres.shape[1],
                                         0 if self._text is None else self._text.shape[1],
                                         self.use_history, self.id_dropout, self.temperature,
                                         self.log_q_correction, self.l2, self.use_user_id)
            return self.keras_model_

        self._train(build, dataset, context)

    def _histories(self, interactions: pd.DataFrame) -> np.ndarray:
        """(n_users, history_length) keras item indices of each user's latest items, 0-padded."""
        users = self.user_encoder_.transform(interactions[self.user_col])
        items = self._keras_item[self.item_encoder_.transform(interactions[self.item_col])]
        when = interactions[self.timestamp_col].to_numpy() if self.timestamp_col in interactions else np.zeros(len(users))
        order = np.lexsort((-when, users))                                   # by user, newest first
        users, items = users[order], items[order]
        starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
        rank = np.arange(len(users)) - np.repeat(starts, np.diff(np.r_[starts, len(users)]))
        keep = rank < self.history_length
        history = np.zeros((len(self.user_ids_), self.history_length), dtype=np.int32)
        history[users[keep], rank[keep]] = items[keep]
        return history

    def item_embeddings(self) -> np.ndarray:
        """Unit vectors (n_items, embedding_dim) of every catalogue item, cold ones included."""
        inputs = {"item": self._keras_item}
        if self._genres is not None:
            inputs["genres"] = self._genres
        if self._text is not None:
            inputs["text"] = self._text
        return keras.ops.convert_to_numpy(self.keras_model_.item_vectors(inputs, training=False))

    def user_embeddings(self, users: np.ndarray) -> np.ndarray:
        """Unit vectors (len(users), embedding_dim) for user indices."""
        inputs = {"user": (np.asarray(users) + 1).astype(np.int32), "history": self._history[users]}
        return keras.ops.convert_to_numpy(self.keras_model_.user_vectors(inputs, training=False))

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.user_embeddings(users) @ self.item_embeddings().T

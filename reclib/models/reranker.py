r"""Two stages, as LlamaRec (Yue et al. 2023) builds them: a retriever's top ``n`` reranked by a
model that reads the language-model states of the user's recent titles and of each candidate's.

**The head** (:class:`ShortlistScorer`) scores candidate :math:`c` of a shortlist for a user
whose last ``r`` items are :math:`h_1, \dots, h_r` (most recent first), from frozen, unit-length
text vectors :math:`x` (MiniLM's sentence states of the titles, computed once):

.. math:: s_c = w^\top \mathrm{ReLU}\big(A\,[\cos(x_c, x_{h_1}), \dots, \cos(x_c, x_{h_r});\ g_c]
          + B\,(x_c \odot \bar x_h)\big) + v^\top g_c

where :math:`\bar x_h` is the mean of the recent vectors (a user's taste in title space),
:math:`B` learns which directions of that space matter, and :math:`g_c` are the retriever's signals
(its score standardised within the list, its rank, the candidate's training popularity, and how
often everyone rated it in the last ``trend_windows`` before the request: what is popular *now*,
which a sequence model over item ids does not see). It is
the cross-encoder's idea, candidate read against the user's titles, at the cost of a small MLP over
cached states: trainable on two CPU cores in seconds. Training is the listwise softmax of
:class:`~reclib.models.tasks.ShortlistTask` on the kit's :class:`~reclib.training.Trainer`.

**Honest training lists.** A retriever scores its own training targets too well, so the head
never sees the serving retriever's view of data it trained on. ``fit`` carves out each user's last
``n_holdout`` events (users with more events than that), fits a clone of the retriever on the
rest, and shortlists every carved event from the events before it: the carved targets are to that
retriever what test targets are to the serving one. Lists whose target missed the shortlist teach
nothing (a reranker cannot move it in) and are dropped. A share ``validation_fraction`` of the users'
lists early-stops the head on its NDCG@10 within the list. Then the serving retriever is fitted on
all of ``interactions``. So ``fit`` costs two retriever fits plus the head.

**Scores.** ``score`` and ``score_histories`` return the retriever's scores with the shortlist
(the top ``n_candidates`` unseen items) lifted above every other item and ordered by the head:
``recommend(k <= n_candidates)`` returns the reranked top; below the shortlist the retriever's
order stands.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import keras
import numpy as np
import pandas as pd
import scipy.sparse as sp
from keras import layers, ops

from reclib.base import FitContext, Recommender, clone, top_k, user_batches
from reclib.checks import (ParameterTypeError, check_in_range, check_non_negative_int, check_positive,
                           check_positive_int)
from reclib.features.content import ItemFeatures, check_item_features
from reclib.models.layers import build_by_tracing
from reclib.models.tasks import ShortlistTask, total_loss
from reclib.training.trainer import Trainer, check_keras_verbose

__all__ = ["ShortlistRecommender", "ShortlistReranker", "ShortlistScorer", "random_order_ndcg", "shortlist_ndcg"]

SCORING_BATCH = 256          # lists per forward pass when scoring
DAY = 86400.0
#: one day, a week and a month (in seconds, MovieLens' timestamps): chosen on P3's validation event
#: against no trend signal and a week alone (``python -m experiments.tune_reranker``; README,
#: "How the defaults were chosen")
TREND_WINDOWS = (DAY, 7 * DAY, 30 * DAY)


def random_order_ndcg(n_candidates: int, k: int = 10) -> float:
    """Expected NDCG@k of a shortlist of ``n_candidates`` holding the one relevant item, put in a
    random order: the item is at each rank with probability 1 / n, and ranks 1..k count
    1 / log2(rank + 1). 20 candidates: 0.227. (Times the share of lists holding the item, the level
    a reranker must beat to have learned anything at all.)"""
    check_positive_int(n_candidates=n_candidates, k=k)
    return float(sum(1.0 / np.log2(rank + 1) for rank in range(1, min(k, n_candidates) + 1)) / n_candidates)


def shortlist_ndcg(scores: np.ndarray, targets: np.ndarray, k: int = 10) -> np.ndarray:
    """NDCG@k of one relevant item per list: (b,) values from scores (b, n) and the target's
    position (b,) in each list. The target's rank counts the candidates scored above it and the
    tied ones earlier in the list (the tie rule of ``reclib.base.top_k``: lower position first)."""
    target_scores = scores[np.arange(len(scores)), targets][:, None]
    earlier = np.arange(scores.shape[1])[None, :] < targets[:, None]
    rank = 1 + (scores > target_scores).sum(axis=1) + ((scores == target_scores) & earlier).sum(axis=1)
    return np.where(rank <= k, 1.0 / np.log2(rank + 1), 0.0)


@keras.saving.register_keras_serializable(package="reclib")
class ShortlistScorer(keras.Model):
    """The head of the module doc: ``{"candidates": (b, n, d), "recent": (b, r, d), "signals":
    (b, n, s)}`` -> scores (b, n). Candidate and recent rows are unit text vectors; a zero recent
    row is padding (a history shorter than r). hidden: the width of the hidden layer; dropout on
    it, in [0, 1)."""

    def __init__(self, hidden: int = 64, dropout: float = 0.1, **kwargs) -> None:
        check_positive_int(hidden=hidden)
        check_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        super().__init__(**kwargs)
        self.hidden, self.dropout = hidden, dropout
        self.similarity_layer = layers.Dense(hidden, name="similarities")
        self.taste_layer = layers.Dense(hidden, use_bias=False, name="taste")
        self.hidden_dropout = layers.Dropout(dropout)
        self.output_layer = layers.Dense(1, name="score")
        self.signal_layer = layers.Dense(1, use_bias=False, name="signals")
        self.task = ShortlistTask(name="shortlist")

    def build(self, input_shape) -> None:
        """Create the layers ``call`` uses (``input_shape``: the three inputs' shapes)."""
        build_by_tracing(self, input_shape)

    def call(self, inputs, training: bool = False):
        candidates, recent, signals = inputs["candidates"], inputs["recent"], inputs["signals"]
        similarities = ops.einsum("bnd,brd->bnr", candidates, recent)
        present = ops.cast(ops.any(ops.not_equal(recent, 0.0), axis=-1), candidates.dtype)        # (b, r)
        taste = ops.sum(recent, axis=1) / ops.maximum(ops.sum(present, axis=1, keepdims=True), 1.0)
        hidden = ops.relu(self.similarity_layer(ops.concatenate([similarities, signals], axis=-1))
                          + self.taste_layer(candidates * taste[:, None, :]))
        hidden = self.hidden_dropout(hidden, training=training)
        return ops.squeeze(self.output_layer(hidden) + self.signal_layer(signals), axis=-1)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The listwise softmax of the targets' positions ``y`` (the task)."""
        return total_loss(self, self.task.loss(y, y_pred, sample_weight))

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden": self.hidden, "dropout": self.dropout}


class ShortlistRecommender(Recommender):
    """What every shortlist reranker shares: a retriever fitted on all of ``interactions``
    (``retriever_``), each user's last ``n_recent`` items and request time, and scores that lift the
    retriever's top ``n_candidates`` unseen items above the rest in the order a subclass's
    ``_shortlist_scores(shortlist (b, n), retriever scores (b, n), recent (b, r), request (b,)) ->
    (b, n)`` gives (module doc, "Scores").

    retriever: an unfitted recommender that can score explicit histories (``score_histories``),
    a hyper-parameter cloned with this model (the sequence models of notebook 06, EASE, ...).
    share_features: give ``item_features`` to the retriever's ``fit`` too, where it takes them.
    ``item_features`` at ``fit`` must hold the tables of ``needs``; ``interactions`` a timestamp.
    """

    #: the :class:`~reclib.features.content.ItemFeatures` tables ``fit`` needs
    needs: tuple[str, ...] = ()

    def __init__(self, retriever: Recommender, n_candidates: int, n_recent: int, share_features: bool,
                 timestamp_col: str = "timestamp", **columns: str) -> None:
        super().__init__(**columns)
        if not isinstance(retriever, Recommender) or not type(retriever).can_score_histories():
            raise ParameterTypeError(f"retriever must be a reclib Recommender that scores histories "
                                     f"(score_histories), got {type(retriever).__name__}")
        check_positive_int(n_candidates=n_candidates, n_recent=n_recent)
        if share_features not in (True, False):
            raise ParameterTypeError(f"share_features must be True or False, got {share_features!r}")
        self.retriever, self.n_candidates, self.n_recent = retriever, n_candidates, n_recent
        self.share_features, self.timestamp_col = share_features, timestamp_col

    def fit(self, interactions: pd.DataFrame, *, item_features: ItemFeatures | None = None) -> ShortlistRecommender:
        """Fit on ``interactions`` (with timestamps) and ``item_features`` (class doc)."""
        self.item_features_ = check_item_features(item_features, interactions, self.item_col, need=self.needs,
                                                  model=type(self).__name__)
        if self.timestamp_col not in interactions:
            raise ValueError(f"{type(self).__name__}.fit needs the {self.timestamp_col!r} column (the order of "
                             f"each user's events)")
        return super().fit(interactions)

    def _item_catalogue(self, interactions: pd.DataFrame) -> np.ndarray:
        return self.item_features_.item_ids

    def _fit_retriever(self, interactions: pd.DataFrame) -> Recommender:
        model = clone(self.retriever)
        if self.share_features and "item_features" in inspect.signature(model.fit).parameters:
            return model.fit(interactions, item_features=self.item_features_)
        return model.fit(interactions)

    def _store_users(self, events: pd.DataFrame) -> None:
        """``recent_`` (n_users, n_recent) and ``request_time_`` (n_users,) from the fitted events
        (in (user, time) order), and ``latest_time_``, the request time of ``score_histories``."""
        users = self.user_encoder_.transform(events[self.user_col])
        times = events[self.timestamp_col].to_numpy(np.float64)
        self.recent_ = _last_items(users, self.item_encoder_.transform(events[self.item_col]), len(self.user_ids_),
                                   self.n_recent)
        self.request_time_ = np.full(len(self.user_ids_), -np.inf)
        np.maximum.at(self.request_time_, users, times)         # each user's last event
        self.latest_time_ = times.max()

    def _shortlist_scores(self, shortlist: np.ndarray, shortlist_scores: np.ndarray, recent: np.ndarray,
                          request: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _rerank(self, scores: np.ndarray, recent: np.ndarray, seen: sp.csr_matrix, request: np.ndarray) -> np.ndarray:
        """``scores`` (b, n_items) of the retriever with each row's top ``n_candidates`` unseen items
        lifted above the rest and ordered by ``_shortlist_scores`` (module doc, "Scores")."""
        shortlist, shortlist_scores = top_k(scores.copy(), self.n_candidates, seen)
        head = np.asarray(self._shortlist_scores(shortlist, shortlist_scores, recent, request), dtype=np.float64)
        if not np.isfinite(head).all():
            raise FloatingPointError(f"{type(self).__name__}: the reranker scored a shortlist NaN or inf")
        valid = np.isfinite(shortlist_scores)
        lowest = np.where(valid, head, np.inf).min(axis=1, keepdims=True)
        lifted = scores.max(axis=1, keepdims=True) + 1.0 + (head - lowest)
        out = scores.copy()
        rows = np.broadcast_to(np.arange(len(scores))[:, None], shortlist.shape)
        out[rows[valid], shortlist[valid]] = lifted[valid]
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        scores = _in_catalogue(self.retriever_, self.retriever_.score(self.user_ids_[users]), self.item_ids_)
        return self._rerank(scores, self.recent_[users], self.train_matrix_[users], self.request_time_[users])

    def score_histories(self, histories: Sequence[Sequence[object]]) -> np.ndarray:
        """Scores (n_histories, n_items) for explicit histories (raw item ids, oldest first),
        reranked as ``score`` is (request time: the fit's latest event); an item unknown to the
        model raises ``ValueError`` naming it."""
        seen = self.history_matrix(histories)
        lengths = [len(h) for h in histories]
        items = self.item_encoder_.transform(np.asarray([i for h in histories for i in h]))
        recent = _last_items(np.repeat(np.arange(len(histories)), lengths), items, len(histories), self.n_recent)
        scores = _in_catalogue(self.retriever_, self.retriever_.score_histories(histories), self.item_ids_)
        return self._rerank(scores, recent, seen, np.full(len(histories), self.latest_time_))


class ShortlistReranker(ShortlistRecommender):
    """A retriever's top ``n_candidates`` reordered by :class:`ShortlistScorer` (module doc).

    Parameters
    ----------
    retriever, share_features: as :class:`ShortlistRecommender`.
    n_candidates: the shortlist size n; n_recent: r, the user's last items the head reads.
    n_holdout: the last events per user carved out to build training lists (module doc).
    hidden, dropout: the head; epochs (at most; early-stopped), batch_size (lists), learning_rate
    (Adam), patience; validation_fraction: the users whose lists early-stop the head.
    trend_windows: lengths of time (timestamp units: seconds for MovieLens) over which each
    candidate's events by all users before the request are counted, one signal per window; the
    request time is the user's last event at fit (the latest event of the fit for ``score_histories``).
    random_state: the head's seed and the validation users; verbose: Keras' progress output.

    Data at ``fit(interactions, item_features=ItemFeatures(item_ids, vectors=...))``: the vectors
    are the items' text states (e.g. MiniLM title vectors); ``interactions`` need a timestamp.
    After fit: ``retriever_`` (fitted on all of ``interactions``), ``scorer_``, ``history_``,
    ``n_lists_`` (training lists kept: target in the shortlist) and ``shortlist_recall_`` (the
    share of carved targets the carve-out retriever shortlisted).
    """

    needs = ("vectors",)

    def __init__(self, retriever: Recommender, n_candidates: int = 50, n_recent: int = 10, n_holdout: int = 3,
                 hidden: int = 64, dropout: float = 0.1, epochs: int = 30, batch_size: int = 64,
                 learning_rate: float = 1e-3, patience: int = 3, validation_fraction: float = 0.2,
                 trend_windows: Sequence[float] = TREND_WINDOWS, share_features: bool = True, random_state: int = 42,
                 verbose: int = 0, timestamp_col: str = "timestamp", **columns: str) -> None:
        super().__init__(retriever, n_candidates, n_recent, share_features, timestamp_col, **columns)
        check_positive_int(n_holdout=n_holdout, hidden=hidden, epochs=epochs, batch_size=batch_size)
        check_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        check_in_range("validation_fraction", validation_fraction, 0.0, 1.0, low_inclusive=False,
                       high_inclusive=False)
        check_positive(learning_rate=learning_rate)
        check_non_negative_int(patience=patience, random_state=random_state)
        if isinstance(trend_windows, (str, bytes)) or not isinstance(trend_windows, Sequence):
            raise ParameterTypeError(f"trend_windows must be a sequence of positive lengths of time, got {trend_windows!r}")
        for j, window in enumerate(trend_windows):
            check_positive(**{f"trend_windows[{j}]": window})
        check_keras_verbose(verbose)
        self.n_holdout, self.hidden, self.dropout, self.epochs = n_holdout, hidden, dropout, epochs
        self.batch_size, self.learning_rate, self.patience = batch_size, learning_rate, patience
        self.validation_fraction, self.trend_windows = validation_fraction, tuple(trend_windows)
        self.random_state, self.verbose = random_state, verbose

    def _fit(self, context: FitContext) -> None:
        events = context.interactions
        vectors = self.item_features_.vectors
        vectors = np.asarray(vectors.toarray() if sp.issparse(vectors) else vectors, dtype=np.float32)
        vectors = vectors[pd.Index(self.item_features_.item_ids).get_indexer(self.item_ids_)]
        self.vectors_ = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        counts = np.asarray(self.train_matrix_.astype(bool).sum(axis=0)).ravel()
        self.popularity_ = np.log1p(counts) / np.log1p(max(counts.max(), 1))
        self._store_users(events)
        items = self.item_encoder_.transform(events[self.item_col])
        times = events[self.timestamp_col].to_numpy(np.float64)
        self.span_ = times.max() - times.min() + max(self.trend_windows, default=0.0) + 2.0
        self.trend_keys_ = np.sort(items * self.span_ + (times - times.min()))
        self.time_origin_ = times.min()
        self._fit_head(*self._training_lists(events))
        self.retriever_ = self._fit_retriever(events)

    def _training_lists(self, events: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """The head's training lists (module doc, "Honest training lists"): its inputs, the target's
        position in each list (b,) and each list's user index (b,); sets ``shortlist_recall_`` and
        ``n_lists_``. ``events``: the fitted frame, in (user, time) order."""
        users = self.user_encoder_.transform(events[self.user_col])
        items = self.item_encoder_.transform(events[self.item_col])
        from_end = events.groupby(self.user_col, sort=False).cumcount(ascending=False).to_numpy()
        carved = (from_end < self.n_holdout) & (np.bincount(users)[users] > self.n_holdout)
        carve_retriever = self._fit_retriever(events[~carved])
        raw = events[self.item_col].to_numpy()
        known = carve_retriever.item_encoder_.transform(raw, unknown="ignore") >= 0
        starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
        first = starts[np.searchsorted(starts, np.arange(len(users)), side="right") - 1]   # each user's first event
        rows = np.flatnonzero(carved)
        histories = [raw[start:end][known[start:end]].tolist() for start, end in zip(first[rows], rows)]
        scores = _in_catalogue(carve_retriever, carve_retriever.score_histories(histories), self.item_ids_)
        recent = _last_items(np.repeat(np.arange(len(rows)), [len(h) for h in histories]),
                             self.item_encoder_.transform(np.asarray([i for h in histories for i in h])),
                             len(rows), self.n_recent)
        times = events[self.timestamp_col].to_numpy(np.float64)
        request = np.where(rows > first[rows], times[np.maximum(rows - 1, 0)], times[rows])   # the last history event
        shortlist, shortlist_scores = top_k(scores, self.n_candidates, self.history_matrix(histories))
        hit = shortlist == items[rows][:, None]
        kept = hit.any(axis=1)
        self.shortlist_recall_, self.n_lists_ = float(kept.mean()), int(kept.sum())
        if self.n_lists_ < 2:
            raise ValueError(f"{type(self).__name__}: only {self.n_lists_} carved-out target(s) reached the "
                             f"retriever's top {self.n_candidates}; nothing to learn a reranking from")
        inputs = self._inputs(shortlist[kept], shortlist_scores[kept], recent[kept], request[kept])
        return inputs, hit[kept].argmax(axis=1), users[rows][kept]

    def _fit_head(self, inputs: dict[str, np.ndarray], targets: np.ndarray, list_users: np.ndarray) -> None:
        """Train ``scorer_`` on the lists, early-stopped on the lists of ``validation_fraction`` of the
        users (drawn with ``random_state``); sets ``history_`` and ``best_epoch_``."""
        drawn = np.random.default_rng(self.random_state).permutation(np.unique(list_users))
        held = np.isin(list_users, drawn[:max(1, int(round(self.validation_fraction * len(drawn))))])
        fit_part = {name: value[~held] for name, value in inputs.items()}
        held_part = {name: value[held] for name, value in inputs.items()}
        built: list[ShortlistScorer] = []

        def build() -> ShortlistScorer:
            built.append(ShortlistScorer(self.hidden, self.dropout))
            return built[-1]

        def validate() -> dict[str, float]:
            return {"ndcg": float(shortlist_ndcg(_predict(built[-1], held_part), targets[held]).mean())}

        trainer = Trainer(self.epochs, self.batch_size, self.learning_rate, self.patience, "ndcg",
                          self.random_state, self.verbose)
        self.history_ = trainer.fit(build, (fit_part, targets[~held]), validate=validate, name=type(self).__name__)
        self.best_epoch_ = trainer.best_epoch_
        self.scorer_ = trainer.model_

    def _trend(self, shortlist: np.ndarray, request: np.ndarray) -> list[np.ndarray]:
        """Per window w, log(1 + the number of fitted events of each candidate (b, n) in [t - w, t)),
        t the list's request time (b,). The end is open: a carved-out target rated in the same
        second as the event before it (MovieLens users rate in bursts) must not count itself."""
        base = shortlist * self.span_ + (request[:, None] - self.time_origin_)
        end = np.searchsorted(self.trend_keys_, base, side="left")
        return [np.log1p(end - np.searchsorted(self.trend_keys_, base - window, side="left"))
                for window in self.trend_windows]

    def _inputs(self, shortlist: np.ndarray, shortlist_scores: np.ndarray, recent: np.ndarray,
                request: np.ndarray) -> dict[str, np.ndarray]:
        """The head's inputs for shortlists (b, n) of item indices with the retriever's scores
        (-inf: no item left), the users' recent items (b, r) (-1: padding) and request times (b,)."""
        valid = np.isfinite(shortlist_scores)
        count = np.maximum(valid.sum(axis=1, keepdims=True), 1)
        filled = np.where(valid, shortlist_scores, 0.0)
        mean = filled.sum(axis=1, keepdims=True) / count
        spread = np.sqrt((np.where(valid, filled - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / count)
        standardised = np.where(valid, (filled - mean) / np.maximum(spread, 1e-9), -3.0)
        rank = np.log1p(np.arange(shortlist.shape[1]))[None, :] / np.log1p(shortlist.shape[1])
        signals = np.stack([standardised, np.broadcast_to(rank, shortlist.shape), self.popularity_[shortlist],
                            *self._trend(shortlist, request)], axis=-1)
        padded = np.vstack([self.vectors_, np.zeros((1, self.vectors_.shape[1]), np.float32)])
        return {"candidates": self.vectors_[shortlist], "recent": padded[recent],
                "signals": signals.astype(np.float32)}

    def _shortlist_scores(self, shortlist: np.ndarray, shortlist_scores: np.ndarray, recent: np.ndarray,
                          request: np.ndarray) -> np.ndarray:
        return _predict(self.scorer_, self._inputs(shortlist, shortlist_scores, recent, request))


def _last_items(rows: np.ndarray, items: np.ndarray, n_rows: int, r: int) -> np.ndarray:
    """(n_rows, r) the last r ``items`` of each row, most recent first, ``-1`` where a row has fewer;
    ``rows`` (ascending) and ``items`` are events in time order within each row."""
    out = np.full((n_rows, r), -1, dtype=np.int64)
    if len(rows):
        from_end = pd.Series(rows).groupby(rows).cumcount(ascending=False).to_numpy()
        last = from_end < r
        out[rows[last], from_end[last]] = items[last]
    return out


def _in_catalogue(model: Recommender, scores: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
    """``model``'s scores (b, model.item_ids_) laid out over ``item_ids``; an item the model does
    not know scores below each row's lowest."""
    columns = model.item_encoder_.transform(item_ids, unknown="ignore")
    scores = np.asarray(scores, dtype=np.float64)
    out = np.repeat(scores.min(axis=1, keepdims=True) - 1.0, len(item_ids), axis=1)
    out[:, columns >= 0] = scores[:, columns[columns >= 0]]
    return out


def _predict(scorer: keras.Model, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The head's scores (b, n) in batches of ``SCORING_BATCH`` lists."""
    n = len(inputs["candidates"])
    parts = [ops.convert_to_numpy(scorer({name: value[batch] for name, value in inputs.items()}, training=False))
             for batch in user_batches(n, SCORING_BATCH)]
    return np.concatenate(parts) if parts else np.empty((0, inputs["candidates"].shape[1]), np.float32)

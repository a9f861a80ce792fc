r"""Two stages, as LlamaRec (Yue et al. 2023) builds them: a retriever's top ``n`` reranked by a
model that reads the language-model states of the user's recent titles and of each candidate's.

**The head** (:class:`ShortlistScorer`) scores candidate :math:`c` of a shortlist for a user
whose last ``r`` items are :math:`h_1, \dots, h_r` (most recent first), from frozen, unit-length
text vectors :math:`x` (MiniLM's sentence states of the titles, computed once):

.. math:: s_c = z_c + w^\top \mathrm{ReLU}\big(A\,[\cos(x_c, x_{h_1}), \dots, \cos(x_c, x_{h_r});\ g_c]
          + B\,(x_c \odot \bar x_h)\big) + v^\top g_c

where :math:`z_c` is the retriever's score standardised within the list (the first of the
signals :math:`g_c`), so the head learns a *correction* of the retriever's order: :math:`w` and
:math:`v` start at zero, an untrained head keeps that order, and a head that learned nothing
useful stays close to it (without :math:`z_c` the head must first relearn the retriever's order
from a few thousand lists, and on P1 it did not: README, reranking). :math:`\bar x_h` is the
mean of the recent vectors (a user's taste in title space), :math:`B` learns which directions of
that space matter, and :math:`g_c` are the retriever's signals (its score standardised within
the list, its rank, the candidate's training popularity, and how often everyone rated it in the
last ``trend_windows`` before the request: what is popular *now*, which a sequence model over item
ids does not see). It is the cross-encoder's idea, candidate read against the user's titles, at
the cost of a small MLP over cached states: trainable on two CPU cores in seconds. Training is the
listwise softmax of :class:`~reclib.models.tasks.ShortlistTask` on the kit's
:class:`~reclib.training.Trainer`.

**Honest training lists.** A retriever scores its own training targets too well, so the head
never sees the serving retriever's view of data it trained on. ``fit`` carves out each user's last
``n_holdout`` events (users with more events than that), fits a clone of the retriever on the
rest, and shortlists every carved event from the events before it: the carved targets are to that
retriever what test targets are to the serving one. Lists whose target missed the shortlist teach
nothing (a reranker cannot move it in) and are dropped. A share ``validation_fraction`` of the users'
lists early-stops the head on its NDCG@10 within the list. Then the serving retriever is fitted on
all of ``interactions``. So ``fit`` costs two retriever fits plus the head.

That carve-out (``carve="last"``) matches a next-item test (P3). For a test of random held-out
items with several per user (P1), ``carve="random"`` holds out a random ``holdout_share`` of each
user's events instead (users with two or more; at least one event kept and one carved), and each
user gives one list: the carve-out retriever's top ``n`` from all the user's kept events, every
carved item in it relevant (the multi-target form of the task).

**Scores**: those of :class:`~reclib.models.shortlist.ShortlistRecommender`, the shortlist
ordered by the head.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import pandas as pd
import scipy.sparse as sp
from keras import layers, ops

from reclib.base import FitContext, Recommender, top_k, user_batches
from reclib.checks import (ParameterTypeError, check_choice, check_in_range, check_non_negative_int, check_positive,
                           check_positive_int)
from reclib.data.ties import tie_keys
from reclib.models.layers import build_by_tracing
from reclib.models.shortlist import ShortlistRecommender, _in_catalogue, _last_items, shortlist_ndcg
from reclib.models.tasks import MASK_LOGIT, ShortlistTask, total_loss
from reclib.training.trainer import Trainer, check_keras_verbose

__all__ = ["ShortlistReranker", "ShortlistScorer"]

SCORING_BATCH = 256          # lists per forward pass when scoring
LIST_BATCH = 1024            # carved-out events scored by the carve-out retriever at a time
DAY = 86400.0
#: a day, a week and a month (in seconds, MovieLens' timestamps): chosen on P3's validation event
#: against no trend signal and a week alone (``python -m experiments.tune_reranker``; README, "How
#: the defaults were chosen")
TREND_WINDOWS = (DAY, 7 * DAY, 30 * DAY)


@keras.saving.register_keras_serializable(package="reclib")
class ShortlistScorer(keras.Model):
    """The head of the module doc: ``{"candidates": (b, n, d), "recent": (b, r, d), "signals":
    (b, n, s), "valid": (b, n)}`` -> scores (b, n). Candidate and recent rows are unit text
    vectors; a zero recent row is padding (a history shorter than r); ``valid`` is 0 where a list
    has no item left (a user with fewer than n unseen items), whose score is then ``MASK_LOGIT``
    (no weight in the softmax, never ranked). hidden: the width of the hidden layer; dropout on
    it, in [0, 1)."""

    def __init__(self, hidden: int = 64, dropout: float = 0.1, **kwargs) -> None:
        check_positive_int(hidden=hidden)
        check_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        super().__init__(**kwargs)
        self.hidden, self.dropout = hidden, dropout
        self.similarity_layer = layers.Dense(hidden, name="similarities")
        self.taste_layer = layers.Dense(hidden, use_bias=False, name="taste")
        self.hidden_dropout = layers.Dropout(dropout)
        # zero-initialised: an untrained head scores each list in the retriever's own order
        self.output_layer = layers.Dense(1, kernel_initializer="zeros", name="score")
        self.signal_layer = layers.Dense(1, use_bias=False, kernel_initializer="zeros", name="signals")
        self.task = ShortlistTask(name="shortlist")

    def build(self, input_shape) -> None:
        """Create the layers ``call`` uses (``input_shape``: the three inputs' shapes)."""
        build_by_tracing(self, input_shape)

    def call(self, inputs, training: bool = False):
        """Scores (b, n) of the inputs (class doc)."""
        candidates, recent, signals = inputs["candidates"], inputs["recent"], inputs["signals"]
        similarities = ops.einsum("bnd,brd->bnr", candidates, recent)
        present = ops.cast(ops.any(ops.not_equal(recent, 0.0), axis=-1), candidates.dtype)        # (b, r)
        taste = ops.sum(recent, axis=1) / ops.maximum(ops.sum(present, axis=1, keepdims=True), 1.0)
        hidden = ops.relu(self.similarity_layer(ops.concatenate([similarities, signals], axis=-1))
                          + self.taste_layer(candidates * taste[:, None, :]))
        hidden = self.hidden_dropout(hidden, training=training)
        correction = ops.squeeze(self.output_layer(hidden) + self.signal_layer(signals), axis=-1)
        scores = signals[..., 0] + correction          # the retriever's standardised score, corrected
        return ops.where(ops.greater(inputs["valid"], 0.0), scores, ops.full_like(scores, MASK_LOGIT))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The listwise softmax of ``y``, the targets' positions (b,) or a (b, n) relevance (the task)."""
        return total_loss(self, self.task.loss(y, y_pred, sample_weight))

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden": self.hidden, "dropout": self.dropout}


class ShortlistReranker(ShortlistRecommender):
    """A retriever's top ``n_candidates`` reordered by :class:`ShortlistScorer` (module doc).

    Parameters
    ----------
    retriever, share_features: as :class:`~reclib.models.shortlist.ShortlistRecommender`.
    n_candidates: the shortlist size n; n_recent: r, the user's last items the head reads.
    n_holdout: the last events per user carved out to build training lists (module doc).
    carve: "last" (each user's last ``n_holdout`` events, one list each: next-item tests) or "random"
    (a random ``holdout_share`` of each user's events, one list per user: tests of random held-out
    items); module doc, "Honest training lists".
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
                 carve: str = "last", holdout_share: float = 0.25, hidden: int = 64, dropout: float = 0.1,
                 epochs: int = 50, batch_size: int = 64, learning_rate: float = 1e-3, patience: int = 3,
                 validation_fraction: float = 0.2,
                 trend_windows: Sequence[float] = TREND_WINDOWS, share_features: bool = True, random_state: int = 42,
                 verbose: int = 0, timestamp_col: str = "timestamp", **columns: str) -> None:
        super().__init__(retriever, n_candidates, n_recent, share_features, timestamp_col, **columns)
        check_positive_int(n_holdout=n_holdout, hidden=hidden, epochs=epochs, batch_size=batch_size)
        check_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        check_choice("carve", carve, ("last", "random"))
        check_in_range("holdout_share", holdout_share, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        check_in_range("validation_fraction", validation_fraction, 0.0, 1.0, low_inclusive=False,
                       high_inclusive=False)
        check_positive(learning_rate=learning_rate)
        check_non_negative_int(patience=patience, random_state=random_state)
        if isinstance(trend_windows, (str, bytes)) or not isinstance(trend_windows, Sequence):
            raise ParameterTypeError(f"trend_windows must be a sequence of positive lengths of time, got {trend_windows!r}")
        for j, window in enumerate(trend_windows):
            check_positive(**{f"trend_windows[{j}]": window})
        check_keras_verbose(verbose)
        self.n_holdout, self.carve, self.holdout_share = n_holdout, carve, holdout_share
        self.hidden, self.dropout, self.epochs = hidden, dropout, epochs
        self.batch_size, self.learning_rate, self.patience = batch_size, learning_rate, patience
        self.validation_fraction, self.trend_windows = validation_fraction, tuple(trend_windows)
        self.random_state, self.verbose = random_state, verbose

    def _fit(self, context: FitContext) -> None:
        events = context.interactions
        vectors = self.item_features_.vectors
        vectors = np.asarray(vectors.toarray() if sp.issparse(vectors) else vectors, dtype=np.float32)
        vectors = vectors[pd.Index(self.item_features_.item_ids).get_indexer(self.item_ids_)]
        self.vectors_ = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        self._store_users(events)
        items = self.item_encoder_.transform(events[self.item_col])
        self.counts_ = np.bincount(items, minlength=len(self.item_ids_))
        self.popularity_ = _popularity(self.counts_, self.counts_.max())
        times = events[self.timestamp_col].to_numpy(np.float64)
        self.span_ = times.max() - times.min() + max(self.trend_windows, default=0.0) + 2.0
        self.time_origin_ = times.min()
        self.trend_keys_ = np.sort(items * self.span_ + (times - self.time_origin_))   # item-major event keys
        lists = self._training_lists(events) if self.carve == "last" else self._random_lists(events)
        self._fit_head(*lists)
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
        times = events[self.timestamp_col].to_numpy(np.float64)
        request = np.where(rows > first[rows], times[np.maximum(rows - 1, 0)], times[rows])   # the last history event
        histories = [raw[start:end][known[start:end]].tolist() for start, end in zip(first[rows], rows)]
        shortlist, shortlist_scores, recent = self._shortlists(carve_retriever, histories)
        hit = (shortlist == items[rows][:, None]) & np.isfinite(shortlist_scores)
        kept = hit.any(axis=1)
        self.shortlist_recall_, self.n_lists_ = float(kept.mean()), int(kept.sum())
        self._check_lists(users[rows][kept], f"n_holdout={self.n_holdout}")
        # popularity as the carve-out retriever saw it: a training target must not count its own rating
        kept_counts = np.bincount(items[~carved], minlength=len(self.item_ids_))
        popularity = _popularity(kept_counts, kept_counts.max())
        inputs = self._inputs(shortlist[kept], shortlist_scores[kept], recent[kept], request[kept], popularity)
        return inputs, hit[kept].argmax(axis=1), users[rows][kept]

    def _random_lists(self, events: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """``carve="random"``'s training lists (module doc): inputs, relevance (b, n) of every entry
        and each list's user index (b,), one list per user with a carved item in the shortlist."""
        users = self.user_encoder_.transform(events[self.user_col])
        items = self.item_encoder_.transform(events[self.item_col])
        counts = np.bincount(users)
        order = np.lexsort((np.random.default_rng(self.random_state).random(len(users)), users))
        position = np.empty(len(users), dtype=np.int64)
        position[order] = np.arange(len(users)) - np.r_[0, np.cumsum(counts)[:-1]][users[order]]
        n_carved = np.where(counts >= 2, np.clip(np.rint(self.holdout_share * counts), 1, counts - 1), 0)
        carved = position < n_carved[users]
        carve_retriever = self._fit_retriever(events[~carved])
        raw = events[self.item_col].to_numpy()
        known = carve_retriever.item_encoder_.transform(raw, unknown="ignore") >= 0
        list_users = np.flatnonzero(n_carved > 0)
        history_rows = ~carved & known                       # events stay in (user, time) order
        grouped = pd.Series(raw[history_rows]).groupby(users[history_rows]).agg(list).reindex(list_users)
        histories = [h if isinstance(h, list) else [] for h in grouped]
        shortlist, shortlist_scores, recent = self._shortlists(carve_retriever, histories)
        times = events[self.timestamp_col].to_numpy(np.float64)
        # each user's carved items with their times (shifted to stay > 0 in the sparse table)
        targets = sp.csr_matrix((times[carved] - self.time_origin_ + 1.0, (users[carved], items[carved])),
                                shape=(len(counts), len(self.item_ids_)))[list_users]
        rows = np.arange(len(list_users))[:, None]
        carved_at = np.asarray(targets[rows, shortlist].todense())
        relevance = (carved_at > 0) & np.isfinite(shortlist_scores)
        own_times = np.where(relevance, carved_at - 1.0 + self.time_origin_, np.nan)
        kept = relevance.any(axis=1)
        self.shortlist_recall_ = float(relevance.sum() / max(int(carved.sum()), 1))
        self.n_lists_ = int(kept.sum())
        self._check_lists(list_users[kept], f"holdout_share={self.holdout_share}")
        request = pd.Series(times[~carved]).groupby(users[~carved]).max().reindex(list_users).to_numpy()
        # popularity and trend count every fitted event but the list user's own carved ones (many
        # were rated before the request): other users' carved ratings are their past, as at serving
        inputs = self._inputs(shortlist[kept], shortlist_scores[kept], recent[kept], request[kept],
                              own_times=own_times[kept])
        return inputs, relevance[kept].astype(np.float32), list_users[kept]

    def _shortlists(self, retriever: Recommender, histories: list[list]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each history (raw item ids, oldest first): ``retriever``'s top ``n_candidates`` unseen
        items (b, n), their scores (b, n) (-inf: none left) and the history's last ``n_recent``
        items (b, r) (-1: padding), in blocks of ``LIST_BATCH`` lists (a (block, n_items) score table)."""
        shortlist = np.empty((len(histories), self.n_candidates), dtype=np.int64)
        shortlist_scores = np.empty((len(histories), self.n_candidates))
        recent = np.empty((len(histories), self.n_recent), dtype=np.int64)
        keys = tie_keys(self.item_ids_)                 # once, not once per block
        for batch in user_batches(len(histories), LIST_BATCH):
            block = histories[batch]
            scores = _in_catalogue(retriever, retriever.score_histories(block), self.item_ids_)
            shortlist[batch], shortlist_scores[batch] = top_k(scores, self.n_candidates, self.history_matrix(block), keys)
            recent[batch] = _last_items(np.repeat(np.arange(len(block)), [len(h) for h in block]),
                                        self.item_encoder_.transform(np.asarray([i for h in block for i in h])),
                                        len(block), self.n_recent)
        return shortlist, shortlist_scores, recent

    def _check_lists(self, list_users: np.ndarray, setting: str) -> None:
        """Refuse a fit whose training lists come from fewer than 2 users (nothing to learn and
        validate on); ``setting`` names the parameter that decided the carve-out."""
        if len(np.unique(list_users)) < 2:
            raise ValueError(f"{type(self).__name__}: the carved-out targets of fewer than 2 users reached the "
                             f"retriever's top {self.n_candidates} ({setting}); nothing to learn "
                             f"and validate a reranking on")

    def _fit_head(self, inputs: dict[str, np.ndarray], targets: np.ndarray, list_users: np.ndarray) -> None:
        """Train ``scorer_`` on the lists, early-stopped on the lists of ``validation_fraction`` of the
        users (drawn with ``random_state``); sets ``history_`` and ``best_epoch_``."""
        drawn = np.random.default_rng(self.random_state).permutation(np.unique(list_users))
        n_held = min(max(1, int(round(self.validation_fraction * len(drawn)))), len(drawn) - 1)
        held = np.isin(list_users, drawn[:n_held])
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

    def _trend(self, shortlist: np.ndarray, request: np.ndarray,
               own_times: np.ndarray | None = None) -> list[np.ndarray]:
        """Per window w, log(1 + the number of fitted events of each candidate (b, n) in [t - w, t)),
        t the list's request time (b,), less the list user's own event at ``own_times`` (b, n; NaN:
        none) where it falls in the window. The end is open: a carved-out target rated in the same
        second as the event before it (MovieLens users rate in bursts) must not count itself."""
        base = shortlist * self.span_ + (request[:, None] - self.time_origin_)
        end = np.searchsorted(self.trend_keys_, base, side="left")
        signals = []
        for window in self.trend_windows:
            counts = end - np.searchsorted(self.trend_keys_, base - window, side="left")
            if own_times is not None:
                counts = counts - ((own_times >= request[:, None] - window) & (own_times < request[:, None]))
            signals.append(np.log1p(counts))
        return signals

    def _inputs(self, shortlist: np.ndarray, shortlist_scores: np.ndarray, recent: np.ndarray,
                request: np.ndarray, popularity: np.ndarray | None = None,
                own_times: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The head's inputs for shortlists (b, n) of item indices with the retriever's scores
        (-inf: no item left), the users' recent items (b, r) (-1: padding) and request times (b,).
        The popularity and trend signals count all fitted events; training lists say what to leave
        out: ``popularity`` (n_items,) in place of ``popularity_`` (``carve="last"``: without every
        carved event), or ``own_times`` (b, n), the time of the list user's own carved event on
        each candidate (NaN: none), each of which is taken off both counts (``carve="random"``)."""
        if own_times is None:
            popularity = (self.popularity_ if popularity is None else popularity)[shortlist]
        else:
            own = np.isfinite(own_times)
            popularity = _popularity(self.counts_[shortlist] - own, self.counts_.max())
        valid = np.isfinite(shortlist_scores)
        count = np.maximum(valid.sum(axis=1, keepdims=True), 1)
        filled = np.where(valid, shortlist_scores, 0.0)
        mean = filled.sum(axis=1, keepdims=True) / count
        spread = np.sqrt((np.where(valid, filled - mean, 0.0) ** 2).sum(axis=1, keepdims=True) / count)
        standardised = np.where(valid, (filled - mean) / np.maximum(spread, 1e-9), -3.0)
        rank = np.log1p(np.arange(shortlist.shape[1]))[None, :] / np.log1p(shortlist.shape[1])
        signals = np.stack([standardised, np.broadcast_to(rank, shortlist.shape), popularity,
                            *self._trend(shortlist, request, own_times)], axis=-1)
        padded = np.vstack([self.vectors_, np.zeros((1, self.vectors_.shape[1]), np.float32)])
        return {"candidates": self.vectors_[shortlist], "recent": padded[recent],
                "signals": signals.astype(np.float32), "valid": valid.astype(np.float32)}

    def _shortlist_scores(self, shortlist: np.ndarray, shortlist_scores: np.ndarray, recent: np.ndarray,
                          request: np.ndarray) -> np.ndarray:
        return _predict(self.scorer_, self._inputs(shortlist, shortlist_scores, recent, request))


def _popularity(counts: np.ndarray, largest: int) -> np.ndarray:
    """log(1 + events) of each count (any shape), scaled by the largest item's to [0, 1]."""
    return np.log1p(counts) / np.log1p(max(largest, 1))


def _predict(scorer: keras.Model, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The head's scores (b, n) in batches of ``SCORING_BATCH`` lists."""
    n = len(inputs["candidates"])
    parts = [ops.convert_to_numpy(scorer({name: value[batch] for name, value in inputs.items()}, training=False))
             for batch in user_batches(n, SCORING_BATCH)]
    return np.concatenate(parts) if parts else np.empty((0, inputs["candidates"].shape[1]), np.float32)

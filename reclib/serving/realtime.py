"""Per-event serving: keep each user's events and return a fresh top-k after every event.

The served scores are the model's own: ``model.score_histories([history])`` of the user's stored
history (its newest ``max_length`` events when ``max_length`` is set; the store keeps them all,
and ``exclude_seen`` leaves out every item of the whole history). Two kinds of model get there
differently:

- **history models** (EASE, item-kNN, last-item kNN, ...) are rescored through
  ``score_histories`` after every event;
- **stateful models** (the sequential recommenders of ``reclib.models``, which define
  ``start_state(items)``, ``advance(state, item)`` and ``state_scores(state)``) keep a state per
  user: one recurrent step for a GRU/LSTM, the last ``max_length`` items for an attention model,
  re-encoded when scored. An update never refits anything.
"""

from __future__ import annotations

import time
from collections.abc import Hashable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclib.base import Recommender, top_k
from reclib.checks import ParameterTypeError, check_non_negative_int, check_positive_int, require_columns
from reclib.data.ties import tie_keys
from reclib.serving.history import HistoryStore

__all__ = ["RealTimeRecommender", "update_latency"]


class RealTimeRecommender:
    """Fresh top-``k`` lists after every event, from a fitted model's ``score_histories``.

    ``seed(user, items)`` loads a user's known history (e.g. their training events);
    ``update(user, item)`` appends one event and returns the user's new top-``k`` frame
    (item_id, score, rank), excluding every item of the user's history when ``exclude_seen``.

    User state lives in one :class:`~reclib.serving.history.HistoryStore` (``history``, over the
    model's item indices; ``user_index`` maps a raw user id to its row); the model reads the
    newest ``max_length`` events of it (all when ``None``). Stateful models (module doc) also keep
    one state per user in ``states``, a cache derived from the store and rebuilt from it when
    missing.

    **Cold start**: a user with no stored history is served the model's most popular items
    (interaction counts of its training matrix, ties by the kit's tie rule, :mod:`reclib.data.ties`),
    not whatever an empty history happens to score. The model must be fitted and able to score histories
    (``type(model).can_score_histories()``), checked here; items are checked against the model's
    catalogue before anything is stored.
    """

    def __init__(self, model: Recommender, k: int = 10, exclude_seen: bool = True,
                 max_length: int | None = None) -> None:
        if not isinstance(model, Recommender):
            raise ParameterTypeError(f"model must be a fitted Recommender, got {type(model).__name__}")
        if not type(model).can_score_histories():
            raise ValueError(f"{type(model).__name__} cannot score histories (score_histories), so it "
                             "cannot be served per event; serve a history model (module doc)")
        model._check_fitted()
        check_positive_int(k=k)
        if not isinstance(exclude_seen, (bool, np.bool_)):
            raise ParameterTypeError(f"exclude_seen must be True or False, got {exclude_seen!r}")
        self.model, self.k, self.exclude_seen = model, k, bool(exclude_seen)
        self.history = HistoryStore(len(model.item_ids_), max_length)
        self.user_index: dict[Hashable, int] = {}
        self.stateful = all(callable(getattr(model, name, None)) for name in ("start_state", "advance", "state_scores"))
        self.states: dict[Hashable, object] = {}
        counts = np.diff(sp.csc_matrix(model.train_matrix_).indptr).astype(np.float64)
        self.popularity_ = counts                     # (n_items,) the cold-start scores
        self.tie_keys_ = tie_keys(model.item_ids_)    # (n_items,) the kit's tie order

    def _codes(self, items: list) -> np.ndarray:
        """The model's item indices of ``items``; an unknown item raises, naming it."""
        if isinstance(items, (str, bytes)) or not hasattr(items, "__len__"):
            raise ParameterTypeError(f"items must be a list of item ids, got {type(items).__name__}")
        if not len(items):
            return np.empty(0, np.int64)
        return np.asarray(self.model.item_encoder_.transform(np.asarray(list(items))), dtype=np.int64)

    def _add(self, user: Hashable, codes: np.ndarray) -> None:
        row = self.user_index.setdefault(user, len(self.user_index))
        self.history.add(np.full(len(codes), row), codes)

    def _recent(self, user: Hashable) -> np.ndarray:
        """The raw item ids the model reads for ``user`` (newest ``max_length``, oldest first)."""
        if user not in self.user_index:
            return self.model.item_ids_[:0]
        return self.model.item_ids_[self.history.items(self.user_index[user])]

    def seed(self, user: Hashable, items: list) -> None:
        """Load ``items`` (oldest first) as the user's history; every item must be known to the
        model (checked before anything is stored)."""
        self._add(user, self._codes(items))
        if self.stateful:
            self.states[user] = self.model.start_state(list(self._recent(user)))

    def scores(self, user: Hashable) -> np.ndarray:
        """(n_items,) the model's scores for the user's next item, from the current state; the
        popularity scores for a user with no history (class doc)."""
        recent = list(self._recent(user))
        if not recent:
            return self.popularity_.copy()
        if self.stateful:
            if user not in self.states:
                self.states[user] = self.model.start_state(recent)
            return np.asarray(self.model.state_scores(self.states[user]), dtype=np.float64)
        return np.asarray(self.model.score_histories([recent]), dtype=np.float64)[0]

    def recommend(self, user: Hashable) -> pd.DataFrame:
        """The user's top-``k`` from their current history."""
        scores = self.scores(user)
        if self.exclude_seen and user in self.user_index:
            scores[self.history.all_items(self.user_index[user])] = -np.inf
        items, values = top_k(scores[None, :], self.k, tie_keys=self.tie_keys_)
        keep = np.isfinite(values[0])
        return pd.DataFrame({"item_id": self.model.item_ids_[items[0][keep]],
                             "score": values[0][keep], "rank": np.arange(1, keep.sum() + 1)})

    def update(self, user: Hashable, item: Hashable) -> pd.DataFrame:
        """Record one event and return the refreshed top-``k``."""
        codes = self._codes([item])                         # before anything is stored
        if self.stateful and user in self.states:           # else built from the stored history
            self.states[user] = self.model.advance(self.states[user], item)
        self._add(user, codes)
        return self.recommend(user)


def update_latency(server: RealTimeRecommender, events: pd.DataFrame, user_col: str = "user_id",
                   item_col: str = "item_id", warmup: int = 5) -> pd.Series:
    """Milliseconds of ``server.update(user, item)`` (state update + fresh top-k) per event.

    events: rows (user, item) replayed in order, each user seeded beforehand; the first
    ``warmup`` calls (compilation, caches) are run but not timed. Returns a Series with
    ``p50``, ``p90``, ``p99``, ``mean`` (ms) and ``n`` (timed events).
    """
    if not isinstance(server, RealTimeRecommender):
        raise ParameterTypeError(f"server must be a RealTimeRecommender, got {type(server).__name__}")
    check_non_negative_int(warmup=warmup)
    require_columns(events, user_col, item_col)
    if len(events) <= warmup:
        raise ValueError(f"events needs more than warmup={warmup} rows (at least one timed event), "
                         f"got {len(events)}")
    users, items = events[user_col].to_numpy(), events[item_col].to_numpy()
    times = np.empty(len(events))
    for j, (user, item) in enumerate(zip(users, items)):   # one event at a time: what is measured
        start = time.perf_counter()
        server.update(user, item)
        times[j] = (time.perf_counter() - start) * 1e3
    timed = times[warmup:]
    return pd.Series({"p50": np.percentile(timed, 50), "p90": np.percentile(timed, 90),
                      "p99": np.percentile(timed, 99), "mean": timed.mean(), "n": float(len(timed))})

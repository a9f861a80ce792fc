"""Per-event serving: keep each user's events, rescore from the history after every event."""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable

import numpy as np
import pandas as pd

from reclib.base import Recommender, top_k
from reclib.checks import check_positive_int

__all__ = ["RealTimeRecommender", "UserStateStore"]


class UserStateStore:
    """Each user's most recent ``max_length`` item ids (all of them when ``None``).

    ``add(user, item)`` is O(1) (a deque append, the oldest event dropped past ``max_length``);
    ``history(user)`` is the list of items, oldest first (empty for an unknown user).
    """

    def __init__(self, max_length: int | None = None) -> None:
        if max_length is not None:
            check_positive_int(max_length=max_length)
        self.max_length = max_length
        self._events: dict[Hashable, deque] = {}

    def add(self, user: Hashable, item: Hashable) -> None:
        """Append one event of ``user``."""
        if user not in self._events:
            self._events[user] = deque(maxlen=self.max_length)
        self._events[user].append(item)

    def history(self, user: Hashable) -> list:
        """The user's items, oldest first."""
        return list(self._events.get(user, ()))

    def __len__(self) -> int:
        return len(self._events)


class RealTimeRecommender:
    """Fresh top-``k`` lists after every event, from a fitted model's ``score_histories``.

    ``seed(user, items)`` loads a user's known history (e.g. their training events);
    ``update(user, item)`` appends one event and returns the user's new top-``k`` frame
    (item_id, score, rank), excluding items already in the history when ``exclude_seen``.
    """

    def __init__(self, model: Recommender, k: int = 10, exclude_seen: bool = True,
                 max_length: int | None = None) -> None:
        if not isinstance(model, Recommender):
            raise ValueError(f"model must be a fitted Recommender, got {type(model).__name__}")
        check_positive_int(k=k)
        self.model, self.k, self.exclude_seen = model, k, exclude_seen
        self.store = UserStateStore(max_length)

    def seed(self, user: Hashable, items: list) -> None:
        """Load ``items`` (oldest first) as the user's history."""
        for item in items:
            self.store.add(user, item)

    def recommend(self, user: Hashable) -> pd.DataFrame:
        """The user's top-``k`` from their current history."""
        history = self.model.history_matrix([self.store.history(user)])
        scores = np.array(self.model._score_history_matrix(history), dtype=np.float64)
        items, values = top_k(scores, self.k, history if self.exclude_seen else None)
        keep = np.isfinite(values[0])
        return pd.DataFrame({"item_id": self.model.item_ids_[items[0][keep]],
                             "score": values[0][keep], "rank": np.arange(1, keep.sum() + 1)})

    def update(self, user: Hashable, item: Hashable) -> pd.DataFrame:
        """Record one event and return the refreshed top-``k``."""
        self.model.item_encoder_.transform([item])          # an unknown item raises here, naming it
        self.store.add(user, item)
        return self.recommend(user)

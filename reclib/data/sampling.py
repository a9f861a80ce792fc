"""Negative sampling for implicit feedback, vectorised with rejection of positives.

A "negative" for user ``u`` is an item ``u`` has not interacted with. Candidates are drawn for all
requests at once (uniformly, or proportionally to item popularity); the draws that hit a positive
are redrawn, again all at once, until none is left. Membership is tested on the sorted keys
``user * n_items + item`` with :func:`numpy.searchsorted`, so no Python loop touches a user.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from reclib.data.encoding import IdEncoder
from reclib.data.validation import check_non_negative, require_columns

__all__ = ["NegativeSampler", "sample_negatives"]


def sample_negatives(pos_users: np.ndarray, pos_items: np.ndarray, n_items: int,
                     users: np.ndarray, item_probs: np.ndarray | None = None,
                     seed: int | np.random.Generator = 42, max_rounds: int = 1000) -> np.ndarray:
    """One negative item index for each entry of ``users`` (all arguments are integer indices).

    Parameters
    ----------
    pos_users, pos_items: the positive pairs, shape (n_pos,).
    n_items: size of the item catalogue; items are ``0..n_items-1``.
    users: the users to sample for, shape (n,), repeats allowed (one draw per entry).
    item_probs: sampling distribution over items, shape (n_items,); ``None`` is uniform.
    seed: an int or a ``numpy.random.Generator``.

    Raises ``ValueError`` if a requested user has interacted with every item it can draw.
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    users = np.asarray(users, dtype=np.int64)
    keys = np.unique(np.asarray(pos_users, np.int64) * n_items + np.asarray(pos_items, np.int64))
    if item_probs is not None:
        item_probs = np.asarray(item_probs, dtype=np.float64)
        if item_probs.shape != (n_items,) or (item_probs < 0).any() or item_probs.sum() <= 0:
            raise ValueError(f"item_probs must be {n_items} non-negative weights with a positive sum")
        item_probs = item_probs / item_probs.sum()
    drawable = n_items if item_probs is None else np.count_nonzero(item_probs)
    req_users, req_counts = np.unique(users, return_counts=True)
    n_pos = np.bincount(keys // n_items, minlength=int(req_users.max(initial=0)) + 1)[req_users]
    if (n_pos >= drawable).any():
        full = req_users[n_pos >= drawable][:5].tolist()
        raise ValueError(f"users {full} have no item left to sample as a negative")

    def draw(size: int) -> np.ndarray:
        if item_probs is None:
            return rng.integers(0, n_items, size=size)
        return rng.choice(n_items, size=size, p=item_probs)

    def is_positive(u: np.ndarray, items: np.ndarray) -> np.ndarray:
        query = u * n_items + items
        pos = np.searchsorted(keys, query)
        return (pos < len(keys)) & (keys[np.minimum(pos, len(keys) - 1)] == query)

    items = draw(len(users))
    todo = np.flatnonzero(is_positive(users, items))
    for _ in range(max_rounds):
        if todo.size == 0:
            return items
        items[todo] = draw(todo.size)
        todo = todo[is_positive(users[todo], items[todo])]
    raise RuntimeError(f"negative sampling did not finish in {max_rounds} rounds")


class NegativeSampler:
    """Sample negatives with raw ids: ``NegativeSampler(strategy="popularity").fit(df).sample(users, n)``.

    ``strategy="uniform"`` draws every item equally; ``"popularity"`` draws items in proportion to
    their interaction count (``alpha`` flattens or sharpens it: weight = count ** alpha), the
    harder negatives word2vec-style samplers use.
    """

    def __init__(self, strategy: Literal["uniform", "popularity"] = "uniform", alpha: float = 1.0,
                 user_col: str = "user_id", item_col: str = "item_id", seed: int = 42) -> None:
        if strategy not in ("uniform", "popularity"):
            raise ValueError(f"strategy={strategy!r}: expected 'uniform' or 'popularity'")
        check_non_negative(alpha=alpha)
        self.strategy, self.alpha = strategy, alpha
        self.user_col, self.item_col, self.seed = user_col, item_col, seed

    def fit(self, interactions: pd.DataFrame) -> NegativeSampler:
        """Learn the positives and the item catalogue from ``interactions``."""
        require_columns(interactions, self.user_col, self.item_col)
        self.users_ = IdEncoder("user").fit(interactions[self.user_col])
        self.items_ = IdEncoder("item").fit(interactions[self.item_col])
        self.pos_users_ = self.users_.transform(interactions[self.user_col])
        self.pos_items_ = self.items_.transform(interactions[self.item_col])
        counts = np.bincount(self.pos_items_, minlength=len(self.items_)).astype(np.float64)
        self.item_probs_ = None if self.strategy == "uniform" else counts ** self.alpha
        self._rng = np.random.default_rng(self.seed)
        return self

    def sample(self, user_ids: object, n_negatives: int = 1) -> pd.DataFrame:
        """``n_negatives`` negatives per entry of ``user_ids``: a frame (user_col, item_col)."""
        if n_negatives < 1:
            raise ValueError(f"n_negatives must be at least 1, got {n_negatives!r}")
        users = np.repeat(self.users_.transform(np.asarray(user_ids)), n_negatives)
        items = sample_negatives(self.pos_users_, self.pos_items_, len(self.items_), users,
                                 self.item_probs_, seed=self._rng)
        return pd.DataFrame({self.user_col: self.users_.inverse_transform(users),
                             self.item_col: self.items_.inverse_transform(items)})

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
from reclib.checks import (ParameterTypeError, check_choice, check_finite_array, check_non_negative,
                           check_non_negative_int, check_positive_int)
from reclib.data.validation import validate_interactions

__all__ = ["NegativeSampler", "sample_negatives"]


def _index_array(name: str, values: object, high: int | None = None) -> np.ndarray:
    """``values`` as a 1-D int64 array of indices in ``[0, high)`` (no upper bound if ``None``).

    Integer dtypes and whole floats are accepted; NaN, ±inf, fractions, bools and strings are not.
    """
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of indices, got shape {array.shape}")
    if array.size and array.dtype.kind not in "iu":
        if array.dtype.kind != "f":
            raise ParameterTypeError(f"{name} must hold integer indices, got dtype {array.dtype}")
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            raise ValueError(f"{name} must hold whole-number indices, got {int(bad.sum())} other value(s), "
                             f"first at position {int(np.argmax(bad))}: {array[bad][0]}")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or (high is not None and array.max() >= high)):
        bounds = f"[0, {high})" if high is not None else "[0, inf)"
        bad = (array < 0) | (array >= high if high is not None else False)
        raise ValueError(f"{name} must lie in {bounds}, got {int(np.count_nonzero(bad))} value(s) outside, "
                         f"first at position {int(np.argmax(bad))}: {array[bad][0]}")
    return array


def sample_negatives(pos_users: np.ndarray, pos_items: np.ndarray, n_items: int,
                     users: np.ndarray, item_probs: np.ndarray | None = None,
                     random_state: int | np.random.Generator = 42, max_rounds: int = 1000) -> np.ndarray:
    """One negative item index for each entry of ``users`` (all arguments are integer indices).

    Parameters
    ----------
    - pos_users, pos_items: the positive pairs, shape (n_pos,), users >= 0, items in [0, n_items).
    - n_items: size of the item catalogue (a positive int); items are ``0..n_items-1``.
    - users: the users to sample for, shape (n,), indices >= 0, repeats allowed (one draw per entry).
    - item_probs: sampling weights over items, shape (n_items,), finite, >= 0, positive sum;
      ``None`` is uniform.
    - random_state: a non-negative int or a ``numpy.random.Generator``.
    - max_rounds: a positive int, the most redraw rounds.

    Raises ``ValueError`` (or :class:`~reclib.checks.ParameterTypeError`) naming the argument on
    bad input, before any draw, and if a requested user has interacted with every item it can draw.
    """
    check_positive_int(n_items=n_items, max_rounds=max_rounds)
    if not isinstance(random_state, np.random.Generator):
        check_non_negative_int(random_state=random_state)
    pos_users = _index_array("pos_users", pos_users)
    pos_items = _index_array("pos_items", pos_items, high=n_items)
    if pos_users.shape != pos_items.shape:
        raise ValueError(f"pos_users and pos_items must have the same length, got {len(pos_users)} "
                         f"and {len(pos_items)}")
    users = _index_array("users", users)
    if item_probs is not None:
        item_probs = check_finite_array("item_probs", item_probs)
        if item_probs.shape != (n_items,) or (item_probs < 0).any() or item_probs.sum() <= 0:
            raise ValueError(f"item_probs must be {n_items} non-negative weights with a positive sum, "
                             f"got shape {item_probs.shape}, min {item_probs.min(initial=0):g}, "
                             f"sum {item_probs.sum():g}")
        item_probs = item_probs / item_probs.sum()
    rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(random_state)
    keys = np.unique(pos_users * n_items + pos_items)
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
    their interaction count (``alpha`` >= 0 flattens or sharpens it: weight = count ** alpha), the
    harder negatives word2vec-style samplers use. ``random_state`` is a non-negative int.
    """

    def __init__(self, strategy: Literal["uniform", "popularity"] = "uniform", alpha: float = 1.0,
                 user_col: str = "user_id", item_col: str = "item_id", random_state: int = 42) -> None:
        check_choice("strategy", strategy, ("uniform", "popularity"))
        check_non_negative(alpha=alpha)
        check_non_negative_int(random_state=random_state)
        self.strategy, self.alpha = strategy, alpha
        self.user_col, self.item_col, self.random_state = user_col, item_col, random_state

    def fit(self, interactions: pd.DataFrame) -> NegativeSampler:
        """Learn the positives and the item catalogue from ``interactions``.

        The frame is checked with ``validate_interactions`` first: ``user_col`` and ``item_col``
        present without nulls, a ``rating``/``timestamp`` column (when present) numeric and finite,
        no duplicate (user, item, timestamp) rows.
        """
        validate_interactions(interactions, self.user_col, self.item_col)
        users = IdEncoder("user").fit(interactions[self.user_col])
        items = IdEncoder("item").fit(interactions[self.item_col])
        pos_items = items.transform(interactions[self.item_col])
        counts = np.bincount(pos_items, minlength=len(items)).astype(np.float64)
        with np.errstate(over="ignore"):  # an overflow is reported just below, naming alpha
            item_probs = None if self.strategy == "uniform" else counts ** self.alpha
        if item_probs is not None and not np.isfinite(item_probs).all():
            raise ValueError(f"alpha={self.alpha!r} overflows the popularity weights count ** alpha "
                             f"(largest count {int(counts.max())}); use a smaller alpha")
        self.users_, self.items_, self.item_probs_ = users, items, item_probs
        self.pos_users_ = users.transform(interactions[self.user_col])
        self.pos_items_ = pos_items
        self._rng = np.random.default_rng(self.random_state)
        return self

    def sample(self, user_ids: object, n_negatives: int = 1) -> pd.DataFrame:
        """``n_negatives`` (a positive int) negatives per entry of ``user_ids`` (a non-empty 1-D
        sequence of ids seen at ``fit``, or one id): a frame (user_col, item_col)."""
        check_positive_int(n_negatives=n_negatives)
        if not hasattr(self, "users_"):
            raise RuntimeError("NegativeSampler is not fitted: call fit(interactions) first")
        ids = np.asarray(user_ids)
        if ids.ndim > 1 or ids.size == 0:
            raise ValueError(f"user_ids must be one id or a non-empty 1-D sequence of ids, got shape "
                             f"{ids.shape}")
        users = np.repeat(self.users_.transform(ids), n_negatives)
        items = sample_negatives(self.pos_users_, self.pos_items_, len(self.items_), users,
                                 self.item_probs_, random_state=self._rng)
        return pd.DataFrame({self.user_col: self.users_.inverse_transform(users),
                             self.item_col: self.items_.inverse_transform(items)})

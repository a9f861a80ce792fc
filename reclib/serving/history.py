"""One place for user state that arrives after ``fit``: each user's events, append-only and sparse.

:class:`HistoryStore` is what the real-time recommender (:mod:`reclib.serving.realtime`), the
bandit policies and the replay evaluation (:mod:`reclib.interactive`) keep; none of them keeps
user state anywhere else, and no fitted model is changed by it.

Users and items are *indices* (a user ``u`` in ``[0, n_users)``, the store growing with the
largest user seen; an item in ``[0, n_items)``). Every event is ``(user, item, value)`` (a click
or reward, 1.0 by default). Layout, and why:

- **one log** of three arrays (user, item, value), doubled in place when full, so appending an
  event costs amortised O(1) and a batch of events one vectorised copy;
- **a per-user chain** through the log: ``previous[e]`` is the position of the same user's event
  before ``e``, and ``last[u]`` the user's newest, so reading a user's newest ``m`` events costs
  O(m), whatever the size of the log (the per-event path of a server);
- **a CSR view** (users x items, summed values and event counts) for reads over many users at once
  (the policies' slates), rebuilt only when events arrived since the last batch read, so one round
  of appends followed by one round of reads costs one O(events) rebuild.

A repeated (user, item) event is kept as its own event (a sequence can revisit an item); the CSR
view sums its values and counts it once more.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from reclib.checks import check_finite_array, check_indices, check_positive_int

__all__ = ["HistoryStore"]


@numba.njit(cache=True)
def _walk_back(previous: np.ndarray, newest: int, limit: int) -> np.ndarray:  # pragma: no cover - compiled
    """Log positions of a user's newest ``limit`` events (oldest first), following ``previous``."""
    out = np.empty(limit, dtype=np.int64)
    n, position = 0, newest
    while position >= 0 and n < limit:
        out[n] = position
        n += 1
        position = previous[position]
    return out[:n][::-1]


def _grown(array: np.ndarray, size: int, fill: float) -> np.ndarray:
    """``array`` with room for at least ``size`` entries (capacity doubled), new entries ``fill``."""
    if size <= len(array):
        return array
    bigger = np.full(max(size, 2 * len(array)), fill, dtype=array.dtype)
    bigger[:len(array)] = array
    return bigger


class HistoryStore:
    """Each user's events ``(item, value)`` in arrival order (module doc).

    Parameters
    ----------
    n_items: number of items; every item index must be in ``[0, n_items)``.
    max_length: how many of a user's newest events :meth:`items` returns (all when ``None``);
        the store itself keeps every event.
    """

    def __init__(self, n_items: int, max_length: int | None = None) -> None:
        check_positive_int(n_items=n_items)
        if max_length is not None:
            check_positive_int(max_length=max_length)
        self.n_items, self.max_length = n_items, max_length
        self._users = np.empty(0, np.int64)
        self._items = np.empty(0, np.int64)
        self._values = np.empty(0, np.float64)
        self._previous = np.empty(0, np.int64)
        self._last = np.empty(0, np.int64)        # (n_users,) newest log position, -1 for none
        self._n_events = 0
        self._views: tuple[sp.csr_matrix, sp.csr_matrix] | None = None

    @property
    def n_users(self) -> int:
        """1 + the largest user index stored (0 when empty)."""
        return len(self._last)

    def __len__(self) -> int:
        """Number of events stored."""
        return self._n_events

    def add(self, users: object, items: object, values: object = 1.0) -> None:
        """Append events: ``users`` (n,) with ``items`` (n,) or (n, k) (k events per user, in
        column order) and ``values`` broadcast to ``items`` (finite). Everything is checked
        before anything is stored."""
        users = check_indices("users", np.atleast_1d(users), np.iinfo(np.int64).max, ndim=1)
        items = check_indices("items", np.atleast_1d(items), self.n_items)
        if items.ndim not in (1, 2) or len(items) != len(users):
            raise ValueError(f"items must be (len(users),) or (len(users), k) = ({len(users)}, ...), "
                             f"got {items.shape}")
        values = check_finite_array("values", np.broadcast_to(np.asarray(values, np.float64), items.shape))
        if items.ndim == 2:
            users = np.repeat(users, items.shape[1])
        items, values = items.ravel(), values.ravel()
        n, start = len(items), self._n_events
        if n == 0:
            return
        positions = np.arange(start, start + n)
        for name, fill in (("_users", 0), ("_items", 0), ("_values", 0.0), ("_previous", -1)):
            setattr(self, name, _grown(getattr(self, name), start + n, fill))
        self._last = _grown(self._last, int(users.max()) + 1, -1)
        self._users[positions], self._items[positions], self._values[positions] = users, items, values
        order = np.argsort(users, kind="stable")                 # each user's new events, in order
        by_user, at = users[order], positions[order]
        first = np.r_[True, by_user[1:] != by_user[:-1]]
        previous = np.r_[-1, at[:-1]]
        previous[first] = self._last[by_user[first]]              # chained to the user's older events
        self._previous[at] = previous
        newest = np.r_[by_user[1:] != by_user[:-1], True]
        self._last[by_user[newest]] = at[newest]
        self._n_events += n
        self._views = None

    def items(self, user: int, newest: int | None = None) -> np.ndarray:
        """(m,) item indices of the user's ``newest`` events (default ``max_length``; all when both
        are ``None``), oldest first; empty for a user with no event. O(m)."""
        user = int(check_indices("user", np.asarray(user), np.iinfo(np.int64).max, ndim=0))
        if newest is not None:
            check_positive_int(newest=newest)
        if user >= self.n_users or self._last[user] < 0:
            return np.empty(0, np.int64)
        limit = newest or self.max_length or self._n_events
        return self._items[_walk_back(self._previous, int(self._last[user]), limit)]

    def _csr(self) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """(summed values, event counts), both (n_users, n_items) CSR; rebuilt when stale."""
        if self._views is None:
            n = self._n_events
            shape = (self.n_users, self.n_items)
            rows, cols = self._users[:n], self._items[:n]
            counts = sp.csr_matrix((np.ones(n), (rows, cols)), shape=shape)
            totals = sp.csr_matrix((self._values[:n], (rows, cols)), shape=shape)
            totals.eliminate_zeros()
            self._views = (totals, counts)
        return self._views

    def _rows(self, matrix: sp.csr_matrix, users: object) -> sp.csr_matrix:
        users = check_indices("users", np.atleast_1d(users), np.iinfo(np.int64).max, ndim=1)
        inside = users < matrix.shape[0]                        # users never stored: empty rows
        picker = sp.csr_matrix((np.ones(int(inside.sum())), (np.flatnonzero(inside), users[inside])),
                               shape=(len(users), matrix.shape[0]))
        rows = sp.csr_matrix(picker @ matrix)
        rows.sort_indices()
        return rows

    def seen(self, users: object) -> sp.csr_matrix:
        """(len(users), n_items) CSR (sorted columns) of event counts: the items each user has an
        event with."""
        return self._rows(self._csr()[1], users)

    def values(self, users: object) -> sp.csr_matrix:
        """(len(users), n_items) CSR of summed event values (zeros dropped): e.g. clicks per item."""
        return self._rows(self._csr()[0], users)

    def n_seen(self, users: object) -> np.ndarray:
        """(len(users),) number of distinct items each user has an event with."""
        return np.diff(self.seen(users).indptr)

    def contains(self, users: object, items: object) -> np.ndarray:
        """(n, k) bool: whether user ``users[r]`` has an event with item ``items[r, c]``."""
        items = check_indices("items", items, self.n_items, ndim=2)
        seen = self.seen(users)
        if seen.shape[0] != len(items):
            raise ValueError(f"items must have one row per user, got {len(items)} rows for "
                             f"{seen.shape[0]} users")
        rows = np.repeat(np.arange(len(items)), items.shape[1])
        return (np.asarray(seen[rows, items.ravel()]).ravel() > 0).reshape(items.shape)

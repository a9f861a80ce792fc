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
  O(m), whatever the size of the log (the per-event path of a server). A server's memory grows
  with its events: the log is never trimmed (``max_length`` only bounds what is read), and a
  doubling of the log copies it once (amortised O(1) per event, one slow append in between);
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
    - n_items: number of items; every item index must be in ``[0, n_items)``.
    - max_length: how many of a user's newest events :meth:`items` returns (all when ``None``);
      the store itself keeps every event (:meth:`all_items`).
    - n_users: if given, every user index must be in ``[0, n_users)`` (a policy's population);
      if ``None``, any non-negative index is accepted. Indices are rows of arrays, so they
      should be dense (0, 1, 2, ...), as :class:`~reclib.serving.RealTimeRecommender` assigns.
    """

    def __init__(self, n_items: int, max_length: int | None = None, n_users: int | None = None) -> None:
        check_positive_int(n_items=n_items)
        if max_length is not None:
            check_positive_int(max_length=max_length)
        if n_users is not None:
            check_positive_int(n_users=n_users)
        self.n_items, self.max_length, self.user_limit = n_items, max_length, n_users
        self._users = np.empty(0, np.int64)
        self._items = np.empty(0, np.int64)
        self._values = np.empty(0, np.float64)
        self._previous = np.empty(0, np.int64)
        self._last = np.empty(0, np.int64)        # per user: newest log position, -1 for none
        self._count = np.empty(0, np.int64)       # per user: number of events
        self._n_users = 0
        self._n_events = 0
        self._views: tuple[sp.csr_matrix, sp.csr_matrix] | None = None

    @property
    def n_users(self) -> int:
        """1 + the largest user index stored (0 when empty)."""
        return self._n_users

    def __len__(self) -> int:
        """Number of events stored."""
        return self._n_events

    def _user_indices(self, name: str, users: object, ndim: int = 1) -> np.ndarray:
        limit = np.iinfo(np.int64).max if self.user_limit is None else self.user_limit
        return check_indices(name, np.asarray(users) if ndim == 0 else np.atleast_1d(users), limit, ndim=ndim)

    def add(self, users: object, items: object, values: object = 1.0) -> None:
        """Append events: ``users`` (n,) with ``items`` (n,) or (n, k) (k events per user, in
        column order); ``values`` a number or an array of ``items``' shape (finite). Everything is
        checked before anything is stored."""
        users = self._user_indices("users", users)
        items = check_indices("items", np.atleast_1d(items), self.n_items)
        if items.ndim not in (1, 2) or len(items) != len(users):
            raise ValueError(f"items must be (len(users),) or (len(users), k) = ({len(users)}, ...), "
                             f"got {items.shape}")
        values = np.asarray(values, np.float64)
        if values.ndim and values.shape != items.shape:
            raise ValueError(f"values must be a number or have the shape of items {items.shape}, "
                             f"got {values.shape}")
        values = check_finite_array("values", np.broadcast_to(values, items.shape))
        if items.ndim == 2:
            users = np.repeat(users, items.shape[1])
        items, values = items.ravel(), values.ravel()
        n, start = len(items), self._n_events
        if n == 0:
            return
        positions = np.arange(start, start + n)
        for name, fill in (("_users", 0), ("_items", 0), ("_values", 0.0), ("_previous", -1)):
            setattr(self, name, _grown(getattr(self, name), start + n, fill))
        self._n_users = max(self._n_users, int(users.max()) + 1)
        self._last = _grown(self._last, self._n_users, -1)
        self._count = _grown(self._count, self._n_users, 0)
        self._users[positions], self._items[positions], self._values[positions] = users, items, values
        order = np.argsort(users, kind="stable")                 # each user's new events, in order
        by_user, at = users[order], positions[order]
        first = np.r_[True, by_user[1:] != by_user[:-1]]
        previous = np.r_[-1, at[:-1]]
        previous[first] = self._last[by_user[first]]              # chained to the user's older events
        self._previous[at] = previous
        newest = np.r_[by_user[1:] != by_user[:-1], True]
        self._last[by_user[newest]] = at[newest]
        np.add.at(self._count, users, 1)
        self._n_events += n
        self._views = None

    def _walk(self, user: object, limit: int | None) -> np.ndarray:
        user = int(self._user_indices("user", user, ndim=0))
        if user >= self._n_users or self._count[user] == 0:
            return np.empty(0, np.int64)
        count = int(self._count[user])
        return self._items[_walk_back(self._previous, int(self._last[user]), min(limit or count, count))]

    def items(self, user: int) -> np.ndarray:
        """(m,) item indices of the user's newest ``max_length`` events (all when ``None``),
        oldest first; empty for a user with no event. O(m)."""
        return self._walk(user, self.max_length)

    def all_items(self, user: int) -> np.ndarray:
        """(m,) item indices of every event of the user, oldest first. O(m)."""
        return self._walk(user, None)

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
        users = self._user_indices("users", users)
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
        if items.size == 0:
            return np.zeros(items.shape, dtype=bool)
        seen = self.seen(users)
        if seen.shape[0] != len(items):
            raise ValueError(f"items must have one row per user, got {len(items)} rows for "
                             f"{seen.shape[0]} users")
        rows = np.repeat(np.arange(len(items)), items.shape[1])
        return (np.asarray(seen[rows, items.ravel()]).ravel() > 0).reshape(items.shape)

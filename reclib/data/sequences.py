"""Per-user item sequences for next-item models, built without a Python loop over events.

A user's sequence is their items in time order, ties broken by item id (the order P3 uses).
Items are stored as **codes** ``item_index + 1``, so ``0`` is free to mean padding.

:func:`user_sequences` returns the sequences in a CSR-like layout (one flat array of codes and
per-user offsets). :func:`training_windows` cuts each sequence into left-padded windows of
length ``L`` with the next item as the target at every position::

    sequence        a b c d e          (codes; n = 5 events -> 4 (input, target) pairs)
    L = 3, windows  [0 0 a] -> [0 0 b]     the oldest pair, left-padded
                    [b c d] -> [c d e]     the newest pairs fill the last window

Windows are cut from the newest pair backwards, so the last window of every user is full (if the
user has ``>= L`` pairs) and ends at their latest event; with a ``stride`` below ``L`` they overlap
so that every target sees more history (each pair is still trained once per epoch). :func:`last_window` gives the input a
model reads to predict each user's next item: their last ``L`` codes, left-padded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reclib.checks import check_finite_array, check_indices, check_positive_int, require_columns
from reclib.data.validation import check_finite_column, check_no_nulls

#: codes are int32 (item index + 1): indices stay below this
_CODE_LIMIT = int(np.iinfo(np.int32).max)

__all__ = ["Sequences", "last_window", "order_signal", "pad_histories", "training_windows", "user_sequences"]


@dataclass(frozen=True)
class Sequences:
    """Users' chronological item codes, CSR-style.

    users: (n_users,) raw user ids, sorted; codes: (n_events,) int32 item codes (index + 1), user
    by user, oldest first; offsets: (n_users + 1,) int64, user ``u``'s codes are
    ``codes[offsets[u]:offsets[u + 1]]``.
    """

    users: np.ndarray
    codes: np.ndarray
    offsets: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        """(n_users,) events per user."""
        return np.diff(self.offsets)

    def sequence(self, u: int) -> np.ndarray:
        """User ``u``'s (position in ``users``) codes, oldest first."""
        return self.codes[self.offsets[u]:self.offsets[u + 1]]


def user_sequences(interactions: pd.DataFrame, item_index: np.ndarray | pd.Series,
                   user_col: str = "user_id", timestamp_col: str = "timestamp",
                   n_items: int | None = None) -> Sequences:
    """Chronological sequences of ``interactions`` (ties by item index, then row order).

    item_index: (n_rows,) the rows' item indices in ``[0, n_items)`` (e.g. from an ``IdEncoder``;
    without ``n_items``, below int32's maximum); the codes are ``item_index + 1``. The checks
    of ``fit``, before any work: ``timestamp_col`` present (a sequence needs an order), numeric
    and finite (text would sort as text, NaN as the newest event), no null user, whole
    non-negative item indices (unknown items encode as -1).
    """
    require_columns(interactions, user_col, timestamp_col)
    item_index = np.asarray(item_index)
    if item_index.shape != (len(interactions),):
        raise ValueError(f"item_index must hold one index per row ({len(interactions)},), got shape "
                         f"{item_index.shape}")
    check_no_nulls(interactions, user_col)
    check_finite_column(interactions, timestamp_col)
    item_index = check_indices("item_index", item_index, _CODE_LIMIT if n_items is None else n_items)
    users, user_codes = np.unique(interactions[user_col].to_numpy(), return_inverse=True)
    order = np.lexsort([item_index, interactions[timestamp_col].to_numpy(), user_codes])
    counts = np.bincount(user_codes, minlength=len(users))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return Sequences(users, (item_index[order] + 1).astype(np.int32), offsets)


def training_windows(sequences: Sequences, max_length: int,
                     stride: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets), each (n_windows, max_length) int32 codes, 0 = padding.

    Every (item, next item) pair of every user is a target exactly once: ``targets[w, t]`` is the
    item that followed ``inputs[w, t]``, and 0 where window ``w`` does not train that position.
    Users with one event have no pair and no window.

    stride: how far apart (in pairs) the windows of one user end, newest first; default
    ``max_length``: non-overlapping windows, so a target early in a window sees little history.
    With ``stride < max_length`` windows overlap and each trains only its newest ``stride``
    targets (the user's oldest window trains all of its own), so every target but a user's first
    ``max_length - stride`` sees at least ``max_length - stride`` earlier items, at the cost of
    ``max_length / stride`` times more positions per epoch.
    """
    check_positive_int(max_length=max_length)
    stride = max_length if stride is None else stride
    check_positive_int(stride=stride)
    if stride > max_length:
        raise ValueError(f"stride ({stride}) must be at most max_length ({max_length})")
    pairs = np.maximum(sequences.lengths - 1, 0)
    n_windows = np.where(pairs > 0, 1 + -(-np.maximum(pairs - max_length, 0) // stride), 0)
    owner = np.repeat(np.arange(len(pairs)), n_windows)
    position = np.arange(int(n_windows.sum())) - np.repeat(np.cumsum(n_windows) - n_windows, n_windows)
    window = n_windows[owner] - 1 - position                       # 0 = newest; rows run oldest first
    # q = how many pairs before the user's newest pair sit at each (window, column)
    q = window[:, None] * stride + (max_length - 1 - np.arange(max_length))[None, :]
    m = pairs[owner][:, None]
    real = q < m
    oldest = (window == n_windows[owner] - 1)[:, None]
    trained = real & ((q < (window[:, None] + 1) * stride) | oldest)
    j = np.where(real, m - q, 1)                                   # pair index 1..m (target at j)
    start = sequences.offsets[owner][:, None]
    inputs = np.where(real, sequences.codes[start + j - 1], 0).astype(np.int32)
    targets = np.where(trained, sequences.codes[start + j], 0).astype(np.int32)
    return inputs, targets


def last_window(sequences: Sequences, max_length: int) -> np.ndarray:
    """(n_users, max_length) int32: each user's last ``max_length`` codes, left-padded with 0."""
    check_positive_int(max_length=max_length)
    lengths = sequences.lengths
    keep = np.minimum(lengths, max_length)
    owner = np.repeat(np.arange(len(lengths)), keep)
    back = np.arange(int(keep.sum())) - np.repeat(np.cumsum(keep) - keep, keep)   # 0 .. keep-1
    out = np.zeros((len(lengths), max_length), np.int32)
    # the k-th newest kept event goes to column max_length - keep + back
    out[owner, max_length - keep[owner] + back] = sequences.codes[sequences.offsets[owner + 1] - keep[owner] + back]
    return out


def pad_histories(histories: list, max_length: int, n_items: int | None = None) -> np.ndarray:
    """(len(histories), max_length) int32 from lists of codes (oldest first): the last
    ``max_length`` codes of each, left-padded with 0. Codes are whole numbers in ``[1, n_items]``
    (0 is the padding, so it is refused inside a history; ``n_items`` defaults to no upper
    bound below int32's)."""
    check_positive_int(max_length=max_length)
    if isinstance(histories, (str, bytes)):
        raise ValueError(f"histories must be a list of code lists, got {type(histories).__name__}")
    lengths = np.array([len(codes) for codes in histories], dtype=np.int64)
    flat = np.concatenate([np.asarray(codes).ravel() for codes in histories]) if len(histories) else np.zeros(0)
    upper = _CODE_LIMIT if n_items is None else n_items + 1
    flat = check_indices("history codes", flat, upper) if flat.size else flat.astype(np.int64)
    if (flat == 0).any():
        raise ValueError("history codes must be >= 1 (code 0 is the padding; a code is item index + 1)")
    keep = np.minimum(lengths, max_length)
    owner = np.repeat(np.arange(len(histories)), keep)
    back = np.arange(int(keep.sum())) - np.repeat(np.cumsum(keep) - keep, keep)   # 0 .. keep-1
    ends = np.cumsum(lengths)
    out = np.zeros((len(histories), max_length), np.int32)
    out[owner, max_length - keep[owner] + back] = flat[ends[owner] - keep[owner] + back]
    return out


def order_signal(sequences: Sequences, item_vectors: np.ndarray, random_state: int = 42) -> tuple[float, float]:
    """(consecutive, random): mean cosine similarity of each item to the **next** item of the
    same user, and to a random item of the same user's sequence (drawn uniformly, seeded).

    item_vectors: (n_items, d) finite rows indexed by item index (code - 1); a zero row has
    similarity 0 (a NaN row is refused, not read as zeros). If consecutive > random, order
    carries information a bag of items loses.
    """
    vectors = check_finite_array("item_vectors", np.asarray(item_vectors, dtype=np.float64))
    if vectors.ndim != 2 or len(vectors) < int(sequences.codes.max(initial=0)):
        raise ValueError(f"item_vectors must be (n_items, d) with a row for every item code, got shape "
                         f"{vectors.shape} for codes up to {int(sequences.codes.max(initial=0))}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    lengths = sequences.lengths
    owner = np.repeat(np.arange(len(lengths)), lengths)
    items = sequences.codes - 1
    same_user = owner[1:] == owner[:-1]
    consecutive = np.einsum("ij,ij->i", unit[items[:-1]][same_user], unit[items[1:]][same_user])
    rng = np.random.default_rng(random_state)
    partner = sequences.offsets[owner] + (rng.random(len(items)) * lengths[owner]).astype(np.int64)
    random_pairs = np.einsum("ij,ij->i", unit[items], unit[items[partner]])
    return float(consecutive.mean()), float(random_pairs.mean())

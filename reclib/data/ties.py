"""The kit's one tie rule, equal scores ordered by a fixed pseudo-random order of the raw item ids,
and the top-K ranker that applies it (:func:`top_k`, also exported by :mod:`reclib.base`).

Breaking ties by the lowest item index leaks the catalogue's numbering into every metric:
MovieLens numbers its films roughly by their entry into the catalogue, so low ids are older,
popular films, and a model that scores every film alike would rank them first and score well
above chance. A seeded hash of the raw id carries no such information, and it is the same for
the same item in every model, notebook and machine, under any row order and in any subset of the
catalogue. :func:`top_k` takes the keys; ``Recommender.recommend`` and the evaluation functions
pass them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["TIE_SEED", "seeded_hash", "tie_keys", "top_k"]

#: the seed of the kit's tie order (:func:`tie_keys`)
TIE_SEED = 0


def seeded_hash(values: np.ndarray, seed: int) -> np.ndarray:
    """(n,) uint64: ``values`` (uint64) offset by the seed and mixed by SplitMix64's finaliser, so
    every seed gives another pseudo-random order of the same values (pandas' hash of numeric
    columns takes no key)."""
    z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15 * (seed + 1) % 2 ** 64)   # arrays wrap mod 2^64
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def tie_keys(item_ids: object, seed: int = TIE_SEED) -> np.ndarray:
    """(n,) uint64 keys of the raw ``item_ids`` (n,): among equal scores the lower key ranks first.

    The key of an id depends only on the id and ``seed``, not on how the column stores it: integer
    ids are hashed as int64 whether they are int32, int64, whole floats (``7.0``) or Python ints in
    an object array; other ids by pandas' keyed hash of their value (``"7"`` and ``7`` differ).
    Two ids with one key (odds about n²/2⁶⁵) fall back to index order.
    """
    ids = pd.Series(np.asarray(item_ids))
    if ids.dtype == object:
        ids = ids.infer_objects()
    if ids.dtype.kind == "f" and ids.notna().all() and (ids == np.round(ids)).all():
        ids = ids.astype(np.int64)
    if ids.dtype.kind in "iub":
        ids = ids.astype(np.int64)
    return seeded_hash(pd.util.hash_pandas_object(ids, index=False).to_numpy(), seed)


def top_k(scores: np.ndarray, k: int, exclude: sp.spmatrix | None = None,
          tie_keys: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns of each row of ``scores``, best first; ties go to the lower tie key.

    Parameters
    ----------
    - scores: (n_rows, n_items) float array; it is modified in place where ``exclude`` is set.
    - k: how many items per row (capped at ``n_items``).
    - exclude: optional (n_rows, n_items) sparse matrix; its stored entries are masked with
      ``-inf`` (a user's training items).
    - tie_keys: optional (n_items,) keys ordering equal scores, lower first; default the item
      index. The models and the evaluation pass :func:`tie_keys` of the raw ids,
      the kit's tie rule; equal keys fall back to the index.

    Returns ``(items, item_scores)``, both (n_rows, k). The order is exactly that of sorting each
    row by score descending, then by tie key and item index ascending, on every machine: ``argpartition``
    only finds each row's k-th best *value* (which is unique even when the items holding it are
    not); every item above it is kept, and the items tied with it are filled in lowest index
    first, the index being that of the columns put in tie-key order. An excluded item can only
    appear, with score ``-inf``, when a row has fewer than ``k`` items left. NaN scores raise
    ``ValueError``. Cost: O(n_items) per row plus O(k log k), and with ``tie_keys`` one sort of the
    keys and one reordered copy of ``scores`` per call.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    scores = np.asarray(scores, dtype=np.float64) if scores.dtype.kind != "f" else scores
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D array (n_rows, n_items), got shape {scores.shape}")
    nan_rows = np.isnan(scores).any(axis=1)
    if nan_rows.any():
        raise ValueError(f"scores hold NaN in {int(nan_rows.sum())} of {len(scores)} rows (first "
                         f"row {int(np.argmax(nan_rows))}): the model produced invalid scores")
    n_rows, n_items = scores.shape
    if exclude is not None:
        if exclude.shape != scores.shape:
            raise ValueError(f"exclude has shape {exclude.shape}, scores {scores.shape}")
        coo = sp.coo_matrix(exclude)
        scores[coo.row, coo.col] = -np.inf
    if tie_keys is not None:
        tie_keys = np.asarray(tie_keys)
        if tie_keys.shape != (n_items,):
            raise ValueError(f"tie_keys must hold one key per item ({n_items},), got {tie_keys.shape}")
        order = np.argsort(tie_keys, kind="stable")          # column j of the view is item order[j]
        items, item_scores = top_k(scores[:, order], k)
        return order[items], item_scores
    k = min(int(k), n_items)
    if k < n_items:
        kth = np.partition(scores, n_items - k, axis=1)[:, n_items - k][:, None]
        above = scores > kth
        tied = scores == kth
        room = k - above.sum(axis=1, keepdims=True)          # tied items that still fit, >= 1
        chosen = above | (tied & (np.cumsum(tied, axis=1) <= room))
        part = np.nonzero(chosen)[1].reshape(n_rows, k)       # ascending item index per row
    else:
        part = np.broadcast_to(np.arange(n_items), (n_rows, n_items))
    part_scores = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-part_scores, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(part_scores, order, axis=1)

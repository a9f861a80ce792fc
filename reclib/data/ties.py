"""The kit's one tie rule: equal scores are ordered by a fixed pseudo-random order of the raw item ids.

Breaking ties by the lowest item index leaks the catalogue's numbering into every metric:
MovieLens numbers its films roughly by their entry into the catalogue, so low ids are older,
popular films, and a model that scores every film alike would rank them first and score well
above chance. A seeded hash of the raw id carries no such information, and it is the same for
the same item in every model, notebook and machine, under any row order and in any subset of the
catalogue. :func:`reclib.base.top_k` takes the keys; ``Recommender.recommend`` and the evaluation
functions pass them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["TIE_SEED", "seeded_hash", "tie_keys"]

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

    The key of an id depends only on the id and ``seed``: integer ids of any width are hashed as
    int64 (so ``7`` and ``np.int32(7)`` agree), other ids by pandas' keyed hash of their value
    (``"7"`` and ``7`` differ). Two ids with one key (odds about n²/2⁶⁵) fall back to index order.
    """
    ids = pd.Series(np.asarray(item_ids))
    if ids.dtype.kind in "iub":
        ids = ids.astype(np.int64)
    return seeded_hash(pd.util.hash_pandas_object(ids, index=False).to_numpy(), seed)

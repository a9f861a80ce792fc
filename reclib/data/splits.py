"""Seeded, vectorised train/test splitters (no Python loop over users).

Protocols (see ``shared/README.md``): P1 :func:`stratified_split`, P2 :func:`random_split`,
P3 :func:`leave_last_out`, P5 :func:`cold_start_item_split`; :func:`chronological_split` splits
each user's history by time. Each returns new frames with the original index kept, so
``train.index`` and ``test.index`` are disjoint subsets of the input's index.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reclib.data.validation import require_columns

__all__ = ["chronological_split", "cold_start_item_split", "leave_last_out", "random_split",
           "stratified_split"]


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")


def random_split(df: pd.DataFrame, test_size: float = 0.2,
                 seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """P2: shuffle all rows and send ``round(test_size * n)`` of them to test."""
    _check_fraction("test_size", test_size)
    order = np.random.default_rng(seed).permutation(len(df))
    n_test = int(round(test_size * len(df)))
    return df.iloc[np.sort(order[n_test:])], df.iloc[np.sort(order[:n_test])]


def _rank_within(groups: np.ndarray, sort_key: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """Position (0-based) of each row within its group after ordering by ``sort_key``."""
    keys = sort_key if isinstance(sort_key, list) else [sort_key]
    order = np.lexsort([*reversed(keys), groups])
    sorted_groups = groups[order]
    starts = np.r_[0, np.flatnonzero(sorted_groups[1:] != sorted_groups[:-1]) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(groups)]))
    rank = np.empty(len(groups), dtype=np.int64)
    rank[order] = np.arange(len(groups)) - run_start
    return rank


def _group_sizes(groups: np.ndarray) -> np.ndarray:
    """For each row, the number of rows in its group."""
    _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return counts[inverse]


def stratified_split(df: pd.DataFrame, train_size: float = 0.75, user_col: str = "user_id",
                     seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """P1: shuffle each user's rows and keep the first ``round(train_size * n_u)`` for train.

    ``round`` is NumPy's (halves to even, like Python's). Every user with at least one row is in
    train; a user whose rounded train share is all of their rows has no test rows.
    """
    _check_fraction("train_size", train_size)
    require_columns(df, user_col)
    groups = pd.factorize(df[user_col])[0]
    rank = _rank_within(groups, np.random.default_rng(seed).random(len(df)))
    n_train = np.maximum(np.round(train_size * _group_sizes(groups)), 1)
    in_train = rank < n_train
    return df[in_train], df[~in_train]


def chronological_split(df: pd.DataFrame, train_size: float = 0.8, user_col: str = "user_id",
                        timestamp_col: str = "timestamp",
                        item_col: str = "item_id") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each user's earliest ``round(train_size * n_u)`` rows (ties by item id) go to train."""
    _check_fraction("train_size", train_size)
    require_columns(df, user_col, timestamp_col, item_col)
    groups = pd.factorize(df[user_col])[0]
    rank = _rank_within(groups, [df[timestamp_col].to_numpy(), df[item_col].to_numpy()])
    n_train = np.maximum(np.round(train_size * _group_sizes(groups)), 1)
    in_train = rank < n_train
    return df[in_train], df[~in_train]


def leave_last_out(df: pd.DataFrame, user_col: str = "user_id", timestamp_col: str = "timestamp",
                   item_col: str = "item_id",
                   min_history: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """P3: per user by time (ties by item id): last row to test, second-to-last to validation.

    Users with fewer than ``min_history`` rows (default 3: one left for training) keep all their
    rows in train and appear in neither validation nor test.
    """
    if min_history < 3:
        raise ValueError(f"min_history must be at least 3, got {min_history!r}")
    require_columns(df, user_col, timestamp_col, item_col)
    groups = pd.factorize(df[user_col])[0]
    rank = _rank_within(groups, [df[timestamp_col].to_numpy(), df[item_col].to_numpy()])
    sizes = _group_sizes(groups)
    from_end = sizes - 1 - rank
    eligible = sizes >= min_history
    test = eligible & (from_end == 0)
    valid = eligible & (from_end == 1)
    return df[~(test | valid)], df[valid], df[test]


def cold_start_item_split(df: pd.DataFrame, test_item_fraction: float = 0.2,
                          item_col: str = "item_id",
                          seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """P5: hold out ``round(fraction * n_items)`` random items with all their interactions."""
    _check_fraction("test_item_fraction", test_item_fraction)
    require_columns(df, item_col)
    items = np.sort(pd.unique(df[item_col]))
    n_test = int(round(test_item_fraction * len(items)))
    cold = np.random.default_rng(seed).choice(items, size=n_test, replace=False)
    in_test = df[item_col].isin(cold).to_numpy()
    return df[~in_test], df[in_test]

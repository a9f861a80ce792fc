"""Seeded, vectorised train/test splitters (no Python loop over users).

Protocols (defined in the README): P1 :func:`stratified_split`, P2 :func:`random_split`,
P3 :func:`leave_last_out`, P5 :func:`cold_start_item_split`; :func:`chronological_split` splits
each user's history by time; :func:`new_item_split` holds out the newest items and asks for a
user's first event on one of them. Each returns new frames with the original index kept, so
``train.index`` and ``test.index`` are disjoint subsets of the input's index.

Every splitter checks its arguments and its frame before any work starts (with
:func:`~reclib.data.validation.validate_interactions`: no nulls in the id columns, numeric and
finite ratings and timestamps, ...). Splitters that split per user or per item also reject a
repeated ``(user, item)`` pair, which would otherwise leak the pair into both sides
(:func:`~reclib.data.validation.drop_duplicate_interactions` keeps the latest). A split that
would leave a side empty raises ``ValueError`` saying which side and why.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reclib.checks import (ParameterTypeError, check_choice, check_fraction, check_non_negative_int,
                           check_positive_int, require_columns)
from reclib.data.ties import seeded_hash
from reclib.data.validation import _fail, check_finite_column, check_no_nulls, validate_interactions

__all__ = ["chronological_split", "cold_start_item_split", "event_order", "leave_last_out", "new_item_split",
           "random_split", "stratified_split"]

_SHOW = 5


def _reject_duplicate_pairs(df: pd.DataFrame, user_col: str, item_col: str, splitter: str) -> None:
    """Raise if a (user, item) pair (both ids non-null) occurs on more than one row."""
    key = [user_col, item_col]
    dup = df.duplicated(subset=key, keep=False).to_numpy() & df[key].notna().all(axis=1).to_numpy()
    if dup.any():
        rows = df.loc[dup, key]
        raise ValueError(
            f"{splitter}: columns ({user_col!r}, {item_col!r}): {len(rows)} rows repeat a (user, item) "
            f"pair, which would put the same pair in both train and test; keep one row per pair first "
            f"with drop_duplicate_interactions(df) (it keeps the latest); first offending rows:\n"
            f"{rows.head(_SHOW).to_string()}")


def _check_one_id_column(df: pd.DataFrame, col: str) -> None:
    """The checks of ``validate_interactions`` for a frame that only needs the id column ``col``."""
    if not isinstance(df, pd.DataFrame):
        raise ParameterTypeError(f"interactions must be a pandas DataFrame, got {type(df).__name__}")
    require_columns(df, col)
    if df.empty:
        raise ValueError(f"interactions are empty: no rows in column {col!r}")
    nulls = df[col].isna()
    if nulls.any():
        _fail(col, "null values", df.loc[nulls, col])


def _check_grouped_frame(df: pd.DataFrame, splitter: str, group_col: str, user_col: str,
                         item_col: str, rating_col: str | None, timestamp_col: str | None,
                         required: tuple[str, ...] = ()) -> None:
    """Frame checks of a splitter that splits per ``group_col`` (``user_col`` or ``item_col``).

    When ``required`` names columns or the frame has both id columns, it is validated as
    interactions and a repeated (user, item) pair is rejected; otherwise only ``group_col`` is
    checked (a non-empty frame, the column present, no nulls).
    """
    both = isinstance(df, pd.DataFrame) and user_col in df.columns and item_col in df.columns
    if both:
        _reject_duplicate_pairs(df, user_col, item_col, splitter)
    if both or required:
        validate_interactions(df, user_col, item_col, rating_col=rating_col,
                              timestamp_col=timestamp_col, required=required)
    else:
        _check_one_id_column(df, group_col)


def random_split(df: pd.DataFrame, test_size: float = 0.2, random_state: int = 42, user_col: str = "user_id",
                 item_col: str = "item_id", rating_col: str | None = "rating",
                 timestamp_col: str | None = "timestamp") -> tuple[pd.DataFrame, pd.DataFrame]:
    """P2: shuffle all rows and send ``round(test_size * n)`` of them to test.

    Any non-empty frame can be split (e.g. a frame of reviews). When it has both ``user_col``
    and ``item_col`` it is checked with ``validate_interactions`` first (null ids, non-numeric or
    non-finite ``rating_col``/``timestamp_col`` values, duplicate (user, item, timestamp) rows).
    Raises ``ValueError`` when ``test_size`` rounds to no test row or to every row.
    """
    check_fraction(test_size=test_size)
    check_non_negative_int(random_state=random_state)
    if isinstance(df, pd.DataFrame) and user_col in df.columns and item_col in df.columns:
        validate_interactions(df, user_col, item_col, rating_col=rating_col, timestamp_col=timestamp_col)
    elif not isinstance(df, pd.DataFrame):
        raise ParameterTypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    elif df.empty:
        raise ValueError("random_split: df is empty: there are no rows to split")
    n_test = int(round(test_size * len(df)))
    if n_test == 0 or n_test == len(df):
        side = "test" if n_test == 0 else "train"
        raise ValueError(f"random_split: {side} would be empty: round(test_size={test_size!r} * "
                         f"{len(df)} rows) = {n_test}; use more rows or a test_size further from 0 and 1")
    order = np.random.default_rng(random_state).permutation(len(df))
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


def _split_by_share(splitter: str, train_size: float, groups: np.ndarray,
                    rank: np.ndarray) -> np.ndarray:
    """``in_train`` mask: each group's first ``max(round(train_size * n_g), 1)`` rows by ``rank``.

    Raises ``ValueError`` when no row at all would go to test."""
    sizes = _group_sizes(groups)
    in_train = rank < np.maximum(np.round(train_size * sizes), 1)
    if in_train.all():
        raise ValueError(f"{splitter}: test would be empty: with train_size={train_size!r}, "
                         f"round(train_size * n_u) (at least 1) keeps every row of every user in train "
                         f"(the largest user has {int(sizes.max())} rows); use a smaller train_size "
                         f"or users with more rows")
    return in_train


def stratified_split(df: pd.DataFrame, train_size: float = 0.75, user_col: str = "user_id",
                     random_state: int = 42, item_col: str = "item_id", rating_col: str | None = "rating",
                     timestamp_col: str | None = "timestamp") -> tuple[pd.DataFrame, pd.DataFrame]:
    """P1: shuffle each user's rows and keep the first ``round(train_size * n_u)`` for train.

    ``round`` is NumPy's (halves to even, like Python's). Every user with at least one row is in
    train; a user whose rounded train share is all of their rows has no test rows. Only
    ``user_col`` is needed; when the frame has ``item_col`` it is validated as interactions and
    a repeated (user, item) pair is an error. Raises ``ValueError`` if no row would go to test.
    """
    check_fraction(train_size=train_size)
    check_non_negative_int(random_state=random_state)
    _check_grouped_frame(df, "stratified_split", user_col, user_col, item_col, rating_col,
                         timestamp_col)
    groups = pd.factorize(df[user_col])[0]
    rank = _rank_within(groups, np.random.default_rng(random_state).random(len(df)))
    in_train = _split_by_share("stratified_split", train_size, groups, rank)
    return df[in_train], df[~in_train]


def chronological_split(df: pd.DataFrame, train_size: float = 0.8, user_col: str = "user_id",
                        timestamp_col: str = "timestamp", item_col: str = "item_id",
                        rating_col: str | None = "rating") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each user's earliest ``round(train_size * n_u)`` rows (ties by item id) go to train.

    Timestamps must be numeric and finite (convert datetimes first); a repeated (user, item)
    pair is an error. Raises ``ValueError`` if no row would go to test.
    """
    check_fraction(train_size=train_size)
    _check_grouped_frame(df, "chronological_split", user_col, user_col, item_col, rating_col,
                         timestamp_col, required=(timestamp_col,))
    groups = pd.factorize(df[user_col])[0]
    rank = _rank_within(groups, [df[timestamp_col].to_numpy(), df[item_col].to_numpy()])
    in_train = _split_by_share("chronological_split", train_size, groups, rank)
    return df[in_train], df[~in_train]


def leave_last_out(df: pd.DataFrame, user_col: str = "user_id", timestamp_col: str = "timestamp",
                   item_col: str = "item_id", min_history: int = 3,
                   rating_col: str | None = "rating", tie_break: str = "item_id",
                   random_state: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """P3: per user by time (ties by item id by default): last row to test, second-to-last to validation.

    Users with fewer than ``min_history`` rows (an int >= 3, default 3: one left for training)
    keep all their rows in train and appear in neither validation nor test. Timestamps must be
    numeric and finite; a repeated (user, item) pair is an error. Raises ``ValueError`` when no
    user has ``min_history`` rows (validation and test would be empty).

    tie_break: the order of a user's events with equal timestamps. ``"item_id"`` (the default,
    and the order of the published figures this kit compares with): by item id, the largest id
    last. ``"random"``: by a seeded hash of (user, item) (``random_state``), a random order that
    does not depend on the rows' order; comparing both shows how much a result owes to the rule.
    The hash is pandas' ``hash_pandas_object`` of the two columns mixed with the seed, so the order
    depends on the id values *and* their dtype (ids as strings order differently from the same ids
    as integers); a test pins it for fixed ids. Only the split follows it; for the sequence
    models to follow it too, give them the order as a column (:func:`event_order`).
    """
    check_choice("tie_break", tie_break, ("item_id", "random"))
    check_non_negative_int(random_state=random_state)
    check_positive_int(min_history=min_history)
    if min_history < 3:
        raise ValueError(f"min_history must be an integer >= 3 (one row each for train, validation "
                         f"and test), got {min_history!r}")
    _check_grouped_frame(df, "leave_last_out", user_col, user_col, item_col, rating_col, timestamp_col,
                         required=(timestamp_col,))
    groups = pd.factorize(df[user_col])[0]
    rank = _event_rank(df, groups, user_col, timestamp_col, item_col, tie_break, random_state)
    sizes = _group_sizes(groups)
    eligible = sizes >= min_history
    if not eligible.any():
        raise ValueError(f"leave_last_out: validation and test would be empty: no user has "
                         f"min_history={min_history} rows (the longest history has {int(sizes.max())})")
    from_end = sizes - 1 - rank
    test = eligible & (from_end == 0)
    valid = eligible & (from_end == 1)
    return df[~(test | valid)], df[valid], df[test]


def event_order(df: pd.DataFrame, user_col: str = "user_id", timestamp_col: str = "timestamp",
                item_col: str = "item_id", tie_break: str = "item_id", random_state: int = 0) -> np.ndarray:
    """(n_rows,) int64: each row's position (0-based) in its user's history, by time with equal
    timestamps ordered by ``tie_break`` exactly as :func:`leave_last_out` orders them (its doc).

    As a column it makes a sequence model read the same order as the split, since the models
    order a user's events by their ``timestamp_col`` (ties by item id):
    ``frame.assign(event_order=event_order(frame, tie_break="random", random_state=42))`` and
    ``SASRecRecommender(timestamp_col="event_order")``. Does not depend on the rows' order; a
    repeated (user, item) pair is an error, as in :func:`leave_last_out`.
    """
    check_choice("tie_break", tie_break, ("item_id", "random"))
    check_non_negative_int(random_state=random_state)
    require_columns(df, user_col, timestamp_col, item_col)
    check_no_nulls(df, user_col, item_col)
    check_finite_column(df, timestamp_col)
    _reject_duplicate_pairs(df, user_col, item_col, "event_order")    # two equal rows would tie by row order
    return _event_rank(df, pd.factorize(df[user_col])[0], user_col, timestamp_col, item_col, tie_break,
                       random_state)


def _event_rank(df: pd.DataFrame, groups: np.ndarray, user_col: str, timestamp_col: str, item_col: str,
                tie_break: str, random_state: int) -> np.ndarray:
    tie_key = (df[item_col].to_numpy() if tie_break == "item_id" else
               seeded_hash(pd.util.hash_pandas_object(df[[user_col, item_col]], index=False).to_numpy(),
                            random_state))
    return _rank_within(groups, [df[timestamp_col].to_numpy(), tie_key])


def cold_start_item_split(df: pd.DataFrame, test_item_fraction: float = 0.2,
                          item_col: str = "item_id", random_state: int = 42, user_col: str = "user_id",
                          rating_col: str | None = "rating",
                          timestamp_col: str | None = "timestamp") -> tuple[pd.DataFrame, pd.DataFrame]:
    """P5: hold out ``round(fraction * n_items)`` random items with all their interactions.

    Only ``item_col`` is needed; when the frame has ``user_col`` it is validated as interactions
    and a repeated (user, item) pair is an error. Raises ``ValueError`` when the fraction rounds
    to no item or to every item.
    """
    check_fraction(test_item_fraction=test_item_fraction)
    check_non_negative_int(random_state=random_state)
    _check_grouped_frame(df, "cold_start_item_split", item_col, user_col, item_col, rating_col,
                         timestamp_col)
    items = np.sort(pd.unique(df[item_col]))
    n_test = int(round(test_item_fraction * len(items)))
    if n_test == 0 or n_test == len(items):
        side = "test" if n_test == 0 else "train"
        raise ValueError(f"cold_start_item_split: {side} would be empty: round(test_item_fraction="
                         f"{test_item_fraction!r} * {len(items)} items) = {n_test}; use more items or "
                         f"a fraction further from 0 and 1")
    cold = np.random.default_rng(random_state).choice(items, size=n_test, replace=False)
    in_test = df[item_col].isin(cold).to_numpy()
    return df[~in_test], df[in_test]


def new_item_split(df: pd.DataFrame, new_item_fraction: float = 0.1, user_col: str = "user_id",
                   item_col: str = "item_id", timestamp_col: str = "timestamp",
                   rating_col: str | None = "rating") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Next item when the item is new: ``(train, context, test, new_items)``.

    The items are ordered by their first event (ties by item id) and the last
    ``round(new_item_fraction * n_items)`` are **new**; the cut is the first event of the first
    new item. ``train``: every row before the cut (so no new item is in it, and a model fitted on
    it has never trained on one). ``test``: for each user, the first row at or after the cut whose
    item is new (ties by item id), kept only if the user has a row before it. ``context``: each
    test user's rows at or after the cut and before that test row (events on older items the user
    had meanwhile: with train, the history to score from). ``new_items``: the new items, sorted.

    Timestamps must be numeric and finite; a repeated (user, item) pair is an error. Raises
    ``ValueError`` when the fraction rounds to no item or to every item, or no user qualifies.
    """
    check_fraction(new_item_fraction=new_item_fraction)
    _check_grouped_frame(df, "new_item_split", user_col, user_col, item_col, rating_col, timestamp_col,
                         required=(timestamp_col,))
    times = df[timestamp_col].to_numpy()
    first = df.groupby(item_col, sort=True)[timestamp_col].min()
    n_new = int(round(new_item_fraction * len(first)))
    if n_new == 0 or n_new == len(first):
        raise ValueError(f"new_item_split: round(new_item_fraction={new_item_fraction!r} * {len(first)} items) "
                         f"= {n_new} leaves no {'new' if n_new == 0 else 'old'} item")
    order = np.lexsort((first.index.to_numpy(), first.to_numpy()))
    new_items = np.sort(first.index.to_numpy()[order[-n_new:]])
    cut = first.to_numpy()[order[-n_new]]
    before = times < cut
    is_new = df[item_col].isin(new_items).to_numpy()
    users = pd.factorize(df[user_col])[0]
    rank = _rank_within(users, [times, df[item_col].to_numpy()])
    # each user's first new-item row: the smallest rank among the user's new-item rows
    first_new = np.full(users.max() + 1, np.iinfo(np.int64).max)
    np.minimum.at(first_new, users[is_new], rank[is_new])
    tested = (first_new >= 1) & (first_new < np.iinfo(np.int64).max)      # a new-item row, not the first row
    test = tested[users] & (rank == first_new[users])
    context = tested[users] & ~before & (rank < first_new[users])
    if not test.any():
        raise ValueError("new_item_split: no user has an event on a new item after an earlier event")
    return df[before], df[context], df[test], new_items

"""Validation and explicit cleaning of interaction frames.

:func:`validate_interactions` checks a frame before any work starts and raises ``ValueError``
naming the column, the count and the first offending rows. Cleaning is never silent: each
step (:func:`drop_duplicate_interactions`, :func:`k_core`, :func:`to_implicit`) is a call the
user makes and returns a new frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reclib.checks import ParameterTypeError, check_in_range, check_positive_int, require_columns

__all__ = ["check_finite_column", "check_no_nulls", "drop_duplicate_interactions", "k_core", "to_implicit",
           "validate_interactions"]

_SHOW = 5


def _fail(column: str, problem: str, rows: pd.DataFrame | pd.Series) -> None:
    shown = rows.head(_SHOW)
    raise ValueError(f"column {column!r}: {len(rows)} {problem}; first offending rows "
                     f"(index: value):\n{shown.to_string()}")


def validate_interactions(df: pd.DataFrame, user_col: str = "user_id", item_col: str = "item_id",
                          rating_col: str | None = "rating", timestamp_col: str | None = "timestamp",
                          rating_range: tuple[float, float] | None = None,
                          required: tuple[str, ...] = ()) -> pd.DataFrame:
    """Check an interaction frame and return it unchanged; raise ``ValueError`` on bad input.

    ``user_col`` and ``item_col`` (and any column named in ``required``) must be present;
    ``rating_col`` and ``timestamp_col`` are checked whenever the frame has them (pass ``None``
    to skip one). Rejected, each with a message naming the column, the count and the first rows:
    a frame that is not a DataFrame or is empty; missing columns; nulls in any checked column;
    a rating or timestamp that is not numeric (strings, datetimes: convert them first) or not
    finite (NaN, ±inf); ratings outside ``rating_range`` (inclusive; ``None`` skips that check);
    duplicate ``(user, item, timestamp)`` rows (``(user, item)`` rows when there is no timestamp).
    """
    if not isinstance(df, pd.DataFrame):
        raise ParameterTypeError(f"interactions must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in dict.fromkeys((user_col, item_col, *required)) if c not in df.columns]
    if missing:
        raise ValueError(f"column {missing[0]!r} is missing (missing: {missing}); "
                         f"the frame has columns {list(df.columns)}")
    optional = [c for c in (rating_col, timestamp_col) if c is not None and c in df.columns]
    columns = list(dict.fromkeys([user_col, item_col, *required, *optional]))
    if df.empty:
        raise ValueError(f"interactions are empty: no rows in columns {columns}")
    check_no_nulls(df, *columns)
    for col in optional:
        check_finite_column(df, col)
    if rating_col in optional and rating_range is not None:
        low, high = rating_range
        bad = (df[rating_col] < low) | (df[rating_col] > high)
        if bad.any():
            _fail(rating_col, f"values outside [{low:g}, {high:g}]", df.loc[bad, rating_col])
    key = [user_col, item_col] + ([timestamp_col] if timestamp_col in optional else [])
    dup = df.duplicated(subset=key, keep=False)
    if dup.any():
        _fail(item_col, f"rows duplicate the key {key} (drop_duplicate_interactions keeps the "
                        f"latest row of each pair)", df.loc[dup, key])
    return df


def check_no_nulls(df: pd.DataFrame, *columns: str) -> None:
    """Each of ``columns`` of ``df`` must hold no null; else ``ValueError`` naming the column and
    the first rows."""
    for col in columns:
        nulls = df[col].isna()
        if nulls.any():
            _fail(col, "null values", df.loc[nulls, col])


def check_finite_column(df: pd.DataFrame, col: str) -> None:
    """``df[col]`` must be numeric (not bool) with no null, NaN or ±inf value (a timestamp or a
    rating: text would sort as text, NaN would sort last); else ``ValueError`` naming the column
    and the first rows."""
    values = df[col]
    check_no_nulls(df, col)
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        numbers = pd.to_numeric(values, errors="coerce")
        shown = df.loc[numbers.isna(), col] if numbers.isna().any() else values
        _fail(col, f"non-numeric values (dtype {values.dtype})", shown)
    infinite = ~np.isfinite(values.to_numpy(np.float64))
    if infinite.any():
        _fail(col, "non-finite values (inf)", df.loc[infinite, col])


def drop_duplicate_interactions(df: pd.DataFrame, user_col: str = "user_id",
                                item_col: str = "item_id",
                                timestamp_col: str | None = "timestamp") -> pd.DataFrame:
    """Keep one row per (user, item): the latest by ``timestamp_col`` (else the last row).

    ``timestamp_col=None`` keeps the last row of each pair in frame order. Raises ``ValueError``
    before any work on a frame that is not a non-empty DataFrame with the named columns, on null
    ids, and on a timestamp that is null, non-numeric or not finite (it would sort wrongly).
    """
    columns = [user_col, item_col] + ([timestamp_col] if timestamp_col is not None else [])
    require_columns(df, *columns)
    if df.empty:
        raise ValueError(f"interactions are empty: no rows in columns {columns}")
    check_no_nulls(df, user_col, item_col)
    if timestamp_col is not None:
        check_finite_column(df, timestamp_col)
    ordered = df if timestamp_col is None else df.sort_values(timestamp_col, kind="stable")
    kept = ordered.drop_duplicates(subset=[user_col, item_col], keep="last")
    return kept.sort_index()


def k_core(df: pd.DataFrame, k_user: int = 5, k_item: int = 5, user_col: str = "user_id",
           item_col: str = "item_id", max_iter: int = 100) -> pd.DataFrame:
    """Drop users with fewer than ``k_user`` and items with fewer than ``k_item`` interactions,
    repeating until both hold (removing items can push a user below the threshold).

    ``k_user``, ``k_item`` and ``max_iter`` are positive integers. The frame is checked with
    :func:`validate_interactions` first (null ids are an error; a ``rating``/``timestamp`` column,
    when present, must be numeric and finite). Raises ``ValueError`` if the k-core is empty
    (no row meets both thresholds) and ``RuntimeError`` if it does not converge in ``max_iter``
    rounds.
    """
    check_positive_int(k_user=k_user, k_item=k_item, max_iter=max_iter)
    validate_interactions(df, user_col, item_col)
    out = df
    for _ in range(max_iter):
        user_counts = out[user_col].map(out[user_col].value_counts())
        item_counts = out[item_col].map(out[item_col].value_counts())
        keep = (user_counts >= k_user) & (item_counts >= k_item)
        if keep.all():
            if out.empty:
                raise ValueError(
                    f"k_core is empty: no rows are left with k_user={k_user}, k_item={k_item} (the "
                    f"input's most active user has {df[user_col].value_counts().max()} rows and most "
                    f"popular item {df[item_col].value_counts().max()}); lower the thresholds")
            return out
        out = out[keep.to_numpy()]
    raise RuntimeError(f"k_core did not converge in max_iter={max_iter} iterations")


def to_implicit(df: pd.DataFrame, threshold: float | None = None, rating_col: str = "rating",
                keep_rating: bool = False) -> pd.DataFrame:
    """Implicit feedback: keep rows with ``rating >= threshold`` (all rows if ``None``).

    The rating column is dropped unless ``keep_rating`` (a model may still use it as a confidence).
    ``threshold`` is a finite number or ``None``; ratings must be numeric and finite. Raises
    ``ValueError`` if the frame is empty or no rating reaches ``threshold``.
    """
    if threshold is not None:
        check_in_range("threshold", threshold)
    if not isinstance(keep_rating, (bool, np.bool_)):
        raise ParameterTypeError(f"keep_rating must be a bool, got {keep_rating!r} "
                                 f"({type(keep_rating).__name__})")
    require_columns(df, rating_col)
    if df.empty:
        raise ValueError(f"interactions are empty: no rows in column {rating_col!r}")
    check_finite_column(df, rating_col)
    out = df if threshold is None else df[df[rating_col] >= threshold]
    if out.empty:
        raise ValueError(f"to_implicit: no row has {rating_col!r} >= threshold={threshold!r} (the "
                         f"largest is {df[rating_col].max()}); the implicit frame would be empty")
    return out if keep_rating else out.drop(columns=rating_col)

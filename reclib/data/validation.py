"""Validation and explicit cleaning of interaction frames.

:func:`validate_interactions` checks a frame before any work starts and raises ``ValueError``
naming the column, the count and the first offending rows. Cleaning is never silent: each
step (:func:`drop_duplicate_interactions`, :func:`k_core`, :func:`to_implicit`) is a call the
user makes and returns a new frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["check_non_negative", "check_positive", "check_positive_int", "drop_duplicate_interactions",
           "k_core", "require_columns", "to_implicit", "validate_interactions"]

_SHOW = 5


def require_columns(df: pd.DataFrame, *columns: str) -> None:
    """Raise ``ValueError`` naming the first of ``columns`` missing from ``df``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"column {missing[0]!r} is missing; the frame has {list(df.columns)}")


def check_positive_int(**values: object) -> None:
    """Raise ``ValueError`` naming the first argument that is not a positive integer."""
    for name, value in values.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_positive(**values: float) -> None:
    """Raise ``ValueError`` naming the first argument that is not > 0."""
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be positive, got {value!r}")


def check_non_negative(**values: float) -> None:
    """Raise ``ValueError`` naming the first argument that is < 0."""
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value!r}")


def _fail(column: str, problem: str, rows: pd.DataFrame | pd.Series) -> None:
    shown = rows.head(_SHOW)
    raise ValueError(f"column {column!r}: {len(rows)} {problem}; first offending rows "
                     f"(index: value):\n{shown.to_string()}")


def validate_interactions(df: pd.DataFrame, user_col: str = "user_id", item_col: str = "item_id",
                          rating_col: str | None = None, timestamp_col: str | None = None,
                          rating_range: tuple[float, float] | None = (1.0, 5.0)) -> pd.DataFrame:
    """Check an interaction frame and return it unchanged; raise ``ValueError`` on bad input.

    Rejected: a frame that is not a DataFrame or is empty; missing columns; nulls in any checked
    column; a non-numeric rating or timestamp; ratings outside ``rating_range`` (inclusive;
    ``None`` skips the range check); duplicate ``(user, item, timestamp)`` rows (or
    ``(user, item)`` rows when there is no timestamp column). Every message names the column.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"interactions must be a pandas DataFrame, got {type(df).__name__}")
    columns = [c for c in (user_col, item_col, rating_col, timestamp_col) if c is not None]
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"column {missing[0]!r} is missing (missing: {missing}); "
                         f"the frame has columns {list(df.columns)}")
    if df.empty:
        raise ValueError(f"interactions are empty: no rows in columns {columns}")
    for col in columns:
        nulls = df[col].isna()
        if nulls.any():
            _fail(col, "null values", df.loc[nulls, col])
    for col in (rating_col, timestamp_col):
        if col is not None and not pd.api.types.is_numeric_dtype(df[col]):
            values = pd.to_numeric(df[col], errors="coerce")
            _fail(col, f"non-numeric values (dtype {df[col].dtype})", df.loc[values.isna(), col])
    if rating_col is not None and rating_range is not None:
        low, high = rating_range
        bad = (df[rating_col] < low) | (df[rating_col] > high)
        if bad.any():
            _fail(rating_col, f"values outside [{low:g}, {high:g}]", df.loc[bad, rating_col])
    key = [user_col, item_col] + ([timestamp_col] if timestamp_col is not None else [])
    dup = df.duplicated(subset=key, keep=False)
    if dup.any():
        _fail(item_col, f"rows duplicate the key {key}", df.loc[dup, key])
    return df


def drop_duplicate_interactions(df: pd.DataFrame, user_col: str = "user_id",
                                item_col: str = "item_id",
                                timestamp_col: str | None = "timestamp") -> pd.DataFrame:
    """Keep one row per (user, item): the latest by ``timestamp_col`` (else the last row)."""
    ordered = df if timestamp_col is None else df.sort_values(timestamp_col, kind="stable")
    kept = ordered.drop_duplicates(subset=[user_col, item_col], keep="last")
    return kept.sort_index()


def k_core(df: pd.DataFrame, k_user: int = 5, k_item: int = 5, user_col: str = "user_id",
           item_col: str = "item_id", max_iter: int = 100) -> pd.DataFrame:
    """Drop users with fewer than ``k_user`` and items with fewer than ``k_item`` interactions,
    repeating until both hold (removing items can push a user below the threshold)."""
    check_positive_int(k_user=k_user, k_item=k_item)
    out = df
    for _ in range(max_iter):
        user_counts = out[user_col].map(out[user_col].value_counts())
        item_counts = out[item_col].map(out[item_col].value_counts())
        keep = (user_counts >= k_user) & (item_counts >= k_item)
        if keep.all():
            return out
        out = out[keep.to_numpy()]
    raise RuntimeError(f"k_core did not converge in {max_iter} iterations")


def to_implicit(df: pd.DataFrame, threshold: float | None = None, rating_col: str = "rating",
                keep_rating: bool = False) -> pd.DataFrame:
    """Implicit feedback: keep rows with ``rating >= threshold`` (all rows if ``None``).

    The rating column is dropped unless ``keep_rating`` (a model may still use it as a confidence).
    """
    require_columns(df, rating_col)
    out = df if threshold is None else df[df[rating_col] >= threshold]
    return out if keep_rating else out.drop(columns=rating_col)


"""Protocol P4, click-through prediction on MovieLens-100K.

Every rating becomes an example with label ``rating >= 4`` ("liked") and the side features of its
user and item: ``age_bucket`` (under 18, 18-24, 25-34, 35-44, 45-49, 50-55, 56+, as in
MovieLens-1M), ``gender``, ``occupation``, ``zip_prefix`` (first digit of the zip code, "other"
for non-US codes), ``genres`` (list), ``year`` (release year, the median where unknown) and
``title``. :func:`click_split` is the P4 random 80/10/10 split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reclib.checks import ParameterTypeError, check_in_range, check_non_negative_int, require_columns
from reclib.data.movielens import MovieLens
from reclib.data.validation import _fail, validate_interactions

__all__ = ["AGE_BUCKETS", "build_click_dataset", "click_split"]

AGE_BUCKETS = (0, 18, 25, 35, 45, 50, 56, 200)
_AGE_LABELS = ("<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")


def _check_movielens(data: MovieLens) -> None:
    """The frames :func:`build_click_dataset` reads: valid ratings, side data for every id."""
    if not isinstance(data, MovieLens):
        raise ParameterTypeError(f"data must be a MovieLens (from load_movielens), got {type(data).__name__}")
    validate_interactions(data.ratings, required=("rating",))
    require_columns(data.users, "user_id", "age", "gender", "occupation", "zip_code")
    require_columns(data.items, "item_id", "genres", "year", "title")
    ages = data.users["age"]
    bad_age = ~pd.to_numeric(ages, errors="coerce").between(AGE_BUCKETS[0], AGE_BUCKETS[-1], inclusive="left")
    if bad_age.any():
        _fail("age", f"ages missing or outside [{AGE_BUCKETS[0]}, {AGE_BUCKETS[-1]}) in data.users",
              data.users.loc[bad_age, ["user_id", "age"]])
    for col, side in (("user_id", data.users), ("item_id", data.items)):
        unknown = ~data.ratings[col].isin(side[col])
        if unknown.any():
            _fail(col, f"ratings whose {col} has no row in data.{'users' if col == 'user_id' else 'items'} "
                  f"(they would be dropped by the merge)", data.ratings.loc[unknown, ["user_id", "item_id"]])
        dup = side[col].duplicated(keep=False)
        if dup.any():
            _fail(col, f"repeated ids in data.{'users' if col == 'user_id' else 'items'} (the merge would "
                  f"repeat ratings)", side.loc[dup, col])


def build_click_dataset(data: MovieLens, threshold: float = 4.0) -> pd.DataFrame:
    """One row per rating with ``label`` = rating >= ``threshold`` and user/item features.

    ``threshold`` is a finite number; ``data`` must hold valid ratings and a ``users``/``items``
    row for every rated id (ages in [0, 200)), else ``ValueError`` before any work.
    """
    check_in_range("threshold", threshold)
    _check_movielens(data)
    users = data.users.assign(
        age_bucket=pd.cut(data.users["age"], AGE_BUCKETS, right=False, labels=_AGE_LABELS).astype(str),
        zip_prefix=np.where(data.users["zip_code"].str[0].str.isdigit(), data.users["zip_code"].str[0], "other"))
    items = data.items.assign(year=data.items["year"].fillna(int(data.items["year"].median())).astype(np.int64))
    frame = (data.ratings.merge(users[["user_id", "age_bucket", "gender", "occupation", "zip_prefix"]], on="user_id")
             .merge(items[["item_id", "genres", "year", "title"]], on="item_id"))
    frame["label"] = (frame["rating"] >= threshold).astype(np.int64)
    return frame.drop(columns=["rating"]).sort_values(["user_id", "item_id"], ignore_index=True)


def click_split(frame: pd.DataFrame, random_state: int = 42) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """P4: a random 80/10/10 split into (train, validation, test).

    ``frame`` is a click dataset (:func:`build_click_dataset`): ``user_id``, ``item_id`` and a 0/1
    ``label`` without nulls, checked with ``validate_interactions`` (a ``timestamp``, when present,
    numeric and finite; no duplicate (user, item, timestamp) rows). ``random_state`` is a non-negative int.
    Raises ``ValueError`` when the frame is too small for any of the three parts to get a row.
    """
    check_non_negative_int(random_state=random_state)
    validate_interactions(frame, rating_col=None, required=("label",))
    not_binary = ~frame["label"].isin((0, 1))
    if not_binary.any():
        _fail("label", "values other than 0 and 1", frame.loc[not_binary, "label"])
    order = np.random.default_rng(random_state).permutation(len(frame))
    n_train, n_valid = int(round(0.8 * len(frame))), int(round(0.1 * len(frame)))
    sizes = {"train": n_train, "validation": n_valid, "test": len(frame) - n_train - n_valid}
    empty = [name for name, size in sizes.items() if size == 0]
    if empty:
        raise ValueError(f"click_split: {' and '.join(empty)} would be empty: an 80/10/10 split of "
                         f"{len(frame)} rows gives {sizes}; use more rows")
    parts = np.split(order, [n_train, n_train + n_valid])
    return tuple(frame.iloc[np.sort(p)] for p in parts)

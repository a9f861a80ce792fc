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

from reclib.data.movielens import MovieLens

__all__ = ["AGE_BUCKETS", "build_click_dataset", "click_split"]

AGE_BUCKETS = (0, 18, 25, 35, 45, 50, 56, 200)
_AGE_LABELS = ("<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+")


def build_click_dataset(data: MovieLens, threshold: float = 4.0) -> pd.DataFrame:
    """One row per rating with ``label`` = rating >= ``threshold`` and user/item features."""
    users = data.users.assign(
        age_bucket=pd.cut(data.users["age"], AGE_BUCKETS, right=False, labels=_AGE_LABELS).astype(str),
        zip_prefix=np.where(data.users["zip_code"].str[0].str.isdigit(), data.users["zip_code"].str[0], "other"))
    items = data.items.assign(year=data.items["year"].fillna(int(data.items["year"].median())).astype(np.int64))
    frame = (data.ratings.merge(users[["user_id", "age_bucket", "gender", "occupation", "zip_prefix"]], on="user_id")
             .merge(items[["item_id", "genres", "year", "title"]], on="item_id"))
    frame["label"] = (frame["rating"] >= threshold).astype(np.int64)
    return frame.drop(columns=["rating"]).sort_values(["user_id", "item_id"], ignore_index=True)


def click_split(frame: pd.DataFrame, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """P4: a random 80/10/10 split into (train, validation, test)."""
    order = np.random.default_rng(seed).permutation(len(frame))
    n_train, n_valid = int(round(0.8 * len(frame))), int(round(0.1 * len(frame)))
    parts = np.split(order, [n_train, n_train + n_valid])
    return tuple(frame.iloc[np.sort(p)] for p in parts)

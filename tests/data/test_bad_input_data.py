"""Bad input to the data stage (splitters, k-core and cleaning, negative sampling, id encoding,
click-through data) is rejected before any work starts, with an error naming the culprit.

Each case is ``(call, exception type, pattern)``: ``call`` gets a valid frame (``tiny_ratings``:
4 users x 3 rows, 5 items, ratings and timestamps), breaks one thing and calls the function;
the test asserts the exception type and that the message names the parameter or column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reclib.checks import ParameterTypeError
from reclib.data import (IdEncoder, MovieLens, NegativeSampler, build_click_dataset, chronological_split,
                         click_split, cold_start_item_split, drop_duplicate_interactions, k_core,
                         leave_last_out, random_split, sample_negatives, stratified_split, to_implicit)

NAN, INF = float("nan"), float("inf")


def _at(df: pd.DataFrame, col: str, row: int, value: object) -> pd.DataFrame:
    """A copy of ``df`` with ``df.loc[row, col] = value`` (the column widened to float for a
    number, else to object)."""
    out = df.copy()
    out[col] = out[col].astype(float if isinstance(value, (int, float)) else object)
    out.loc[row, col] = value
    return out


def _nan_at(df: pd.DataFrame, col: str, row: int = 3) -> pd.DataFrame:
    return df.assign(**{col: df[col].astype(float).where(df.index != row)})


def _repeat_pair(df: pd.DataFrame) -> pd.DataFrame:
    """Row 0's (user, item) pair again, later in time: a leak across train and test."""
    return pd.concat([df, df.iloc[[0]].assign(timestamp=999)], ignore_index=True)


def _exact_duplicate(df: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([df, df.iloc[[0]]], ignore_index=True)


def _one_row_per_user(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop_duplicates("user_id")


NULL_IDS = "column '{}': 1 null values"
DUP_PAIR = r"\('user_id', 'item_id'\).*drop_duplicate_interactions"
NON_NUMERIC = "column '{}': .*non-numeric"


def _check(call, frame, exc, match):
    with pytest.raises(exc, match=match):
        call(frame)


# ----------------------------------------------------------------------------------------------
# random_split (P2)

RANDOM_SPLIT = [
    *[pytest.param(lambda df, v=v: random_split(df, test_size=v), ValueError, "test_size", id=f"test_size={v}")
      for v in (NAN, INF, -INF, 0, 0.0, 1, 1.0, -0.2, 1.5)],
    *[pytest.param(lambda df, v=v: random_split(df, test_size=v), TypeError, "test_size",
                   id=f"test_size={v!r}") for v in ("0.2", None, True)],
    pytest.param(lambda df: random_split(df, random_state=-1), ValueError, "random_state", id="random_state=-1"),
    *[pytest.param(lambda df, v=v: random_split(df, random_state=v), TypeError, "random_state", id=f"random_state={v!r}")
      for v in (1.5, "42", None, True, NAN)],
    pytest.param(lambda df: random_split(df.to_numpy()), TypeError, "DataFrame", id="ndarray"),
    pytest.param(lambda df: random_split(None), TypeError, "DataFrame", id="None"),
    pytest.param(lambda df: random_split(df.iloc[:0]), ValueError, "empty", id="empty-interactions"),
    pytest.param(lambda df: random_split(df[["rating"]].iloc[:0]), ValueError, "empty", id="empty-frame"),
    pytest.param(lambda df: random_split(_nan_at(df, "user_id")), ValueError, NULL_IDS.format("user_id"),
                 id="nan-user"),
    pytest.param(lambda df: random_split(_at(df, "item_id", 2, None)), ValueError, NULL_IDS.format("item_id"),
                 id="none-item"),
    pytest.param(lambda df: random_split(_nan_at(df, "rating")), ValueError, "column 'rating'", id="nan-rating"),
    pytest.param(lambda df: random_split(_at(df, "rating", 1, INF)), ValueError, "column 'rating'.*non-finite",
                 id="inf-rating"),
    pytest.param(lambda df: random_split(df.assign(timestamp=df["timestamp"].astype(str))), ValueError,
                 NON_NUMERIC.format("timestamp"), id="str-timestamp"),
    pytest.param(lambda df: random_split(_nan_at(df, "timestamp")), ValueError, "column 'timestamp'",
                 id="nan-timestamp"),
    pytest.param(lambda df: random_split(_exact_duplicate(df)), ValueError, "'item_id'.*duplicate",
                 id="duplicate-row"),
    pytest.param(lambda df: random_split(df, test_size=0.01), ValueError, "test would be empty.*test_size",
                 id="test-empty"),
    pytest.param(lambda df: random_split(df, test_size=0.99), ValueError, "train would be empty.*test_size",
                 id="train-empty"),
]


@pytest.mark.parametrize("call, exc, match", RANDOM_SPLIT)
def test_random_split_rejects(tiny_ratings, call, exc, match):
    _check(call, tiny_ratings, exc, match)


# ----------------------------------------------------------------------------------------------
# stratified_split (P1)

STRATIFIED_SPLIT = [
    *[pytest.param(lambda df, v=v: stratified_split(df, train_size=v), ValueError, "train_size",
                   id=f"train_size={v}") for v in (NAN, INF, -INF, 0, 1, -0.5, 2)],
    *[pytest.param(lambda df, v=v: stratified_split(df, train_size=v), TypeError, "train_size",
                   id=f"train_size={v!r}") for v in ("0.75", None, True)],
    pytest.param(lambda df: stratified_split(df, random_state=-3), ValueError, "random_state", id="random_state=-3"),
    *[pytest.param(lambda df, v=v: stratified_split(df, random_state=v), TypeError, "random_state", id=f"random_state={v!r}")
      for v in (42.0, "42", None, False)],
    pytest.param(lambda df: stratified_split(df.to_dict()), TypeError, "DataFrame", id="dict"),
    pytest.param(lambda df: stratified_split(df.iloc[:0]), ValueError, "empty", id="empty"),
    pytest.param(lambda df: stratified_split(df[["user_id"]].iloc[:0]), ValueError, "empty",
                 id="empty-user-only"),
    pytest.param(lambda df: stratified_split(df, user_col="uid"), ValueError, "'uid'", id="missing-user-col"),
    pytest.param(lambda df: stratified_split(_nan_at(df, "user_id")), ValueError, NULL_IDS.format("user_id"),
                 id="nan-user"),
    pytest.param(lambda df: stratified_split(_at(df, "user_id", 5, None)), ValueError,
                 NULL_IDS.format("user_id"), id="none-user"),
    pytest.param(lambda df: stratified_split(_nan_at(df[["user_id"]], "user_id")), ValueError,
                 NULL_IDS.format("user_id"), id="nan-user-user-only-frame"),
    pytest.param(lambda df: stratified_split(_nan_at(df, "item_id")), ValueError, NULL_IDS.format("item_id"),
                 id="nan-item"),
    pytest.param(lambda df: stratified_split(_repeat_pair(df)), ValueError, DUP_PAIR, id="repeated-pair"),
    pytest.param(lambda df: stratified_split(_exact_duplicate(df)), ValueError, DUP_PAIR, id="duplicate-row"),
    pytest.param(lambda df: stratified_split(_repeat_pair(df).drop(columns="timestamp")), ValueError, DUP_PAIR,
                 id="repeated-pair-no-timestamp"),
    pytest.param(lambda df: stratified_split(_at(df, "rating", 0, -INF)), ValueError, "column 'rating'",
                 id="-inf-rating"),
    pytest.param(lambda df: stratified_split(df.assign(timestamp=df["timestamp"].astype(str))), ValueError,
                 NON_NUMERIC.format("timestamp"), id="str-timestamp"),
    pytest.param(lambda df: stratified_split(_one_row_per_user(df)), ValueError,
                 "test would be empty.*train_size", id="one-row-per-user"),
    pytest.param(lambda df: stratified_split(df, train_size=0.9), ValueError, "test would be empty.*train_size",
                 id="share-rounds-to-all"),
]


@pytest.mark.parametrize("call, exc, match", STRATIFIED_SPLIT)
def test_stratified_split_rejects(tiny_ratings, call, exc, match):
    _check(call, tiny_ratings, exc, match)


# ----------------------------------------------------------------------------------------------
# chronological_split

CHRONOLOGICAL_SPLIT = [
    *[pytest.param(lambda df, v=v: chronological_split(df, train_size=v), ValueError, "train_size",
                   id=f"train_size={v}") for v in (NAN, INF, 0, 1, 1.2)],
    pytest.param(lambda df: chronological_split(df, train_size="0.8"), TypeError, "train_size",
                 id="train_size='0.8'"),
    pytest.param(lambda df: chronological_split(df.drop(columns="timestamp")), ValueError, "'timestamp'",
                 id="missing-timestamp"),
    pytest.param(lambda df: chronological_split(df, timestamp_col="time"), ValueError, "'time'",
                 id="timestamp_col-typo"),
    pytest.param(lambda df: chronological_split(df.assign(timestamp=df["timestamp"].astype(str))), ValueError,
                 NON_NUMERIC.format("timestamp"), id="str-timestamp"),
    pytest.param(lambda df: chronological_split(df.assign(timestamp=pd.to_datetime(df["timestamp"], unit="s"))),
                 ValueError, NON_NUMERIC.format("timestamp"), id="datetime-timestamp"),
    pytest.param(lambda df: chronological_split(_nan_at(df, "timestamp")), ValueError,
                 NULL_IDS.format("timestamp"), id="nan-timestamp"),
    pytest.param(lambda df: chronological_split(_at(df, "timestamp", 4, INF)), ValueError,
                 "column 'timestamp'.*non-finite", id="inf-timestamp"),
    pytest.param(lambda df: chronological_split(_at(df, "timestamp", 4, -INF)), ValueError,
                 "column 'timestamp'.*non-finite", id="-inf-timestamp"),
    pytest.param(lambda df: chronological_split(df.assign(timestamp=df["timestamp"] > 104)), ValueError,
                 NON_NUMERIC.format("timestamp"), id="bool-timestamp"),
    pytest.param(lambda df: chronological_split(_nan_at(df, "user_id")), ValueError, NULL_IDS.format("user_id"),
                 id="nan-user"),
    pytest.param(lambda df: chronological_split(_repeat_pair(df)), ValueError, DUP_PAIR, id="repeated-pair"),
    pytest.param(lambda df: chronological_split([1, 2]), ValueError, "DataFrame", id="list"),
    pytest.param(lambda df: chronological_split(df.iloc[:0]), ValueError, "empty", id="empty"),
    pytest.param(lambda df: chronological_split(_one_row_per_user(df)), ValueError,
                 "test would be empty.*train_size", id="one-row-per-user"),
]


@pytest.mark.parametrize("call, exc, match", CHRONOLOGICAL_SPLIT)
def test_chronological_split_rejects(tiny_ratings, call, exc, match):
    _check(call, tiny_ratings, exc, match)


# ----------------------------------------------------------------------------------------------
# leave_last_out (P3)

LEAVE_LAST_OUT = [
    *[pytest.param(lambda df, v=v: leave_last_out(df, min_history=v), ValueError, "min_history",
                   id=f"min_history={v}") for v in (2, 1, 0, -3)],
    *[pytest.param(lambda df, v=v: leave_last_out(df, min_history=v), TypeError, "min_history",
                   id=f"min_history={v!r}") for v in (3.0, "3", None, True, NAN, INF)],
    pytest.param(lambda df: leave_last_out(df.drop(columns="timestamp")), ValueError, "'timestamp'",
                 id="missing-timestamp"),
    pytest.param(lambda df: leave_last_out(df.drop(columns="item_id")), ValueError, "'item_id'",
                 id="missing-item"),
    pytest.param(lambda df: leave_last_out(df.assign(timestamp=df["timestamp"].astype(str))), ValueError,
                 NON_NUMERIC.format("timestamp"), id="str-timestamp"),
    pytest.param(lambda df: leave_last_out(_nan_at(df, "timestamp")), ValueError,
                 NULL_IDS.format("timestamp"), id="nan-timestamp"),
    pytest.param(lambda df: leave_last_out(_at(df, "timestamp", 0, INF)), ValueError,
                 "column 'timestamp'.*non-finite", id="inf-timestamp"),
    pytest.param(lambda df: leave_last_out(_nan_at(df, "user_id")), ValueError, NULL_IDS.format("user_id"),
                 id="nan-user"),
    pytest.param(lambda df: leave_last_out(_at(df, "item_id", 7, None)), ValueError, NULL_IDS.format("item_id"),
                 id="none-item"),
    pytest.param(lambda df: leave_last_out(_repeat_pair(df)), ValueError, DUP_PAIR, id="repeated-pair"),
    pytest.param(lambda df: leave_last_out(_exact_duplicate(df)), ValueError, DUP_PAIR, id="duplicate-row"),
    pytest.param(lambda df: leave_last_out(df.values), ValueError, "DataFrame", id="ndarray"),
    pytest.param(lambda df: leave_last_out(df.iloc[:0]), ValueError, "empty", id="empty"),
    pytest.param(lambda df: leave_last_out(df.iloc[[0, 1, 3, 4]]), ValueError,
                 "validation and test would be empty.*min_history=3", id="histories-too-short"),
    pytest.param(lambda df: leave_last_out(df, min_history=4), ValueError,
                 "validation and test would be empty.*min_history=4", id="min_history-above-longest"),
]


@pytest.mark.parametrize("call, exc, match", LEAVE_LAST_OUT)
def test_leave_last_out_rejects(tiny_ratings, call, exc, match):
    _check(call, tiny_ratings, exc, match)


# ----------------------------------------------------------------------------------------------
# cold_start_item_split (P5)

COLD_START_ITEM_SPLIT = [
    *[pytest.param(lambda df, v=v: cold_start_item_split(df, test_item_fraction=v), ValueError,
                   "test_item_fraction", id=f"fraction={v}") for v in (NAN, INF, -INF, 0, 1, -0.2, 5)],
    *[pytest.param(lambda df, v=v: cold_start_item_split(df, test_item_fraction=v), TypeError,
                   "test_item_fraction", id=f"fraction={v!r}") for v in ("0.2", None, True)],
    pytest.param(lambda df: cold_start_item_split(df, random_state=-1), ValueError, "random_state", id="random_state=-1"),
    pytest.param(lambda df: cold_start_item_split(df, random_state=0.5), TypeError, "random_state", id="random_state=0.5"),
    pytest.param(lambda df: cold_start_item_split(df, item_col="movie"), ValueError, "'movie'",
                 id="missing-item-col"),
    pytest.param(lambda df: cold_start_item_split(_nan_at(df, "item_id")), ValueError,
                 NULL_IDS.format("item_id"), id="nan-item"),
    pytest.param(lambda df: cold_start_item_split(_nan_at(df[["item_id"]], "item_id")), ValueError,
                 NULL_IDS.format("item_id"), id="nan-item-item-only-frame"),
    pytest.param(lambda df: cold_start_item_split(_nan_at(df, "user_id")), ValueError,
                 NULL_IDS.format("user_id"), id="nan-user"),
    pytest.param(lambda df: cold_start_item_split(_repeat_pair(df)), ValueError, DUP_PAIR, id="repeated-pair"),
    pytest.param(lambda df: cold_start_item_split(_nan_at(df, "rating")), ValueError, "column 'rating'",
                 id="nan-rating"),
    pytest.param(lambda df: cold_start_item_split(df.assign(timestamp=df["timestamp"].astype(str))),
                 ValueError, NON_NUMERIC.format("timestamp"), id="str-timestamp"),
    pytest.param(lambda df: cold_start_item_split(df.to_numpy()), ValueError, "DataFrame", id="ndarray"),
    pytest.param(lambda df: cold_start_item_split(df.iloc[:0]), ValueError, "empty", id="empty"),
    pytest.param(lambda df: cold_start_item_split(df, test_item_fraction=0.05), ValueError,
                 "test would be empty.*test_item_fraction", id="no-item-held-out"),
    pytest.param(lambda df: cold_start_item_split(df, test_item_fraction=0.95), ValueError,
                 "train would be empty.*test_item_fraction", id="every-item-held-out"),
]


@pytest.mark.parametrize("call, exc, match", COLD_START_ITEM_SPLIT)
def test_cold_start_item_split_rejects(tiny_ratings, call, exc, match):
    _check(call, tiny_ratings, exc, match)


# ----------------------------------------------------------------------------------------------
# click_split (P4) and build_click_dataset


def _clicks(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns="rating").assign(label=(df["rating"] >= 4).astype(np.int64))


CLICK_SPLIT = [
    pytest.param(lambda df: click_split(_clicks(df), random_state=-1), ValueError, "random_state", id="random_state=-1"),
    *[pytest.param(lambda df, v=v: click_split(_clicks(df), random_state=v), TypeError, "random_state", id=f"random_state={v!r}")
      for v in (1.5, "42", None, NAN)],
    pytest.param(lambda df: click_split(_clicks(df).to_numpy()), ValueError, "DataFrame", id="ndarray"),
    pytest.param(lambda df: click_split(_clicks(df).iloc[:0]), ValueError, "empty", id="empty"),
    pytest.param(lambda df: click_split(df), ValueError, "'label'", id="missing-label"),
    pytest.param(lambda df: click_split(_nan_at(_clicks(df), "label")), ValueError, NULL_IDS.format("label"),
                 id="nan-label"),
    pytest.param(lambda df: click_split(_at(_clicks(df), "label", 2, 2)), ValueError, "column 'label'.*0 and 1",
                 id="label=2"),
    pytest.param(lambda df: click_split(_at(_clicks(df), "label", 2, -1)), ValueError, "column 'label'.*0 and 1",
                 id="label=-1"),
    pytest.param(lambda df: click_split(_nan_at(_clicks(df), "user_id")), ValueError,
                 NULL_IDS.format("user_id"), id="nan-user"),
    pytest.param(lambda df: click_split(_at(_clicks(df), "item_id", 0, None)), ValueError,
                 NULL_IDS.format("item_id"), id="none-item"),
    pytest.param(lambda df: click_split(_clicks(df).assign(timestamp=df["timestamp"].astype(str))), ValueError,
                 NON_NUMERIC.format("timestamp"), id="str-timestamp"),
    pytest.param(lambda df: click_split(_exact_duplicate(_clicks(df))), ValueError, "'item_id'.*duplicate",
                 id="duplicate-row"),
    pytest.param(lambda df: click_split(_clicks(df).iloc[:5]), ValueError, "validation would be empty",
                 id="5-rows"),
    pytest.param(lambda df: click_split(_clicks(df).iloc[:7]), ValueError, "test would be empty", id="7-rows"),
]


@pytest.mark.parametrize("call, exc, match", CLICK_SPLIT)
def test_click_split_rejects(tiny_ratings, call, exc, match):
    _check(call, tiny_ratings, exc, match)


@pytest.fixture()
def tiny_movielens(tiny_ratings) -> MovieLens:
    users = pd.DataFrame({"user_id": [1, 2, 3, 4], "age": [17, 30, 45, 60], "gender": ["M", "F", "F", "M"],
                          "occupation": ["student", "writer", "doctor", "retired"],
                          "zip_code": ["12345", "55555", "T8H1N", "90210"]})
    items = pd.DataFrame({"item_id": [10, 11, 12, 13, 14], "title": list("ABCDE"),
                          "year": pd.array([1990, None, 1995, 2000, 1980], dtype="Int64"),
                          "genres": [["Drama"], ["Comedy"], ["Action", "Drama"], ["unknown"], ["War"]]})
    return MovieLens(tiny_ratings.astype({"rating": float}), users, items, "test")


def _replace(data: MovieLens, **frames: pd.DataFrame) -> MovieLens:
    return MovieLens(**{"ratings": data.ratings, "users": data.users, "items": data.items,
                        "source": data.source, **frames})


BUILD_CLICK_DATASET = [
    *[pytest.param(lambda ml, v=v: build_click_dataset(ml, threshold=v), ValueError, "threshold",
                   id=f"threshold={v}") for v in (NAN, INF, -INF)],
    *[pytest.param(lambda ml, v=v: build_click_dataset(ml, threshold=v), TypeError, "threshold",
                   id=f"threshold={v!r}") for v in ("4", None, True)],
    pytest.param(lambda ml: build_click_dataset(ml.ratings), TypeError, "MovieLens", id="frame-not-movielens"),
    pytest.param(lambda ml: build_click_dataset(_replace(ml, ratings=_nan_at(ml.ratings, "rating"))),
                 ValueError, "column 'rating'", id="nan-rating"),
    pytest.param(lambda ml: build_click_dataset(_replace(ml, ratings=ml.ratings.drop(columns="rating"))),
                 ValueError, "'rating'", id="missing-rating"),
    pytest.param(lambda ml: build_click_dataset(_replace(ml, ratings=_nan_at(ml.ratings, "user_id"))),
                 ValueError, NULL_IDS.format("user_id"), id="nan-user"),
    pytest.param(lambda ml: build_click_dataset(_replace(ml, users=ml.users.iloc[1:])), ValueError,
                 "column 'user_id'.*no row in data.users", id="rating-of-unknown-user"),
    pytest.param(lambda ml: build_click_dataset(_replace(ml, items=ml.items.iloc[:-1])), ValueError,
                 "column 'item_id'.*no row in data.items", id="rating-of-unknown-item"),
    pytest.param(lambda ml: build_click_dataset(_replace(ml, items=pd.concat([ml.items, ml.items.iloc[[0]]]))),
                 ValueError, "column 'item_id'.*repeated ids", id="repeated-item-row"),
    pytest.param(lambda ml: build_click_dataset(_replace(ml, users=_nan_at(ml.users, "age", 0))), ValueError,
                 "column 'age'", id="nan-age"),
    pytest.param(lambda ml: build_click_dataset(_replace(ml, users=_at(ml.users, "age", 1, -5))), ValueError,
                 "column 'age'", id="negative-age"),
    pytest.param(lambda ml: build_click_dataset(_replace(ml, users=ml.users.drop(columns="zip_code"))),
                 ValueError, "'zip_code'", id="missing-zip_code"),
]


@pytest.mark.parametrize("call, exc, match", BUILD_CLICK_DATASET)
def test_build_click_dataset_rejects(tiny_movielens, call, exc, match):
    _check(call, tiny_movielens, exc, match)


def test_build_click_dataset_tiny_is_unchanged(tiny_movielens):
    clicks = build_click_dataset(tiny_movielens)
    assert len(clicks) == 12 and clicks["label"].sum() == 7
    assert set(clicks["age_bucket"]) == {"<18", "25-34", "45-49", "56+"}


# ----------------------------------------------------------------------------------------------
# k_core, drop_duplicate_interactions, to_implicit

K_CORE = [
    *[pytest.param(lambda df, v=v: k_core(df, k_user=v), ValueError, "k_user", id=f"k_user={v}")
      for v in (0, -1)],
    *[pytest.param(lambda df, v=v: k_core(df, k_user=v), TypeError, "k_user", id=f"k_user={v!r}")
      for v in (1.5, 2.0, "2", None, True, NAN, INF)],
    pytest.param(lambda df: k_core(df, k_item=0), ValueError, "k_item", id="k_item=0"),
    pytest.param(lambda df: k_core(df, k_item=np.float64(2)), TypeError, "k_item", id="k_item=float64"),
    pytest.param(lambda df: k_core(df, max_iter=0), ValueError, "max_iter", id="max_iter=0"),
    pytest.param(lambda df: k_core(df, max_iter=10.0), TypeError, "max_iter", id="max_iter=10.0"),
    pytest.param(lambda df: k_core(df, max_iter=None), TypeError, "max_iter", id="max_iter=None"),
    pytest.param(lambda df: k_core(_nan_at(df, "user_id")), ValueError, NULL_IDS.format("user_id"),
                 id="nan-user"),
    pytest.param(lambda df: k_core(_at(df, "item_id", 4, None)), ValueError, NULL_IDS.format("item_id"),
                 id="none-item"),
    pytest.param(lambda df: k_core(df, item_col="movie"), ValueError, "'movie'", id="missing-item-col"),
    pytest.param(lambda df: k_core(df.to_numpy()), ValueError, "DataFrame", id="ndarray"),
    pytest.param(lambda df: k_core(df.iloc[:0]), ValueError, "empty", id="empty"),
    pytest.param(lambda df: k_core(_exact_duplicate(df), 1, 1), ValueError, "'item_id'.*duplicate",
                 id="duplicate-row"),
    pytest.param(lambda df: k_core(df, k_user=4, k_item=1), ValueError, "k_core is empty.*k_user=4",
                 id="thresholds-empty-the-core"),
]


@pytest.mark.parametrize("call, exc, match", K_CORE)
def test_k_core_rejects(tiny_ratings, call, exc, match):
    _check(call, tiny_ratings, exc, match)


def test_k_core_not_converging_names_max_iter(synthetic_interactions):
    with pytest.raises(RuntimeError, match="max_iter=1"):
        k_core(synthetic_interactions, k_user=20, k_item=10, max_iter=1)


DROP_DUPLICATES = [
    pytest.param(lambda df: drop_duplicate_interactions(df.drop(columns="timestamp")), ValueError,
                 "'timestamp'", id="missing-timestamp"),
    pytest.param(lambda df: drop_duplicate_interactions(df, user_col="uid"), ValueError, "'uid'",
                 id="missing-user-col"),
    pytest.param(lambda df: drop_duplicate_interactions(df.assign(timestamp=df["timestamp"].astype(str))),
                 ValueError, NON_NUMERIC.format("timestamp"), id="str-timestamp"),
    pytest.param(lambda df: drop_duplicate_interactions(_nan_at(df, "timestamp")), ValueError,
                 NULL_IDS.format("timestamp"), id="nan-timestamp"),
    pytest.param(lambda df: drop_duplicate_interactions(_at(df, "timestamp", 2, INF)), ValueError,
                 "column 'timestamp'.*non-finite", id="inf-timestamp"),
    pytest.param(lambda df: drop_duplicate_interactions(_nan_at(df, "user_id")), ValueError,
                 NULL_IDS.format("user_id"), id="nan-user"),
    pytest.param(lambda df: drop_duplicate_interactions(_at(df, "item_id", 1, None), timestamp_col=None),
                 ValueError, NULL_IDS.format("item_id"), id="none-item-no-timestamp"),
    pytest.param(lambda df: drop_duplicate_interactions([(1, 2, 3)]), TypeError, "DataFrame", id="list"),
    pytest.param(lambda df: drop_duplicate_interactions(df.iloc[:0]), ValueError, "empty", id="empty"),
]


@pytest.mark.parametrize("call, exc, match", DROP_DUPLICATES)
def test_drop_duplicate_interactions_rejects(tiny_ratings, call, exc, match):
    _check(call, tiny_ratings, exc, match)


TO_IMPLICIT = [
    *[pytest.param(lambda df, v=v: to_implicit(df, threshold=v), ValueError, "threshold", id=f"threshold={v}")
      for v in (NAN, INF, -INF)],
    *[pytest.param(lambda df, v=v: to_implicit(df, threshold=v), TypeError, "threshold", id=f"threshold={v!r}")
      for v in ("4", True)],
    pytest.param(lambda df: to_implicit(df, keep_rating="yes"), TypeError, "keep_rating", id="keep_rating='yes'"),
    pytest.param(lambda df: to_implicit(df, keep_rating=1), TypeError, "keep_rating", id="keep_rating=1"),
    pytest.param(lambda df: to_implicit(df, rating_col="score"), ValueError, "'score'", id="missing-rating-col"),
    pytest.param(lambda df: to_implicit(_nan_at(df, "rating"), threshold=4), ValueError,
                 NULL_IDS.format("rating"), id="nan-rating"),
    pytest.param(lambda df: to_implicit(_nan_at(df, "rating")), ValueError, NULL_IDS.format("rating"),
                 id="nan-rating-no-threshold"),
    pytest.param(lambda df: to_implicit(_at(df, "rating", 0, INF), threshold=4), ValueError,
                 "column 'rating'.*non-finite", id="inf-rating"),
    pytest.param(lambda df: to_implicit(_at(df, "rating", 0, "five"), threshold=4), ValueError,
                 NON_NUMERIC.format("rating"), id="str-rating"),
    pytest.param(lambda df: to_implicit(df.iloc[:0], threshold=4), ValueError, "empty", id="empty"),
    pytest.param(lambda df: to_implicit(df.to_numpy(), threshold=4), TypeError, "DataFrame", id="ndarray"),
    pytest.param(lambda df: to_implicit(df, threshold=6), ValueError, "threshold=6.*would be empty",
                 id="threshold-above-every-rating"),
]


@pytest.mark.parametrize("call, exc, match", TO_IMPLICIT)
def test_to_implicit_rejects(tiny_ratings, call, exc, match):
    _check(call, tiny_ratings, exc, match)


# ----------------------------------------------------------------------------------------------
# sample_negatives and NegativeSampler

POS_U, POS_I = np.array([0, 0, 1, 2]), np.array([0, 1, 2, 3])


def _sn(**kwargs):
    args = dict(pos_users=POS_U, pos_items=POS_I, n_items=5, users=np.array([0, 1, 2]))
    return sample_negatives(**{**args, **kwargs})


SAMPLE_NEGATIVES = [
    *[pytest.param(dict(n_items=v), ValueError, "n_items", id=f"n_items={v}") for v in (0, -5)],
    *[pytest.param(dict(n_items=v), TypeError, "n_items", id=f"n_items={v!r}") for v in (5.0, NAN, "5", None)],
    pytest.param(dict(max_rounds=0), ValueError, "max_rounds", id="max_rounds=0"),
    pytest.param(dict(max_rounds=2.5), TypeError, "max_rounds", id="max_rounds=2.5"),
    pytest.param(dict(random_state=-1), ValueError, "random_state", id="random_state=-1"),
    *[pytest.param(dict(random_state=v), TypeError, "random_state", id=f"random_state={v!r}") for v in (0.5, "0", None)],
    pytest.param(dict(pos_users=np.array([0, np.nan, 1, 2])), ValueError, "pos_users", id="nan-pos-user"),
    pytest.param(dict(pos_users=np.array([0, 0.5, 1, 2])), ValueError, "pos_users", id="fractional-pos-user"),
    pytest.param(dict(pos_users=np.array([0, -1, 1, 2])), ValueError, "pos_users", id="negative-pos-user"),
    pytest.param(dict(pos_users=np.array(["a", "b", "c", "d"])), TypeError, "pos_users", id="str-pos-users"),
    pytest.param(dict(pos_items=np.array([0, 1, 2, 5])), ValueError, r"pos_items must lie in \[0, 5\)",
                 id="pos-item=n_items"),
    pytest.param(dict(pos_items=np.array([0, 1, 2, -1])), ValueError, "pos_items", id="negative-pos-item"),
    pytest.param(dict(pos_items=np.array([0, 1, 2, np.inf])), ValueError, "pos_items", id="inf-pos-item"),
    pytest.param(dict(pos_items=np.array([0, 1, 2])), ValueError, "pos_users and pos_items",
                 id="length-mismatch"),
    pytest.param(dict(users=np.array([0, -2])), ValueError, "users", id="negative-user"),
    pytest.param(dict(users=np.array([[0, 1]])), ValueError, "users must be a 1-D", id="2-d-users"),
    pytest.param(dict(users=np.array([0.0, np.nan])), ValueError, "users", id="nan-user"),
    pytest.param(dict(users=np.array([True, False])), TypeError, "users", id="bool-users"),
    pytest.param(dict(item_probs=np.array([1, np.nan, 1, 1, 1])), ValueError, "item_probs", id="nan-probs"),
    pytest.param(dict(item_probs=np.array([1, np.inf, 1, 1, 1])), ValueError, "item_probs", id="inf-probs"),
    pytest.param(dict(item_probs=np.array([1, -1, 1, 1, 1.0])), ValueError, "item_probs", id="negative-probs"),
    pytest.param(dict(item_probs=np.zeros(5)), ValueError, "item_probs", id="zero-probs"),
    pytest.param(dict(item_probs=np.ones(4)), ValueError, "item_probs", id="wrong-shape-probs"),
    pytest.param(dict(item_probs=["a"] * 5), TypeError, "item_probs", id="str-probs"),
]


@pytest.mark.parametrize("kwargs, exc, match", SAMPLE_NEGATIVES)
def test_sample_negatives_rejects(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        _sn(**kwargs)


NEGATIVE_SAMPLER_INIT = [
    pytest.param(dict(strategy="random"), ValueError, "strategy", id="strategy=random"),
    pytest.param(dict(strategy=None), ValueError, "strategy", id="strategy=None"),
    *[pytest.param(dict(alpha=v), ValueError, "alpha", id=f"alpha={v}") for v in (-1.0, NAN, INF)],
    pytest.param(dict(alpha="1"), TypeError, "alpha", id="alpha='1'"),
    pytest.param(dict(random_state=-1), ValueError, "random_state", id="random_state=-1"),
    *[pytest.param(dict(random_state=v), TypeError, "random_state", id=f"random_state={v!r}") for v in (1.5, "1", None)],
]


@pytest.mark.parametrize("kwargs, exc, match", NEGATIVE_SAMPLER_INIT)
def test_negative_sampler_init_rejects(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        NegativeSampler(**kwargs)


NEGATIVE_SAMPLER_FIT = [
    pytest.param(lambda df: NegativeSampler().fit(_nan_at(df, "user_id")), ValueError,
                 NULL_IDS.format("user_id"), id="nan-user"),
    pytest.param(lambda df: NegativeSampler().fit(_at(df, "item_id", 0, None)), ValueError,
                 NULL_IDS.format("item_id"), id="none-item"),
    pytest.param(lambda df: NegativeSampler(item_col="movie").fit(df), ValueError, "'movie'",
                 id="missing-item-col"),
    pytest.param(lambda df: NegativeSampler().fit(df.iloc[:0]), ValueError, "empty", id="empty"),
    pytest.param(lambda df: NegativeSampler().fit(df.to_numpy()), ValueError, "DataFrame", id="ndarray"),
    pytest.param(lambda df: NegativeSampler("popularity", alpha=1e6).fit(df), ValueError, "alpha",
                 id="alpha-overflows"),
]


@pytest.mark.parametrize("call, exc, match", NEGATIVE_SAMPLER_FIT)
def test_negative_sampler_fit_rejects(tiny_ratings, call, exc, match):
    _check(call, tiny_ratings, exc, match)


NEGATIVE_SAMPLER_SAMPLE = [
    *[pytest.param(lambda s, v=v: s.sample([1, 2], n_negatives=v), ValueError, "n_negatives",
                   id=f"n_negatives={v}") for v in (0, -1)],
    *[pytest.param(lambda s, v=v: s.sample([1, 2], n_negatives=v), TypeError, "n_negatives",
                   id=f"n_negatives={v!r}") for v in (1.5, 2.0, "2", None, True, NAN)],
    pytest.param(lambda s: s.sample([1, 99]), ValueError, r"user\(s\) not seen at fit, e.g. \[99\]",
                 id="unknown-user"),
    pytest.param(lambda s: s.sample([1.0, NAN]), ValueError, "null user id", id="nan-user"),
    pytest.param(lambda s: s.sample([1, None]), ValueError, "null user id", id="none-user"),
    pytest.param(lambda s: s.sample([]), ValueError, "user_ids", id="empty"),
    pytest.param(lambda s: s.sample([[1, 2]]), ValueError, "user_ids", id="2-d"),
    pytest.param(lambda s: NegativeSampler().sample([1]), RuntimeError, "not fitted", id="not-fitted"),
]


@pytest.mark.parametrize("call, exc, match", NEGATIVE_SAMPLER_SAMPLE)
def test_negative_sampler_sample_rejects(tiny_ratings, call, exc, match):
    _check(call, NegativeSampler().fit(tiny_ratings), exc, match)


# ----------------------------------------------------------------------------------------------
# IdEncoder

ID_ENCODER = [
    pytest.param(lambda: IdEncoder(5), TypeError, "name", id="name=5"),
    pytest.param(lambda: IdEncoder(""), TypeError, "name", id="name=''"),
    pytest.param(lambda: IdEncoder("user").fit([1, NAN, 2]), ValueError, r"user encoder: 1 null user id.*\[1\]",
                 id="fit-nan"),
    pytest.param(lambda: IdEncoder("item").fit(["a", None]), ValueError, "item encoder: 1 null", id="fit-none"),
    pytest.param(lambda: IdEncoder("item").fit(pd.Series([1, None], dtype="Int64")), ValueError,
                 "item encoder: 1 null", id="fit-pd.NA"),
    pytest.param(lambda: IdEncoder("item").fit(pd.to_datetime(["2020-01-01", None])), ValueError,
                 "item encoder: 1 null", id="fit-NaT"),
    pytest.param(lambda: IdEncoder("user").fit([]), ValueError, "user encoder on no ids", id="fit-empty"),
    pytest.param(lambda: IdEncoder("user").fit([[1, 2], [3, 4]]), ValueError, "user encoder: ids must be 1-D",
                 id="fit-2-d"),
    pytest.param(lambda: IdEncoder("user").fit(7), ValueError, "user encoder: ids must be 1-D", id="fit-scalar"),
    pytest.param(lambda: IdEncoder("user").fit(np.array([1, "a"], dtype=object)), TypeError,
                 "user encoder: ids of mixed types", id="fit-mixed-types"),
    pytest.param(lambda: IdEncoder("user").fit([1, 2]).transform([1], unknown="skip"), ValueError, "unknown",
                 id="unknown=skip"),
    pytest.param(lambda: IdEncoder("user").fit([1, 2]).transform([1, NAN]), ValueError,
                 "transform of the user encoder: 1 null", id="transform-nan"),
    pytest.param(lambda: IdEncoder("user").fit([1, 2]).transform([1, NAN], unknown="ignore"), ValueError,
                 "transform of the user encoder: 1 null", id="transform-nan-ignore"),
    pytest.param(lambda: IdEncoder("user").fit([1, 2]).transform([3]), ValueError, r"user\(s\) not seen",
                 id="transform-unseen"),
    pytest.param(lambda: IdEncoder("user").transform([1]), RuntimeError, "user encoder is not fitted",
                 id="transform-not-fitted"),
    pytest.param(lambda: len(IdEncoder("user")), RuntimeError, "user encoder is not fitted", id="len-not-fitted"),
    pytest.param(lambda: IdEncoder("item").inverse_transform([0]), RuntimeError, "item encoder is not fitted",
                 id="inverse-not-fitted"),
    pytest.param(lambda: IdEncoder("item").fit([5, 6]).inverse_transform([0, NAN]), ValueError,
                 "item indices must be whole numbers", id="inverse-nan"),
    pytest.param(lambda: IdEncoder("item").fit([5, 6]).inverse_transform([0.5]), ValueError,
                 "item indices must be whole numbers", id="inverse-fraction"),
    pytest.param(lambda: IdEncoder("item").fit([5, 6]).inverse_transform([INF]), ValueError,
                 "item indices must be whole numbers", id="inverse-inf"),
    pytest.param(lambda: IdEncoder("item").fit([5, 6]).inverse_transform([-1]), ValueError,
                 r"item indices must lie in \[0, 2\)", id="inverse-negative"),
    pytest.param(lambda: IdEncoder("item").fit([5, 6]).inverse_transform([2]), ValueError,
                 r"item indices must lie in \[0, 2\)", id="inverse-too-large"),
    pytest.param(lambda: IdEncoder("item").fit([5, 6]).inverse_transform(["0"]), TypeError,
                 "item indices must be integers", id="inverse-str"),
    pytest.param(lambda: IdEncoder("item").fit([5, 6]).inverse_transform([True]), TypeError,
                 "item indices must be integers", id="inverse-bool"),
]


@pytest.mark.parametrize("call, exc, match", ID_ENCODER)
def test_id_encoder_rejects(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_parameter_type_errors_are_value_errors_too(tiny_ratings):
    """Callers catching ValueError (as before these checks) still catch a wrong-type argument."""
    with pytest.raises(ParameterTypeError):
        random_split(tiny_ratings, test_size="0.2")
    with pytest.raises(ValueError, match="random_state"):
        stratified_split(tiny_ratings, random_state="42")

import numpy as np
import pandas as pd
import pytest

from reclib.data import (IdEncoder, drop_duplicate_interactions, k_core, to_implicit,
                         validate_interactions)

FULL = dict(rating_col="rating", timestamp_col="timestamp", rating_range=(1.0, 5.0))


def test_valid_frame_passes(tiny_ratings):
    assert validate_interactions(tiny_ratings, **FULL) is tiny_ratings


@pytest.mark.parametrize("mutate, column, message", [
    (lambda df: df.drop(columns="item_id"), "item_id", "missing"),
    (lambda df: df.iloc[:0], "user_id", "empty"),
    (lambda df: df.assign(user_id=df["user_id"].astype(float).where(df.index != 3)), "user_id", "null"),
    (lambda df: df.assign(rating=df["rating"].astype(object).where(df.index != 2, "five")), "rating",
     "non-numeric"),
    (lambda df: df.assign(rating=df["rating"].where(df.index != 5, 7.0)), "rating", "outside"),
    (lambda df: df.assign(timestamp=df["timestamp"].astype(object).where(df.index != 1, "yesterday")),
     "timestamp", "non-numeric"),
    (lambda df: pd.concat([df, df.iloc[[0]]]), "item_id", "duplicate"),
])
def test_rejections_name_the_column(tiny_ratings, mutate, column, message):
    bad = mutate(tiny_ratings)
    with pytest.raises(ValueError, match=message) as err:
        validate_interactions(bad, **FULL)
    assert repr(column) in str(err.value)


def test_error_shows_offending_rows_and_count(tiny_ratings):
    bad = tiny_ratings.assign(rating=tiny_ratings["rating"].where(tiny_ratings.index % 2 == 0, 9.0))
    with pytest.raises(ValueError) as err:
        validate_interactions(bad, **FULL)
    text = str(err.value)
    assert "6 values outside [1, 5]" in text and "1    9" in text


def test_not_a_frame():
    with pytest.raises(ValueError, match="DataFrame"):
        validate_interactions([(1, 2)])


def test_dedup_keeps_latest():
    df = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [5, 5, 5], "rating": [2.0, 4.0, 3.0],
                       "timestamp": [20, 10, 5]})
    out = drop_duplicate_interactions(df)
    assert out.set_index("user_id").loc[1, "rating"] == 2.0 and len(out) == 2


def test_k_core_holds_after_filtering(synthetic_interactions):
    out = k_core(synthetic_interactions, k_user=20, k_item=10)
    assert out["user_id"].value_counts().min() >= 20
    assert out["item_id"].value_counts().min() >= 10
    assert len(out) < len(synthetic_interactions)
    with pytest.raises(ValueError, match="k_user"):
        k_core(synthetic_interactions, k_user=0)


def test_to_implicit(tiny_ratings):
    out = to_implicit(tiny_ratings, threshold=4)
    assert (tiny_ratings.loc[out.index, "rating"] >= 4).all() and "rating" not in out
    assert len(out) == (tiny_ratings["rating"] >= 4).sum()
    with pytest.raises(ValueError, match="'score'"):
        to_implicit(tiny_ratings, rating_col="score")


def test_id_encoder_round_trip_and_unknowns():
    enc = IdEncoder("item").fit(np.array(["b", "a", "c", "a"]))
    codes = enc.transform(["c", "a"])
    assert codes.tolist() == [2, 0] and enc.inverse_transform(codes).tolist() == ["c", "a"]
    with pytest.raises(ValueError, match=r"item\(s\) not seen at fit, e.g. \['z'\]"):
        enc.transform(["a", "z"])
    assert enc.transform(["a", "z"], unknown="ignore").tolist() == [0, -1]
    with pytest.raises(ValueError, match="indices"):
        enc.inverse_transform([3])

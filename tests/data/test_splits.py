import numpy as np
import pandas as pd
import pytest

from reclib.data import (NegativeSampler, build_click_dataset, chronological_split, click_split,
                         cold_start_item_split, drop_duplicate_interactions, event_order, leave_last_out, new_item_split,
                         random_split, sample_negatives, stratified_split)


def _disjoint_cover(df, *parts):
    index = np.concatenate([p.index.to_numpy() for p in parts])
    assert len(index) == len(set(index)) == len(df)


def test_random_split_ratio_and_determinism(movielens):
    train, test = random_split(movielens.ratings, test_size=0.2, random_state=42)
    _disjoint_cover(movielens.ratings, train, test)
    assert len(test) == 20_000
    again = random_split(movielens.ratings, test_size=0.2, random_state=42)[1]
    assert test.index.equals(again.index)
    assert not test.index.equals(random_split(movielens.ratings, 0.2, random_state=1)[1].index)


def test_stratified_split_is_exact_per_user(movielens):
    ratings = movielens.ratings
    train, test = stratified_split(ratings, train_size=0.75, random_state=42)
    _disjoint_cover(ratings, train, test)
    n = ratings["user_id"].value_counts()
    expected = np.maximum(np.round(0.75 * n), 1)
    assert train["user_id"].value_counts().reindex(n.index).eq(expected).all()
    assert set(test["user_id"]) <= set(train["user_id"])
    assert stratified_split(ratings, 0.75, random_state=42)[1].index.equals(test.index)


def test_chronological_split_respects_time(movielens):
    train, test = chronological_split(movielens.ratings, train_size=0.8)
    _disjoint_cover(movielens.ratings, train, test)
    last_train = train.groupby("user_id")["timestamp"].max()
    first_test = test.groupby("user_id")["timestamp"].min()
    assert (last_train.reindex(first_test.index) <= first_test).all()


def test_leave_last_out(movielens):
    train, valid, test = leave_last_out(movielens.ratings)
    _disjoint_cover(movielens.ratings, train, valid, test)
    assert test["user_id"].is_unique and len(test) == 943 and len(valid) == 943
    ordered = movielens.ratings.sort_values(["user_id", "timestamp", "item_id"])
    assert test.set_index("user_id")["item_id"].sort_index().equals(
        ordered.groupby("user_id")["item_id"].last())
    assert (valid.set_index("user_id")["timestamp"] <= test.set_index("user_id")["timestamp"]).all()
    assert set(test["user_id"]) <= set(train["user_id"])


def test_leave_last_out_short_histories_stay_in_train():
    df = pd.DataFrame({"user_id": [1, 1, 2, 2, 2], "item_id": [1, 2, 1, 2, 3],
                       "timestamp": [1, 2, 1, 2, 3]})
    train, valid, test = leave_last_out(df)
    assert set(train["user_id"]) == {1, 2} and test["user_id"].tolist() == [2]
    assert test["item_id"].tolist() == [3] and valid["item_id"].tolist() == [2]


def test_leave_last_out_random_tie_break_moves_only_tied_rows_whatever_the_row_order():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user_id": np.repeat(np.arange(200), 5), "item_id": rng.permuted(np.tile(np.arange(50), 20)),
                       "timestamp": np.tile([1, 2, 3, 3, 3], 200)})       # the last three events tie
    df = df.drop_duplicates(["user_id", "item_id"])
    _, _, by_id = leave_last_out(df, rating_col=None)
    last_time = df["timestamp"] == df.groupby("user_id")["timestamp"].transform("max")
    expected = df[last_time].groupby("user_id")["item_id"].max()            # ties by item id: largest last
    assert (by_id["item_id"].to_numpy() == expected.reindex(by_id["user_id"]).to_numpy()).all()
    _, valid, test = leave_last_out(df, rating_col=None, tie_break="random", random_state=7)
    assert (test["timestamp"] == 3).all()                                      # still the last time
    assert 0.4 < (test.sort_values("user_id")["item_id"].to_numpy()
                  != by_id.sort_values("user_id")["item_id"].to_numpy()).mean() < 0.9
    shuffled = leave_last_out(df.sample(frac=1.0, random_state=1), rating_col=None, tie_break="random",
                              random_state=7)[2]
    pd.testing.assert_frame_equal(shuffled.sort_index(), test.sort_index())
    other = leave_last_out(df, rating_col=None, tie_break="random", random_state=8)[2]
    assert not other.index.sort_values().equals(test.index.sort_values())
    with pytest.raises(ValueError, match="tie_break"):
        leave_last_out(df, rating_col=None, tie_break="time")


def test_random_tie_order_is_pinned_for_fixed_ids():
    """The random order must be the same on every machine and pandas release: pinned here."""
    df = pd.DataFrame({"user_id": np.zeros(8, np.int64), "item_id": np.arange(10, 18, dtype=np.int64),
                       "timestamp": np.zeros(8, np.int64)})
    train, valid, test = leave_last_out(df, rating_col=None, tie_break="random", random_state=3)
    assert (int(valid["item_id"].iloc[0]), int(test["item_id"].iloc[0])) == (14, 10)      # by id it would be (16, 17)


def test_event_order_is_the_order_of_the_split_and_lets_a_model_follow_it():
    df = pd.DataFrame({"user_id": [1, 1, 1, 1, 2, 2, 2], "item_id": [13, 11, 12, 10, 11, 10, 12],
                       "timestamp": [5, 9, 9, 9, 1, 1, 2]})
    assert event_order(df).tolist() == [0, 2, 3, 1, 1, 0, 2]           # ties by item id, largest last
    for seed in (3, 4):
        order = event_order(df, tie_break="random", random_state=seed)
        _, valid, test = leave_last_out(df, rating_col=None, tie_break="random", random_state=seed)
        last = df.assign(order=order).sort_values("order").groupby("user_id")["item_id"].agg(list)
        assert test.set_index("user_id")["item_id"].to_dict() == {u: items[-1] for u, items in last.items()}
        assert valid.set_index("user_id")["item_id"].to_dict() == {u: items[-2] for u, items in last.items()}
        shuffled = df.sample(frac=1.0, random_state=seed)
        assert (event_order(shuffled, tie_break="random", random_state=seed)
                == pd.Series(order, df.index).loc[shuffled.index]).all()      # row order changes nothing
    from reclib.cf import LastItemKNN

    ordered = df.assign(event_order=event_order(df, tie_break="random", random_state=3))
    last = ordered.sort_values("event_order").groupby("user_id")["item_id"].last()
    knn = LastItemKNN(timestamp_col="event_order").fit(ordered)                # a model reads the order
    assert (knn.last_item_[knn.user_index([1, 2])].tolist()
            == knn.item_encoder_.transform(last.loc[[1, 2]].to_numpy()).tolist())
    with pytest.raises(ValueError, match="timestamp"):
        event_order(df.drop(columns="timestamp"))
    with pytest.raises(ValueError, match="repeat a"):
        event_order(pd.concat([df, df.iloc[:1]]))
    with pytest.raises(ValueError, match="tie_break"):
        event_order(df, tie_break="time")


def test_cold_start_items_are_disjoint(movielens):
    train, test = cold_start_item_split(movielens.ratings, test_item_fraction=0.2, random_state=42)
    _disjoint_cover(movielens.ratings, train, test)
    assert not set(train["item_id"]) & set(test["item_id"])
    assert test["item_id"].nunique() == round(0.2 * 1682)


@pytest.mark.parametrize("call", [
    lambda df: random_split(df, test_size=1.5),
    lambda df: stratified_split(df, train_size=0),
    lambda df: chronological_split(df, timestamp_col="time"),
])
def test_split_arguments_are_checked(tiny_ratings, call):
    with pytest.raises(ValueError, match="test_size|train_size|'time'"):
        call(tiny_ratings)


def test_negatives_are_never_positive(synthetic_interactions):
    df = synthetic_interactions
    positives = set(zip(df["user_id"], df["item_id"]))
    for strategy in ("uniform", "popularity"):
        sampler = NegativeSampler(strategy=strategy, random_state=3).fit(df)
        neg = sampler.sample(df["user_id"].to_numpy(), n_negatives=4)
        assert len(neg) == 4 * len(df)
        assert not positives & set(zip(neg["user_id"], neg["item_id"]))


def test_popularity_sampling_follows_counts():
    users = np.zeros(1, dtype=int)
    probs = np.array([0.0, 1.0, 3.0, 0.0])
    draws = sample_negatives(users, np.array([3]), 4, np.zeros(20_000, int), probs, random_state=0)
    share = np.bincount(draws, minlength=4) / len(draws)
    assert share[0] == 0 and share[3] == 0 and abs(share[2] - 0.75) < 0.02


def test_user_with_every_item_is_an_error():
    with pytest.raises(ValueError, match=r"users \[0\]"):
        sample_negatives(np.array([0, 0]), np.array([0, 1]), 2, np.array([0]))


def test_movielens_protocol_sizes_are_unchanged(movielens):
    """The notebooks' recorded P1/P3 sizes: validation must not move a row on clean data."""
    assert len(stratified_split(movielens.ratings, 0.75, random_state=42)[1]) == 25_008
    _, valid, test = leave_last_out(movielens.ratings)
    assert len(test) == 943 and len(valid) == 943


def test_click_split_is_unchanged_and_seeded(movielens):
    clicks = build_click_dataset(movielens)
    train, valid, test = click_split(clicks, random_state=42)
    _disjoint_cover(clicks, train, valid, test)
    assert (len(train), len(valid), len(test)) == (80_000, 10_000, 10_000)
    assert click_split(clicks, random_state=42)[2].index.equals(test.index)


def test_splitters_need_only_the_columns_they_use(tiny_ratings):
    """Stratified needs users, cold start items, random nothing: the same rows either way."""
    p1 = stratified_split(tiny_ratings, 0.5, random_state=3)[1]
    assert stratified_split(tiny_ratings[["user_id", "rating"]], 0.5, random_state=3)[1].index.equals(p1.index)
    p5 = cold_start_item_split(tiny_ratings, 0.4, random_state=3)[1]
    assert cold_start_item_split(tiny_ratings[["item_id"]], 0.4, random_state=3)[1].index.equals(p5.index)
    p2 = random_split(tiny_ratings, 0.25, random_state=3)[1]
    no_ids = tiny_ratings.drop(columns=["user_id", "item_id"])
    assert random_split(no_ids, 0.25, random_state=3)[1].index.equals(p2.index)


def test_deduplicated_frame_splits_without_leak(tiny_ratings):
    leaky = pd.concat([tiny_ratings, tiny_ratings.iloc[[0]].assign(timestamp=999)], ignore_index=True)
    with pytest.raises(ValueError, match="drop_duplicate_interactions"):
        stratified_split(leaky, 0.5)
    train, test = stratified_split(drop_duplicate_interactions(leaky), 0.5)
    train_pairs, test_pairs = (set(zip(p["user_id"], p["item_id"])) for p in (train, test))
    assert not train_pairs & test_pairs and len(train) + len(test) == len(tiny_ratings)


def test_new_item_split_worked_example():
    """Items by first event: a (t=1), b (2), c (5), d (6); the newest half are c and d, the cut is
    t=5. User 1: a, b, then c: tested on c from a, b. User 2: b, then a at the cut, then d: tested
    on d, a is its context. User 3's only row is new (no history): not tested. User 4 never meets
    a new item."""
    df = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 2, 3, 4, 4],
                       "item_id": ["a", "b", "c", "b", "a", "d", "c", "a", "b"],
                       "timestamp": [1, 2, 5, 3, 5, 7, 6, 8, 9]})
    train, context, test, new = new_item_split(df, new_item_fraction=0.5, rating_col=None)
    assert new.tolist() == ["c", "d"]
    assert train.index.tolist() == [0, 1, 3]                      # every row before t=5
    assert test[["user_id", "item_id"]].values.tolist() == [[1, "c"], [2, "d"]]
    assert context.index.tolist() == [4]
    # row order does not matter
    shuffled = new_item_split(df.sample(frac=1.0, random_state=0), 0.5, rating_col=None)
    assert sorted(shuffled[2].index) == sorted(test.index) and sorted(shuffled[1].index) == [4]


def test_new_item_split_on_movielens(movielens):
    train, context, test, new = new_item_split(movielens.ratings)
    assert len(new) == round(0.1 * 1682) and not train["item_id"].isin(new).any()
    assert test["item_id"].isin(new).all() and test["user_id"].is_unique
    assert (len(train), len(context), len(test)) == (62_287, 6_217, 238)
    last_context = context.groupby("user_id")["timestamp"].max()
    assert (last_context <= test.set_index("user_id")["timestamp"].reindex(last_context.index)).all()


@pytest.mark.parametrize("fraction", [0.0001, 0.9999])
def test_new_item_split_needs_new_and_old_items(tiny_ratings, fraction):
    with pytest.raises(ValueError, match="new_item_fraction"):
        new_item_split(tiny_ratings, fraction)

"""reclib.data.synthetic: seeded chunked generators and planted-structure recovery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reclib.cf import EASE, ImplicitALS, MostPopular
from reclib.data import SyntheticImplicit, synthetic_ctr_chunks


@pytest.fixture(scope="module")
def generator():
    return SyntheticImplicit(n_users=1000, n_items=500, n_topics=8, random_state=0)


@pytest.fixture(scope="module")
def events(generator):
    return generator.frame(30_000, chunk_size=10_000)


def test_chunks_are_seeded_sized_and_streamed(generator):
    chunks = list(generator.chunks(25_000, chunk_size=10_000))
    assert [len(c) for c in chunks] == [10_000, 10_000, 5_000]
    assert list(chunks[0].columns) == ["user_id", "item_id", "timestamp"]
    again = pd.concat(SyntheticImplicit(n_users=1000, n_items=500, n_topics=8, random_state=0).chunks(25_000, 10_000))
    pd.testing.assert_frame_equal(pd.concat(chunks), again)
    other = pd.concat(SyntheticImplicit(n_users=1000, n_items=500, n_topics=8, random_state=1).chunks(25_000, 10_000))
    assert not np.array_equal(other["item_id"].to_numpy(), again["item_id"].to_numpy())
    frame = pd.concat(chunks, ignore_index=True)
    assert frame["timestamp"].tolist() == list(range(25_000))
    assert frame["item_id"].between(0, 499).all() and frame["user_id"].between(0, 999).all()


def test_model_rows_sum_to_one_and_events_follow_it(generator, events):
    assert generator.topic_items_.sum(axis=1) == pytest.approx(np.ones(8))
    assert generator.user_topics_.sum(axis=1) == pytest.approx(np.ones(1000))
    # the empirical item distribution matches the planted marginal (mean preference over users)
    marginal = generator.preferences(np.arange(1000)).mean(axis=0)
    empirical = np.bincount(events["item_id"], minlength=500) / len(events)
    assert np.abs(empirical - marginal).sum() < 0.12          # total variation x 2 ~ sqrt(n_items / n_rows)
    # power-law popularity: the top 10 % of items draw far more than 10 % of the events
    top = np.sort(empirical)[::-1][:50].sum()
    assert top > 0.45


def test_worked_example_of_the_item_sampler():
    g = SyntheticImplicit(n_users=2, n_items=3, n_topics=2, sharpness=0.0, zipf=1.0, random_state=3)
    # sharpness 0: every topic is the popularity distribution, 1/1 : 1/2 : 1/3 normalised, permuted
    assert sorted(g.popularity_) == pytest.approx(sorted(np.array([6, 3, 2]) / 11))
    assert g.topic_items_ == pytest.approx(np.vstack([g.popularity_, g.popularity_]))
    counts = np.bincount(g.frame(11_000)["item_id"], minlength=3)
    assert counts / 11_000 == pytest.approx(g.popularity_, abs=0.015)


def test_planted_top_items_breaks_ties_to_the_lower_index():
    g = SyntheticImplicit(n_users=3, n_items=4, n_topics=1, sharpness=0.0, random_state=0)
    order = np.argsort(-g.popularity_, kind="stable")
    assert g.planted_top_items(np.arange(3), k=2).tolist() == [order[:2].tolist()] * 3


def test_models_recover_the_planted_structure(generator, events):
    popularity = generator.planted_recall(MostPopular().fit(events))
    ease = generator.planted_recall(EASE(reg=100.0).fit(events))
    als = generator.planted_recall(ImplicitALS(n_factors=16, epochs=8).fit(events))
    assert popularity == pytest.approx(0.3686, abs=0.005)
    assert ease == pytest.approx(0.6682, abs=0.005)
    assert als == pytest.approx(0.6743, abs=0.005)
    assert min(ease, als) > 1.7 * popularity


def test_ctr_chunks():
    chunks = list(synthetic_ctr_chunks(12_000, n_categorical=3, n_numeric=2, vocabulary=50, chunk_size=5_000))
    assert [len(c) for c in chunks] == [5_000, 5_000, 2_000]
    frame = pd.concat(chunks, ignore_index=True)
    assert list(frame.columns) == ["c0", "c1", "c2", "n0", "n1", "click"]
    assert frame[["c0", "c1", "c2"]].apply(lambda c: c.between(0, 49).all()).all()
    assert set(frame["click"].unique()) == {0.0, 1.0}
    assert 0.2 < frame["click"].mean() < 0.4
    again = pd.concat(synthetic_ctr_chunks(12_000, n_categorical=3, n_numeric=2, vocabulary=50, chunk_size=5_000),
                      ignore_index=True)
    pd.testing.assert_frame_equal(frame, again)
    # the planted effects make the label predictable: the click rate differs across the values of c0
    rates = frame.groupby("c0")["click"].agg(["mean", "size"])
    assert rates[rates["size"] > 200]["mean"].std() > 0.05


@pytest.mark.parametrize("kwargs", [{"n_users": 0}, {"zipf": -1.0}, {"sharpness": float("nan")}, {"random_state": -1}])
def test_bad_arguments(kwargs):
    with pytest.raises((ValueError, TypeError)):
        SyntheticImplicit(**kwargs)


@pytest.mark.parametrize("users, message", [([0, -1], r"got -1 at position \(1,\)"), ([1000], "got 1000"),
                                            ([0.5], "integer indices, got 0.5"), ([[0]], "1-D array")])
def test_planted_preferences_refuse_indices_that_would_wrap_or_truncate(generator, users, message):
    with pytest.raises(ValueError, match=rf"users .*{message}"):
        generator.planted_top_items(users)


def test_process_shards_of_the_streams_are_disjoint_and_together_the_whole_stream():
    from reclib.data.synthetic import synthetic_ctr_chunks
    source = SyntheticImplicit(n_users=50, n_items=30, random_state=1)
    whole = source.frame(1000, chunk_size=64)
    shards = [pd.concat(source.chunks(1000, chunk_size=64, shard=(p, 3)), ignore_index=True) for p in range(3)]
    assert sum(len(s) for s in shards) == len(whole)
    joined = pd.concat(shards).sort_values("timestamp", ignore_index=True)   # timestamps: the global positions
    pd.testing.assert_frame_equal(joined, whole)
    clicks = pd.concat(synthetic_ctr_chunks(500, 3, 1, 20, chunk_size=64, random_state=2), ignore_index=True)
    parts = [list(synthetic_ctr_chunks(500, 3, 1, 20, chunk_size=64, random_state=2, shard=(p, 2))) for p in range(2)]
    interleaved = [chunk for pair in zip(parts[0], parts[1] + [None]) for chunk in pair if chunk is not None]
    pd.testing.assert_frame_equal(pd.concat(interleaved, ignore_index=True), clicks)
    with pytest.raises(ValueError, match="0 <= process_index < process_count"):
        next(source.chunks(10, shard=(3, 3)))
    with pytest.raises(ValueError, match="shard must be a pair"):
        next(source.chunks(10, shard=[0, 1]))

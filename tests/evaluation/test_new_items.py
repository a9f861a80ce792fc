"""New-item evaluation: histories in time order, popularity that never counts the future, the
last-item similarity, and ranking restricted to the new items, on worked examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reclib.evaluation.new_items import evaluate_new_items, last_item_similarity, popularity_before, user_histories


def test_user_histories_in_time_order_with_ties_by_item():
    events = pd.DataFrame({"user_id": [1, 1, 1, 2], "item_id": ["c", "b", "a", "a"], "timestamp": [5, 3, 3, 1]})
    assert user_histories(events, [2, 9, 1]) == [["a"], [], ["a", "b", "c"]]


def test_popularity_counts_only_earlier_events():
    events = pd.DataFrame({"item_id": ["x", "y", "x", "z", "x"], "timestamp": [1, 2, 3, 3, 9]})
    counts = popularity_before(events, ["x", "y"], [1, 3, 10])
    np.testing.assert_array_equal(counts, [[0, 0], [1, 1], [3, 1]])      # strictly before; z ignored


def test_popularity_equals_counting_event_by_event():
    rng = np.random.default_rng(0)
    events = pd.DataFrame({"item_id": rng.integers(0, 7, 300), "timestamp": rng.integers(0, 50, 300) * 0.5})
    times = rng.uniform(-1, 30, 20)
    brute = np.array([[((events["item_id"] == item) & (events["timestamp"] < t)).sum() for item in range(6)]
                      for t in times])
    np.testing.assert_array_equal(popularity_before(events, list(range(6)), times), brute)


def test_last_item_similarity_is_cosine():
    vectors = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0]])
    sim = last_item_similarity(vectors, [2])
    np.testing.assert_allclose(sim, [[np.sqrt(0.5), np.sqrt(0.5), 1.0]])


def test_only_new_items_are_ranked():
    """Catalogue a, b, n1, n2, n3 (new: n1, n2, n3). Row 0 scores old item a highest, but only the
    new items count: n2 ranks first -> hit, NDCG 1; row 1's target n3 ranks 3rd of 3 new items."""
    scores = np.array([[9.0, 0.0, 1.0, 5.0, 2.0],
                       [9.0, 8.0, 3.0, 2.0, 1.0]])
    result = evaluate_new_items(scores, ["n2", "n3"], ["a", "b", "n1", "n2", "n3"], ["n1", "n2", "n3"], k=2)
    np.testing.assert_allclose(result.per_user["hit_rate"], [1.0, 0.0])
    np.testing.assert_allclose(result.per_user["ndcg"], [1.0, 0.0])
    full = evaluate_new_items(scores, ["n2", "n3"], ["a", "b", "n1", "n2", "n3"], ["n1", "n2", "n3"], k=3)
    np.testing.assert_allclose(full.per_user["mrr"], [1.0, 1 / 3])


@pytest.mark.parametrize("test_items, new_items, shape, match", [
    (["a"], ["n1"], (1, 3), "test_items must all be new"),
    (["n1"], ["zz"], (1, 3), "not in item_ids"),
    (["n1"], ["n1"], (2, 3), "scores must have shape"),
])
def test_bad_input_raises(test_items, new_items, shape, match):
    with pytest.raises(ValueError, match=match):
        evaluate_new_items(np.zeros(shape), test_items, ["a", "b", "n1"], new_items)

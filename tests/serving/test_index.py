"""Approximate (faiss HNSW) search against exact search: same interface, high recall."""

import numpy as np
import pytest

from reclib.serving import ApproximateIndex, ExactIndex, clustered_vectors, latency_ms, neighbor_recall


@pytest.fixture(scope="module")
def catalogue():
    return clustered_vectors(5000, d=16, n_clusters=50, random_state=0), clustered_vectors(200, d=16, n_clusters=50, random_state=1)


def test_approximate_index_recalls_the_exact_top10(catalogue):
    items, queries = catalogue
    exact, _ = ExactIndex(items).search_arrays(queries, 10)
    index = ApproximateIndex(items, threads=1)
    found, scores = index.search_arrays(queries, 10)
    assert neighbor_recall(found, exact) >= 0.99
    np.testing.assert_allclose(scores[:, 0], np.einsum("nd,nd->n", queries, items[found[:, 0]]), rtol=1e-5)
    index.ef_search = 10
    low, _ = index.search_arrays(queries, 10)
    assert neighbor_recall(low, exact) <= neighbor_recall(found, exact)


def test_same_frame_as_exact_index_on_a_tiny_catalogue():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6], [-1.0, 0.0]])
    ids = np.array([10, 11, 12, 13])
    exact = ExactIndex(vectors, ids).search(np.array([[1.0, 0.1]]), k=3)
    approx = ApproximateIndex(vectors, ids).search(np.array([[1.0, 0.1]]), k=3)
    assert list(approx.columns) == ["query", "item_id", "score", "rank"]
    assert approx["item_id"].tolist() == exact["item_id"].tolist() == [10, 12, 11]
    np.testing.assert_allclose(approx["score"], exact["score"], rtol=1e-6)
    assert approx["rank"].tolist() == [1, 2, 3]
    assert len(ApproximateIndex(vectors, ids).search(np.ones(2), k=10)) == 4   # k capped at n_items


def test_approximate_index_checks_input():
    with pytest.raises(ValueError, match="M must be a positive integer"):
        ApproximateIndex(np.ones((3, 2)), M=0)
    with pytest.raises(ValueError, match="item_vectors"):
        ApproximateIndex(np.full((3, 2), np.nan))
    with pytest.raises(ValueError, match="queries must have shape"):
        ApproximateIndex(np.eye(3)).search(np.ones((1, 2)))
    with pytest.raises(ValueError, match="unique ids"):
        ApproximateIndex(np.eye(3), item_ids=[1, 1, 2])


def test_recall_at_k_worked_example():
    approx = np.array([[1, 2, 3], [4, 5, -1]])
    exact = np.array([[3, 2, 9], [4, 6, 7]])
    assert neighbor_recall(approx, exact) == pytest.approx(3 / 6)
    with pytest.raises(ValueError, match="one shape"):
        neighbor_recall(approx, exact[:, :2])


def test_latency_ms_returns_ordered_percentiles():
    p50, p99 = latency_ms(lambda q: q.sum(), np.ones((50, 3)))
    assert 0 <= p50 <= p99

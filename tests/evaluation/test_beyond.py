import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, ndcg_score

from reclib.base import top_k
from reclib.evaluation import (intra_list_diversity, map_at_k, mrr_at_k, ndcg_at_k, novelty)
from reclib.evaluation.beyond import (gini_index, item_bucket_table, per_user_diversity,
                                      per_user_novelty, popularity_percentile, serendipity,
                                      user_bucket_table)


def _random_case(seed, n_users=40, n_items=30):
    rng = np.random.default_rng(seed)
    relevance = (rng.random((n_users, n_items)) < 0.2).astype(float)
    relevance[relevance.sum(axis=1) == 0, 0] = 1.0
    scores = rng.random((n_users, n_items))       # distinct scores: no tie to break
    return relevance, scores


def test_ndcg_agrees_with_sklearn_at_several_k():
    relevance, scores = _random_case(0)
    for k in (1, 5, 10, 30):
        top, _ = top_k(scores.copy(), k)
        hits = np.take_along_axis(relevance, top, axis=1).astype(bool)
        ours = ndcg_at_k(hits, relevance.sum(axis=1))
        theirs = [ndcg_score(relevance[[u]], scores[[u]], k=k) for u in range(len(relevance))]
        assert np.max(np.abs(ours - theirs)) < 1e-9


def test_map_over_the_full_ranking_is_sklearn_average_precision():
    # with K = n_items the normaliser min(|R|, K) is |R|: MAP@K is plain average precision
    relevance, scores = _random_case(1)
    top, _ = top_k(scores.copy(), scores.shape[1])
    hits = np.take_along_axis(relevance, top, axis=1).astype(bool)
    ours = map_at_k(hits, relevance.sum(axis=1))
    theirs = [average_precision_score(relevance[u], scores[u]) for u in range(len(relevance))]
    assert np.max(np.abs(ours - theirs)) < 1e-9


def test_map_and_mrr_hand_cases():
    # K = 3, |R| = 5: hits at ranks 2 and 3 -> (1/2 + 2/3) / min(5, 3)
    hits = np.array([[False, True, True], [False, False, False], [True, False, False]])
    np.testing.assert_allclose(map_at_k(hits, [5, 2, 1]), [(1 / 2 + 2 / 3) / 3, 0.0, 1.0],
                               atol=1e-12)
    np.testing.assert_allclose(mrr_at_k(hits), [1 / 2, 0.0, 1.0], atol=1e-12)
    # MRR is the reciprocal rank of the first hit, found by a loop here
    relevance, scores = _random_case(2)
    top, _ = top_k(scores.copy(), 10)
    hits = np.take_along_axis(relevance, top, axis=1).astype(bool)
    loop = [next((1 / (r + 1) for r in range(10) if row[r]), 0.0) for row in hits]
    assert np.max(np.abs(mrr_at_k(hits) - loop)) < 1e-12


def test_gini_hand_cases():
    assert gini_index(np.array([[0, 1], [2, 3]]), 4) == pytest.approx(0.0, abs=1e-15)
    # one item takes every slot of a 4-item catalogue: counts (0, 0, 0, 4) -> 3/4
    assert gini_index(np.array([[2, 2], [2, 2]]), 4) == pytest.approx(0.75, abs=1e-15)
    # counts sorted (0, 1, 1, 2): (-3*0 - 1*1 + 1*1 + 3*2) / (4 * 4) = 6 / 16
    assert gini_index(np.array([[1, 3], [3, 2]]), 4) == pytest.approx(6 / 16, abs=1e-15)
    assert gini_index(np.array([[1, -1], [3, 2], [3, -1]]), 4) == pytest.approx(6 / 16)
    with pytest.raises(ValueError, match="outside"):
        gini_index(np.array([[4]]), 4)


def test_novelty_and_diversity_per_user_average_to_the_list_metrics():
    pop = np.array([0.5, 0.25, 0.125, 1.0])
    recs = np.array([[0, 1], [2, 3]])
    np.testing.assert_allclose(per_user_novelty(recs, pop), [(1 + 2) / 2, (3 + 0) / 2])
    assert per_user_novelty(recs, pop).mean() == pytest.approx(novelty(recs, pop))
    genres = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=float)
    # items 0 and 1: cosine 1/sqrt(2); items 2 and 3 (zero vector): distance 1
    np.testing.assert_allclose(per_user_diversity(recs, genres), [1 - 1 / np.sqrt(2), 1.0])
    rng = np.random.default_rng(0)
    vectors, lists = rng.normal(size=(20, 8)), rng.integers(0, 20, (15, 5))
    assert per_user_diversity(lists, vectors).mean() == pytest.approx(
        intra_list_diversity(lists, vectors), abs=1e-12)


def test_serendipity_hand_case():
    recs = np.array([[5, 1, 7], [2, 3, 4]])
    hits = np.array([[True, True, False], [False, True, True]])
    expected = np.array([[1, 2, 3], [3, 9, -1]])   # popularity lists
    # user 0: hits 5 (unexpected) and 1 (expected) -> 1/3; user 1: hits 3 (expected), 4 -> 1/3
    np.testing.assert_allclose(serendipity(hits, recs, expected), [1 / 3, 1 / 3])
    np.testing.assert_allclose(serendipity(hits, recs, recs), [0.0, 0.0])


def test_popularity_percentile_hand_case():
    np.testing.assert_allclose(popularity_percentile([10, 0, 5, 5]), [1.0, 0.25, 0.75, 0.75])


def test_bucket_tables():
    per_user = pd.DataFrame({"ndcg": [0.1, 0.3, 0.5, 0.9]}, index=[1, 2, 3, 4])
    activity = pd.Series({1: 5, 2: 15, 3: 60, 4: 20})
    table = user_bucket_table(per_user, activity, edges=(0, 20, 100))
    assert list(table.index) == ["(0, 20]", "(20, 100]"]
    np.testing.assert_allclose(table["n_users"], [3, 1])
    np.testing.assert_allclose(table["ndcg"], [(0.1 + 0.3 + 0.9) / 3, 0.5])

    top = pd.DataFrame([["a", "b"], ["c", "a"]], index=[1, 2])
    test = pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": ["b", "c", "c", "a"]})
    counts = pd.Series({"a": 100, "b": 3, "c": 3, "d": 0})
    table = item_bucket_table(top, test, counts, edges=(0, 10, 1000))
    assert list(table.index) == ["(0, 10]", "(10, 1000]"]
    np.testing.assert_allclose(table["catalogue_share"], [0.75, 0.25])
    # test pairs of evaluated users: (1, b), (1, c), (2, c): all in the rare bucket
    np.testing.assert_allclose(table["test_share"], [1.0, 0.0])
    np.testing.assert_allclose(table["rec_share"], [0.5, 0.5])
    # (1, b) and (2, c) recommended, (1, c) not
    assert table["recall"].iloc[0] == pytest.approx(2 / 3)
    assert np.isnan(table["recall"].iloc[1])


def test_sampled_ranking_hand_case():
    from reclib.cf import MostPopular
    from reclib.evaluation.beyond import sampled_ranking

    # item popularity in train: 0 (3 users) > 1, 2 (2 each) > 3, 4 (1 each)
    train = pd.DataFrame({"user_id": [1, 2, 3, 1, 2, 1, 3, 4, 5],
                          "item_id": [0, 0, 0, 1, 1, 2, 2, 3, 4]})
    model = MostPopular().fit(train)
    test = pd.DataFrame({"user_id": [4, 5], "item_id": [0, 3]})
    # user 4 may draw only items 1, 2, 4: all below item 0 -> rank 0 -> hit, ndcg 1
    # user 5 may draw 0, 1, 2 (all more popular than item 3): rank 3 whatever is drawn
    out = sampled_ranking(model, train, test, k=3, n_negatives=3, random_state=0)
    assert out["hit_rate"] == 0.5
    assert out["ndcg"] == pytest.approx(0.5, abs=1e-15)
    out = sampled_ranking(model, train, test, k=4, n_negatives=3, random_state=0)
    assert out["ndcg"] == pytest.approx((1 + 1 / np.log2(5)) / 2, abs=1e-15)

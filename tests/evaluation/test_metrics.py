import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import ndcg_score, roc_auc_score

from reclib.cf import ItemKNN
from reclib.evaluation import (EvaluationResult, auc, catalogue_coverage,
                               evaluate_scores, hit_rate_at_k, intra_list_diversity, log_loss,
                               lookup_hits, mae, map_at_k, mrr_at_k, ndcg_at_k, novelty,
                               popularity_bias, precision_at_k, ranking_result, recall_at_k, rmse,
                               top_k)

# One user, K=4: ranks 1 and 3 relevant, 3 relevant items in total.
HITS = np.array([[True, False, True, False]])
N_REL = np.array([3])


def test_hand_computed_ranking_metrics():
    assert precision_at_k(HITS)[0] == pytest.approx(2 / 4)
    assert recall_at_k(HITS, N_REL)[0] == pytest.approx(2 / 3)
    dcg = 1 / np.log2(2) + 1 / np.log2(4)
    idcg = 1 / np.log2(2) + 1 / np.log2(3) + 1 / np.log2(4)
    assert ndcg_at_k(HITS, N_REL)[0] == pytest.approx(dcg / idcg)
    assert map_at_k(HITS, N_REL)[0] == pytest.approx((1 / 1 + 2 / 3) / 3)
    assert hit_rate_at_k(HITS)[0] == 1.0 and mrr_at_k(HITS)[0] == 1.0
    miss = np.array([[False, False, True, False]])
    assert mrr_at_k(miss)[0] == pytest.approx(1 / 3)
    assert map_at_k(miss, np.array([1]))[0] == pytest.approx(1 / 3)
    nothing = np.zeros((1, 4), bool)
    assert hit_rate_at_k(nothing)[0] == 0 and mrr_at_k(nothing)[0] == 0
    assert np.isnan(ndcg_at_k(nothing, np.array([0]))[0])


def test_ndcg_matches_sklearn():
    rng = np.random.default_rng(0)
    n_users, n_items, k = 50, 40, 10
    relevance = (rng.random((n_users, n_items)) < 0.15).astype(float)
    relevance[relevance.sum(axis=1) == 0, 0] = 1.0
    scores = rng.random((n_users, n_items))
    top, _ = top_k(scores.copy(), k)
    hits = np.take_along_axis(relevance, top, axis=1).astype(bool)
    ours = ndcg_at_k(hits, relevance.sum(axis=1))
    theirs = [ndcg_score(relevance[[u]], scores[[u]], k=k) for u in range(n_users)]
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_pointwise_metrics_match_sklearn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.3 * y + 0.7 * rng.random(300), 0.01, 0.99)
    p[:20] = 0.5  # ties
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert log_loss(y, p) == pytest.approx(sk_log_loss(y, p), abs=1e-12)
    assert rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(np.sqrt(4 / 3))
    assert mae([1, 2, 3], [2, 2, 5]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes"):
        rmse([1, 2], [1])
    with pytest.raises(ValueError, match="positive and negative"):
        auc([1, 1], [0.2, 0.3])


def test_beyond_accuracy_metrics():
    recs = np.array([[0, 1], [0, 2]])
    assert catalogue_coverage(recs, 4) == pytest.approx(3 / 4)
    pop = np.array([0.5, 0.25, 0.125, 0.0])
    assert novelty(recs, pop) == pytest.approx(np.mean([1, 2, 1, 3]))
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    expected = np.mean([1 - 0.0, 1 - 1 / np.sqrt(2)])
    assert intra_list_diversity(recs, vectors) == pytest.approx(expected)
    counts = np.array([10.0, 4.0, 2.0, 0.0])
    assert popularity_bias(recs, counts) == pytest.approx(np.mean([10, 4, 10, 2]) / 4.0)


def test_top_k_masks_and_orders():
    scores = np.array([[0.1, 0.9, 0.5, 0.7], [0.3, 0.3, 0.2, 0.8]])
    exclude = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 0, 1]]))
    items, vals = top_k(scores.copy(), 2, exclude)
    assert items.tolist() == [[3, 2], [0, 1]]
    np.testing.assert_allclose(vals, [[0.7, 0.5], [0.3, 0.3]])
    items, vals = top_k(np.array([[1.0, 2.0]]), 5, sp.csr_matrix(np.array([[1, 0]])))
    assert items.tolist() == [[1, 0]] and vals[0, 1] == -np.inf


def test_evaluate_scores_on_a_hand_case():
    scores = np.array([[0.9, 0.8, 0.1, 0.5], [0.1, 0.2, 0.3, 0.4]])
    train = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 1]]))
    test = sp.csr_matrix(np.array([[0, 0, 1, 1], [1, 0, 0, 0]]))
    res = evaluate_scores(scores, train, test, k=2)
    # user 0 ranks [1, 3]: one hit at rank 2; user 1 ranks [2, 1]: no hit
    assert res.top_items.to_numpy().tolist() == [[1, 3], [2, 1]]
    assert res["precision"] == pytest.approx(0.25)
    assert res["recall"] == pytest.approx(0.25)
    assert res["ndcg"] == pytest.approx((1 / np.log2(3)) / (1 + 1 / np.log2(3)) / 2)
    assert res["hit_rate"] == pytest.approx(0.5) and res["mrr"] == pytest.approx(0.25)
    assert res["coverage"] == pytest.approx(3 / 4)
    hits = lookup_hits(res.top_items.to_numpy(), test, np.array([0, 1]))
    assert hits.tolist() == [[False, True], [False, False]]


def test_ranking_result_holds_the_frame_per_user_values_and_lists(synthetic_interactions):
    """The tidy frame, the per-user values (whose means are the reported values) and the lists."""
    df = synthetic_interactions
    train, test = df[df.timestamp < 800_000], df[df.timestamp >= 800_000]
    test = test[test.user_id.isin(train.user_id)]
    model = ItemKNN(n_neighbors=20).fit(train)
    result = ranking_result(model, train, test, k=5, batch_size=37)
    assert isinstance(result, EvaluationResult)
    users = pd.unique(test.user_id)
    assert result.per_user.index.tolist() == users.tolist()
    assert result.per_user.shape == (len(users), 6)
    for metric, values in result.per_user.items():
        assert values.mean() == pytest.approx(result[metric], rel=1e-12)
    assert result.top_items.shape == (len(users), 5)
    recs = model.recommend(users, k=5)
    assert result.top_items.to_numpy().ravel().tolist() == recs.item_id.tolist()
    assert "ndcg=" in repr(result)
    with pytest.raises(KeyError, match="no metric 'auc'"):
        result["auc"]

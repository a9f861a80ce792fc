"""Tie-averaged ranking metrics: equal to the mean over every order of the ties, enumerated."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from reclib.evaluation import evaluate_scores, hit_rate_at_k, mrr_at_k, ndcg_at_k, precision_at_k, recall_at_k
from reclib.evaluation.tie_aware import tie_averaged_metrics


def _enumerated(scores: np.ndarray, relevant: np.ndarray, k: int, n_rel: np.ndarray) -> np.ndarray:
    """(users, 5) mean of precision, recall, NDCG, hit rate, MRR over every order that sorts the
    scores descending (each order of the tied items equally likely); -inf items never listed."""
    out = []
    for row, rel, n in zip(scores, relevant, n_rel):
        values = []
        for order in itertools.permutations(range(len(row))):
            ranked = row[list(order)]
            if np.any(ranked[:-1] < ranked[1:]):             # not a descending order of the scores
                continue
            listed = [i for i in order if np.isfinite(row[i])][:k]
            hits = np.zeros((1, k), dtype=bool)
            hits[0, :len(listed)] = rel[listed]
            values.append([precision_at_k(hits)[0], recall_at_k(hits, [n])[0], ndcg_at_k(hits, [n])[0],
                           hit_rate_at_k(hits)[0], mrr_at_k(hits)[0]])
        out.append(np.mean(values, axis=0))
    return np.array(out)


@settings(max_examples=120, deadline=None, derandomize=True)
@given(st.integers(1, 3), st.integers(2, 6), st.integers(1, 6), st.data())
def test_equals_the_mean_over_every_order_of_the_ties(n_users, n_items, k, data):
    levels = st.sampled_from([0.0, 1.0, 2.0, -np.inf])
    scores = np.array([[data.draw(levels) for _ in range(n_items)] for _ in range(n_users)])
    relevant = np.array([[data.draw(st.booleans()) for _ in range(n_items)] for _ in range(n_users)])
    relevant[:, 0] |= ~relevant.any(axis=1)                   # at least one relevant item per user
    scores[:, 1] = np.where(np.isfinite(scores).any(axis=1), scores[:, 1], 0.0)   # something listed
    n_rel = relevant.sum(axis=1) + data.draw(st.integers(0, 1))   # sometimes one unreachable item
    got = tie_averaged_metrics(scores, relevant, k=k, n_relevant=n_rel)
    np.testing.assert_allclose(got.to_numpy(), _enumerated(scores, relevant, k, n_rel), atol=1e-12)


def test_without_ties_it_is_the_ranking_itself():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(40, 30))
    train = sp.csr_matrix(rng.random((40, 30)) < 0.2)
    test = sp.csr_matrix((rng.random((40, 30)) < 0.15) & ~train.toarray())
    masked = np.where(train.toarray(), -np.inf, scores)
    averaged = tie_averaged_metrics(masked, test, k=5)
    fixed = evaluate_scores(scores, train, test, k=5).per_user.loc[averaged.index]
    np.testing.assert_allclose(averaged.to_numpy(), fixed[list(averaged.columns)].to_numpy(), atol=1e-12)


def test_worked_example_four_tied_items_one_relevant():
    # the relevant item is equally likely at positions 1-4; a list of 2 holds it half the time
    got = tie_averaged_metrics(np.zeros((1, 4)), np.array([[0, 0, 1, 0]]), k=2).iloc[0]
    assert got["hit_rate"] == pytest.approx(0.5)
    assert got["ndcg"] == pytest.approx((1 + 1 / math.log2(3)) / 4)       # 0.4077
    assert got["mrr"] == pytest.approx((1 + 1 / 2) / 4)                   # 0.375
    assert got["precision"] == pytest.approx(0.25) and got["recall"] == pytest.approx(0.5)


def test_two_relevant_in_one_tie_group_hit_rate_is_hypergeometric():
    # 5 tied items, 2 relevant, list of 2: misses only when both listed items are irrelevant
    got = tie_averaged_metrics(np.zeros((1, 5)), np.array([[1, 1, 0, 0, 0]]), k=2).iloc[0]
    assert got["hit_rate"] == pytest.approx(1 - (3 / 5) * (2 / 4))


def test_rows_without_relevant_items_are_left_out():
    got = tie_averaged_metrics(np.zeros((3, 4)), np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]]), k=2)
    assert got.index.tolist() == [0, 2]


@pytest.mark.parametrize("scores, relevant, k, n_relevant, match", [
    (np.array([[0.0, np.nan]]), np.array([[1, 0]]), 2, None, "NaN or \\+inf in 1 row"),
    (np.array([[0.0, np.inf]]), np.array([[1, 0]]), 2, None, "NaN or \\+inf"),
    (np.zeros((2, 3)), np.ones((2, 2)), 2, None, "same shape"),
    (np.zeros((1, 3)), np.array([[1, 1, 0]]), 2, np.array([1]), "at least its row's"),
    (np.zeros((1, 3)), np.array([[1, 0, 0]]), 0, None, "k"),
    (np.zeros(3), np.array([1, 0, 0]), 2, None, "non-empty \\(n_users, n_items\\)"),
])
def test_bad_input_is_named(scores, relevant, k, n_relevant, match):
    with pytest.raises(ValueError, match=match):
        tie_averaged_metrics(scores, relevant, k=k, n_relevant=n_relevant)

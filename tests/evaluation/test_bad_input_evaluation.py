"""Bad input to the metrics and the batched evaluation raises before any work, naming the culprit.

Each case gives a call, the exception type and a pattern the message must match (the argument,
column or users at fault). A few tests at the end check that valid neighbours of the bad inputs
(0/1 ints for booleans, integral floats for counts, ``-1`` padding, pandas input) still give the
same numbers as before.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from reclib.base import Recommender
from reclib.checks import ParameterTypeError
from reclib.evaluation import (auc, catalogue_coverage, evaluate_scores,
                               hit_rate_at_k, intra_list_diversity, log_loss, mae, map_at_k,
                               mrr_at_k, ndcg_at_k, novelty, popularity_bias, precision_at_k,
                               ranking_result, recall_at_k, rmse)

NAN, INF = float("nan"), float("inf")
HITS = np.array([[True, False, True], [False, False, False]])
N_REL = np.array([3, 1])
RECS = np.array([[0, 1], [2, 3]])
POP = np.array([0.5, 0.25, 0.125, 0.0])
COUNTS = np.array([10.0, 4.0, 2.0, 0.0])
VECS = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 0.0]])

# (id, function, args, kwargs, exception, message pattern)
METRIC_CASES = [
    # rating error: NaN / inf in either input, wrong type, shape, empty
    ("rmse-nan-true", rmse, ([1.0, NAN], [1.0, 2.0]), {}, ValueError, "y_true.*non-finite"),
    ("rmse-inf-pred", rmse, ([1.0, 2.0], [1.0, INF]), {}, ValueError, "y_pred.*non-finite"),
    ("rmse-neginf-pred", rmse, ([1.0, 2.0], [-INF, 1.0]), {}, ValueError, "y_pred.*non-finite"),
    ("rmse-str", rmse, (["a", "b"], [1.0, 2.0]), {}, ParameterTypeError, "y_true must be numeric"),
    ("rmse-none", rmse, (None, [1.0]), {}, ValueError, "y_true"),
    ("rmse-shape", rmse, ([1, 2], [1]), {}, ValueError, "y_true and y_pred.*shapes"),
    ("rmse-empty", rmse, ([], []), {}, ValueError, "y_true and y_pred.*non-empty"),
    ("rmse-2d", rmse, ([[1, 2]], [[1, 2]]), {}, ValueError, "1-D"),
    ("mae-nan-pred", mae, ([1.0, 2.0], [NAN, 2.0]), {}, ValueError, "y_pred.*non-finite"),
    ("mae-inf-true", mae, ([INF, 2.0], [1.0, 2.0]), {}, ValueError, "y_true.*non-finite"),
    # classification: labels must be 0/1, scores / probabilities finite, probabilities in [0, 1]
    ("auc-label-2", auc, ([0, 1, 2], [0.1, 0.2, 0.3]), {}, ValueError, r"y_true.*0/1.*\[2\.0\]"),
    ("auc-label-neg", auc, ([0, 1, -1], [0.1, 0.2, 0.3]), {}, ValueError, r"y_true.*-1\.0"),
    ("auc-label-half", auc, ([0, 1, 0.5], [0.1, 0.2, 0.3]), {}, ValueError, r"y_true.*0\.5"),
    ("auc-label-nan", auc, ([0, 1, NAN], [0.1, 0.2, 0.3]), {}, ValueError, "y_true.*non-finite"),
    ("auc-score-nan", auc, ([0, 1, 1], [0.1, NAN, 0.3]), {}, ValueError, "y_score.*non-finite"),
    ("auc-score-inf", auc, ([0, 1, 1], [0.1, INF, 0.3]), {}, ValueError, "y_score.*non-finite"),
    ("auc-one-class", auc, ([1, 1], [0.2, 0.3]), {}, ValueError, "positive and negative.*y_true"),
    ("auc-str-score", auc, ([0, 1], ["a", "b"]), {}, ParameterTypeError, "y_score"),
    ("logloss-labels-2-neg1", log_loss, ([2, -1], [0.5, 0.5]), {}, ValueError,
     r"y_true must hold 0/1.*\[-1\.0, 2\.0\]"),
    ("logloss-prob-above-1", log_loss, ([0, 1], [0.5, 1.5]), {}, ValueError, r"y_prob.*\[1\.5\]"),
    ("logloss-prob-negative", log_loss, ([0, 1], [-0.1, 0.5]), {}, ValueError, r"y_prob.*-0\.1"),
    ("logloss-prob-nan", log_loss, ([0, 1], [NAN, 0.5]), {}, ValueError, "y_prob.*non-finite"),
    ("logloss-prob-inf", log_loss, ([0, 1], [INF, 0.5]), {}, ValueError, "y_prob.*non-finite"),
    ("logloss-eps-zero", log_loss, ([0, 1], [0.2, 0.5]), {"eps": 0.0}, ValueError, "eps"),
    ("logloss-eps-half", log_loss, ([0, 1], [0.2, 0.5]), {"eps": 0.5}, ValueError, "eps"),
    ("logloss-eps-nan", log_loss, ([0, 1], [0.2, 0.5]), {"eps": NAN}, ValueError, "eps"),
    ("logloss-eps-str", log_loss, ([0, 1], [0.2, 0.5]), {"eps": "1e-7"}, ParameterTypeError, "eps"),
    # hits: boolean or 0/1, shape (n_users, K) with both >= 1
    ("hits-1d", precision_at_k, (np.array([True, False]),), {}, ValueError,
     r"hits.*\(n_users, K\)"),
    ("hits-k0", precision_at_k, (np.zeros((2, 0), bool),), {}, ValueError, "hits.*K >= 1"),
    ("hits-no-users", hit_rate_at_k, (np.zeros((0, 3), bool),), {},
     ValueError, "hits.*n_users >= 1"),
    ("hits-value-2", mrr_at_k, (np.array([[0, 2]]),), {}, ValueError, r"hits.*0/1.*\[2\.0\]"),
    ("hits-value-half", precision_at_k, (np.array([[0.5, 1.0]]),), {}, ValueError, "hits.*0/1"),
    ("hits-nan", hit_rate_at_k, (np.array([[NAN, 1.0]]),), {}, ValueError, "hits.*non-finite"),
    ("hits-str", precision_at_k, (np.array([["a", "b"]]),), {}, ParameterTypeError, "hits.*dtype"),
    ("hits-none", precision_at_k, (None,), {}, ParameterTypeError, "hits"),
    ("hits-ragged", precision_at_k, ([[1, 0], [1]],), {},
     ParameterTypeError, "hits must be an array"),
    # n_relevant: non-negative ints, one per user, never fewer than the user's hits
    ("recall-hits-exceed", recall_at_k, (np.ones((1, 3), bool), [1]), {}, ValueError,
     r"hits exceed n_relevant.*rows \[0\].*\[3\] hits.*n_relevant \[1\]"),
    ("ndcg-hits-exceed", ndcg_at_k, (HITS, [1, 1]), {}, ValueError, "hits exceed n_relevant"),
    ("map-hits-exceed", map_at_k, (HITS, [0, 0]), {}, ValueError, "hits exceed n_relevant"),
    ("nrel-negative", recall_at_k, (HITS, [3, -1]), {}, ValueError,
     r"n_relevant.*non-negative integers.*rows \[1\]"),
    ("nrel-fraction", ndcg_at_k, (HITS, [2.5, 1]), {}, ValueError, r"n_relevant.*2\.5"),
    ("nrel-nan", map_at_k, (HITS, [NAN, 1]), {}, ValueError, "n_relevant.*non-finite"),
    ("nrel-inf", recall_at_k, (HITS, [INF, 1]), {}, ValueError, "n_relevant.*non-finite"),
    ("nrel-length", recall_at_k, (HITS, [3]), {}, ValueError, r"n_relevant.*shape \(2,\)"),
    ("nrel-2d", ndcg_at_k, (HITS, [[3, 1]]), {}, ValueError, r"n_relevant.*shape \(2,\)"),
    ("nrel-bool", recall_at_k, (HITS, [True, True]), {},
     ParameterTypeError, "n_relevant.*dtype bool"),
    ("nrel-str", map_at_k, (HITS, ["3", "1"]), {}, ParameterTypeError, "n_relevant"),
    ("nrel-none", recall_at_k, (HITS, None), {}, ParameterTypeError, "n_relevant"),
    # coverage: n_items a positive int, indices in range (-1 marks an empty slot)
    ("coverage-n-zero", catalogue_coverage, (RECS, 0), {}, ValueError, "n_items"),
    ("coverage-n-negative", catalogue_coverage, (RECS, -4), {}, ValueError, "n_items"),
    ("coverage-n-float", catalogue_coverage, (RECS, 4.0), {}, ParameterTypeError, "n_items"),
    ("coverage-n-bool", catalogue_coverage, (RECS, True), {}, ParameterTypeError, "n_items"),
    ("coverage-n-none", catalogue_coverage, (RECS, None), {}, ParameterTypeError, "n_items"),
    ("coverage-n-str", catalogue_coverage, (RECS, "4"), {}, ParameterTypeError, "n_items"),
    ("coverage-index-high", catalogue_coverage, (RECS, 3), {}, ValueError,
     r"recommended.*outside \[-1, 3\).*\[3\]"),
    ("coverage-index-neg", catalogue_coverage, ([[0, -2]], 4), {}, ValueError,
     r"recommended.*\[-2\]"),
    ("coverage-float-recs", catalogue_coverage, ([[0.0, 1.5]], 4), {}, ParameterTypeError,
     "recommended.*integer"),
    ("coverage-empty", catalogue_coverage, (np.zeros((0, 2), int), 4), {},
     ValueError, "recommended.*empty"),
    # novelty: popularity finite in [0, 1], indices in range
    ("novelty-pop-nan", novelty, (RECS, [0.5, NAN, 0.1, 0.1]), {}, ValueError,
     "item_popularity.*non-finite"),
    ("novelty-pop-inf", novelty, (RECS, [0.5, INF, 0.1, 0.1]), {}, ValueError,
     "item_popularity.*non-finite"),
    ("novelty-pop-above-1", novelty, (RECS, [0.5, 1.5, 0.1, 0.1]), {}, ValueError,
     r"item_popularity.*\[0, 1\].*items \[1\]"),
    ("novelty-pop-negative", novelty, (RECS, [0.5, -0.1, 0.1, 0.1]), {}, ValueError,
     r"item_popularity.*items \[1\]"),
    ("novelty-pop-2d", novelty, (RECS, [POP]), {}, ValueError, "item_popularity.*1-D"),
    ("novelty-pop-empty", novelty, (RECS, []), {}, ValueError, "item_popularity.*non-empty"),
    ("novelty-index-high", novelty, ([[0, 4]], POP), {}, ValueError,
     r"recommended.*outside \[0, 4\)"),
    ("novelty-index-neg", novelty, ([[0, -1]], POP), {}, ValueError, r"recommended.*\[-1\]"),
    ("novelty-recs-bool", novelty, ([[True, False]], POP), {}, ParameterTypeError, "recommended"),
    # popularity bias: counts finite, non-negative, not all zero; indices in range
    ("arp-counts-nan", popularity_bias, (RECS, [1.0, NAN, 1.0, 1.0]), {}, ValueError,
     "item_counts.*non-finite"),
    ("arp-counts-inf", popularity_bias, (RECS, [1.0, INF, 1.0, 1.0]), {}, ValueError,
     "item_counts.*non-finite"),
    ("arp-counts-negative", popularity_bias, (RECS, [1.0, -2.0, 1.0, 1.0]), {}, ValueError,
     r"item_counts.*\[0, inf\).*items \[1\]"),
    ("arp-counts-zero", popularity_bias, (RECS, np.zeros(4)), {},
     ValueError, "item_counts.*all zero"),
    ("arp-index-high", popularity_bias, ([[0, 9]], COUNTS), {}, ValueError, r"recommended.*\[9\]"),
    # diversity: finite (n_items, d) vectors, (n_users, K >= 2) indices in range
    ("ild-vectors-nan", intra_list_diversity, (RECS, [[1.0, NAN]] * 4), {}, ValueError,
     "item_vectors.*non-finite"),
    ("ild-vectors-inf", intra_list_diversity, (RECS, [[1.0, -INF]] * 4), {}, ValueError,
     "item_vectors.*non-finite"),
    ("ild-vectors-1d", intra_list_diversity, (RECS, [1.0, 2.0, 3.0, 4.0]), {}, ValueError,
     r"item_vectors.*\(n_items, d\)"),
    ("ild-index-high", intra_list_diversity, ([[0, 7]], VECS), {}, ValueError,
     r"recommended.*\[7\]"),
    ("ild-k1", intra_list_diversity, ([[0], [1]], VECS), {}, ValueError, "recommended.*K >= 2"),
    ("ild-recs-1d", intra_list_diversity, ([0, 1], VECS), {}, ValueError, "recommended.*2-D"),
    ("ild-recs-float", intra_list_diversity, ([[0.0, 1.0]], VECS), {}, ParameterTypeError,
     "recommended.*integer"),
]


@pytest.mark.parametrize(("func", "args", "kwargs", "error", "pattern"),
                         [case[1:] for case in METRIC_CASES],
                         ids=[case[0] for case in METRIC_CASES])
def test_metric_rejects_bad_input(func, args, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        func(*args, **kwargs)


# -- evaluate_scores -----------------------------------------------------------------------------
SCORES = np.array([[0.9, 0.8, 0.1, 0.5], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1]])
TRAIN = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 1], [0, 1, 0, 0]]))
TEST = sp.csr_matrix(np.array([[0, 0, 1, 1], [1, 0, 0, 0], [0, 0, 1, 0]]))


def _with(row: int, col: int | slice, value: float) -> np.ndarray:
    scores = SCORES.copy()
    scores[row, col] = value
    return scores


def _nan_train() -> sp.csr_matrix:
    train = TRAIN.copy().astype(float)
    train.data[0] = NAN
    return train


# (id, keyword arguments replacing the valid ones, exception, message pattern)
EVALUATE_CASES = [
    ("all-nan-scores", {"scores": np.full(SCORES.shape, NAN)}, ValueError,
     r"scores hold NaN for 3 of 3 users.*users \[0, 1, 2\]"),
    ("one-nan-score", {"scores": _with(1, 2, NAN)}, ValueError, r"scores hold NaN.*users \[1\]"),
    ("posinf-score", {"scores": _with(2, 0, INF)}, ValueError, r"scores hold \+inf.*users \[2\]"),
    ("all-neginf-row", {"scores": _with(0, slice(None), -INF)}, ValueError,
     r"no finite score.*users \[0\]"),
    ("neginf-over-candidates", {"scores": _with(1, slice(0, 2), -INF), "candidates": [0, 1]},
     ValueError, r"no finite score.*users \[1\]"),
    ("nan-from-function", {"scores": lambda idx: np.full((len(idx), 4), NAN)}, ValueError,
     "scores from .*lambda.* hold NaN"),
    ("nan-named-source", {"scores": _with(1, 0, NAN), "source": "MyModel scores",
                          "user_ids": np.array(["u0", "u1", "u2"])}, ValueError,
     r"MyModel scores hold NaN.*users \['u1'\]"),
    ("scores-str", {"scores": SCORES.astype(str)}, ParameterTypeError, "scores must be a numeric array"),
    ("scores-shape", {"scores": SCORES[:, :3]}, ValueError, r"scores must have shape.*\(3, 4\)"),
    ("function-shape", {"scores": lambda idx: SCORES[idx, :3]}, ValueError,
     r"scores from .* have shape \(3, 3\), expected \(3, 4\)"),
    ("k-zero", {"k": 0}, ValueError, "k must be a positive integer"),
    ("k-negative", {"k": -2}, ValueError, "k must be a positive integer"),
    ("k-float", {"k": 2.0}, ParameterTypeError, "k must be a positive integer"),
    ("k-bool", {"k": True}, ParameterTypeError, "k must be a positive integer"),
    ("k-str", {"k": "2"}, ParameterTypeError, "k must be a positive integer"),
    ("k-none", {"k": None}, ParameterTypeError, "k must be a positive integer"),
    ("batch-size-zero", {"batch_size": 0}, ValueError, "batch_size"),
    ("batch-size-float", {"batch_size": 1.5}, ParameterTypeError, "batch_size"),
    ("train-test-shape", {"test": TEST[:, :3]}, ValueError, r"train \(3, 4\) and test \(3, 3\)"),
    ("train-nan-stored", {"train": _nan_train()}, ValueError, "train stores 1 non-finite"),
    ("test-empty-shape", {"test": sp.csr_matrix((0, 4))}, ValueError, "test must be a non-empty"),
    ("test-no-entries", {"test": sp.csr_matrix((3, 4))}, ValueError, "no user to evaluate"),
    ("train-str", {"train": "abc"}, ParameterTypeError, "train"),
    ("candidates-high", {"candidates": [1, 4]}, ValueError, r"candidates.*outside \[0, 4\).*\[4\]"),
    ("candidates-negative", {"candidates": [-1, 2]}, ValueError, r"candidates.*\[-1\]"),
    ("candidates-float", {"candidates": [1.0, 2.0]}, ParameterTypeError, "candidates.*integer"),
    ("candidates-empty", {"candidates": np.array([], int)}, ValueError, "candidates.*non-empty"),
    ("k-above-candidates", {"candidates": [2, 3], "k": 3}, ValueError,
     "k=3 exceeds the 2 candidate items"),
    ("users-high", {"users": [0, 3]}, ValueError, r"users.*outside \[0, 3\).*\[3\]"),
    ("users-repeated", {"users": [0, 1, 0]}, ValueError, "users holds 1 repeated"),
    ("users-float", {"users": [0.0, 1.0]}, ParameterTypeError, "users.*integer"),
    ("nrel-length", {"n_relevant": [2, 1]}, ValueError, r"n_relevant must have shape \(3,\)"),
    ("nrel-negative", {"n_relevant": [2, -1, 1]}, ValueError, "n_relevant.*non-negative"),
    ("nrel-below-hits", {"n_relevant": [0, 1, 1], "k": 3}, ValueError,
     r"hits exceed n_relevant.*rows \[0\]"),
    ("item-vectors-rows", {"item_vectors": np.ones((3, 2))}, ValueError,
     r"item_vectors must have shape \(n_items=4"),
    ("item-vectors-nan", {"item_vectors": np.full((4, 2), NAN)}, ValueError,
     "item_vectors.*non-finite"),
    ("user-ids-length", {"user_ids": np.array([10, 11])}, ValueError, r"user_ids.*\(3,\)"),
]


@pytest.mark.parametrize(("changes", "error", "pattern"), [case[1:] for case in EVALUATE_CASES],
                         ids=[case[0] for case in EVALUATE_CASES])
def test_evaluate_scores_rejects_bad_input(changes, error, pattern):
    kwargs = {"scores": SCORES, "train": TRAIN, "test": TEST, "k": 2, **changes}
    with pytest.raises(error, match=pattern):
        evaluate_scores(**kwargs)


def test_evaluate_scores_checks_before_scoring():
    calls = []

    def scores(idx):
        calls.append(idx)
        return SCORES[idx]

    with pytest.raises(ValueError, match="candidates"):
        evaluate_scores(scores, TRAIN, TEST, k=2, candidates=[9])
    with pytest.raises(ValueError, match="n_relevant"):
        evaluate_scores(scores, TRAIN, TEST, k=2, n_relevant=[1])
    assert calls == []


# -- ranking_result ------------------------------------------------------------------------------
class _FixedScores(Recommender):
    """Scores every item by its column index (plus ``bad`` at ``bad_user``)."""

    def __init__(self, bad: float = 0.0, bad_user: int | None = None) -> None:
        super().__init__()
        self.bad, self.bad_user = bad, bad_user

    def _fit(self, context):
        self.n_items_ = context.matrix.shape[1]

    def _score(self, users):
        scores = np.tile(np.arange(self.n_items_, dtype=np.float64), (len(users), 1))
        if self.bad_user is not None:
            scores[users == self.user_index([self.bad_user])[0], 0] = self.bad
        return scores


@pytest.fixture()
def frames(tiny_ratings):
    train = tiny_ratings[tiny_ratings.timestamp < 105]
    test = tiny_ratings[(tiny_ratings.timestamp >= 105) & tiny_ratings.user_id.isin(train.user_id)]
    return train, test


def _drop(frame: pd.DataFrame, col: str) -> pd.DataFrame:
    return frame.drop(columns=col)


def _null(frame: pd.DataFrame, col: str) -> pd.DataFrame:
    frame = frame.copy().astype({col: float})
    frame.iloc[1, frame.columns.get_loc(col)] = NAN
    return frame


RANKING_CASES = [
    ("train-missing-item", lambda tr, te: {"train": _drop(tr, "item_id")}, ValueError,
     "train frame: column 'item_id' is missing"),
    ("test-missing-user", lambda tr, te: {"test": _drop(te, "user_id")}, ValueError,
     "test frame: column 'user_id' is missing"),
    ("test-not-frame", lambda tr, te: {"test": te.to_numpy()}, ParameterTypeError,
     "test frame: expected a pandas DataFrame"),
    ("test-null-user", lambda tr, te: {"test": _null(te, "user_id")}, ValueError,
     "test frame: column 'user_id' has 1 missing"),
    ("train-null-item", lambda tr, te: {"train": _null(tr, "item_id")}, ValueError,
     "train frame: column 'item_id' has 1 missing"),
    ("test-empty", lambda tr, te: {"test": te.iloc[:0]}, ValueError, "test frame is empty"),
    ("k-zero", lambda tr, te: {"k": 0}, ValueError, "k must be a positive integer"),
    ("k-str", lambda tr, te: {"k": "10"}, ParameterTypeError, "k must be a positive integer"),
    ("batch-size-negative", lambda tr, te: {"batch_size": -1}, ValueError, "batch_size"),
    ("candidates-unknown", lambda tr, te: {"candidates": [10, 999]}, ValueError,
     r"candidates: 1 item\(s\) not seen at fit.*999"),
    ("candidates-empty", lambda tr, te: {"candidates": []},
     ValueError, "candidates must be a non-empty"),
    ("item-vectors-rows", lambda tr, te: {"item_vectors": np.ones((2, 3))},
     ValueError, "item_vectors"),
    ("model-nan", lambda tr, te: {"model": _FixedScores(NAN, bad_user=2)}, ValueError,
     r"_FixedScores scores hold NaN for 1 of \d users.*users \[2\]"),
    ("model-posinf", lambda tr, te: {"model": _FixedScores(INF, bad_user=3)}, ValueError,
     r"_FixedScores scores hold \+inf.*users \[3\]"),
]


@pytest.mark.parametrize(("make", "error", "pattern"), [case[1:] for case in RANKING_CASES],
                         ids=[case[0] for case in RANKING_CASES])
def test_ranking_result_rejects_bad_input(frames, make, error, pattern):
    train, test = frames
    kwargs = {"model": _FixedScores(), "train": train, "test": test, "k": 2, **make(train, test)}
    kwargs["model"].fit(train)
    with pytest.raises(error, match=pattern):
        ranking_result(**kwargs)


class _PublicOnly(_FixedScores):
    """Answers only the public ``score(user_ids)``; records the raw ids it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[list[int]] = []

    def score(self, user_ids):
        self.asked.append(np.asarray(user_ids).tolist())
        return _FixedScores._score(self, self.user_index(user_ids))

    def _score(self, users):
        raise AssertionError("ranking_result must go through the public score(user_ids)")


def test_ranking_result_scores_through_the_public_interface(tiny_ratings):
    train, test = tiny_ratings.iloc[::2], tiny_ratings.iloc[1::2]
    model = _PublicOnly().fit(train)
    result = ranking_result(model, train, test, k=2, batch_size=2)
    test_users = pd.unique(test.user_id).tolist()
    assert model.asked == [test_users[i:i + 2] for i in range(0, len(test_users), 2)]  # raw ids
    reference = _FixedScores().fit(train)
    pd.testing.assert_frame_equal(result.frame, ranking_result(reference, train, test, k=2).frame)
    assert result.per_user.index.tolist() == test_users
    assert result["hit_rate"] > 0


def test_ranking_result_test_items_all_unseen_give_zero_hits(frames):
    """Every test item unknown to the model (the relevant matrix is empty): no hit, no crash."""
    train, test = frames
    assert not test.item_id.isin(train.item_id).any()
    result = ranking_result(_FixedScores().fit(train), train, test, k=2)
    assert result["hit_rate"] == result["recall"] == result["ndcg"] == 0.0


def test_ranking_result_unknown_test_user_raises_before_scoring(frames):
    train, test = frames
    model = _PublicOnly().fit(train)
    stranger = test.iloc[:1].assign(user_id=99)
    with pytest.raises(ValueError, match="99"):
        ranking_result(model, train, pd.concat([test, stranger]), k=2)
    assert model.asked == []


# -- valid neighbours of the bad inputs still work, with the same numbers -------------------
def test_valid_neighbours_give_the_same_numbers():
    hits_int, n_float = HITS.astype(int), N_REL.astype(float)
    for metric in (recall_at_k, ndcg_at_k, map_at_k):
        np.testing.assert_array_equal(metric(hits_int, n_float), metric(HITS, N_REL))
    np.testing.assert_array_equal(precision_at_k(HITS.astype(float)), precision_at_k(HITS))
    assert np.isnan(recall_at_k([[False]], [0])[0])  # no relevant item: NaN, as documented
    assert catalogue_coverage([[0, -1], [2, -1]], 4) == 0.5  # -1 pads a short list
    y = pd.Series([0, 1, 1, 0])
    p = pd.Series([0.2, 0.8, 0.6, 0.4])
    assert auc(y, p) == auc(y.to_numpy(bool), p.to_numpy()) == 1.0
    assert log_loss(y, p) == log_loss(y.to_numpy(bool), p.to_numpy())
    assert log_loss([0, 1], [0.0, 1.0]) == pytest.approx(1e-7, rel=1e-3)  # clipped, finite


def test_evaluate_scores_ignores_scores_outside_the_candidates():
    """NaN or +inf in a column that can never be ranked does not matter; -inf within is allowed."""
    base = evaluate_scores(SCORES, TRAIN, TEST, k=2, candidates=[0, 2, 3])
    noisy = _with(0, 1, NAN)
    noisy[2, 1] = INF
    noisy[2, 3] = -INF  # user 2's lowest candidate anyway
    other = evaluate_scores(noisy, TRAIN, TEST, k=2, candidates=[0, 2, 3])
    assert base.top_items.to_numpy().tolist() == other.top_items.to_numpy().tolist() == [[3, 2], [2, 0], [0, 2]]
    assert other.values.to_dict() == base.values.to_dict()


def test_evaluate_scores_numbers_unchanged_on_valid_input():
    res = evaluate_scores(SCORES[:2], TRAIN[:2], TEST[:2], k=2)
    assert res.top_items.to_numpy().tolist() == [[1, 3], [2, 1]]
    assert res["precision"] == 0.25 and res["recall"] == 0.25
    assert res["ndcg"] == (1 / np.log2(3)) / (1 + 1 / np.log2(3)) / 2
    assert res["coverage"] == 0.75

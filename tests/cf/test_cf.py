"""Collaborative filtering: each derivation checked numerically on small cases, plus interfaces."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from reclib.cf import (BPR, EASE, BaselinePredictor, BiasedMF, ImplicitALS, NeighborhoodCF,
                       als_half_step, bpr_loss_and_grads, corated_similarity, ease_weights,
                       fit_biases, implicit_als_half_step, mf_loss_and_grads)
from reclib.cf.checks import finite_difference, relative_error, worked_example   # tested in test_checks.py
from reclib.cf.linalg import batched_gram, scatter_add

# the 4 x 5 worked example of notebooks 02 and 02b (0 = unrated)
R = worked_example()


def frame(matrix: np.ndarray) -> pd.DataFrame:
    u, i = np.nonzero(matrix)
    return pd.DataFrame({"user_id": u, "item_id": i, "rating": matrix[u, i]})


def test_baseline_alternation_reaches_the_joint_ridge_solution():
    u, i = np.nonzero(R)
    r = R[u, i]
    mu, bu, bi = fit_biases(u, i, r, 4, 5, reg_user=2.0, reg_item=3.0, n_iter=500)
    # joint least squares: [onehot(u) onehot(i)] b ~ r - mu, with ridge rows
    A = np.zeros((len(r), 9))
    A[np.arange(len(r)), u] = 1
    A[np.arange(len(r)), 4 + i] = 1
    ridge = np.diag(np.r_[np.full(4, np.sqrt(2.0)), np.full(5, np.sqrt(3.0))])
    solution = np.linalg.lstsq(np.vstack([A, ridge]), np.r_[r - mu, np.zeros(9)], rcond=None)[0]
    np.testing.assert_allclose(np.r_[bu, bi], solution, atol=1e-8)


def test_mf_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    u, i = np.nonzero(R)
    r = R[u, i]
    P, Q = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    bu, bi = rng.normal(size=4), rng.normal(size=5)
    _, grads = mf_loss_and_grads(P, Q, bu, bi, 3.0, u, i, r, reg=0.1)
    for name, param in (("P", P), ("Q", Q), ("b_u", bu), ("b_i", bi)):
        numeric = finite_difference(lambda: mf_loss_and_grads(P, Q, bu, bi, 3.0, u, i, r, 0.1)[0], param)
        assert relative_error(grads[name], numeric) < 1e-6, name


def test_bpr_gradients_match_finite_differences():
    rng = np.random.default_rng(1)
    P, Q, b = rng.normal(size=(4, 3)), rng.normal(size=(5, 3)), rng.normal(size=5)
    users, pos, neg = np.array([0, 0, 2, 3]), np.array([0, 1, 3, 2]), np.array([2, 2, 4, 0])
    _, grads = bpr_loss_and_grads(P, Q, b, users, pos, neg, reg=0.05)
    for name, param in (("P", P), ("Q", Q), ("b", b)):
        numeric = finite_difference(lambda: bpr_loss_and_grads(P, Q, b, users, pos, neg, 0.05)[0], param)
        assert relative_error(grads[name], numeric) < 1e-6, name


def test_als_row_update_equals_lstsq():
    rng = np.random.default_rng(2)
    Q, bi, mu, reg = rng.normal(size=(5, 2)), rng.normal(size=5), 3.0, 0.3
    P, bu = als_half_step(sp.csr_matrix(R), Q, bi, mu, reg)
    for user in range(4):
        items = np.flatnonzero(R[user])
        A = np.hstack([Q[items], np.ones((len(items), 1))])
        t = R[user, items] - mu - bi[items]
        ridge = np.sqrt(reg * len(items)) * np.eye(3)
        x = np.linalg.lstsq(np.vstack([A, ridge]), np.r_[t, np.zeros(3)], rcond=None)[0]
        np.testing.assert_allclose(np.r_[P[user], bu[user]], x, atol=1e-10)


def test_implicit_trick_equals_naive_dense_solve():
    rng = np.random.default_rng(3)
    Y, alpha, reg = rng.normal(size=(5, 3)), 4.0, 0.5
    X = implicit_als_half_step(sp.csr_matrix(R), Y, alpha, reg)
    for user in range(4):
        C = np.diag(1 + alpha * R[user])
        p = (R[user] > 0).astype(float)
        naive = np.linalg.solve(Y.T @ C @ Y + reg * np.eye(3), Y.T @ C @ p)
        np.testing.assert_allclose(X[user], naive, atol=1e-10)


def test_batched_gram_and_scatter_add():
    rng = np.random.default_rng(4)
    W = sp.random(6, 5, density=0.5, random_state=4, format="csr")
    Y = rng.normal(size=(5, 3))
    dense = np.einsum("ui,id,ie->ude", W.toarray(), Y, Y)
    np.testing.assert_allclose(batched_gram(W, Y, block_size=4), dense, atol=1e-12)
    target, expected = np.zeros((4, 2)), np.zeros((4, 2))
    idx, vals = np.array([1, 3, 1, 0]), rng.normal(size=(4, 2))
    scatter_add(target, idx, vals)
    np.add.at(expected, idx, vals)
    np.testing.assert_allclose(target, expected)


def test_ease_closed_form_solves_the_constrained_problem():
    X = (R > 0).astype(float)
    reg = 2.0
    B = ease_weights(sp.csr_matrix(X), reg)
    assert np.allclose(np.diag(B), 0)
    for j in range(5):
        others = [c for c in range(5) if c != j]
        A = np.vstack([X[:, others], np.sqrt(reg) * np.eye(4)])
        b = np.linalg.lstsq(A, np.r_[X[:, j], np.zeros(4)], rcond=None)[0]
        np.testing.assert_allclose(B[others, j], b, atol=1e-10)


def test_pearson_on_corated_users_by_hand():
    sim = corated_similarity(sp.csr_matrix(R), "pearson", shrinkage=0.0)
    # items 0 and 3 are co-rated by users 0, 1, 2
    a, b = R[:3, 0], R[:3, 3]
    expected = np.corrcoef(a, b)[0, 1]
    assert sim[0, 3] == pytest.approx(expected)
    shrunk = corated_similarity(sp.csr_matrix(R), "pearson", shrinkage=2.0)
    assert shrunk[0, 3] == pytest.approx(expected * 2 / (2 + 2))


def test_knn_prediction_by_hand():
    model = NeighborhoodCF(similarity="cosine", k=2, shrinkage=0.0, reg_user=1, reg_item=1).fit(frame(R))
    base = lambda u, i: model.mu_ + model.user_bias_[u] + model.item_bias_[i]  # noqa: E731
    s = model.similarity_
    user, item = 2, 4                                  # user 2 rated items 0, 1, 3; predict item 4
    rated = [j for j in np.flatnonzero(R[user]) if s[item, j] > 0]
    top = sorted(rated, key=lambda j: -s[item, j])[:2]
    expected = base(user, item) + sum(s[item, j] * (R[user, j] - base(user, j)) for j in top) / sum(
        s[item, j] for j in top)
    assert model.predict([user], [item])[0] == pytest.approx(np.clip(expected, 1, 5))


def test_explicit_models_fall_back_for_unknown_ids():
    model = BaselinePredictor().fit(frame(R))
    known = model.predict([0], [1])[0]
    assert model.predict([99], [1])[0] == pytest.approx(np.clip(model.mu_ + model.item_bias_[1], 1, 5))
    assert model.predict([0], [99])[0] == pytest.approx(np.clip(model.mu_ + model.user_bias_[0], 1, 5))
    assert known >= 1 and known <= 5


@pytest.mark.parametrize("make", [
    lambda: BiasedMF(n_factors=4, epochs=30, verbose=False),
    lambda: BiasedMF(n_factors=4, epochs=10, solver="als", verbose=False),
])
def test_biased_mf_loss_falls_and_is_deterministic(synthetic_interactions, make):
    a, b = make().fit(synthetic_interactions), make().fit(synthetic_interactions)
    loss = a.history_["loss"].to_numpy()
    assert loss[-1] < loss[0]
    if a.solver == "als":
        assert (np.diff(loss) <= 1e-6 * loss[:-1]).all(), "ALS never increases the loss"
    np.testing.assert_array_equal(a.predict([0, 1], [0, 1]), b.predict([0, 1], [0, 1]))


@pytest.mark.parametrize("make", [
    lambda: ImplicitALS(n_factors=8, epochs=5, verbose=False),
    lambda: BPR(n_factors=8, epochs=5, verbose=False),
])
def test_implicit_models_learn(synthetic_interactions, make):
    model = make().fit(synthetic_interactions)
    loss = model.history_["loss"].to_numpy()
    assert loss[-1] < loss[0]
    recs = model.recommend([0, 1], k=5)
    assert len(recs) == 10 and not set(zip(recs.user_id, recs.item_id)) & set(
        zip(synthetic_interactions.user_id, synthetic_interactions.item_id))


@pytest.mark.parametrize("make, message", [
    (lambda: BiasedMF(n_factors=0), "n_factors"), (lambda: BiasedMF(solver="adam"), "solver"),
    (lambda: BiasedMF(learning_rate=0), "learning_rate"), (lambda: ImplicitALS(alpha=-1), "alpha"),
    (lambda: BPR(epochs=0), "epochs"), (lambda: EASE(reg=0), "reg"),
    (lambda: NeighborhoodCF(similarity="jaccard"), "similarity"),
    (lambda: NeighborhoodCF(kind="both"), "kind"), (lambda: BaselinePredictor(reg_user=-1), "reg_user"),
])
def test_bad_hyper_parameters_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_explicit_models_need_ratings(tiny_ratings):
    with pytest.raises(ValueError, match="'rating'"):
        BiasedMF(verbose=False).fit(tiny_ratings.drop(columns="rating"))


def test_user_based_is_item_based_on_the_transpose():
    user_based = NeighborhoodCF(kind="user", similarity="pearson_baseline", k=2, shrinkage=1.0,
                                reg_user=1.0, reg_item=1.0).fit(frame(R))
    item_based = NeighborhoodCF(kind="item", similarity="pearson_baseline", k=2, shrinkage=1.0,
                                reg_user=1.0, reg_item=1.0).fit(frame(R.T))
    u, i = np.meshgrid(np.arange(4), np.arange(5), indexing="ij")
    # equal up to the 10 alternating bias sweeps, which start from the other side on the transpose
    np.testing.assert_allclose(user_based.predict(u.ravel(), i.ravel()),
                               item_based.predict(i.ravel(), u.ravel()), atol=1e-3)

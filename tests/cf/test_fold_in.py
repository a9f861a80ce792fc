"""ImplicitALS fold-in: a user's vector from their items with the item factors fixed (no refit)."""

import numpy as np
import pytest
import scipy.sparse as sp

from reclib.cf import ImplicitALS, implicit_als_half_step


@pytest.fixture(scope="module")
def fitted(request):
    rng = np.random.default_rng(0)
    keys = rng.choice(200 * 300, size=5000, replace=False)
    import pandas as pd

    frame = pd.DataFrame({"user_id": keys // 300, "item_id": keys % 300})
    return frame, ImplicitALS(n_factors=16, epochs=30, solver="cholesky").fit(frame)


def test_fold_in_of_own_items_reproduces_fitted_scores(fitted):
    frame, model = fitted
    users = model.user_ids_[:40]
    histories = [frame.item_id[frame.user_id == u].tolist() for u in users]
    folded = model.score_histories(histories)
    fitted_scores = model.score(users)
    # the fitted user step solved against the item factors of the previous sweep: close, not equal
    assert np.abs(folded - fitted_scores).max() < 1e-3
    assert np.abs(folded - fitted_scores).max() > 0.0
    np.testing.assert_allclose(model.fold_in(histories), model.user_factors_[:40], atol=1e-3)


def test_fold_in_is_the_exact_user_half_step(fitted):
    _, model = fitted
    histories = [[0, 5, 7], [], [299]]
    matrix = model.history_matrix(histories)
    reference = implicit_als_half_step(matrix, model.item_factors_, model.alpha, model.reg,
                                       solver="cholesky")
    np.testing.assert_allclose(model.fold_in(histories), reference, rtol=1e-10, atol=1e-12)
    assert np.all(model.fold_in(histories)[1] == 0.0)          # no items: the zero vector


def test_fold_in_one_item_by_hand():
    # x = (Y^T Y + alpha y y^T + reg I)^-1 (1 + alpha) y for a single item y
    model = ImplicitALS(n_factors=2, epochs=2, reg=1.0, alpha=2.0).fit(
        __import__("pandas").DataFrame({"user_id": [0, 0, 1], "item_id": [0, 1, 1]}))
    Y = model.item_factors_
    y = Y[1]
    expected = np.linalg.solve(Y.T @ Y + 2.0 * np.outer(y, y) + np.eye(2), 3.0 * y)
    np.testing.assert_allclose(model.fold_in([[1]])[0], expected, rtol=1e-10)


def test_fold_in_rejects_bad_input(fitted):
    _, model = fitted
    with pytest.raises(ValueError, match="unknown|not seen|999"):
        model.fold_in([[999]])
    with pytest.raises(ValueError, match="shape"):
        model.fold_in_matrix(sp.csr_matrix((1, 5)))
    with pytest.raises(ValueError, match="strength"):
        model.fold_in_matrix(sp.csr_matrix(-np.ones((1, 300))))
    with pytest.raises(RuntimeError, match="not fitted"):
        ImplicitALS().fold_in([[1]])


def test_fit_numbers_unchanged_by_fold_in(fitted):
    frame, model = fitted
    before = model.user_factors_.copy()
    model.fold_in([[1, 2]])
    np.testing.assert_array_equal(model.user_factors_, before)


def test_single_user_path_equals_the_batched_kernel(fitted):
    _, model = fitted
    batched = model.fold_in([[0, 5, 7], [1], []])
    for j, history in enumerate([[0, 5, 7], [1], []]):
        np.testing.assert_allclose(model.fold_in([history])[0], batched[j], rtol=1e-9, atol=1e-12)

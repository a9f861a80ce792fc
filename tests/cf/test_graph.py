import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from reclib.cf import RP3beta, rp3beta_weights

# users x items: u0 {i0, i1}, u1 {i0}, u2 {i1, i2}; item degrees (2, 2, 1)
X = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1]], dtype=float))


def test_hand_computed_weights():
    # item -> user -> item walk (alpha = 1): i0 -> [.75, .25, 0], i1 -> [.25, .5, .25],
    # i2 -> [0, .5, .5]; the diagonal is dropped
    walk = np.array([[0, .25, 0], [.25, 0, .25], [0, .5, 0]])
    np.testing.assert_allclose(rp3beta_weights(X, 1.0, 0.0, None), walk, atol=1e-15)
    # beta = 1 divides column j by deg(j) = (2, 2, 1)
    np.testing.assert_allclose(rp3beta_weights(X, 1.0, 1.0, None), walk / [2, 2, 1], atol=1e-15)
    # alpha = 2 squares each transition probability: i0 -> .25 * (.25, .25, 0) + .25 * (1, 0, 0)
    assert rp3beta_weights(X, 2.0, 0.0, None)[0, 1] == pytest.approx(0.0625, abs=1e-15)
    # one neighbour per row; row i1 ties (.25, .25): the lower index wins
    np.testing.assert_allclose(rp3beta_weights(X, 1.0, 0.0, 1),
                               [[0, .25, 0], [.25, 0, 0], [0, .5, 0]], atol=1e-15)
    # ratings count as interactions: values other than 1 change nothing
    np.testing.assert_allclose(rp3beta_weights(X * 4, 1.0, 0.0, None), walk, atol=1e-15)


def test_recommender_scores_and_histories():
    frame = pd.DataFrame({"user_id": [10, 10, 11, 12, 12], "item_id": [0, 1, 0, 1, 2],
                          "rating": [5, 3, 4, 1, 2]})
    model = RP3beta(alpha=1.0, beta=0.0, n_neighbors=None).fit(frame)
    walk = np.array([[0, .25, 0], [.25, 0, .25], [0, .5, 0]])
    np.testing.assert_allclose(model.score([10, 11]), [walk[0] + walk[1], walk[0]], atol=1e-15)
    np.testing.assert_allclose(model.score_histories([[0, 1]]), model.score([10]), atol=1e-15)
    top = model.recommend([11], k=1)
    assert top.item_id.tolist() == [1]


def test_defaults_and_bad_arguments():
    assert RP3beta().get_params()["beta"] == 0.5
    with pytest.raises(ValueError, match="alpha"):
        RP3beta(alpha=0.0)
    with pytest.raises(ValueError, match="beta"):
        RP3beta(beta=-0.1)
    with pytest.raises(ValueError, match="n_neighbors"):
        RP3beta(n_neighbors=0)


def test_movielens_p1_ndcg(movielens):
    from reclib.evaluation import P1

    split = P1.split(movielens.ratings)
    train, test = split.train, split.test
    assert P1.evaluate(RP3beta().fit(train), train, test)["ndcg"] == pytest.approx(0.4367, abs=1e-4)

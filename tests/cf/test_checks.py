"""The derivation-checking tools of notebooks 02 and 02b (reclib.cf.checks)."""

import numpy as np
import pytest

from reclib.cf.checks import finite_difference, relative_error, worked_example, worked_example_frame


def test_worked_example_is_the_documented_matrix_and_a_fresh_copy():
    first = worked_example()
    assert first.shape == (4, 5) and (first > 0).sum() == 13 and set(np.unique(first)) == {0, 1, 3, 4, 5}
    first[0, 0] = 99
    assert worked_example()[0, 0] == 5
    ratings = worked_example_frame()
    assert list(ratings.columns) == ["user_id", "item_id", "rating"] and len(ratings) == 13
    assert ratings.iloc[0].tolist() == [0, 0, 5] and ratings.iloc[-1].tolist() == [3, 3, 4]


def test_finite_difference_matches_an_analytic_gradient_and_restores_the_parameter():
    rng = np.random.default_rng(0)
    a, x = rng.normal(size=(3, 3)), rng.normal(size=(3, 2))
    before = x.copy()
    numeric = finite_difference(lambda: float(np.sum((a @ x) ** 2)), x)
    assert np.array_equal(x, before)
    assert relative_error(numeric, 2 * a.T @ (a @ x)) < 1e-8


def test_finite_difference_detects_a_wrong_gradient():
    x = np.array([1.0, 2.0])
    numeric = finite_difference(lambda: float(x[0] ** 2 + 3 * x[1]), x)
    assert np.allclose(numeric, [2.0, 3.0], atol=1e-6)
    assert relative_error(numeric, np.array([2.0, 0.0])) > 0.3


def test_relative_error_bounds_and_bad_input():
    assert relative_error(np.ones(3), np.ones(3)) == 0 and relative_error(np.zeros(2), np.zeros(2)) == 0
    assert relative_error(np.ones(2), -np.ones(2)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one shape"):
        relative_error(np.ones(2), np.ones(3))
    with pytest.raises(TypeError, match="float NumPy array"):
        finite_difference(lambda: 0.0, np.array([1, 2]))
    with pytest.raises(ValueError, match="eps"):
        finite_difference(lambda: 0.0, np.ones(2), eps=0.0)

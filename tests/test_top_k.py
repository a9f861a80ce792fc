"""top_k is exactly 'score descending, then lowest item index' on every machine, also under ties."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reclib.base import top_k


def reference_top_k(scores: np.ndarray, k: int, exclude: sp.spmatrix | None = None):
    """Full lexsort: by score descending, then by item index ascending."""
    scores = np.array(scores, dtype=np.float64)
    if exclude is not None:
        coo = sp.coo_matrix(exclude)
        scores[coo.row, coo.col] = -np.inf
    n_items = scores.shape[1]
    index = np.broadcast_to(np.arange(n_items), scores.shape)
    order = np.array([np.lexsort((index[r], -scores[r])) for r in range(len(scores))])
    items = order[:, :min(k, n_items)]
    return items, np.take_along_axis(scores, items, axis=1)


@st.composite
def tie_heavy(draw):
    """Integer score matrices with few distinct values (many ties), k and an optional exclusion."""
    n_rows = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 60))
    scores = draw(arrays(np.int8, (n_rows, n_items), elements=st.integers(-2, 2)))
    k = draw(st.integers(1, n_items + 3))
    mask = draw(arrays(np.bool_, (n_rows, n_items)))
    exclude = sp.csr_matrix(mask.astype(np.float64)) if draw(st.booleans()) else None
    return scores.astype(np.float64), k, exclude


@settings(max_examples=300, deadline=None, derandomize=True)
@given(tie_heavy())
def test_matches_reference_lexsort(case):
    scores, k, exclude = case
    items, values = top_k(scores.copy(), k, exclude)
    want_items, want_values = reference_top_k(scores, k, exclude)
    np.testing.assert_array_equal(items, want_items)
    np.testing.assert_array_equal(values, want_values)


def test_a_row_of_zeros_gives_the_first_items():
    items, _ = top_k(np.zeros((1, 5000)), 10)
    assert items.tolist() == [list(range(10))]


def test_every_row_of_a_tied_matrix_keeps_the_rule():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 3, size=(300, 1682)).astype(np.float64)
    items, _ = top_k(scores.copy(), 10)
    np.testing.assert_array_equal(items, reference_top_k(scores, 10)[0])


def test_nan_scores_raise():
    scores = np.ones((3, 5))
    scores[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN in 1 of 3 rows"):
        top_k(scores, 2)


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "3"])
def test_bad_k(k):
    with pytest.raises(ValueError, match="k must be a positive integer"):
        top_k(np.ones((2, 4)), k)

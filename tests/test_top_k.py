"""top_k is exactly 'score descending, then lowest tie key, then lowest item index' on every machine,
also under ties; the kit's tie keys are a fixed function of the raw item ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reclib.base import top_k
from reclib.data.ties import tie_keys


def reference_top_k(scores: np.ndarray, k: int, exclude: sp.spmatrix | None = None,
                    tie_keys: np.ndarray | None = None):
    """Full lexsort: by score descending, then by tie key, then by item index ascending."""
    scores = np.array(scores, dtype=np.float64)
    if exclude is not None:
        coo = sp.coo_matrix(exclude)
        scores[coo.row, coo.col] = -np.inf
    n_items = scores.shape[1]
    index = np.broadcast_to(np.arange(n_items), scores.shape)
    keys = np.zeros(n_items) if tie_keys is None else tie_keys
    order = np.array([np.lexsort((index[r], keys, -scores[r])) for r in range(len(scores))])
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


@settings(max_examples=200, deadline=None, derandomize=True)
@given(tie_heavy(), st.integers(1, 4))
def test_tie_keys_order_ties_and_equal_keys_fall_back_to_the_index(case, n_keys):
    scores, k, exclude = case
    keys = (np.arange(scores.shape[1]) * 7919) % (n_keys + 2)        # few distinct keys: equal keys too
    items, values = top_k(scores.copy(), k, exclude, keys)
    want_items, want_values = reference_top_k(scores, k, exclude, keys)
    np.testing.assert_array_equal(items, want_items)
    np.testing.assert_array_equal(values, want_values)


def test_tie_keys_of_the_wrong_shape_raise():
    with pytest.raises(ValueError, match=r"tie_keys must hold one key per item \(4,\)"):
        top_k(np.ones((2, 4)), 2, tie_keys=np.arange(3))


PINNED_ORDER_OF_1_TO_10 = [5, 3, 9, 8, 1, 4, 6, 0, 2, 7]


def test_kit_tie_keys_depend_only_on_the_id():
    ids = np.array([1, 2, 50, 1682, 7])
    keys = tie_keys(ids)
    assert keys.dtype == np.uint64
    np.testing.assert_array_equal(tie_keys(ids.astype(np.int32)), keys)          # any integer width
    np.testing.assert_array_equal(tie_keys(ids.astype(float)), keys)             # whole floats
    np.testing.assert_array_equal(tie_keys(ids.astype(object)), keys)            # Python ints
    np.testing.assert_array_equal(tie_keys(pd.array(ids, dtype="Int64")), keys)  # pandas' nullable ints
    np.testing.assert_array_equal(tie_keys(np.array(["a", "b"], dtype=object)), tie_keys(np.array(["a", "b"])))
    np.testing.assert_array_equal(tie_keys(ids[::-1]), keys[::-1])                # row order
    np.testing.assert_array_equal(tie_keys(ids[[3, 1]]), keys[[3, 1]])            # any subset
    assert not np.array_equal(tie_keys(ids.astype(str)), keys)                    # "7" is not 7
    assert not np.array_equal(tie_keys(ids, seed=1), keys)
    # pinned, so a change of the rule (and every tied metric with it) is a visible decision
    assert np.argsort(tie_keys(np.arange(1, 11))).tolist() == PINNED_ORDER_OF_1_TO_10


def test_a_constant_model_under_the_kit_rule_is_not_the_lowest_ids():
    keys = tie_keys(np.arange(1, 1683))
    items, _ = top_k(np.zeros((1, 1682)), 10, tie_keys=keys)
    assert items[0].tolist() == np.argsort(keys)[:10].tolist()
    assert items[0].min() > 10


def test_recommend_evaluation_and_serving_break_ties_alike():
    """A model whose scores all tie: recommend, ranking_result and the real-time server's cold
    start all follow the kit's tie order, never the item index."""
    from reclib.cf import ItemKNN, MostPopular
    from reclib.evaluation import ranking_result
    from reclib.serving import RealTimeRecommender

    items = np.arange(101, 131)
    train = pd.DataFrame({"user_id": np.repeat([1, 2, 3], 10), "item_id": items})   # every item rated once
    test = pd.DataFrame({"user_id": [1], "item_id": [115]})
    by_key = items[np.argsort(tie_keys(items))]
    unseen_by_user_1 = [i for i in by_key if i not in set(items[:10])]
    model = MostPopular().fit(train)
    assert model.recommend([1], k=5)["item_id"].tolist() == unseen_by_user_1[:5]
    assert ranking_result(model, train, test, k=5).top_items.loc[1].tolist() == unseen_by_user_1[:5]
    server = RealTimeRecommender(ItemKNN().fit(train), k=5)
    assert server.recommend("a new user")["item_id"].tolist() == by_key[:5].tolist()
    assert by_key[:5].tolist() != items[:5].tolist()

"""Semantic IDs: residual k-means codes, disambiguation, usage and purity, on worked examples."""

from __future__ import annotations

import numpy as np
import pytest

from reclib.features import ResidualQuantizer, codebook_usage, prefix_purity, semantic_ids

CORNERS = np.array([[10.0, 1.0], [10.0, -1.0], [-10.0, 1.0], [-10.0, -1.0]])


def test_two_levels_split_the_corners_exactly():
    """Level 1 splits by x (centroids (+-10, 0)); level 2 splits what is left by y ((0, +-1)).
    Codes are numbered by first appearance: the first item gets code 0 at every level."""
    rq = ResidualQuantizer(n_levels=2, n_codes=2).fit(CORNERS)
    codes = rq.transform(CORNERS)
    assert codes.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    np.testing.assert_allclose(rq.codebooks_, [[[10, 0], [-10, 0]], [[0, 1], [0, -1]]], atol=1e-12)
    np.testing.assert_allclose(rq.reconstruct(codes), CORNERS, atol=1e-12)
    assert rq.reconstruction_error(CORNERS) == pytest.approx(0.0, abs=1e-24)
    one_level = ResidualQuantizer(n_levels=1, n_codes=2).fit(CORNERS)
    # one level keeps (0, +-1) of every item: 4 / (4 * 101) of the squared norm
    assert one_level.reconstruction_error(CORNERS) == pytest.approx(4 / 404)
    assert one_level.transform([[9.0, 5.0], [-0.5, 0.0]]).tolist() == [[0], [1]]   # new items, nearest


def test_disambiguation_makes_every_id_distinct():
    codes = np.array([[0, 1], [0, 1], [1, 0], [0, 1], [1, 1]])
    ids = semantic_ids(codes)
    assert ids.tolist() == [[0, 1, 0], [0, 1, 1], [1, 0, 0], [0, 1, 2], [1, 1, 0]]
    assert len(np.unique(ids, axis=0)) == len(ids)


def test_usage_and_purity_on_a_hand_case():
    codes = np.array([[0, 0], [0, 1], [0, 1], [2, 0]])
    np.testing.assert_allclose(codebook_usage(codes, 4), [0.5, 0.5])
    # prefix 0: labels a, a, b -> majority a (2 of 3); prefix 2: c (1 of 1) -> 3 of 4
    assert prefix_purity(codes, ["a", "a", "b", "c"], 1) == 0.75
    assert prefix_purity(codes, ["a", "a", "b", "c"], 2) == 0.75     # (0,1) holds a and b: tie -> a
    assert prefix_purity(codes, ["b", "a", "b", "a"], 1) == 0.75


def test_planted_clusters_share_a_prefix():
    """Eight well-separated clusters: one level of eight codes recovers them (purity 1), random
    codes of the same size do not."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(8, 16)) * 10
    cluster = np.repeat(np.arange(8), 25)
    vectors = centres[cluster] + rng.normal(size=(200, 16)) * 0.1
    codes = ResidualQuantizer(n_levels=2, n_codes=8).fit_transform(vectors)
    assert prefix_purity(codes, cluster, 1) == 1.0
    assert prefix_purity(rng.integers(0, 8, size=(200, 1)), cluster, 1) < 0.4
    assert codebook_usage(codes, 8).tolist() == [1.0, 1.0]


def test_same_seed_same_codes_and_more_levels_reconstruct_better():
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(300, 12))
    a = ResidualQuantizer(n_levels=3, n_codes=16, random_state=5).fit(vectors)
    b = ResidualQuantizer(n_levels=3, n_codes=16, random_state=5).fit(vectors)
    np.testing.assert_array_equal(a.transform(vectors), b.transform(vectors))
    np.testing.assert_array_equal(a.codebooks_, b.codebooks_)
    errors = [ResidualQuantizer(n_levels=n, n_codes=16).fit(vectors).reconstruction_error(vectors)
              for n in (1, 2, 3)]
    assert errors[0] > errors[1] > errors[2] > 0.0


def test_fewer_distinct_vectors_than_codes_leave_codes_unused():
    vectors = np.array([[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3)
    rq = ResidualQuantizer(n_levels=2, n_codes=4).fit(vectors)
    assert rq.level_sizes_.tolist() == [2, 1]
    assert rq.transform(vectors).tolist() == [[0, 0]] * 3 + [[1, 0]] * 3
    assert rq.reconstruction_error(vectors) == pytest.approx(0.0, abs=1e-24)


@pytest.mark.parametrize("call, error, match", [
    (lambda: ResidualQuantizer(n_codes=1), ValueError, "n_codes must be >= 2"),
    (lambda: ResidualQuantizer(n_levels=0), ValueError, "n_levels"),
    (lambda: ResidualQuantizer(random_state=-1), ValueError, "random_state"),
    (lambda: ResidualQuantizer(n_codes=8).fit(CORNERS), ValueError, "n_codes=8 is more than the 4 vectors"),
    (lambda: ResidualQuantizer(n_codes=2).fit(np.where(CORNERS > 5, np.nan, CORNERS)), ValueError, "vectors"),
    (lambda: ResidualQuantizer(n_codes=2).fit(np.ones(4)), ValueError, r"\(n, d\)"),
    (lambda: ResidualQuantizer(n_codes=2).transform(CORNERS), RuntimeError, "not fitted"),
    (lambda: ResidualQuantizer(n_codes=2).fit(CORNERS).transform(np.ones((2, 3))), ValueError, r"\(n, 2\)"),
    (lambda: ResidualQuantizer(n_levels=2, n_codes=2).fit(CORNERS).reconstruct([[0]]), ValueError,
     "at least n_levels=2"),
    (lambda: semantic_ids(np.ones((2, 2))), TypeError, "integer"),
    (lambda: prefix_purity([[0], [1]], ["a"], 1), ValueError, "one non-null label per item"),
    (lambda: prefix_purity([[0], [1]], ["a", "b"], 2), ValueError, "at most the 1 code columns"),
])
def test_bad_input_is_refused_naming_it(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_item_feature_texts_from_a_series_are_aligned_on_item_ids():
    import pandas as pd

    from reclib.features import ItemFeatures

    texts = pd.Series({12: "twelve", 10: "ten", 11: "eleven"})
    assert ItemFeatures([10, 11, 12], texts=texts).texts.tolist() == ["ten", "eleven", "twelve"]
    with pytest.raises(ValueError, match="1 missing, e.g. \\[13\\]"):
        ItemFeatures([10, 13], texts=texts)

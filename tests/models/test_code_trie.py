"""The semantic-ID trie: item log-probabilities equal the product of constrained softmaxes written
out by hand, sum to one, and beam search only spells real items, equals exhaustive decoding when
the beam holds every prefix, honours exclusions and breaks ties by a fixed rule."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from reclib.base import top_k
from reclib.models.code_trie import CodeTrie

# four items: (0,0), (0,1), (1,0), (2,3); level 1 has 4 codes, so (0,·) branches and (1,·), (2,·) do not
CODES = np.array([[0, 0], [0, 1], [1, 0], [2, 3]])


def _random_logits(seed: int, sizes) -> callable:
    """A fixed logit table per (level, node, code): the model side of a decoding test."""
    rng = np.random.default_rng(seed)
    tables = [rng.normal(size=(64, k)) for k in sizes]

    def logits(level, nodes):
        b = nodes.shape[0]
        query = np.arange(b)[:, None, None] * 0.1                  # each query row differs a little
        return tables[level][nodes] + query
    return logits


def test_structure_of_a_small_trie():
    trie = CodeTrie(CODES)
    assert trie.depth == 2 and trie.level_sizes.tolist() == [3, 4]
    np.testing.assert_array_equal(trie.node_codes[1], [[0], [1], [2]])
    np.testing.assert_array_equal(trie.children[0], [[0, 1, 2]])
    np.testing.assert_array_equal(trie.children[1], [[0, 1, -1, -1], [2, -1, -1, -1], [-1, -1, -1, 3]])
    np.testing.assert_array_equal(trie.item_counts[1], [2, 1, 1])


def test_log_probs_worked_example():
    """Root logits (1, 2, 3) over codes 0..2; under prefix 0 logits (0, log 3, *, *): the item
    (0, 1) has p = e/(e+e^2+e^3) * 3/4, and (2, 3) has e^3/(e+e^2+e^3) * 1 (a lone child)."""
    def logits(level, nodes):
        table = [np.array([[1.0, 2.0, 3.0]]),
                 np.array([[0.0, np.log(3.0), 5.0, 5.0], [9.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 7.0]])]
        return table[level][nodes]
    p = np.exp(CodeTrie(CODES).log_probs(logits, 1))[0]
    root = np.exp([1.0, 2.0, 3.0]) / np.exp([1.0, 2.0, 3.0]).sum()
    np.testing.assert_allclose(p, [root[0] / 4, root[0] * 3 / 4, root[1], root[2]])
    assert p.sum() == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000))
def test_log_probs_sum_to_one_and_beam_search_is_exact_with_a_wide_beam(seed):
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(2, 30))
    codes = np.unique(rng.integers(0, 4, size=(3 * n_items, 3)), axis=0)[:n_items]
    codes = codes[rng.permutation(len(codes))]
    trie = CodeTrie(codes)
    logits = _random_logits(seed, trie.level_sizes)
    scores = trie.log_probs(logits, 3)
    np.testing.assert_allclose(np.exp(scores).sum(axis=1), 1.0, rtol=1e-9)
    k = min(3, len(codes))
    items, item_scores = trie.beam_search(logits, 3, k, beam_width=len(codes))
    expected, expected_scores = top_k(scores.copy(), k)
    np.testing.assert_allclose(item_scores, expected_scores, rtol=1e-9)
    np.testing.assert_array_equal(items, expected)


def test_beam_search_returns_real_items_and_honours_exclusions():
    rng = np.random.default_rng(0)
    codes = np.unique(rng.integers(0, 5, size=(200, 3)), axis=0)
    trie = CodeTrie(codes)
    logits = _random_logits(1, trie.level_sizes)
    exclude = sp.random(4, len(codes), density=0.5, random_state=2, format="csr")
    items, scores = trie.beam_search(logits, 4, 10, beam_width=10, exclude=exclude)
    assert (items >= 0).all() and np.isfinite(scores).all()
    assert not exclude.toarray()[np.arange(4)[:, None], items].any()
    assert (np.diff(scores, axis=1) <= 0).all()
    # everything but items 3 and 7 excluded: those two, then nothing
    only = np.ones((1, len(codes)))
    only[0, [3, 7]] = 0
    items, scores = trie.beam_search(logits, 1, 4, beam_width=4, exclude=sp.csr_matrix(only))
    assert sorted(items[0, :2]) == [3, 7] and (items[0, 2:] == -1).all() and np.isneginf(scores[0, 2:]).all()


def test_ties_go_to_the_lower_code():
    """All logits equal: every item of the two-level trie (0,0),(0,1),(1,0),(2,3) ties at each level,
    so the beam keeps codes in order and the items come in trie order."""
    trie = CodeTrie(CODES)
    items, _ = trie.beam_search(lambda level, nodes: np.zeros(nodes.shape + (trie.level_sizes[level],)), 1, 3, 3)
    np.testing.assert_array_equal(items, [[2, 3, 0]])      # p: 1/3, 1/3, 1/6 (prefix 0 splits in two)


@pytest.mark.parametrize("codes, match", [
    (np.array([[0, 1], [0, 1]]), "distinct"),
    (np.array([[0, -1]]), "non-negative"),
    (np.array([0.5, 1.0]), "2-D integer"),
])
def test_bad_codes_raise(codes, match):
    with pytest.raises(ValueError, match=match):
        CodeTrie(codes)


def test_bad_beam_arguments_raise():
    trie = CodeTrie(CODES)
    logits = _random_logits(0, trie.level_sizes)
    with pytest.raises(ValueError, match="beam_width"):
        trie.beam_search(logits, 1, 3, beam_width=2)
    with pytest.raises(ValueError, match="exclude must have shape"):
        trie.beam_search(logits, 2, 1, beam_width=2, exclude=sp.csr_matrix((1, 4)))


def test_non_finite_logits_raise():
    trie = CodeTrie(CODES)
    with pytest.raises(FloatingPointError, match="NaN or inf"):
        trie.log_probs(lambda level, nodes: np.full(nodes.shape + (trie.level_sizes[level],), np.nan), 1)


def test_item_of_finds_real_tuples_only():
    trie = CodeTrie(CODES)
    np.testing.assert_array_equal(trie.item_of([[2, 3], [0, 1], [1, 1], [3, 0], [0, 9]]), [3, 1, -1, -1, -1])


def test_steps_show_the_beams_kept_at_each_level():
    trie = CodeTrie(CODES)
    steps = []
    zeros = lambda level, nodes: np.zeros(nodes.shape + (trie.level_sizes[level],))   # noqa: E731
    trie.beam_search(zeros, 1, 2, 2, steps=steps)
    (first, first_scores), (second, second_scores) = steps
    np.testing.assert_array_equal(first[0], [[0], [1]])                 # codes 0 and 1 kept (ties: lower code)
    np.testing.assert_allclose(np.exp(first_scores[0]), [1 / 3, 1 / 3])
    np.testing.assert_array_equal(second[0], [[1, 0], [0, 0]])         # (1,0): 1/3 beats (0,0): 1/6
    np.testing.assert_allclose(np.exp(second_scores[0]), [1 / 3, 1 / 6])


def test_wide_beam_with_exclusions_ranks_by_the_models_probabilities():
    """Excluded items are masked, not renormalised away: a beam holding every prefix returns the
    top of log_probs with the excluded items removed, with the same scores."""
    rng = np.random.default_rng(5)
    codes = np.unique(rng.integers(0, 4, size=(120, 3)), axis=0)
    trie = CodeTrie(codes)
    logits = _random_logits(2, trie.level_sizes)
    exclude = sp.random(3, len(codes), density=0.4, random_state=3, format="csr")
    items, scores = trie.beam_search(logits, 3, 5, beam_width=len(codes), exclude=exclude)
    expected, expected_scores = top_k(trie.log_probs(logits, 3), 5, exclude)
    np.testing.assert_array_equal(items, expected)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-9)
    # a repeated entry excludes one item, not its siblings
    twice = sp.csr_matrix((np.ones(2), ([0, 0], [0, 0])), shape=(1, len(codes)))
    once = sp.csr_matrix((np.ones(1), ([0], [0])), shape=(1, len(codes)))
    np.testing.assert_array_equal(trie.beam_search(logits, 1, 5, 5, exclude=twice)[0],
                                  trie.beam_search(logits, 1, 5, 5, exclude=once)[0])

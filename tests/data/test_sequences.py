"""Sequences and training windows: the worked example of the module doc, ties, every pair once."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reclib.data.sequences import last_window, pad_histories, training_windows, user_sequences


def _frame(rows):
    return pd.DataFrame(rows, columns=["user_id", "item", "timestamp"])


def test_worked_example_of_the_module_doc():
    # one user, items a..e = indices 0..4 = codes 1..5, in time order
    frame = _frame([("u", i, t) for t, i in enumerate(range(5))])
    seqs = user_sequences(frame, frame["item"].to_numpy())
    np.testing.assert_array_equal(seqs.sequence(0), [1, 2, 3, 4, 5])
    inputs, targets = training_windows(seqs, 3)
    np.testing.assert_array_equal(inputs, [[0, 0, 1], [2, 3, 4]])
    np.testing.assert_array_equal(targets, [[0, 0, 2], [3, 4, 5]])
    np.testing.assert_array_equal(last_window(seqs, 3), [[3, 4, 5]])
    np.testing.assert_array_equal(last_window(seqs, 7), [[0, 0, 1, 2, 3, 4, 5]])


def test_time_order_then_item_index_breaks_ties_and_row_order_does_not_matter():
    frame = _frame([("v", 9, 1), ("u", 3, 5), ("u", 1, 5), ("u", 7, 2), ("v", 2, 0)])
    seqs = user_sequences(frame, frame["item"].to_numpy())
    np.testing.assert_array_equal(seqs.users, ["u", "v"])
    np.testing.assert_array_equal(seqs.sequence(0), [8, 2, 4])     # t=2: 7; t=5 tie: 1 then 3
    np.testing.assert_array_equal(seqs.sequence(1), [3, 10])
    shuffled = frame.sample(frac=1.0, random_state=3)
    again = user_sequences(shuffled, shuffled["item"].to_numpy())
    np.testing.assert_array_equal(again.codes, seqs.codes)


@pytest.mark.parametrize("max_length", [1, 2, 5, 50])
def test_every_consecutive_pair_appears_exactly_once(max_length):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 30, size=40)
    rows = [(u, int(rng.integers(0, 100)), t) for u, n in enumerate(lengths) for t in range(n)]
    frame = _frame(rows)
    seqs = user_sequences(frame, frame["item"].to_numpy())
    inputs, targets = training_windows(seqs, max_length)
    assert inputs.shape[1] == targets.shape[1] == max_length
    got = sorted(zip(inputs[targets > 0].tolist(), targets[targets > 0].tolist()))
    want = sorted((int(a), int(b)) for u in range(len(seqs.users)) for a, b in
                  zip(seqs.sequence(u)[:-1], seqs.sequence(u)[1:]))
    assert got == want
    assert ((inputs > 0) == (targets > 0)).all()           # an input has a target and vice versa
    # padding only on the left: once a row starts, it runs to the end... except the oldest window
    starts = (targets > 0).argmax(axis=1)
    assert all((targets[r, starts[r]:] > 0).all() for r in range(len(targets)))
    assert len(inputs) == int(np.ceil(np.maximum(lengths - 1, 0) / max_length).sum())


def test_last_window_matches_the_padded_histories():
    rng = np.random.default_rng(1)
    frame = _frame([(u, int(rng.integers(0, 50)), t) for u in range(10) for t in range(int(rng.integers(1, 12)))])
    seqs = user_sequences(frame, frame["item"].to_numpy())
    expected = pad_histories([seqs.sequence(u) for u in range(10)], 6)
    np.testing.assert_array_equal(last_window(seqs, 6), expected)


def test_bad_input_names_the_problem():
    frame = _frame([("u", 0, 1)])
    with pytest.raises(ValueError, match="timestamp"):
        user_sequences(frame.drop(columns="timestamp"), np.array([0]))
    with pytest.raises(ValueError, match="item_index"):
        user_sequences(frame, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"item_index must be indices in \[0, .*got -1"):
        user_sequences(frame, np.array([-1]))
    with pytest.raises(ValueError, match="max_length"):
        training_windows(user_sequences(frame, np.array([0])), 0)


def test_order_signal_on_a_hand_computed_case():
    from reclib.data.sequences import order_signal
    # items 0, 1 point the same way, item 2 is orthogonal; sequence 0 1 2
    frame = _frame([("u", 0, 0), ("u", 1, 1), ("u", 2, 2)])
    seqs = user_sequences(frame, frame["item"].to_numpy())
    vectors = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    consecutive, random_pairs = order_signal(seqs, vectors, random_state=0)
    assert consecutive == pytest.approx(0.5)                   # (cos(0,1) = 1 + cos(1,2) = 0) / 2
    partners = (np.random.default_rng(0).random(3) * 3).astype(int)
    expected = np.mean([float(a == b or {a, b} == {0, 1}) for a, b in zip(range(3), partners)])
    assert random_pairs == pytest.approx(expected)


@pytest.mark.parametrize("max_length,stride", [(5, 2), (5, 1), (3, 3), (50, 25), (4, 3)])
def test_overlapping_windows_train_every_pair_once_with_its_history(max_length, stride):
    rng = np.random.default_rng(2)
    lengths = rng.integers(1, 40, size=30)
    frame = _frame([(u, int(rng.integers(0, 100)), t) for u, n in enumerate(lengths) for t in range(n)])
    seqs = user_sequences(frame, frame["item"].to_numpy())
    inputs, targets = training_windows(seqs, max_length, stride=stride)
    got = sorted(zip(inputs[targets > 0].tolist(), targets[targets > 0].tolist()))
    want = sorted((int(a), int(b)) for u in range(len(seqs.users)) for a, b in
                  zip(seqs.sequence(u)[:-1], seqs.sequence(u)[1:]))
    assert got == want
    # each window's inputs are a contiguous run of one user's sequence, left-padded
    for row in inputs:
        real = row[row > 0]
        assert len(real) == (row > 0).sum() and (row[:max_length - len(real)] == 0).all()
    # a trained target sees max_length - stride + 1 items or more, unless it is among its user's
    # first max_length - stride pairs (then it sees all of its history)
    rows, cols = np.nonzero(targets)
    context = np.array([(inputs[r, :c + 1] > 0).sum() for r, c in zip(rows, cols)])
    pair_index = {}
    for u in range(len(seqs.users)):
        for j, (a, b) in enumerate(zip(seqs.sequence(u)[:-1], seqs.sequence(u)[1:]), start=1):
            pair_index.setdefault((int(a), int(b)), []).append(j)
    for r, c, seen in zip(rows, cols, context):
        shortest = min(pair_index[(int(inputs[r, c]), int(targets[r, c]))])
        assert seen >= min(max_length - stride + 1, shortest)


def test_stride_defaults_to_the_window_and_is_checked():
    frame = _frame([("u", i, t) for t, i in enumerate(range(9))])
    seqs = user_sequences(frame, frame["item"].to_numpy())
    a = training_windows(seqs, 4)
    b = training_windows(seqs, 4, stride=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    inputs, targets = training_windows(seqs, 4, stride=2)      # codes 1..9: 8 pairs, 3 windows
    assert inputs.tolist() == [[1, 2, 3, 4], [3, 4, 5, 6], [5, 6, 7, 8]]
    assert targets.tolist() == [[2, 3, 4, 5], [0, 0, 6, 7], [0, 0, 8, 9]]
    with pytest.raises(ValueError, match="stride"):
        training_windows(seqs, 4, stride=5)

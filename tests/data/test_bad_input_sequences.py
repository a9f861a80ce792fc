"""The sequence helpers check what ``fit`` checks: no NaN timestamp read as the newest event, no
text timestamp sorted as text, no null user, no wrapped or truncated item index."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reclib.checks import ParameterTypeError
from reclib.data.sequences import order_signal, pad_histories, user_sequences

FRAME = pd.DataFrame({"user_id": ["a", "a", "b"], "timestamp": [1, 2, 3]})
ITEMS = np.array([0, 1, 2])
SEQS = user_sequences(FRAME, ITEMS)
VECTORS = np.eye(3)

CASES = [
    ("NaN timestamp", lambda: user_sequences(FRAME.assign(timestamp=[1, np.nan, 3]), ITEMS), ValueError,
     "column 'timestamp': 1 null values"),
    ("text timestamp", lambda: user_sequences(FRAME.assign(timestamp=["9", "10", "11"]), ITEMS), ValueError,
     "column 'timestamp': .*non-numeric"),
    ("infinite timestamp", lambda: user_sequences(FRAME.assign(timestamp=[1, np.inf, 3]), ITEMS), ValueError,
     r"column 'timestamp': .*non-finite"),
    ("null user", lambda: user_sequences(FRAME.assign(user_id=["a", None, "b"]), ITEMS), ValueError,
     "column 'user_id': 1 null values"),
    ("negative item", lambda: user_sequences(FRAME, [0, -1, 2]), ValueError, r"item_index .* got -1 at position \(1,\)"),
    ("fractional item", lambda: user_sequences(FRAME, [0, 1.5, 2]), ValueError,
     r"item_index must hold integer indices, got 1.5"),
    ("item beyond n_items", lambda: user_sequences(FRAME, ITEMS, n_items=2), ValueError,
     r"item_index must be indices in \[0, 2\), got 2"),
    ("raw item ids", lambda: user_sequences(FRAME, np.array(["x", "y", "z"])), ParameterTypeError, "item_index"),
    ("too few item indices", lambda: user_sequences(FRAME, [0, 1]), ValueError, r"one index per row \(3,\)"),
    ("pad: negative code", lambda: pad_histories([[1, -2]], 3), ValueError, r"history codes .* got -2"),
    ("pad: fractional code", lambda: pad_histories([[1, 2.5]], 3), ValueError, "history codes must hold integer"),
    ("pad: code 0 (padding)", lambda: pad_histories([[0, 1]], 3), ValueError, "code 0 is the padding"),
    ("pad: code beyond n_items", lambda: pad_histories([[1, 4]], 3, n_items=3), ValueError,
     r"history codes must be indices in \[0, 4\), got 4"),
    ("pad: a string", lambda: pad_histories("abc", 3), ValueError, "histories must be a list of code lists"),
    ("pad: max_length 0", lambda: pad_histories([[1]], 0), ValueError, "max_length"),
    ("order: NaN vector", lambda: order_signal(SEQS, np.array([[1.0, 0], [np.nan, 1], [0, 1]])), ValueError,
     r"item_vectors holds 1 non-finite value"),
    ("order: too few rows", lambda: order_signal(SEQS, np.eye(2)), ValueError,
     r"item_vectors must be \(n_items, d\) with a row for every item code"),
]


@pytest.mark.parametrize("call, error, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_naming_it(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


def test_whole_float_indices_and_valid_histories_still_work():
    np.testing.assert_array_equal(user_sequences(FRAME, ITEMS.astype(float)).codes, SEQS.codes)
    np.testing.assert_array_equal(pad_histories([[1, 2, 3, 4], [], [5]], 3), [[2, 3, 4], [0, 0, 0], [0, 0, 5]])
    np.testing.assert_array_equal(pad_histories([], 2), np.zeros((0, 2)))

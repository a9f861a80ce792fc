"""``reclib.checks.check_indices``: the one check for user and item indices."""

from __future__ import annotations

import numpy as np
import pytest

from reclib.checks import ParameterTypeError, check_indices


@pytest.mark.parametrize("values, expected", [([0, 4, 2], [0, 4, 2]), (np.array([1.0, 3.0]), [1, 3]),
                                              (np.uint8(4), 4), ([], [])])
def test_whole_indices_in_range_come_back_as_int64(values, expected):
    out = check_indices("items", values, 5)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("values, message", [
    ([0, -1, 2], r"items must be indices in \[0, 5\), got -1 at position \(1,\) \(1 out of range\)"),
    ([5, 0, 7], r"items must be indices in \[0, 5\), got 5 at position \(0,\) \(2 out of range\)"),
    ([[0, 1], [2, 9]], r"got 9 at position \(1, 1\)"),
    ([1.0, 2.5], r"items must hold integer indices, got 2.5 at position \(1,\)"),
    ([np.nan], r"items must hold integer indices, got nan"),
    ([np.inf], r"items must hold integer indices, got inf"),
])
def test_negative_fractional_or_too_large_indices_are_refused_naming_the_first(values, message):
    with pytest.raises(ValueError, match=message):
        check_indices("items", values, 5)


def test_raw_ids_are_refused_with_a_hint():
    with pytest.raises(ParameterTypeError, match=r"items must be integer indices in \[0, 5\), got dtype <U2 "
                                                 r"\(raw ids\? encode them"):
        check_indices("items", ["i1", "i2"], 5)


def test_the_number_of_dimensions_is_checked_when_asked():
    with pytest.raises(ValueError, match=r"users must be a 1-D array of indices, got shape \(2, 1\)"):
        check_indices("users", [[0], [1]], 3, ndim=1)

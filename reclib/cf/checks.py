"""Checking a derivation by numbers: the worked example of notebooks 02 and 02b, central finite
differences and a relative error.

Every gradient or closed form derived in those notebooks is compared with a slow, obvious
computation on :func:`worked_example`, a 4 x 5 rating matrix small enough to verify by hand.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

__all__ = ["finite_difference", "relative_error", "worked_example", "worked_example_frame"]


def worked_example() -> np.ndarray:
    """The 4 users x 5 items rating matrix (stars 1-5, 0 = not rated; 13 ratings), a new copy each call."""
    return np.array([[5, 3, 0, 1, 4],
                     [4, 0, 0, 1, 5],
                     [1, 1, 0, 5, 0],
                     [0, 1, 5, 4, 0]], dtype=float)


def worked_example_frame() -> pd.DataFrame:
    """:func:`worked_example` as ratings: one row per rated cell, columns ``user_id``, ``item_id``
    (the 0-based row and column) and ``rating``, in row-major order."""
    matrix = worked_example()
    users, items = np.nonzero(matrix)
    return pd.DataFrame({"user_id": users, "item_id": items, "rating": matrix[users, items]})


def finite_difference(loss: Callable[[], float], param: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central-difference gradient of the scalar ``loss()`` with respect to ``param``.

    ``loss`` takes no arguments and reads ``param``, which is changed in place one entry at a time
    (``+eps``, then ``-eps``) and restored. Returns an array of ``param``'s shape, each entry
    ``(loss(+eps) - loss(-eps)) / (2 eps)``: its error is O(eps^2) for a smooth loss, so it checks an
    analytic gradient to about 1e-8 relative in float64. Two calls of ``loss`` per entry: for small
    examples only.
    """
    if not isinstance(param, np.ndarray) or not np.issubdtype(param.dtype, np.floating):
        got = getattr(param, "dtype", type(param).__name__)
        raise TypeError(f"param must be a float NumPy array changed in place, got {got}")
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    grad = np.zeros_like(param)
    for idx in np.ndindex(param.shape):
        old = param[idx]
        param[idx] = old + eps
        up = loss()
        param[idx] = old - eps
        down = loss()
        param[idx] = old
        grad[idx] = (up - down) / (2 * eps)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``|a - b| / (|a| + |b|)`` in the Frobenius norm: 0 for equal arrays, 1 at most; 0 when both are 0."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have one shape, got {a.shape} and {b.shape}")
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0

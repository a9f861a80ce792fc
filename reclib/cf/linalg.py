r"""Vectorised linear algebra shared by the alternating-least-squares solvers.

ALS solves one small ridge system per user (or item):
:math:`(\sum_{i \in I_u} w_{ui}\, y_i y_i^\top + \Lambda_u)\, x_u = \sum_{i \in I_u} c_{ui}\, t_{ui}\, y_i`.
Instead of a Python loop over users, :func:`batched_gram` forms every user's weighted Gram matrix at
once as one sparse-dense product ``W @ outer(Y)`` (each row of ``outer(Y)`` is the packed upper
triangle of :math:`y_i y_i^\top`), and :func:`solve_spd` solves all systems in one batched call.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["batched_gram", "scatter_add", "solve_spd"]


def batched_gram(weights: sp.csr_matrix, factors: np.ndarray, block_size: int = 512) -> np.ndarray:
    """``G[u] = sum_i weights[u, i] * outer(factors[i], factors[i])`` for every row ``u``.

    weights: (n_rows, n_items) sparse; factors: (n_items, d). Returns (n_rows, d, d).
    Work O(nnz * d^2 / 2); memory O(n_items * d^2 / 2 + n_rows * d^2).
    """
    d = factors.shape[1]
    upper = np.triu_indices(d)
    packed = factors[:, upper[0]] * factors[:, upper[1]]
    weights = sp.csr_matrix(weights)
    gram = np.empty((weights.shape[0], d, d))
    for start in range(0, weights.shape[0], block_size):
        stop = min(start + block_size, weights.shape[0])
        block = np.asarray(weights[start:stop] @ packed)
        gram[start:stop][:, upper[0], upper[1]] = block
        gram[start:stop][:, upper[1], upper[0]] = block
    return gram


def solve_spd(gram: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve ``gram[u] @ x[u] = rhs[u]`` for every ``u``: gram (n, d, d), rhs (n, d) -> (n, d)."""
    return np.linalg.solve(gram, rhs[..., None])[..., 0]


def scatter_add(target: np.ndarray, index: np.ndarray, values: np.ndarray) -> None:
    """``target[index[k]] += values[k]`` for every ``k``, summing repeated indices, in place.

    The same result as ``np.add.at(target, index, values)`` for 2-D ``target`` but several times
    faster: the rows are summed by a one-hot sparse product over the unique indices only, so the
    cost grows with ``len(index)``, not with ``len(target)``.
    """
    uniq, inverse = np.unique(index, return_inverse=True)
    n = len(index)
    one_hot = sp.csr_matrix((np.ones(n), inverse, np.arange(n + 1)), shape=(n, len(uniq)))
    target[uniq] += one_hot.T @ values

r"""EASE: embarrassingly shallow autoencoder (Steck 2019), a closed-form item-item model.

EASE learns an item-item weight matrix :math:`B` that reconstructs the binary user-item matrix
:math:`X` from itself, forbidding an item from predicting itself:

.. math:: \min_B \lVert X - XB \rVert_F^2 + \lambda \lVert B \rVert_F^2 \quad
   \text{s.t.}\ \mathrm{diag}(B) = 0 .

With Lagrange multipliers for the constraint the solution is closed form: with
:math:`P = (X^\top X + \lambda I)^{-1}`,

.. math:: B = I - P \,\mathrm{diag}(1 \oslash \mathrm{diag}(P)), \quad\text{i.e.}\quad
   B_{ij} = -P_{ij} / P_{jj} \ (i \ne j),\ B_{jj} = 0 .

Scores are :math:`XB`. One :math:`n_i \times n_i` inverse: seconds for thousands of items.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from reclib.base import FitContext, Recommender
from reclib.checks import check_finite_array, check_positive

__all__ = ["EASE", "ease_weights"]


def ease_weights(matrix: sp.spmatrix, reg: float) -> np.ndarray:
    """The EASE weight matrix ``B`` (n_items, n_items) of a binary user-item matrix.

    ``reg`` must be a finite number > 0 (it keeps the Gram matrix invertible); one so small that
    the inverse fails or holds NaN/inf raises ``FloatingPointError`` naming it.
    """
    check_positive(reg=reg)
    matrix = sp.csr_matrix(matrix)
    check_finite_array("matrix", matrix.data)
    gram = np.asarray((matrix.T @ matrix).todense(), dtype=np.float64)
    gram[np.diag_indices_from(gram)] += reg
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            P = scipy.linalg.inv(gram, overwrite_a=True, check_finite=False)
        except np.linalg.LinAlgError as err:
            raise FloatingPointError(f"EASE: X^T X + reg I could not be inverted with reg={reg!r} "
                                     f"({err}); raise reg") from None
        B = -P / np.diag(P)[None, :]
    np.fill_diagonal(B, 0.0)
    if not np.isfinite(B).all():
        raise FloatingPointError(f"EASE: the weights hold NaN or inf with reg={reg!r} (X^T X + reg I "
                                 f"is numerically singular); raise reg")
    return B


class EASE(Recommender):
    r"""EASE with L2 weight ``reg`` (:math:`\lambda`; a few hundred suits MovieLens-100K)."""

    reads_rows = False          # learns from the interaction matrix alone

    def __init__(self, reg: float = 500.0, **columns: str) -> None:
        super().__init__(**columns)
        check_positive(reg=reg)
        self.reg = reg

    def _fit(self, context: FitContext) -> None:
        matrix = context.matrix
        self.weights_ = ease_weights(matrix, self.reg)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.asarray(self.train_matrix_[users] @ self.weights_)

    def score_history_matrix(self, history: sp.csr_matrix) -> np.ndarray:
        return np.asarray(history @ self.weights_)

    def contributions(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Contribution (len(items), len(history)) of each history item to each item's score,
        rows summing to the history's scores (``reclib.interactive.explain``); both arguments are
        item indices."""
        return self.weights_[np.ix_(history, items)].T

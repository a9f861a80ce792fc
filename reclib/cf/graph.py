r"""RP3beta: item-item random walks on the user-item graph, reranked by popularity
(Paudel et al. 2017; Christoffel et al. 2015).

A walk of three steps from user :math:`u` (user -> item -> user -> item) reaches item :math:`j`
with probability :math:`\sum_{i} P_{ui} \sum_{v} P_{iv} P_{vj}`, where :math:`P_{ui} = X_{ui} /
\deg(u)` and :math:`P_{iv} = X_{vi} / \deg(i)` are the transition probabilities of the binary
user-item matrix :math:`X`. RP3beta keeps the item-to-item part as a weight matrix, sharpens the
transition probabilities with an exponent :math:`\alpha` and divides by the popularity of the
destination item to the power :math:`\beta`, which stops the walk from always ending on hits:

.. math:: W_{ij} = \frac{\sum_v (X_{vi} / \deg(i))^{\alpha}\,(X_{vj} / \deg(v))^{\alpha}}
   {\deg(j)^{\beta}}, \qquad W_{ii} = 0,

keeping the ``n_neighbors`` largest weights of each row :math:`i`. Scores are :math:`X W`, as
for EASE. One sparse product and a dense ``n_items x n_items`` matrix: under a second on
MovieLens-100K.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from reclib.base import FitContext, Recommender
from reclib.checks import check_finite_array, check_non_negative, check_positive, check_positive_int

__all__ = ["RP3beta", "rp3beta_weights"]


def rp3beta_weights(matrix: sp.spmatrix, alpha: float, beta: float,
                    n_neighbors: int | None) -> np.ndarray:
    """The RP3beta item-item weights ``W`` (n_items, n_items) of a user-item matrix.

    ``matrix`` (n_users, n_items): stored entries count as 1 (binary interactions); ``alpha`` > 0
    the exponent of the transition probabilities; ``beta`` >= 0 the popularity penalty; with
    ``n_neighbors`` (a positive int) only that many largest weights per row are kept (ties: lower
    item index first), ``None`` keeps all. Items nobody interacted with get zero rows/columns.
    """
    check_positive(alpha=alpha)
    check_non_negative(beta=beta)
    if n_neighbors is not None:
        check_positive_int(n_neighbors=n_neighbors)
    binary = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    check_finite_array("matrix", binary.data)
    binary.data[:] = 1.0
    user_degree = np.asarray(binary.sum(axis=1)).ravel()
    item_degree = np.asarray(binary.sum(axis=0)).ravel()
    with np.errstate(divide="ignore"):
        inv_user = np.where(user_degree > 0, 1.0 / user_degree, 0.0)
        inv_item = np.where(item_degree > 0, 1.0 / item_degree, 0.0)
        penalty = np.where(item_degree > 0, item_degree ** -beta, 0.0)
    user_to_item = sp.diags(inv_user) @ binary           # P_ui, rows sum to 1
    item_to_user = (binary @ sp.diags(inv_item)).T       # P_iu, rows sum to 1
    user_to_item.data **= alpha
    item_to_user = sp.csr_matrix(item_to_user)
    item_to_user.data **= alpha
    weights = np.asarray((item_to_user @ user_to_item).todense()) * penalty[None, :]
    np.fill_diagonal(weights, 0.0)
    n_items = weights.shape[1]
    if n_neighbors is not None and n_neighbors < n_items:
        # keep each row's n_neighbors best columns (score desc, then lowest index)
        order = np.argsort(-weights, axis=1, kind="stable")[:, n_neighbors:]
        np.put_along_axis(weights, order, 0.0, axis=1)
    return weights


class RP3beta(Recommender):
    r"""RP3beta item-item recommender (module doc).

    Parameters
    ----------
    alpha: exponent of the transition probabilities (> 0; 1 = plain random walk).
    beta: popularity penalty of the destination item (>= 0; 0 = P3alpha).
    n_neighbors: weights kept per item (a positive int, or ``None`` for all).

    The defaults were chosen on P1's validation carve-out of MovieLens-100K
    (``python -m experiments.tune_leaderboard``: best validation NDCG@10 of a grid over
    ``alpha``, ``beta`` and ``n_neighbors``), never on test.
    """

    reads_rows = False          # learns from the interaction matrix alone

    def __init__(self, alpha: float = 0.75, beta: float = 0.5, n_neighbors: int | None = 200,
                 **columns: str) -> None:
        super().__init__(**columns)
        check_positive(alpha=alpha)
        check_non_negative(beta=beta)
        if n_neighbors is not None:
            check_positive_int(n_neighbors=n_neighbors)
        self.alpha, self.beta, self.n_neighbors = alpha, beta, n_neighbors

    def _fit(self, context: FitContext) -> None:
        matrix = context.matrix
        self.weights_ = rp3beta_weights(matrix, self.alpha, self.beta, self.n_neighbors)

    def _score(self, users: np.ndarray) -> np.ndarray:
        rows = self.train_matrix_[users]
        rows.data = np.ones_like(rows.data)
        return np.asarray(rows @ self.weights_)

    def score_history_matrix(self, history: sp.csr_matrix) -> np.ndarray:
        return np.asarray(history @ self.weights_)

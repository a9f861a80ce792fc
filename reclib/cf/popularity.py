"""The popularity baseline: recommend what most users interacted with."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from reclib.base import FitContext, Recommender

__all__ = ["MostPopular"]


class MostPopular(Recommender):
    """Score every item by its number of training interactions, the same for every user.

    The non-personalised baseline every recommender must beat. Users unseen at fit get the same
    scores (it is also the usual cold-start fallback), so ``handles_unknown_users`` is true.
    """

    reads_rows = False          # learns from the interaction matrix alone

    handles_unknown_users = True

    def _fit(self, context: FitContext) -> None:
        matrix = context.matrix
        self.item_counts_ = np.asarray((matrix > 0).sum(axis=0)).ravel().astype(np.float64)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.tile(self.item_counts_, (len(users), 1))

    def score_history_matrix(self, history: sp.csr_matrix) -> np.ndarray:
        return np.tile(self.item_counts_, (history.shape[0], 1))

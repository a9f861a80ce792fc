r"""Item-item neighbourhood collaborative filtering with cosine similarity.

With the binary user x item matrix :math:`X`, the cosine similarity of items :math:`i, j` is

.. math:: s_{ij} = \frac{x_i^\top x_j}{\lVert x_i\rVert \, \lVert x_j\rVert + \lambda}

(:math:`x_i` the column of item :math:`i`, :math:`\lambda` a shrinkage that damps similarities
resting on few co-occurrences). Each item keeps its ``n_neighbors`` most similar items, and a
user's score for item :math:`j` sums the similarities of the items the user has:
:math:`\hat r_{uj} = \sum_{i \in I_u} s_{ij}`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclib.base import Recommender, top_k, user_batches

__all__ = ["ItemKNN", "cosine_item_similarity"]


def cosine_item_similarity(matrix: sp.csr_matrix, n_neighbors: int | None = 100,
                           shrinkage: float = 0.0, block_size: int = 2048) -> sp.csr_matrix:
    """Item-item cosine similarities of the columns of ``matrix`` (n_users, n_items).

    Returns a sparse (n_items, n_items) matrix with a zero diagonal; row ``i`` keeps the
    ``n_neighbors`` largest similarities of item ``i`` (all if ``None``). The dense similarity
    is formed ``block_size`` rows at a time, so memory stays O(block_size * n_items).
    """
    if n_neighbors is not None and n_neighbors < 1:
        raise ValueError(f"n_neighbors must be at least 1 or None, got {n_neighbors!r}")
    if shrinkage < 0:
        raise ValueError(f"shrinkage must be non-negative, got {shrinkage!r}")
    items = sp.csc_matrix(matrix, dtype=np.float64)
    norms = np.sqrt(np.asarray(items.multiply(items).sum(axis=0)).ravel())
    gram_t = items.T.tocsr()
    n_items = items.shape[1]
    keep = n_items - 1 if n_neighbors is None else min(n_neighbors, n_items - 1)
    rows, cols, vals = [], [], []
    for block in user_batches(n_items, block_size):
        dots = np.asarray((gram_t[block] @ items).todense())
        sims = dots / (np.outer(norms[block], norms) + shrinkage + 1e-12)
        sims[np.arange(sims.shape[0]), np.arange(block.start, block.stop)] = 0.0
        best, best_vals = top_k(sims, keep)
        nonzero = best_vals > 0
        rows.append(np.nonzero(nonzero)[0] + block.start)
        cols.append(best[nonzero])
        vals.append(best_vals[nonzero])
    return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                         shape=(n_items, n_items))


class ItemKNN(Recommender):
    """Item-based kNN: score = sum of cosine similarities to the user's items (module doc).

    Parameters
    ----------
    n_neighbors: neighbours kept per item (the rest are set to 0); ``None`` keeps all.
    shrinkage: :math:`\\lambda` added to the cosine denominator.
    """

    def __init__(self, n_neighbors: int | None = 100, shrinkage: float = 0.0, **columns: str) -> None:
        super().__init__(**columns)
        if n_neighbors is not None and (not isinstance(n_neighbors, (int, np.integer)) or n_neighbors < 1):
            raise ValueError(f"n_neighbors must be a positive integer or None, got {n_neighbors!r}")
        if shrinkage < 0:
            raise ValueError(f"shrinkage must be non-negative, got {shrinkage!r}")
        self.n_neighbors, self.shrinkage = n_neighbors, shrinkage

    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
        self.similarity_ = cosine_item_similarity(matrix, self.n_neighbors, self.shrinkage)

    def _score(self, users: np.ndarray) -> np.ndarray:
        # row i of similarity_ holds item i's neighbours: score_uj = sum_i x_ui s_ij
        return np.asarray((self.train_matrix_[users] @ self.similarity_).todense())

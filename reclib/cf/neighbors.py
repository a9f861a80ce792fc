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
import scipy.sparse as sp

from reclib.base import FitContext, Recommender, top_k, user_batches
from reclib.cf.baseline import ExplicitFeedbackMixin, fit_biases
from reclib.checks import (check_choice, check_finite_array, check_non_negative, check_positive_int,
                           require_columns)

__all__ = ["SIMILARITIES", "ItemKNN", "LastItemKNN", "NeighborhoodCF", "corated_similarity", "cosine_item_similarity"]


def cosine_item_similarity(matrix: sp.csr_matrix, n_neighbors: int | None = 100,
                           shrinkage: float = 0.0, block_size: int = 2048) -> sp.csr_matrix:
    """Item-item cosine similarities of the columns of ``matrix`` (n_users, n_items).

    Returns a sparse (n_items, n_items) matrix with a zero diagonal; row ``i`` keeps the
    ``n_neighbors`` largest similarities of item ``i`` (all if ``None``). The dense similarity
    is formed ``block_size`` rows at a time, so memory stays O(block_size * n_items).
    """
    if n_neighbors is not None:
        check_positive_int(n_neighbors=n_neighbors)
    check_non_negative(shrinkage=shrinkage)
    check_positive_int(block_size=block_size)
    items = sp.csc_matrix(matrix, dtype=np.float64)
    check_finite_array("matrix", items.data)
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
    - n_neighbors: neighbours kept per item (the rest are set to 0); ``None`` keeps all. The
      default, 20, is the value notebook 02b chose on P1's validation carve-out.
    - shrinkage: :math:`\\lambda` added to the cosine denominator.
    """

    reads_rows = False          # learns from the interaction matrix alone

    def __init__(self, n_neighbors: int | None = 20, shrinkage: float = 0.0, **columns: str) -> None:
        super().__init__(**columns)
        if n_neighbors is not None:
            check_positive_int(n_neighbors=n_neighbors)
        check_non_negative(shrinkage=shrinkage)
        self.n_neighbors, self.shrinkage = n_neighbors, shrinkage

    def _fit(self, context: FitContext) -> None:
        matrix = context.matrix
        self.similarity_ = cosine_item_similarity(matrix, self.n_neighbors, self.shrinkage)

    def _score(self, users: np.ndarray) -> np.ndarray:
        # row i of similarity_ holds item i's neighbours: score_uj = sum_i x_ui s_ij
        return np.asarray((self.train_matrix_[users] @ self.similarity_).todense())

    def score_history_matrix(self, history: sp.csr_matrix) -> np.ndarray:
        return np.asarray((history @ self.similarity_).todense())

    def contributions(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Contribution (len(items), len(history)) of each history item to each item's score,
        rows summing to the history's scores (``reclib.interactive.explain``); both arguments are
        item indices."""
        return np.asarray(self.similarity_[history][:, items].todense()).T


class LastItemKNN(ItemKNN):
    """Items similar to the user's **last** item: the item-kNN score of a one-item history.

    The simplest sequential baseline: score_uj = s_{i_last, j}, the cosine similarity of item
    ``j`` to the user's latest item (by ``timestamp_col``; among items with the latest time, the
    one with the highest item id, as protocol P3 orders ties). ``n_neighbors=None`` (default)
    keeps every similarity, so the whole catalogue is ordered rather than 20 items and ties at 0.
    """

    reads_rows = True           # reads each user's last interaction

    def __init__(self, n_neighbors: int | None = None, shrinkage: float = 0.0,
                 timestamp_col: str = "timestamp", **columns: str) -> None:
        super().__init__(n_neighbors, shrinkage, **columns)
        self.timestamp_col = timestamp_col

    def _fit(self, context: FitContext) -> None:
        interactions = context.interactions
        require_columns(interactions, self.timestamp_col)
        super()._fit(context)
        # rows arrive sorted by (user, timestamp, item): each user's last row is their last item
        last = interactions.drop_duplicates(self.user_col, keep="last")
        self.last_item_ = self.item_encoder_.transform(last[self.item_col])[
            np.argsort(self.user_encoder_.transform(last[self.user_col]))]

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.similarity_[self.last_item_[users]].toarray()

    def score_histories(self, histories) -> np.ndarray:
        """(len(histories), n_items): similarities to each history's last item (raw ids, oldest
        first); an empty history scores 0 everywhere."""
        self._check_fitted()
        out = np.zeros((len(histories), len(self.item_ids_)))
        rows = np.array([r for r, history in enumerate(histories) if len(history)], dtype=np.int64)
        if len(rows):
            last = self.item_encoder_.transform(np.asarray([histories[r][-1] for r in rows]))
            out[rows] = self.similarity_[last].toarray()
        return out

    def score_history_matrix(self, history: sp.csr_matrix) -> np.ndarray:
        raise NotImplementedError("LastItemKNN scores a history by its last item, which a history matrix "
                                  "does not record: use score_histories")

    def contributions(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        """All of each score comes from the last history item (indices, as :meth:`ItemKNN.contributions`)."""
        out = np.zeros((len(items), len(history)))
        if len(history):
            out[:, -1] = self.similarity_[history[-1]].toarray().ravel()[items]
        return out


SIMILARITIES = ("cosine", "adjusted_cosine", "pearson", "pearson_baseline")


def corated_similarity(ratings: sp.csr_matrix, similarity: str = "pearson_baseline",
                       baseline: np.ndarray | None = None, shrinkage: float = 100.0,
                       min_support: int = 1) -> np.ndarray:
    r"""Dense similarity between the *columns* of ``ratings``, over the rows both columns rate.

    With :math:`U_{ij}` the rows where columns :math:`i` and :math:`j` are both rated and
    :math:`z` the centred ratings,
    :math:`s_{ij} = \sum_{u \in U_{ij}} z_{ui} z_{uj} / \sqrt{\sum_{U_{ij}} z_{ui}^2 \sum_{U_{ij}} z_{uj}^2}`:

    - ``cosine``: :math:`z = r` (raw ratings);
    - ``adjusted_cosine``: :math:`z = r - \bar r_u` (each row's mean removed);
    - ``pearson``: :math:`z = r - \bar r_i^{(U_{ij})}`, each column centred by its mean *over*
      :math:`U_{ij}`: the textbook Pearson correlation on co-rated rows;
    - ``pearson_baseline``: :math:`z = r - b_{ui}` (``baseline``: the baseline predictions at the
      rated entries, a sparse matrix shaped like ``ratings``).

    Then the significance shrinkage :math:`s_{ij} \leftarrow \frac{n_{ij} - 1}{n_{ij} - 1 + \beta}
    s_{ij}` (:math:`n_{ij} = |U_{ij}|`, :math:`\beta` = ``shrinkage``) and :math:`s_{ij} = 0` when
    :math:`n_{ij}` < ``min_support``. All sums are sparse products: O(n_cols^2) memory.
    """
    check_choice("similarity", similarity, SIMILARITIES)
    check_non_negative(shrinkage=shrinkage)
    check_positive_int(min_support=min_support)
    X = sp.csr_matrix(ratings, dtype=np.float64)
    check_finite_array("ratings", X.data)
    if baseline is not None:
        baseline = sp.csr_matrix(baseline)
        check_finite_array("baseline", baseline.data)
        if baseline.shape != X.shape:
            raise ValueError(f"baseline has shape {baseline.shape}, ratings {X.shape}")
    B = X.copy()
    B.data = np.ones_like(B.data)
    dense = lambda m: np.asarray(m.todense()) if sp.issparse(m) else np.asarray(m)  # noqa: E731
    support = dense(B.T @ B)
    if similarity == "pearson":
        sxy, sx = dense(X.T @ X), dense(X.T @ B)        # sx[i, j] = sum of column i over U_ij
        sxx = dense(X.multiply(X).T @ B)
        n = np.maximum(support, 1)
        cov = sxy - sx * sx.T / n
        var_i, var_j = sxx - sx ** 2 / n, (sxx - sx ** 2 / n).T
    else:
        Z = X.copy()
        if similarity == "adjusted_cosine":
            means = np.asarray(X.sum(axis=1)).ravel() / np.maximum(np.diff(X.indptr), 1)
            Z.data = X.data - np.repeat(means, np.diff(X.indptr))
        elif similarity == "pearson_baseline":
            if baseline is None:
                raise ValueError("similarity='pearson_baseline' needs the baseline predictions")
            Z = sp.csr_matrix(X - sp.csr_matrix(baseline))
        cov = dense(Z.T @ Z)
        var_i = dense(Z.multiply(Z).T @ B)
        var_j = var_i.T
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = np.where((var_i > 1e-12) & (var_j > 1e-12), cov / np.sqrt(var_i * var_j), 0.0)
    sim *= np.maximum(support - 1, 0) / (np.maximum(support - 1, 0) + shrinkage + 1e-12)
    sim[support < min_support] = 0.0
    np.fill_diagonal(sim, 0.0)
    return sim


class NeighborhoodCF(ExplicitFeedbackMixin, Recommender):
    r"""k-nearest-neighbour rating prediction around a baseline (Koren's "KNNBaseline").

    Item-based (``kind="item"``):
    :math:`\hat r_{ui} = b_{ui} + \sum_{j \in N^k_u(i)} s_{ij} (r_{uj} - b_{uj}) \big/ \sum_{j \in
    N^k_u(i)} s_{ij}`, where :math:`b_{ui} = \mu + b_u + b_i` is the baseline predictor and
    :math:`N^k_u(i)` the ``k`` items most similar to :math:`i` *among those* :math:`u` *rated*, with
    positive similarity. With no such neighbour the prediction is :math:`b_{ui}`. User-based
    (``kind="user"``) swaps the roles of users and items.

    Parameters
    ----------
    kind: ``"item"`` or ``"user"``; similarity: see :func:`corated_similarity`;
    k: neighbours per prediction; shrinkage, min_support: see :func:`corated_similarity`;
    reg_user, reg_item: the baseline's :math:`\lambda` (see :class:`BaselinePredictor`);
    batch_size: predictions per neighbour-search batch.

    ``score(users)`` predicts every item for each user (O(n_items) neighbour searches per user).
    """

    def __init__(self, kind: str = "item", similarity: str = "pearson_baseline", k: int = 40,
                 shrinkage: float = 100.0, min_support: int = 1, reg_user: float = 15.0,
                 reg_item: float = 10.0, batch_size: int = 2048, **columns: str) -> None:
        super().__init__(**columns)
        check_choice("kind", kind, ("item", "user"))
        check_choice("similarity", similarity, SIMILARITIES)
        check_positive_int(k=k, min_support=min_support, batch_size=batch_size)
        check_non_negative(shrinkage=shrinkage, reg_user=reg_user, reg_item=reg_item)
        self.kind, self.similarity, self.k = kind, similarity, k
        self.shrinkage, self.min_support = shrinkage, min_support
        self.reg_user, self.reg_item, self.batch_size = reg_user, reg_item, batch_size

    def _fit(self, context: FitContext) -> None:
        matrix = context.matrix
        self._set_rating_range(matrix)
        coo = matrix.tocoo()
        self.mu_, self.user_bias_, self.item_bias_ = fit_biases(
            coo.row, coo.col, coo.data, *matrix.shape, self.reg_user, self.reg_item)
        baseline = self.mu_ + self.user_bias_[coo.row] + self.item_bias_[coo.col]
        # r_uj - b_uj and b_uj on the observed entries, both users x items
        self.residuals_ = sp.csr_matrix((coo.data - baseline, (coo.row, coo.col)), shape=matrix.shape)
        base = sp.csr_matrix((baseline, (coo.row, coo.col)), shape=matrix.shape)
        if self.kind == "user":
            matrix, base = matrix.T.tocsr(), base.T.tocsr()
        self.similarity_ = corated_similarity(matrix, self.similarity, base, self.shrinkage,
                                              self.min_support)

    def _pair_terms(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        # orient so that neighbours are columns: item-based -> rows users, columns items
        rows, cols = (users, items) if self.kind == "item" else (items, users)
        resid = self.residuals_ if self.kind == "item" else self.residuals_.T.tocsr()
        out = np.zeros(len(rows))
        k = min(self.k, self.similarity_.shape[0] - 1)
        for batch in user_batches(len(rows), self.batch_size):
            r_rows = resid[rows[batch]]
            rated = np.asarray((abs(r_rows) + _structure(r_rows)).todense()) > 0
            sims = np.where(rated, self.similarity_[cols[batch]], 0.0)
            sims[sims < 0] = 0.0
            neighbours, weights = top_k(sims, k)
            values = np.take_along_axis(np.asarray(r_rows.todense()), neighbours, axis=1)
            total = weights.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[batch] = np.where(total > 0, (weights * values).sum(axis=1) / total, 0.0)
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        n_items = len(self.item_ids_)
        pairs_u = np.repeat(users, n_items)
        pairs_i = np.tile(np.arange(n_items), len(users))
        scores = self.mu_ + self.user_bias_[pairs_u] + self.item_bias_[pairs_i]
        return (scores + self._pair_terms(pairs_u, pairs_i)).reshape(len(users), n_items)


def _structure(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Ones at the stored entries of ``matrix`` (so a stored residual of exactly 0 still counts)."""
    ones = matrix.copy()
    ones.data = np.ones_like(ones.data)
    return ones

r"""The baseline predictor :math:`\hat r_{ui} = \mu + b_u + b_i` (Koren 2008, 2010).

:math:`\mu` is the global mean rating, :math:`b_u` and :math:`b_i` how much user :math:`u` and item
:math:`i` deviate from it. The biases minimise the regularised squared error

.. math:: \sum_{(u,i)\in R} (r_{ui} - \mu - b_u - b_i)^2 + \lambda_u \sum_u b_u^2 + \lambda_i \sum_i b_i^2 .

With :math:`b_u` fixed the loss separates over items and setting its derivative to zero gives

.. math:: b_i = \frac{\sum_{u \in U_i} (r_{ui} - \mu - b_u)}{\lambda_i + |U_i|}

(and symmetrically for :math:`b_u`). Alternating the two closed forms decreases the loss at every
step; a few sweeps converge. :math:`\lambda` *shrinks* a bias towards 0 when it rests on few
ratings: an item with 2 ratings of 5 gets :math:`b_i = 2 \cdot 1.47/(2+\lambda_i)`, not 1.47.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from reclib.base import FitContext, Recommender
from reclib.checks import check_finite_array, check_non_negative, check_positive_int

__all__ = ["BaselinePredictor", "ExplicitFeedbackMixin", "fit_biases"]


def fit_biases(users: np.ndarray, items: np.ndarray, ratings: np.ndarray, n_users: int,
               n_items: int, reg_user: float = 15.0, reg_item: float = 10.0,
               n_iter: int = 10) -> tuple[float, np.ndarray, np.ndarray]:
    """Alternating closed-form solves of the biases (module doc). Returns ``(mu, b_u, b_i)``.

    users, items: (n,) integer indices in ``[0, n_users)`` and ``[0, n_items)``; ratings: (n,)
    finite numbers, n >= 1.
    """
    check_positive_int(n_users=n_users, n_items=n_items, n_iter=n_iter)
    check_non_negative(reg_user=reg_user, reg_item=reg_item)
    ratings = check_finite_array("ratings", ratings)
    users, items = np.asarray(users), np.asarray(items)
    if not (ratings.ndim == 1 and len(ratings) > 0 and users.shape == items.shape == ratings.shape):
        raise ValueError(f"users, items and ratings must be non-empty 1-D arrays of one length, got "
                         f"shapes {users.shape}, {items.shape}, {ratings.shape}")
    for name, index, size in (("users", users, n_users), ("items", items, n_items)):
        if index.dtype.kind not in "iu" or index.min() < 0 or index.max() >= size:
            raise ValueError(f"{name} must be integer indices in [0, {size}), got dtype "
                             f"{index.dtype}, range [{index.min()}, {index.max()}]")
    mu = float(ratings.mean())
    b_u, b_i = np.zeros(n_users), np.zeros(n_items)
    n_u = np.bincount(users, minlength=n_users)
    n_i = np.bincount(items, minlength=n_items)
    for _ in range(n_iter):
        b_i = np.bincount(items, ratings - mu - b_u[users], minlength=n_items) / (reg_item + n_i)
        b_u = np.bincount(users, ratings - mu - b_i[items], minlength=n_users) / (reg_user + n_u)
    return mu, b_u, b_i


class ExplicitFeedbackMixin:
    """Rating prediction for explicit models: unseen users or items fall back to the biases.

    ``predict`` returns :math:`\\mu + b_u + b_i + (\\text{model terms})` where an unknown user or item
    contributes 0 to every term of its own (so a new item gets :math:`\\mu + b_u`), clipped to the
    training rating range. Subclasses set ``mu_``, ``user_bias_``, ``item_bias_`` and implement
    ``_pair_terms(users, items)`` for pairs of known indices.
    """

    uses_rating = True

    def _pair_terms(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.zeros(len(users))

    def predict(self, user_ids: object, item_ids: object) -> np.ndarray:
        """Predicted ratings, one per (user, item) pair (class doc for unknown ids)."""
        self._check_fitted()
        users = self.user_encoder_.transform(np.asarray(user_ids), unknown="ignore")
        items = self.item_encoder_.transform(np.asarray(item_ids), unknown="ignore")
        if users.shape != items.shape:
            raise ValueError(f"user_ids and item_ids differ in length: {users.shape} vs {items.shape}")
        known_u, known_i = users >= 0, items >= 0
        out = self.mu_ + np.where(known_u, self.user_bias_[users], 0.0) \
            + np.where(known_i, self.item_bias_[items], 0.0)
        both = known_u & known_i
        out[both] += self._pair_terms(users[both], items[both])
        return np.clip(out, *self.rating_range_)

    def _set_rating_range(self, matrix: sp.csr_matrix) -> None:
        self.rating_range_ = (float(matrix.data.min()), float(matrix.data.max()))


class BaselinePredictor(ExplicitFeedbackMixin, Recommender):
    r"""Global mean plus regularised user and item biases (module doc).

    Parameters
    ----------
    reg_user, reg_item: :math:`\lambda_u, \lambda_i` (shrinkage, in "pseudo-ratings").
    epochs: alternating sweeps (``n_iter`` of :func:`fit_biases`).

    ``score(users)`` ranks items by :math:`\mu + b_u + b_i`, i.e. by item bias: a popularity
    baseline that prefers well-rated items over often-rated ones.
    """

    def __init__(self, reg_user: float = 15.0, reg_item: float = 10.0, epochs: int = 10,
                 **columns: str) -> None:
        super().__init__(**columns)
        check_non_negative(reg_user=reg_user, reg_item=reg_item)
        check_positive_int(epochs=epochs)
        self.reg_user, self.reg_item, self.epochs = reg_user, reg_item, epochs

    def _fit(self, context: FitContext) -> None:
        matrix = context.matrix
        coo = matrix.tocoo()
        self._set_rating_range(matrix)
        self.mu_, self.user_bias_, self.item_bias_ = fit_biases(
            coo.row, coo.col, coo.data, *matrix.shape, self.reg_user, self.reg_item, self.epochs)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.mu_ + self.user_bias_[users][:, None] + self.item_bias_[None, :]

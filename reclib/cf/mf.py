r"""Explicit matrix factorisation with biases ("Funk SVD", Koren et al. 2009), by SGD or ALS.

Model: :math:`\hat r_{ui} = \mu + b_u + b_i + p_u^\top q_i`, with :math:`P \in \mathbb{R}^{n_u
\times f}` (one row per user) and :math:`Q \in \mathbb{R}^{n_i \times f}` (one row per item), so the
full prediction matrix is :math:`\mu + b\mathbf 1^\top + \mathbf 1 c^\top + P Q^\top` — an
:math:`n_u \times n_i` matrix of rank at most :math:`f`, fitted only on the observed ratings
:math:`R`. The loss, with the regularisation counted once per rating as SGD applies it, is

.. math:: L = \tfrac12 \sum_{(u,i)\in R} \big[ e_{ui}^2 + \lambda (b_u^2 + b_i^2 + \lVert p_u\rVert^2
   + \lVert q_i\rVert^2) \big],\qquad e_{ui} = r_{ui} - \hat r_{ui}.

Its gradients over one rating are :math:`\partial_{p_u} = -e_{ui} q_i + \lambda p_u`,
:math:`\partial_{q_i} = -e_{ui} p_u + \lambda q_i`, :math:`\partial_{b_u} = -e_{ui} + \lambda b_u`,
:math:`\partial_{b_i} = -e_{ui} + \lambda b_i` (:func:`mf_loss_and_grads` sums them over a batch).

**SGD** steps against these gradients on the shuffled ratings, one at a time (or on mini-batches).
**ALS** fixes the item side and
solves every user exactly: with :math:`\tilde q_i = (q_i, 1)`, :math:`x_u = (p_u, b_u)` and
:math:`t_{ui} = r_{ui} - \mu - b_i`, the user's part of :math:`L` is a ridge regression with
solution :math:`x_u = (\tilde Q_u^\top \tilde Q_u + \lambda |I_u| I)^{-1} \tilde Q_u^\top t_u`;
then the same for items. Each half-step cannot increase :math:`L`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclib import progress
from reclib.base import FitContext, Recommender
from reclib.cf import kernels
from reclib.cf.baseline import ExplicitFeedbackMixin
from reclib.cf.linalg import batched_gram, scatter_add, solve_spd
from reclib.checks import (check_choice, check_divergence, check_finite_array, check_in_range, check_non_negative,
                           check_non_negative_int, check_positive, check_positive_int, check_validate_function,
                           check_verbose, diverged)

__all__ = ["BiasedMF", "als_half_step", "mf_loss_and_grads", "mf_sgd_step"]


def _mf_terms(P: np.ndarray, Q: np.ndarray, b_u: np.ndarray, b_i: np.ndarray, mu: float,
              users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
              reg: float) -> tuple[float, tuple[np.ndarray, ...]]:
    """Summed loss and per-rating gradient rows (for p_u, q_i, b_u, b_i) of a batch."""
    p, q, bu, bi = P[users], Q[items], b_u[users], b_i[items]
    err = ratings - (mu + bu + bi + np.einsum("nf,nf->n", p, q))
    loss = 0.5 * (np.sum(err ** 2) + reg * (np.sum(bu ** 2) + np.sum(bi ** 2)
                                            + np.sum(p ** 2) + np.sum(q ** 2)))
    rows = (-err[:, None] * q + reg * p, -err[:, None] * p + reg * q, -err + reg * bu, -err + reg * bi)
    return float(loss), rows


def mf_loss_and_grads(P: np.ndarray, Q: np.ndarray, b_u: np.ndarray, b_i: np.ndarray, mu: float,
                      users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
                      reg: float) -> tuple[float, dict[str, np.ndarray]]:
    """Loss ``L`` over the given ratings (module doc) and its gradients, shaped like the params."""
    check_non_negative(reg=reg)
    check_in_range("mu", mu)
    loss, (gp, gq, gbu, gbi) = _mf_terms(P, Q, b_u, b_i, mu, users, items, ratings, reg)
    grads = {"P": np.zeros_like(P), "Q": np.zeros_like(Q), "b_u": np.zeros_like(b_u),
             "b_i": np.zeros_like(b_i)}
    scatter_add(grads["P"], users, gp)
    scatter_add(grads["Q"], items, gq)
    np.add.at(grads["b_u"], users, gbu)
    np.add.at(grads["b_i"], items, gbi)
    return loss, grads


def mf_sgd_step(P: np.ndarray, Q: np.ndarray, b_u: np.ndarray, b_i: np.ndarray, mu: float,
                users: np.ndarray, items: np.ndarray, ratings: np.ndarray, reg: float,
                lr: float) -> float:
    """One SGD step on a batch of ratings, in place, touching only the rows in the batch.

    Equivalent to ``param -= lr * grad`` with the gradients of :func:`mf_loss_and_grads`.
    Returns the batch loss before the step. Only the scalars are checked here (the step runs once
    per batch); :class:`BiasedMF` checks the parameters for NaN/inf once per epoch.
    """
    check_non_negative(reg=reg)
    check_positive(lr=lr)
    check_in_range("mu", mu)
    return _mf_sgd_step(P, Q, b_u, b_i, mu, users, items, ratings, reg, lr)


def _mf_sgd_step(P: np.ndarray, Q: np.ndarray, b_u: np.ndarray, b_i: np.ndarray, mu: float,
                 users: np.ndarray, items: np.ndarray, ratings: np.ndarray, reg: float,
                 lr: float) -> float:
    """:func:`mf_sgd_step` without the argument checks: the compiled kernel, one batch."""
    return kernels.mf_epoch(P, Q, b_u, b_i, float(mu), users, items,
                            np.asarray(ratings, dtype=np.float64), float(reg), float(lr),
                            max(len(users), 1))


def als_half_step(ratings: sp.csr_matrix, other: np.ndarray, other_bias: np.ndarray, mu: float,
                  reg: float) -> tuple[np.ndarray, np.ndarray]:
    """Solve every row's factors and bias with the other side fixed (module doc).

    ratings: (n_rows, n_other) sparse observed ratings; other: (n_other, f) factors of the fixed
    side; other_bias: (n_other,). Returns (factors (n_rows, f), bias (n_rows,)).
    ``reg`` must be >= 0, ``mu`` finite, and the ratings and the fixed side free of NaN/inf.
    """
    check_non_negative(reg=reg)
    check_in_range("mu", mu)
    ratings = sp.csr_matrix(ratings)
    check_finite_array("ratings", ratings.data)
    other = check_finite_array("other", other)
    other_bias = check_finite_array("other_bias", other_bias)
    if other.ndim != 2 or other_bias.shape != (len(other),) or ratings.shape[1] != len(other):
        raise ValueError(f"shapes disagree: ratings {ratings.shape}, other {other.shape}, "
                         f"other_bias {other_bias.shape}; expected (n_rows, n_other), (n_other, f), "
                         f"(n_other,)")
    return _als_half_step(ratings, other, other_bias, mu, reg)


def _als_half_step(ratings: sp.csr_matrix, other: np.ndarray, other_bias: np.ndarray, mu: float,
                   reg: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`als_half_step` without the argument checks (the fit checks once per sweep)."""
    f = other.shape[1]
    augmented = np.hstack([other, np.ones((len(other), 1))])
    observed = ratings.copy()
    observed.data = np.ones_like(observed.data)
    targets = ratings.copy()
    targets.data = ratings.data - mu - other_bias[ratings.indices]
    counts = np.diff(ratings.indptr).astype(np.float64)
    gram = batched_gram(observed, augmented)
    gram += (reg * np.maximum(counts, 1.0))[:, None, None] * np.eye(f + 1)
    solution = solve_spd(gram, np.asarray(targets @ augmented))
    return solution[:, :f], solution[:, f]


class BiasedMF(ExplicitFeedbackMixin, Recommender):
    r"""Biased matrix factorisation for rating prediction, trained by SGD or ALS (module doc).

    Parameters
    ----------
    - n_factors: :math:`f`, the rank of the interaction term.
    - reg: :math:`\lambda`, the L2 weight (per rating, as in the loss).
    - solver: ``"sgd"`` (mini-batch SGD; the per-rating loop is compiled and single-threaded, on a
      seeded order, so the same seed gives the same numbers) or ``"als"`` (alternating exact
      ridge solves).
    - epochs: passes over the ratings (SGD) or alternating sweeps (ALS).
    - learning_rate: SGD step size; batch_size: ratings per SGD step, 1 (the default) for per-rating SGD; a
      larger batch takes every rating's gradient at the parameters before the batch and sums
      them, so ``learning_rate`` means the same as in per-rating SGD.
    - init_std: standard deviation of the random initial factors.
    - random_state: seed for initialisation and shuffling; verbose: show a progress bar.

    The defaults (200 factors, ``reg`` 0.06, ``learning_rate`` 0.005, 70 epochs, ``init_std`` 0.01,
    SGD) are the values chosen on the P2 validation carve-out of MovieLens-100K (``make tune``;
    notebook 02).

    Every argument is checked (type, finiteness, range) before anything runs. A fit that
    diverges (e.g. ``learning_rate`` too large: the loss becomes NaN/inf or grows more than
    :data:`~reclib.checks.GROWTH_LIMIT`-fold) stops with ``FloatingPointError`` naming
    the epoch, ``learning_rate``, ``reg`` and ``init_std``.

    After ``fit``: ``mu_``, ``user_bias_``, ``item_bias_``, ``user_factors_`` (n_users, f),
    ``item_factors_`` (n_items, f), and ``history_``, a frame of the training loss and RMSE (and
    the ``val_<name>`` values of ``fit(train, validate)``) per epoch.
    """

    def __init__(self, n_factors: int = 200, reg: float = 0.06,
                 solver: Literal["sgd", "als"] = "sgd", epochs: int = 70, learning_rate: float = 0.005,
                 batch_size: int = 1, init_std: float = 0.01, random_state: int = 42,
                 verbose: int = 0, **columns: str) -> None:
        super().__init__(**columns)
        check_positive_int(n_factors=n_factors)
        check_choice("solver", solver, ("sgd", "als"))
        check_non_negative(reg=reg, init_std=init_std)
        check_positive_int(epochs=epochs, batch_size=batch_size)
        check_positive(learning_rate=learning_rate)
        check_non_negative_int(random_state=random_state)
        check_verbose(verbose)
        self.n_factors, self.reg, self.solver, self.epochs = n_factors, reg, solver, epochs
        self.learning_rate, self.batch_size, self.init_std = learning_rate, batch_size, init_std
        self.random_state, self.verbose = random_state, verbose

    def fit(self, interactions: pd.DataFrame,
            validate: Callable[[Recommender], dict[str, float]] | None = None) -> BiasedMF:
        """Fit on ``interactions``; ``validate(model) -> {name: value}`` (the validation argument of
        every reclib model, e.g. the RMSE of held-out ratings) runs after every epoch and its
        values go to ``history_`` as ``val_<name>``. There is no early stop: ``epochs`` is chosen
        on validation beforehand."""
        check_validate_function(validate)
        return self._fit_on(interactions, validate=validate)

    def _fit(self, context: FitContext) -> None:
        matrix = context.matrix
        rng = np.random.default_rng(self.random_state)
        n_users, n_items = matrix.shape
        self._set_rating_range(matrix)
        coo = matrix.tocoo()
        users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
        ratings = coo.data.astype(np.float64)
        self.mu_ = float(ratings.mean())
        self.user_factors_ = rng.normal(0, self.init_std, (n_users, self.n_factors))
        self.item_factors_ = rng.normal(0, self.init_std, (n_items, self.n_factors))
        self.user_bias_, self.item_bias_ = np.zeros(n_users), np.zeros(n_items)
        history = []
        with np.errstate(over="ignore", invalid="ignore"):     # a huge init_std is reported below
            start_loss = self._loss(users, items, ratings)
        bar = progress(range(self.epochs), self.verbose, desc=f"BiasedMF[{self.solver}]")
        for epoch in bar:
            with np.errstate(over="ignore", invalid="ignore"):   # overflow is reported below
                if self.solver == "sgd":
                    self._sgd_epoch(users, items, ratings, rng)
                else:
                    self._als_sweep(matrix, epoch)
                loss, sse = kernels.mf_loss(self.user_factors_, self.item_factors_, self.user_bias_,
                                            self.item_bias_, self.mu_, users, items, ratings,
                                            float(self.reg))
            check_divergence("BiasedMF", "epoch", epoch + 1, self.epochs, loss, start_loss,
                             self._culprits(), self._advice(), user_factors=self.user_factors_,
                             item_factors=self.item_factors_, user_bias=self.user_bias_,
                             item_bias=self.item_bias_)
            row = {"epoch": epoch + 1, "loss": loss, "train_rmse": float(np.sqrt(sse / len(ratings)))}
            if context.validate is not None:
                row.update({f"val_{k}": float(v) for k, v in context.validate(self).items()})
            history.append(row)
            bar.set_postfix({k: round(v, 4) for k, v in row.items() if k != "epoch"})
        self.history_ = pd.DataFrame(history)

    def _loss(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> float:
        return kernels.mf_loss(self.user_factors_, self.item_factors_, self.user_bias_,
                               self.item_bias_, self.mu_, users, items, ratings, float(self.reg))[0]

    def _culprits(self) -> dict[str, object]:
        if self.solver == "sgd":
            return {"learning_rate": self.learning_rate, "reg": self.reg, "init_std": self.init_std}
        return {"reg": self.reg, "init_std": self.init_std}

    def _advice(self) -> str:
        if self.solver == "sgd":
            return "lower learning_rate (the SGD step is too large), or change reg or init_std"
        return "change reg or init_std (the ridge systems are ill-conditioned)"

    def _sgd_epoch(self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
                   rng: np.random.Generator) -> None:
        """One pass in a seeded random order; the per-rating loop is compiled and single-threaded."""
        order = rng.permutation(len(ratings))
        kernels.mf_epoch(self.user_factors_, self.item_factors_, self.user_bias_, self.item_bias_,
                         float(self.mu_), users[order], items[order], ratings[order],
                         float(self.reg), float(self.learning_rate), self.batch_size)

    def _als_sweep(self, matrix: sp.csr_matrix, epoch: int) -> None:
        try:
            self.user_factors_, self.user_bias_ = _als_half_step(
                matrix, self.item_factors_, self.item_bias_, self.mu_, self.reg)
            self.item_factors_, self.item_bias_ = _als_half_step(
                matrix.T.tocsr(), self.user_factors_, self.user_bias_, self.mu_, self.reg)
        except np.linalg.LinAlgError as err:
            raise diverged("BiasedMF", "epoch", epoch + 1, self.epochs,
                           f"a ridge system could not be solved ({err})", self._culprits(),
                           self._advice()) from None

    def _pair_terms(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.einsum("nf,nf->n", self.user_factors_[users], self.item_factors_[items])

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self.mu_ + self.user_bias_[users][:, None] + self.item_bias_[None, :]
                + self.user_factors_[users] @ self.item_factors_.T)

r"""Implicit-feedback factorisation by weighted ALS (Hu, Koren & Volinsky 2008).

**Implicit ALS.** Every user-item pair is a data point: preference :math:`p_{ui} = 1` if :math:`u`
interacted with :math:`i`, else 0, trusted with confidence :math:`c_{ui} = 1 + \alpha r_{ui}`
(:math:`r_{ui}` the interaction strength, 0 when unobserved). The loss over *all* pairs is

.. math:: L = \sum_{u,i} c_{ui} (p_{ui} - x_u^\top y_i)^2 + \lambda \Big(\sum_u \lVert x_u\rVert^2
   + \sum_i \lVert y_i\rVert^2\Big),

and with :math:`Y` fixed each user's optimum is :math:`x_u = (Y^\top C_u Y + \lambda I)^{-1} Y^\top C_u
p(u)`, :math:`C_u = \mathrm{diag}(c_{u\cdot})`. Forming :math:`Y^\top C_u Y` naively costs
:math:`O(f^2 n_i)` per user; the trick is :math:`Y^\top C_u Y = Y^\top Y + Y^\top (C_u - I) Y`, where
:math:`Y^\top Y` is shared by all users and :math:`C_u - I` is non-zero only on the
:math:`|I_u|` observed items, so the per-user cost is :math:`O(f^2 |I_u|)`. Likewise

BPR, the other implicit-feedback factorisation, is :mod:`reclib.cf.bpr`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp

from reclib import progress
from reclib.base import FitContext, Recommender
from reclib.cf import kernels
from reclib.checks import (check_choice, check_divergence, check_finite_array, check_non_negative,
                           check_non_negative_int, check_positive, check_positive_int, check_verbose,
                           diverged)

__all__ = ["ImplicitALS", "implicit_als_half_step", "implicit_als_loss"]


def implicit_als_half_step(strength: sp.csr_matrix, other: np.ndarray, alpha: float, reg: float,
                           reg_exponent: float = 0.0, solver: str = "cholesky",
                           current: np.ndarray | None = None, cg_steps: int = 3) -> np.ndarray:
    """Solve every row's factors with the other side fixed, by the :math:`Y^\\top Y` trick.

    strength: (n_rows, n_other) sparse :math:`r_{ui}` (observed entries only); other: (n_other, f).
    Row ``u`` is regularised by :math:`\\lambda_u = \\lambda (\\sum_i c_{ui})^\\nu` (``reg_exponent`` =
    :math:`\\nu`; 0 gives the constant :math:`\\lambda` of Hu et al., 1 the frequency-scaled
    regularisation of Rendle et al. 2021). Returns (n_rows, f), in ``other``'s dtype.

    ``solver="cholesky"`` solves each row's system exactly (the per-row matrix costs
    :math:`O(f^2 |I_u|)`); ``solver="cg"`` takes ``cg_steps`` conjugate-gradient steps from
    ``current`` (n_rows, f; zeros if ``None``) using only matrix-vector products,
    :math:`O(f^2 + f |I_u|)` per step, without forming the matrix (Takács et al. 2011).
    ``alpha`` and ``reg`` must be > 0, ``reg_exponent`` >= 0; the strengths and ``other`` finite.
    """
    check_positive(alpha=alpha, reg=reg)
    check_non_negative(reg_exponent=reg_exponent)
    check_choice("solver", solver, ("cholesky", "cg"))
    check_positive_int(cg_steps=cg_steps)
    strength = sp.csr_matrix(strength)
    check_finite_array("strength", strength.data)
    dtype = np.float32 if np.asarray(other).dtype == np.float32 else np.float64
    other = check_finite_array("other", other)
    if other.ndim != 2 or strength.shape[1] != len(other):
        raise ValueError(f"shapes disagree: strength {strength.shape}, other {other.shape}; "
                         f"expected (n_rows, n_other) and (n_other, f)")
    other = np.ascontiguousarray(other, dtype=dtype)
    shape = (strength.shape[0], other.shape[1])
    if current is None:
        rows = np.zeros(shape, dtype=other.dtype)
    else:
        rows = np.array(check_finite_array("current", current), dtype=other.dtype, order="C")
        if rows.shape != shape:
            raise ValueError(f"current must have shape {shape}, got {rows.shape}")
    failed = _solve_rows(strength, other, kernels.gram(other), rows, alpha, reg, reg_exponent,
                         solver, cg_steps)
    if failed:
        raise np.linalg.LinAlgError(f"{failed} of {shape[0]} ridge systems are not positive definite")
    return rows


def _solve_rows(strength: sp.csr_matrix, other: np.ndarray, other_gram: np.ndarray, rows: np.ndarray,
                alpha: float, reg: float, reg_exponent: float, solver: str, cg_steps: int,
                row_loss: np.ndarray | None = None) -> int:
    """One half step in place on ``rows`` by the compiled kernels; returns the failed rows' count.

    row_loss: (n_rows,) float64 to receive each row's observed-pair loss term (``"cg"`` only;
    see :func:`reclib.cf.kernels.ials_cg_half_step`)."""
    args = (strength.indptr, strength.indices, strength.data, other, other_gram, rows,
            float(alpha), float(reg), float(reg_exponent))
    if solver == "cg":
        no_loss = np.empty(0, dtype=np.float64)
        kernels.ials_cg_half_step(*args, cg_steps, no_loss if row_loss is None else row_loss,
                                  kernels.CHUNKS_PER_THREAD * numba.get_num_threads())
        return 0
    return kernels.ials_cholesky_half_step(*args)


def implicit_als_loss(strength: sp.csr_matrix, X: np.ndarray, Y: np.ndarray, alpha: float,
                      reg: float) -> float:
    """The weighted loss :math:`L` over all pairs, computed in O(nnz f + (n_u + n_i) f^2)."""
    check_positive(alpha=alpha, reg=reg)
    coo = sp.coo_matrix(strength)
    pred = np.einsum("nf,nf->n", X[coo.row], Y[coo.col])
    all_pairs = np.sum((X.T @ X) * (Y.T @ Y))            # sum over every pair of (x_u . y_i)^2
    observed = np.sum((1 + alpha * coo.data) * (1 - pred) ** 2 - pred ** 2)
    return float(all_pairs + observed + reg * (np.sum(X ** 2) + np.sum(Y ** 2)))


def _unobserved_and_reg_loss(X_gram: np.ndarray, Y_gram: np.ndarray, reg: float) -> float:
    """The loss terms that need no pass over the interactions, from the Gram matrices (f, f):
    :math:`\\sum_{u,i} (x_u \\cdot y_i)^2 = \\langle X^\\top X, Y^\\top Y \\rangle` and
    :math:`\\lambda (\\operatorname{tr} X^\\top X + \\operatorname{tr} Y^\\top Y)`."""
    X_gram, Y_gram = X_gram.astype(np.float64), Y_gram.astype(np.float64)
    return float(np.sum(X_gram * Y_gram) + reg * (np.trace(X_gram) + np.trace(Y_gram)))


class ImplicitALS(Recommender):
    r"""Weighted matrix factorisation for implicit feedback, by alternating least squares.

    Parameters
    ----------
    n_factors: :math:`f`; reg: :math:`\lambda`; alpha: :math:`\alpha` in :math:`c = 1 + \alpha r`.
    reg_exponent: :math:`\nu` in the per-row weight :math:`\lambda (\sum_i c_{ui})^\nu`
    (:func:`implicit_als_half_step`); 0 is the original constant :math:`\lambda`.
    epochs: alternating sweeps; init_std: scale of the random initial factors.
    solver: ``"cg"`` (default: ``cg_steps`` conjugate-gradient steps per row and half step,
    warm-started from the current factors, never forming a per-row matrix; Takács et al. 2011, as
    the ``implicit`` library does) or ``"cholesky"`` (the exact solve of every row's system).
    cg_steps: conjugate-gradient steps per row (``solver="cg"`` only).
    dtype: ``"float64"`` or ``"float32"`` factors (float32 halves memory traffic).
    random_state: seed; verbose: progress bar with the loss.

    The defaults (64 factors, ``alpha`` 3, ``reg`` 30, 15 sweeps) are the values chosen on the P1
    validation carve-out of MovieLens-100K (``make tune``; notebook 02b).

    The half steps are compiled (:mod:`reclib.cf.kernels`) and run in parallel over rows; every
    row's update is independent, so the result is the same whatever the number of threads.
    Interactions count as :math:`r_{ui} = 1` (a frame's rating column is ignored).
    Every argument is checked before anything runs; a fit whose loss or factors become NaN/inf
    (e.g. ``alpha`` so large that the confidence weights swamp ``reg``), or whose ridge systems
    turn singular, stops with ``FloatingPointError`` naming the iteration, ``alpha`` and ``reg``.
    After ``fit``: ``user_factors_`` (n_users, f), ``item_factors_`` (n_items, f), ``history_``.
    New or changed users are served without a refit by :meth:`fold_in` (the closed-form user step
    with the item factors fixed), which also gives ``score_histories``.
    """

    reads_rows = False          # learns from the interaction matrix alone

    def __init__(self, n_factors: int = 64, reg: float = 30.0, alpha: float = 3.0, epochs: int = 15,
                 reg_exponent: float = 0.0, init_std: float = 0.01, random_state: int = 42,
                 verbose: int = 0, solver: str = "cg", cg_steps: int = 3,
                 dtype: str = "float64", **columns: str) -> None:
        super().__init__(**columns)
        check_positive_int(n_factors=n_factors, epochs=epochs, cg_steps=cg_steps)
        check_positive(reg=reg, alpha=alpha, init_std=init_std)
        check_non_negative(reg_exponent=reg_exponent)
        check_non_negative_int(random_state=random_state)
        check_verbose(verbose)
        check_choice("solver", solver, ("cg", "cholesky"))
        check_choice("dtype", dtype, ("float64", "float32"))
        self.n_factors, self.reg, self.alpha, self.epochs = n_factors, reg, alpha, epochs
        self.reg_exponent = reg_exponent
        self.init_std, self.random_state, self.verbose = init_std, random_state, verbose
        self.solver, self.cg_steps, self.dtype = solver, cg_steps, dtype

    def _fit(self, context: FitContext) -> None:
        matrix = context.matrix
        rng = np.random.default_rng(self.random_state)
        with np.errstate(over="ignore"):       # a huge init_std is reported by the first check
            X = rng.normal(0, self.init_std, (matrix.shape[0], self.n_factors)).astype(self.dtype)
            Y = rng.normal(0, self.init_std, (matrix.shape[1], self.n_factors)).astype(self.dtype)
        # every row on cache lines of its own: the threads of a half step write different rows
        X, Y = kernels.cache_line_rows(X), kernels.cache_line_rows(Y)
        matrix = sp.csr_matrix(matrix, dtype=np.float64)
        transposed = matrix.T.tocsr()
        history = []
        culprits = {"alpha": self.alpha, "reg": self.reg, "reg_exponent": self.reg_exponent}
        advice = "lower alpha or raise reg (the confidence weights swamp the regularisation)"
        Y_gram = kernels.gram(Y)
        start_loss = self._loss(matrix, X, Y, kernels.gram(X), Y_gram)
        item_loss = np.empty(matrix.shape[1], dtype=np.float64)
        bar = progress(range(self.epochs), self.verbose, desc="ImplicitALS")
        for it in bar:
            failed = _solve_rows(matrix, Y, Y_gram, X, self.alpha, self.reg, self.reg_exponent,
                                 self.solver, self.cg_steps)
            X_gram = kernels.gram(X)
            failed += _solve_rows(transposed, X, X_gram, Y, self.alpha, self.reg,
                                  self.reg_exponent, self.solver, self.cg_steps, item_loss)
            if failed:
                raise diverged("ImplicitALS", "iteration", it + 1, self.epochs,
                               f"{failed} ridge systems were not positive definite", culprits,
                               advice)
            Y_gram = kernels.gram(Y)
            if self.solver == "cg":     # the item step left each item's observed-pair term
                loss = float(item_loss.sum() + _unobserved_and_reg_loss(X_gram, Y_gram, self.reg))
            else:
                loss = self._loss(matrix, X, Y, X_gram, Y_gram)
            check_divergence("ImplicitALS", "iteration", it + 1, self.epochs, loss, start_loss,
                             culprits, advice, user_factors=X, item_factors=Y)
            history.append({"iteration": it + 1, "loss": loss})
            bar.set_postfix(loss=f"{loss:.1f}")
        self.user_factors_ = X[:, :self.n_factors].copy()
        self.item_factors_ = Y[:, :self.n_factors].copy()
        self.history_ = pd.DataFrame(history)

    def _loss(self, matrix: sp.csr_matrix, X: np.ndarray, Y: np.ndarray, X_gram: np.ndarray,
              Y_gram: np.ndarray) -> float:
        """:func:`implicit_als_loss` by the compiled kernel (NaN/inf pass through to the check)."""
        return float(kernels.ials_loss(matrix.indptr, matrix.indices, matrix.data, X, Y,
                                       X_gram, Y_gram, float(self.alpha), float(self.reg)))

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T

    # -- online updates: the closed-form fold-in of new or changed users ---------------------------
    def fold_in(self, item_lists: Sequence[Sequence[object]]) -> np.ndarray:
        r"""User factors (n_users, f) for users described only by raw item ids, item factors fixed.

        Each user's vector is the exact solution of the user half step of the fit,
        :math:`x_u = (Y^\top Y + \alpha \sum_{i \in I_u} y_i y_i^\top + \lambda_u I)^{-1}
        (1 + \alpha) \sum_{i \in I_u} y_i` (every listed item counts once, :math:`r_{ui} = 1`), by a
        Cholesky solve: :math:`O(f^2 |I_u| + f^3)` per user, no refit. An unknown item raises
        ``ValueError`` naming it; an empty list gives the zero vector.
        """
        return self.fold_in_matrix(self.history_matrix(item_lists))

    def fold_in_matrix(self, strength: sp.spmatrix) -> np.ndarray:
        """:meth:`fold_in` from a (n_users, n_items) sparse matrix of strengths :math:`r_{ui}` over
        ``item_ids_`` (column ``j`` is ``item_ids_[j]``); returns (n_users, f) in the factors' dtype.

        :math:`Y^\top Y` is computed once per fitted model and reused by every later call.
        """
        self._check_fitted()
        strength = sp.csr_matrix(strength, dtype=np.float64)
        if strength.ndim != 2 or strength.shape[1] != len(self.item_ids_):
            raise ValueError(f"strength must have shape (n_users, {len(self.item_ids_)}), got "
                             f"{strength.shape}")
        check_non_negative(**{"strength (smallest value)": float(strength.data.min(initial=0.0))})
        strength.sum_duplicates()
        Y = self.item_factors_
        if getattr(self, "_item_gram_source", None) is not Y:   # refit or first call
            self._item_gram, self._item_gram_source = kernels.gram(Y), Y
        if strength.shape[0] == 1:                  # serving one user: no parallel-kernel launch
            return self._fold_in_one(strength.indices, strength.data)[None, :].astype(Y.dtype)
        rows = np.zeros((strength.shape[0], Y.shape[1]), dtype=Y.dtype)
        failed = _solve_rows(strength, Y, self._item_gram, rows, self.alpha, self.reg,
                             self.reg_exponent, "cholesky", self.cg_steps)
        if failed:
            raise np.linalg.LinAlgError(f"{failed} of {len(rows)} fold-in systems are not positive "
                                        f"definite (reg={self.reg!r})")
        return rows

    def _fold_in_one(self, items: np.ndarray, strength: np.ndarray) -> np.ndarray:
        """One user's fold-in by a dense NumPy solve (the same system as the kernel's), (f,)."""
        Y = np.asarray(self.item_factors_, dtype=np.float64)
        Yh, weight = Y[items], self.alpha * strength
        lam = self.reg * (len(Y) + weight.sum()) ** self.reg_exponent if self.reg_exponent else self.reg
        A = self._item_gram + (Yh * weight[:, None]).T @ Yh + lam * np.eye(Y.shape[1])
        try:
            return scipy.linalg.solve(A, (1.0 + weight) @ Yh, assume_a="pos", check_finite=False)
        except np.linalg.LinAlgError:
            raise np.linalg.LinAlgError(f"the fold-in system is not positive definite "
                                        f"(reg={self.reg!r})") from None

    def score_history_matrix(self, history: sp.csr_matrix) -> np.ndarray:
        return self.fold_in_matrix(history) @ self.item_factors_.T

    def contributions(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        r"""Contribution (len(items), len(history)) of each history item to each item's folded-in
        score, through ALS's item-item form (Hu, Koren & Volinsky 2008, section 5):
        :math:`c\, y_i^\top W y_j` with :math:`W = (Y^\top Y + \alpha Y_H^\top Y_H + \lambda I)^{-1}`,
        :math:`c = 1 + \alpha` (``reclib.interactive.explain``); both arguments are item indices."""
        Y = np.asarray(self.item_factors_, dtype=np.float64)
        lam = self.reg * (len(Y) + self.alpha * len(history)) ** self.reg_exponent
        W = np.linalg.inv(Y.T @ Y + self.alpha * Y[history].T @ Y[history] + lam * np.eye(Y.shape[1]))
        return (1.0 + self.alpha) * (Y[items] @ W @ Y[history].T)

r"""Implicit-feedback factorisation: weighted ALS (Hu, Koren & Volinsky 2008) and BPR (Rendle et al. 2009).

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
:math:`Y^\top C_u p(u) = \sum_{i \in I_u} c_{ui} y_i`.

**BPR.** For a user :math:`u`, an item :math:`i` they interacted with and a sampled item :math:`j`
they did not, BPR maximises :math:`\ln \sigma(\hat x_{uij})` with
:math:`\hat x_{uij} = \hat x_{ui} - \hat x_{uj}`, :math:`\hat x_{ui} = b_i + p_u^\top q_i`: the
probability that the user ranks :math:`i` above :math:`j`. Per triplet the loss is
:math:`\ell = -\ln\sigma(\hat x_{uij}) + \tfrac\lambda2 (\lVert p_u\rVert^2 + \lVert q_i\rVert^2 +
\lVert q_j\rVert^2 + b_i^2 + b_j^2)` and, with :math:`g = \sigma(-\hat x_{uij})`,
:math:`\partial_{p_u}\ell = -g (q_i - q_j) + \lambda p_u`, :math:`\partial_{q_i}\ell = -g p_u + \lambda
q_i`, :math:`\partial_{q_j}\ell = g p_u + \lambda q_j`, :math:`\partial_{b_i}\ell = -g + \lambda b_i`,
:math:`\partial_{b_j}\ell = g + \lambda b_j`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp

from reclib import progress
from reclib.base import Recommender
from reclib.checks import check_divergence, diverged
from reclib.cf import kernels
from reclib.cf.linalg import scatter_add
from reclib.checks import (check_choice, check_finite_array, check_non_negative,
                           check_non_negative_int, check_positive, check_positive_int)

__all__ = ["BPR", "ImplicitALS", "bpr_loss_and_grads", "bpr_sgd_step", "implicit_als_half_step",
           "implicit_als_loss"]


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
    validation carve-out of MovieLens-100K (``make tune``; notebook 02).

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
                 verbose: bool = False, solver: str = "cg", cg_steps: int = 3,
                 dtype: str = "float64", **columns: str) -> None:
        super().__init__(**columns)
        check_positive_int(n_factors=n_factors, epochs=epochs, cg_steps=cg_steps)
        check_positive(reg=reg, alpha=alpha, init_std=init_std)
        check_non_negative(reg_exponent=reg_exponent)
        check_non_negative_int(random_state=random_state)
        check_choice("verbose", verbose, (True, False))
        check_choice("solver", solver, ("cg", "cholesky"))
        check_choice("dtype", dtype, ("float64", "float32"))
        self.n_factors, self.reg, self.alpha, self.epochs = n_factors, reg, alpha, epochs
        self.reg_exponent = reg_exponent
        self.init_std, self.random_state, self.verbose = init_std, random_state, verbose
        self.solver, self.cg_steps, self.dtype = solver, cg_steps, dtype

    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
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

    def _score_history_matrix(self, history: sp.csr_matrix) -> np.ndarray:
        return self.fold_in_matrix(history) @ self.item_factors_.T


def _bpr_terms(P: np.ndarray, Q: np.ndarray, b: np.ndarray, users: np.ndarray, pos: np.ndarray,
               neg: np.ndarray, reg: float) -> tuple[float, tuple[np.ndarray, ...]]:
    """Summed loss and per-triplet gradient rows (for p_u, q_i, q_j, b_i, b_j) of a batch."""
    p, qi, qj = P[users], Q[pos], Q[neg]
    x = b[pos] - b[neg] + np.einsum("nf,nf->n", p, qi - qj)
    loss = np.sum(np.logaddexp(0.0, -x)) + 0.5 * reg * (
        np.sum(p ** 2) + np.sum(qi ** 2) + np.sum(qj ** 2) + np.sum(b[pos] ** 2) + np.sum(b[neg] ** 2))
    g = np.exp(-np.logaddexp(0.0, x))                     # sigma(-x), computed stably
    rows = (-g[:, None] * (qi - qj) + reg * p, -g[:, None] * p + reg * qi,
            g[:, None] * p + reg * qj, -g + reg * b[pos], g + reg * b[neg])
    return float(loss), rows


def bpr_loss_and_grads(P: np.ndarray, Q: np.ndarray, b: np.ndarray, users: np.ndarray,
                       pos: np.ndarray, neg: np.ndarray,
                       reg: float) -> tuple[float, dict[str, np.ndarray]]:
    """Summed BPR loss over the triplets (module doc) and its gradients, shaped like the params."""
    check_non_negative(reg=reg)
    loss, (gp, gqi, gqj, gbi, gbj) = _bpr_terms(P, Q, b, users, pos, neg, reg)
    grads = {"P": np.zeros_like(P), "Q": np.zeros_like(Q), "b": np.zeros_like(b)}
    scatter_add(grads["P"], users, gp)
    scatter_add(grads["Q"], np.concatenate([pos, neg]), np.vstack([gqi, gqj]))
    np.add.at(grads["b"], pos, gbi)
    np.add.at(grads["b"], neg, gbj)
    return loss, grads


def bpr_sgd_step(P: np.ndarray, Q: np.ndarray, b: np.ndarray, users: np.ndarray, pos: np.ndarray,
                 neg: np.ndarray, reg: float, lr: float) -> float:
    """One SGD step on a batch of triplets, in place, touching only the rows in the batch.

    Equivalent to ``param -= lr * grad`` with the gradients of :func:`bpr_loss_and_grads`.
    Returns the batch's summed log-loss :math:`\\sum -\\ln\\sigma(\\hat x_{uij})` before the step (the
    penalty left out). Only the scalars are checked here (the step runs once
    per batch); :class:`BPR` checks its loss for NaN/inf every epoch and the parameters after the
    last one.
    """
    check_non_negative(reg=reg)
    check_positive(lr=lr)
    return _bpr_sgd_step(P, Q, b, users, pos, neg, reg, lr)


def _bpr_sgd_step(P: np.ndarray, Q: np.ndarray, b: np.ndarray, users: np.ndarray, pos: np.ndarray,
                  neg: np.ndarray, reg: float, lr: float) -> float:
    """:func:`bpr_sgd_step` without the argument checks: the compiled kernel, one batch."""
    return kernels.bpr_epoch(P, Q, b[:, None], users, pos, neg, float(reg), float(lr),
                             max(len(users), 1))


def _balanced_blocks(degree: np.ndarray, n_blocks: int, rng: np.random.Generator) -> np.ndarray:
    """A random split of rows into ``n_blocks`` blocks of about equal interaction mass: the rows in
    a random order (from ``rng``), cut where the running sum of ``degree`` (n,) crosses each
    ``total / n_blocks``. Returns each row's block (n,) in ``[0, n_blocks)``."""
    degree = np.asarray(degree, dtype=np.int64)
    order = rng.permutation(len(degree))
    mass_before = np.cumsum(degree[order]) - degree[order]
    blocks = np.empty(len(degree), dtype=np.int64)
    # rows of degree 0 at the end of the order would land on n_blocks: they join the last block
    blocks[order] = np.minimum(mass_before * n_blocks // max(int(degree.sum()), 1), n_blocks - 1)
    return blocks


class BPR(Recommender):
    r"""Bayesian personalised ranking with item biases, trained by SGD on sampled triplets.

    Each epoch draws one (u, i, j) triplet per training interaction, in random order, with a
    negative ``j`` sampled uniformly among the items ``u`` has not interacted with; each triplet's
    gradients are applied with step ``learning_rate`` (``batch_size=1``, the default, is Rendle et
    al.'s LearnBPR; ``batch_size > 1`` sums a batch's gradients at the parameters before it).

    **Parallel and still reproducible** (``n_threads``, DSGD-style stratification; Gemulla et al.
    2011): every epoch splits users and items into ``n_threads`` random blocks of equal interaction
    mass; cell ``(s, t)`` holds the interactions of user block ``s`` with item block ``t`` and
    draws its negatives from item block ``t``. The ``n_threads`` cells ``(s, (s + r) mod B)`` of a
    round ``r`` touch disjoint user and item rows, so they train at the same time without races,
    each as sequential SGD with its own random stream. The result depends on ``n_threads`` and the
    seed, never on the machine, the number of cores or the thread timing (unlike the Hogwild
    updates of ``implicit`` and Cornac; the same OS math library is assumed for ``exp``/``log1p``).
    With ``n_threads > 1`` a negative comes from the positive's block (for 2, a fresh random half
    of the interaction mass each epoch; a block holds fewer items when they are popular, so popular
    items are drawn slightly more often as negatives: +0.4 % for the top 10 MovieLens-100K films at
    2 blocks, +7 % at 16) rather than the whole catalogue. A triplet whose user has seen nearly every
    item of the block (no unseen item in :data:`~reclib.cf.kernels.MAX_NEGATIVE_DRAWS` draws) is
    skipped and counted in ``history_``; an epoch that skips more than 1 % of its triplets (one item
    holding most of a block's mass: use fewer blocks) stops with ``ValueError``.
    Sampling, shuffling and the SGD steps all run compiled (:func:`reclib.cf.kernels.bpr_blocked_epoch`).

    Parameters
    ----------
    n_factors, reg (:math:`\lambda`), learning_rate, epochs, batch_size, init_std, random_state, verbose.
    n_threads: the number of blocks, and of cells trained at once (see above): it fixes the numbers;
        the parallelism used is at most numba's thread count. Capped at the number of users and at
        an eighth of the number of items (tiny catalogues train as one block). On P1's validation
        carve-out 2 blocks rank as well as 1 (NDCG@10 0.247 vs 0.244, mean of six seeds).
    dtype: ``"float64"`` (default) or ``"float32"`` factors (float32 halves the memory traffic of
        the random row accesses; the loss is still summed in float64).
    The defaults (64 factors, ``reg`` 0.03, ``learning_rate`` 0.05, 100 epochs, 2 threads) are the
    values chosen on the P1 validation carve-out of MovieLens-100K (``make tune``; notebook 02).

    Every argument is checked before anything runs; a fit that diverges (``learning_rate`` too large: the
    loss or factors become NaN/inf, or the mean loss grows past :data:`~reclib.checks.GROWTH_LIMIT`;
    it starts near :math:`\ln 2`, the loss of scores that rank at random) stops with
    ``FloatingPointError`` naming the epoch (the loss is checked every epoch, the factors after the
    last one: a bad factor row shows in the loss when it is next used, so at most an epoch late),
    ``learning_rate``, ``reg`` and ``init_std``.

    After ``fit``: ``user_factors_``, ``item_factors_``, ``item_bias_``, ``history_`` (per epoch: the
    mean log-loss :math:`-\ln\sigma(\hat x_{uij})` per triplet, before each triplet's step and
    without the penalty; ``skipped`` triplets).
    """

    reads_rows = False          # learns from the interaction matrix alone

    def __init__(self, n_factors: int = 64, reg: float = 0.03, learning_rate: float = 0.05,
                 epochs: int = 100, batch_size: int = 1, init_std: float = 0.1, random_state: int = 42,
                 verbose: bool = False, dtype: str = "float64", n_threads: int = 2,
                 **columns: str) -> None:
        super().__init__(**columns)
        check_positive_int(n_factors=n_factors, epochs=epochs, batch_size=batch_size,
                           n_threads=n_threads)
        check_positive(learning_rate=learning_rate, init_std=init_std)
        check_non_negative(reg=reg)
        check_non_negative_int(random_state=random_state)
        check_choice("verbose", verbose, (True, False))
        check_choice("dtype", dtype, ("float64", "float32"))
        self.n_factors, self.reg, self.learning_rate, self.epochs = n_factors, reg, learning_rate, epochs
        self.batch_size, self.init_std, self.n_threads = batch_size, init_std, n_threads
        self.random_state, self.verbose, self.dtype = random_state, verbose, dtype

    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
        rng = np.random.default_rng(self.random_state)
        n_users, n_items = matrix.shape
        matrix = sp.csr_matrix(matrix)
        matrix.sum_duplicates()                               # one entry per (user, item) pair
        full = np.flatnonzero(np.diff(matrix.indptr) >= n_items)
        if len(full):
            raise ValueError(f"users {self.user_ids_[full[:5]].tolist()} have "
                             f"no item left to sample as a negative (they interacted with all "
                             f"{n_items} items)")
        coo = matrix.tocoo()
        pair_users, pair_items = coo.row.astype(np.int64), coo.col.astype(np.int64)
        user_degree = np.diff(matrix.indptr)
        item_degree = np.bincount(pair_items, minlength=n_items)
        # factor rows and item biases each on cache lines of their own (no false sharing between
        # the threads); the biases as a column of b, padded to a line per item
        P = kernels.cache_line_rows(
            rng.normal(0, self.init_std, (n_users, self.n_factors)).astype(self.dtype))
        Q = kernels.cache_line_rows(
            rng.normal(0, self.init_std, (n_items, self.n_factors)).astype(self.dtype))
        b = kernels.cache_line_rows(np.zeros((n_items, 1), dtype=self.dtype))
        blocks = max(1, min(self.n_threads, n_users, n_items // 8))   # >= 8 items per block
        triplets = np.empty((3, len(pair_users)), dtype=np.int64)     # the kernel's scratch
        marks = kernels.cache_line_rows(np.zeros((blocks, n_items), dtype=np.uint8))
        history = []
        culprits = {"learning_rate": self.learning_rate, "reg": self.reg, "init_std": self.init_std}
        advice = "lower learning_rate (the SGD step is too large), or change reg or init_std"
        bar = progress(range(self.epochs), self.verbose, desc="BPR")
        for epoch in bar:
            user_block = _balanced_blocks(user_degree, blocks, rng)
            item_block = _balanced_blocks(item_degree, blocks, rng)
            cells = kernels.group_by_cell(pair_users, pair_items, user_block, item_block, blocks)
            block_items = kernels.counting_sort(item_block, blocks)
            seeds = rng.integers(0, 2**64, blocks * blocks, dtype=np.uint64, endpoint=False)
            total, skipped = kernels.bpr_blocked_epoch(
                P, Q, b, matrix.indptr, matrix.indices, pair_users, pair_items, *cells,
                *block_items, seeds, triplets, marks, float(self.reg), float(self.learning_rate),
                self.batch_size)
            if skipped > 0.01 * len(pair_users):
                raise ValueError(f"BPR epoch {epoch + 1} skipped {skipped} of {len(pair_users)} "
                                 f"triplets: with n_threads={self.n_threads} some item block is "
                                 f"almost all positives of its users (one item holds most of its "
                                 f"interactions); use fewer n_threads")
            loss = total / (len(pair_users) - skipped)
            # the factors themselves are scanned after the last epoch only (a scan costs about a
            # tenth of an epoch on MovieLens-100K): a NaN/inf row turns the loss non-finite at the
            # latest in the epoch after, when the row is next used (so the error may name that epoch)
            last = epoch + 1 == self.epochs
            factors = {"user_factors": P, "item_factors": Q, "item_bias": b} if last else {}
            check_divergence("BPR", "epoch", epoch + 1, self.epochs, loss, np.log(2.0), culprits,
                             advice, **factors)
            history.append({"epoch": epoch + 1, "loss": loss, "skipped": skipped})
            bar.set_postfix(loss=f"{loss:.4f}")
        f = self.n_factors
        self.user_factors_, self.item_factors_ = P[:, :f].copy(), Q[:, :f].copy()
        self.item_bias_ = b[:, 0].copy()
        self.history_ = pd.DataFrame(history)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.item_bias_[None, :] + self.user_factors_[users] @ self.item_factors_.T


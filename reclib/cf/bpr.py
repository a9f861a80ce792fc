r"""Bayesian personalised ranking (Rendle et al. 2009): implicit-feedback factorisation by SGD on
sampled (user, positive, negative) triplets.

For a user :math:`u`, an item :math:`i` they interacted with and a sampled item :math:`j`
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

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclib import progress
from reclib.base import FitContext, Recommender
from reclib.cf import kernels
from reclib.cf.linalg import scatter_add
from reclib.checks import (check_choice, check_divergence, check_non_negative, check_non_negative_int,
                           check_positive, check_positive_int, check_verbose)

__all__ = ["BPR", "bpr_loss_and_grads", "bpr_sgd_step"]


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

    **Parallel and still reproducible** (``n_blocks``, DSGD-style stratification; Gemulla et al.
    2011): every epoch splits users and items into ``n_blocks`` random blocks of equal interaction
    mass; cell ``(s, t)`` holds the interactions of user block ``s`` with item block ``t`` and
    draws its negatives from item block ``t``. The ``n_blocks`` cells ``(s, (s + r) mod B)`` of a
    round ``r`` touch disjoint user and item rows, so they train at the same time without races,
    each as sequential SGD with its own random stream. The result depends on ``n_blocks`` and the
    seed, never on the machine, the number of cores or the thread timing (unlike the Hogwild
    updates of ``implicit`` and Cornac; the same OS math library is assumed for ``exp``/``log1p``).
    With ``n_blocks > 1`` a negative comes from the positive's block (for 2, a fresh random half
    of the interaction mass each epoch; a block holds fewer items when they are popular, so popular
    items are drawn slightly more often as negatives: +0.4 % for the top 10 MovieLens-100K films at
    2 blocks, +7 % at 16) rather than the whole catalogue. A triplet whose user has seen nearly every
    item of the block (no unseen item in :data:`~reclib.cf.kernels.MAX_NEGATIVE_DRAWS` draws) is
    skipped and counted in ``history_``; an epoch that skips more than 1 % of its triplets (one item
    holding most of a block's mass: use fewer blocks) stops with ``ValueError``.
    Sampling, shuffling and the SGD steps all run compiled (:func:`reclib.cf.kernels.bpr_blocked_epoch`).

    Parameters
    ----------
    - n_factors, reg (:math:`\lambda`), learning_rate, epochs, batch_size, init_std, random_state, verbose.
    - n_blocks: the number of blocks, and of cells trained at once (see above): it fixes the numbers;
      the parallelism used is at most numba's thread count. Capped at the number of users and at
      an eighth of the number of items (tiny catalogues train as one block). The default 2 ranks
      as well as 1 on P1's validation carve-out (README, "How the defaults were chosen").
    - dtype: ``"float64"`` (default) or ``"float32"`` factors (float32 halves the memory traffic of
      the random row accesses; the loss is still summed in float64).

    The defaults (64 factors, ``reg`` 0.03, ``learning_rate`` 0.05, 100 epochs, 2 blocks) are the
    values chosen on the P1 validation carve-out of MovieLens-100K (``make tune``; notebook 02b).

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
                 verbose: int = 0, dtype: str = "float64", n_blocks: int = 2,
                 **columns: str) -> None:
        super().__init__(**columns)
        check_positive_int(n_factors=n_factors, epochs=epochs, batch_size=batch_size,
                           n_blocks=n_blocks)
        check_positive(learning_rate=learning_rate, init_std=init_std)
        check_non_negative(reg=reg)
        check_non_negative_int(random_state=random_state)
        check_verbose(verbose)
        check_choice("dtype", dtype, ("float64", "float32"))
        self.n_factors, self.reg, self.learning_rate, self.epochs = n_factors, reg, learning_rate, epochs
        self.batch_size, self.init_std, self.n_blocks = batch_size, init_std, n_blocks
        self.random_state, self.verbose, self.dtype = random_state, verbose, dtype

    def _fit(self, context: FitContext) -> None:
        matrix = context.matrix
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
        blocks = max(1, min(self.n_blocks, n_users, n_items // 8))   # >= 8 items per block
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
                                 f"triplets: with n_blocks={self.n_blocks} some item block is "
                                 f"almost all positives of its users (one item holds most of its "
                                 f"interactions); use fewer n_blocks")
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

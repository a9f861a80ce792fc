"""BPR (Rendle et al.): the SGD epoch, the seeded triplet sampler and the blocked parallel epoch, compiled
(the math is derived in :mod:`reclib.cf.bpr`)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

__all__ = ["MAX_NEGATIVE_DRAWS", "bpr_blocked_epoch", "bpr_epoch", "counting_sort", "draw_triplets", "group_by_cell"]


@njit(cache=True, fastmath=False)
def _bpr_weight_and_loss(x: float) -> tuple[float, float]:
    """:math:`(\\sigma(-x), \\ln(1 + e^{-x}))` sharing one exponential :math:`e^{-|x|}`, computed stably."""
    if x >= 0.0:
        e = math.exp(-x)
        return e / (1.0 + e), math.log1p(e)
    e = math.exp(x)
    return 1.0 / (1.0 + e), -x + math.log1p(e)


@njit(cache=True, fastmath=False)
def _bpr_triplet(p: np.ndarray, qi: np.ndarray, qj: np.ndarray, bi: float,
                 bj: float) -> tuple[float, float]:
    """(log-loss, g) of one triplet: :math:`-\\ln\\sigma(\\hat x_{uij})` (the penalty left out) and
    :math:`g = \\sigma(-\\hat x_{uij})`. The score difference is summed in four interleaved partial
    sums (a fixed order, so deterministic; four short dependency chains instead of one long one)."""
    f = p.shape[0]
    z = p.dtype.type(0.0)
    x0 = x1 = x2 = x3 = z
    m = f - f % 4
    for c in range(0, m, 4):
        x0 += p[c] * (qi[c] - qj[c])
        x1 += p[c + 1] * (qi[c + 1] - qj[c + 1])
        x2 += p[c + 2] * (qi[c + 2] - qj[c + 2])
        x3 += p[c + 3] * (qi[c + 3] - qj[c + 3])
    for c in range(m, f):
        x0 += p[c] * (qi[c] - qj[c])
    g, loss = _bpr_weight_and_loss((bi - bj) + ((x0 + x1) + (x2 + x3)))
    return loss, g


@njit(cache=True, fastmath=False, nogil=True)
def bpr_epoch(P: np.ndarray, Q: np.ndarray, b: np.ndarray, users: np.ndarray, pos: np.ndarray,
              neg: np.ndarray, reg: float, lr: float, batch_size: int) -> float:
    """One SGD pass over the triplets in the given order, in place; returns the summed log-loss
    :math:`\\sum -\\ln\\sigma(\\hat x_{uij})` (the penalty is not included).

    ``batch_size=1``: per-triplet SGD, each step ``param -= lr * grad`` with the gradients of
    ``bpr_loss_and_grads`` at the current parameters. ``batch_size > 1``: each batch of
    consecutive triplets takes its gradients at the parameters before the batch (summing over
    repeated rows). The loss of a triplet is taken before its step. Single-threaded; releases
    the GIL. With ``batch_size=1`` the factor updates run in the factors' dtype (``g``, ``lr`` and
    ``reg`` cast to it); the batch path computes its gradients in float64 and allocates them per
    call.

    b: the item biases as a column, (n_items, width), item ``i``'s bias in ``b[i, 0]``: ``b[:, None]``
    of a vector, or rows padded to a cache line each, so that threads updating different items
    never write the same cache line (:func:`bpr_blocked_epoch`).
    """
    n, f = users.shape[0], P.shape[1]
    real = P.dtype.type
    lr_f, reg_f = real(lr), real(reg)
    total = 0.0
    if batch_size == 1:
        for k in range(n):
            p, qi, qj = P[users[k]], Q[pos[k]], Q[neg[k]]
            bi, bj = b[pos[k], 0], b[neg[k], 0]
            loss, g = _bpr_triplet(p, qi, qj, bi, bj)
            total += loss
            g_f = real(g)
            for c in range(f):
                pc, qic, qjc = p[c], qi[c], qj[c]
                p[c] = pc - lr_f * (-g_f * (qic - qjc) + reg_f * pc)
                qi[c] = qic - lr_f * (-g_f * pc + reg_f * qic)
                qj[c] = qjc - lr_f * (g_f * pc + reg_f * qjc)
            b[pos[k], 0] = bi - lr * (-g + reg * bi)
            b[neg[k], 0] = bj - lr * (g + reg * bj)
        return total
    gp = np.empty((batch_size, f), dtype=P.dtype)
    gqi = np.empty((batch_size, f), dtype=P.dtype)
    gqj = np.empty((batch_size, f), dtype=P.dtype)
    gb = np.empty((batch_size, 2), dtype=np.float64)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        for k in range(start, stop):
            p, qi, qj = P[users[k]], Q[pos[k]], Q[neg[k]]
            bi, bj = b[pos[k], 0], b[neg[k], 0]
            loss, g = _bpr_triplet(p, qi, qj, bi, bj)
            total += loss
            m = k - start
            for c in range(f):
                gp[m, c] = -g * (qi[c] - qj[c]) + reg * p[c]
                gqi[m, c] = -g * p[c] + reg * qi[c]
                gqj[m, c] = g * p[c] + reg * qj[c]
            gb[m, 0] = -g + reg * bi
            gb[m, 1] = g + reg * bj
        for k in range(start, stop):
            m = k - start
            p, qi, qj = P[users[k]], Q[pos[k]], Q[neg[k]]
            for c in range(f):
                p[c] -= lr * gp[m, c]
                qi[c] -= lr * gqi[m, c]
                qj[c] -= lr * gqj[m, c]
            b[pos[k], 0] -= lr * gb[m, 0]
            b[neg[k], 0] -= lr * gb[m, 1]
    return total


@njit(cache=True, fastmath=False)
def _next_bits(state: np.ndarray) -> np.uint64:
    """The next 64 random bits of a SplitMix64 stream (Steele, Lea & Flood 2014); ``state``: (1,)
    uint64, advanced in place. Small, fast and the same on every machine."""
    state[0] += np.uint64(0x9E3779B97F4A7C15)
    z = state[0]
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@njit(cache=True, fastmath=False)
def _below(state: np.ndarray, n: int) -> int:
    """A random integer in ``[0, n)``, ``0 < n < 2**32``: the top 32 random bits scaled by ``n``
    (Lemire's multiply-shift; its bias, below ``n / 2**32``, is negligible here)."""
    return np.int64(((_next_bits(state) >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


@njit(cache=True, fastmath=False)
def counting_sort(keys: np.ndarray, n_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, starts): ``order`` (n,) lists the positions of ``keys`` (n,) in ``[0, n_keys)`` grouped
    by key, each group in increasing position (a stable sort in O(n)); group ``k`` is
    ``order[starts[k]:starts[k + 1]]``, ``starts`` (n_keys + 1,)."""
    starts = np.zeros(n_keys + 1, dtype=np.int64)
    for k in range(keys.shape[0]):
        if keys[k] < 0 or keys[k] >= n_keys:
            raise ValueError("counting_sort: a key is outside [0, n_keys)")
        starts[keys[k] + 1] += 1
    for k in range(n_keys):
        starts[k + 1] += starts[k]
    fill = starts[:-1].copy()
    order = np.empty(keys.shape[0], dtype=np.int64)
    for k in range(keys.shape[0]):
        order[fill[keys[k]]] = k
        fill[keys[k]] += 1
    return order, starts


@njit(cache=True, fastmath=False)
def group_by_cell(pair_users: np.ndarray, pair_items: np.ndarray, user_block: np.ndarray,
                  item_block: np.ndarray, n_blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """The training pairs (n,) grouped by cell ``user_block[u] * n_blocks + item_block[i]``:
    :func:`counting_sort`'s (order, starts) over the ``n_blocks ** 2`` cells."""
    keys = np.empty(pair_users.shape[0], dtype=np.int64)
    for k in range(keys.shape[0]):
        keys[k] = user_block[pair_users[k]] * n_blocks + item_block[pair_items[k]]
    return counting_sort(keys, n_blocks * n_blocks)


#: negatives drawn for one triplet before it is skipped (its user has seen almost every item of
#: the block; with fresh random blocks every epoch this practically never happens)
MAX_NEGATIVE_DRAWS = 64


@njit(cache=True, fastmath=False, nogil=True)
def draw_triplets(indptr: np.ndarray, indices: np.ndarray, pair_users: np.ndarray,
                  pair_items: np.ndarray, pairs: np.ndarray, candidates: np.ndarray,
                  seed: np.uint64, out: np.ndarray, marks: np.ndarray) -> int:
    """One cell's triplets for :func:`bpr_blocked_epoch`, in random order, written to ``out``.

    For each of ``pairs`` (indices into ``pair_users`` / ``pair_items``), a negative drawn
    uniformly from ``candidates`` among the items its user has not interacted with (rejection
    sampling; a pair with no unseen item in ``MAX_NEGATIVE_DRAWS`` draws is dropped); then the
    triplets are shuffled (Fisher-Yates). The rejection test is one look-up: for each run of
    consecutive pairs of one user, that user's items (their row of the CSR structure ``indptr``,
    ``indices``) are marked in ``marks`` (n_items,) uint8, all zero on entry and again on return,
    and unmarked after the run; so pairs grouped by user cost O(1) per draw (any order is correct,
    only slower). ``out`` (3, >= len(pairs)) int64 receives users, positives and negatives in its
    first ``kept`` columns; returns ``kept``. All randomness comes from the SplitMix64 stream
    started at ``seed``. Allocates only its 8-byte random state (it runs inside parallel loops).
    """
    state = np.full(1, seed, dtype=np.uint64)
    users, pos, neg = out[0], out[1], out[2]
    kept = 0
    run = 0
    while run < pairs.shape[0]:
        u = pair_users[pairs[run]]
        end = run + 1
        while end < pairs.shape[0] and pair_users[pairs[end]] == u:
            end += 1
        for k in range(indptr[u], indptr[u + 1]):
            marks[indices[k]] = 1
        for k in range(run, end):
            for _ in range(MAX_NEGATIVE_DRAWS):
                j = candidates[_below(state, candidates.shape[0])]
                if marks[j] == 0:
                    users[kept], pos[kept], neg[kept] = u, pair_items[pairs[k]], j
                    kept += 1
                    break
        for k in range(indptr[u], indptr[u + 1]):
            marks[indices[k]] = 0
        run = end
    for k in range(kept - 1, 0, -1):
        m = _below(state, k + 1)
        users[k], users[m] = users[m], users[k]
        pos[k], pos[m] = pos[m], pos[k]
        neg[k], neg[m] = neg[m], neg[k]
    return kept


@njit(parallel=True, cache=True, fastmath=False)
def bpr_blocked_epoch(P: np.ndarray, Q: np.ndarray, b: np.ndarray, indptr: np.ndarray,
                      indices: np.ndarray, pair_users: np.ndarray, pair_items: np.ndarray,
                      cell_order: np.ndarray, cell_starts: np.ndarray, block_items: np.ndarray,
                      block_starts: np.ndarray, seeds: np.ndarray, triplets: np.ndarray,
                      marks: np.ndarray, reg: float, lr: float, batch_size: int) -> tuple[float, int]:
    """One BPR epoch over ``B x B`` cells, ``B`` of them at a time in parallel, the same numbers
    whatever the number of threads (DSGD-style stratification, Gemulla et al. 2011).

    Users and items are split into ``B`` blocks each; cell ``(s, t)`` holds the training pairs
    whose user is in block ``s`` and item in block ``t``, and draws its negatives from item block
    ``t`` only. In round ``r`` the cells ``(s, (s + r) mod B)``, ``s = 0..B-1``, touch pairwise
    disjoint user rows and item rows, so they run in parallel without races; each cell is
    sequential SGD with its own random stream (``seeds[cell]``), so its result does not depend on
    which thread runs it or when.

    b: the item biases as :func:`bpr_epoch` takes them (padded rows, so cells running together never
    share a cache line); indptr, indices: the (users x items) CSR structure of the positives;
    pair_users, pair_items: (n,) every training pair; cell_order, cell_starts: the pairs grouped by
    cell ``s * B + t`` (:func:`counting_sort`); block_items, block_starts: the items grouped by
    block; seeds: (B * B,) uint64; triplets: (3, n) int64 and marks: (B, >= n_items) uint8, all
    zero, scratch (allocated once by the caller: allocating inside the parallel loop costs more
    than the work on small data; :func:`draw_triplets` leaves the marks zero). Returns (summed
    log-loss, skipped triplets).
    """
    n_blocks = block_starts.shape[0] - 1
    if marks.shape[0] < n_blocks or marks.shape[1] < Q.shape[0]:
        raise ValueError("marks must have a row per block and a column per item")
    n_cells = n_blocks * n_blocks
    losses = np.zeros(n_cells, dtype=np.float64)
    skipped = np.zeros(n_cells, dtype=np.int64)
    for r in range(n_blocks):
        for s in prange(n_blocks):
            t = (s + r) % n_blocks
            cell = s * n_blocks + t
            start, stop = cell_starts[cell], cell_starts[cell + 1]
            out = triplets[:, start:stop]
            kept = draw_triplets(indptr, indices, pair_users, pair_items, cell_order[start:stop],
                                 block_items[block_starts[t]:block_starts[t + 1]], seeds[cell], out,
                                 marks[s])
            losses[cell] = bpr_epoch(P, Q, b, out[0, :kept], out[1, :kept], out[2, :kept], reg, lr,
                                     batch_size)
            skipped[cell] = stop - start - kept
    total = 0.0
    for cell in range(n_cells):
        total += losses[cell]
    return total, int(skipped.sum())

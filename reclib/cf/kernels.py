r"""Compiled inner loops (numba) of the factorisation models: one place for the per-user and per-sample work.

Every kernel here is the plain loop of the math derived in :mod:`reclib.cf.implicit` and
:mod:`reclib.cf.mf`; the NumPy functions there (``implicit_als_half_step``, ``bpr_loss_and_grads``,
``mf_loss_and_grads``) stay as the readable references that notebook 02 and the tests compare against.

Determinism: the ALS kernels run ``prange`` over rows, but every row's update reads only the fixed
side and writes only its own row, with all sums taken in a fixed sequential order, so the result
does not depend on the number of threads. BPR runs cells of a stratified split in parallel
(:func:`bpr_blocked_epoch`): cells trained at the same time touch disjoint rows, and each draws
its samples from its own seeded SplitMix64 stream, so again the number of threads never matters.
Biased MF's SGD kernel is single-threaded and consumes samples drawn beforehand from a seeded
NumPy generator. Nothing is compiled with ``fastmath`` (no reassociation of sums, no fused
multiply-adds), so the numbers do not depend on the CPU either (``exp`` and ``log1p`` come from
the platform's math library: the same OS and library are assumed). All kernels are cached on disk
(``cache=True``), so only the first use on a machine pays the compile time.

Arrays: ``indptr``, ``indices``, ``data`` are a CSR matrix's arrays (rows = the side being solved);
factor matrices are C-contiguous (n, f) of one float dtype (float32 or float64).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

#: a parallel half step deals its rows to this many chunks per thread (each chunk allocates its
#: scratch once; a few chunks per thread even out the work without many allocations)
CHUNKS_PER_THREAD = 4

__all__ = ["bpr_blocked_epoch", "bpr_epoch", "cache_line_rows", "counting_sort", "draw_triplets", "gram", "group_by_cell",
           "ials_cg_half_step", "ials_cholesky_half_step", "ials_loss", "mf_epoch",
           "mf_loss"]


#: bytes per cache line on current x86-64 and ARM CPUs
CACHE_LINE = 64


def cache_line_rows(values: np.ndarray) -> np.ndarray:
    """A copy of ``values`` (n, k) whose rows each start on a cache line, padded with zero columns to
    a whole number of lines: threads that write different rows then never write the same line
    ("false sharing", which can make two threads slower than one). Zero columns stay zero under
    every update here, so the padded copy trains the same model and ``[:, :k]`` holds it; sums over
    a row then run over the padded width, which changes their rounding (not their value) when ``k``
    is not a multiple of 4, and costs a little more work when ``k`` does not fill whole lines."""
    n, k = values.shape
    itemsize = values.dtype.itemsize
    width = -(-k * itemsize // CACHE_LINE) * CACHE_LINE // itemsize
    nbytes = n * width * itemsize
    buffer = np.zeros(nbytes + CACHE_LINE, dtype=np.uint8)
    offset = -buffer.ctypes.data % CACHE_LINE
    out = buffer[offset:offset + nbytes].view(values.dtype).reshape(n, width)
    out[:, :k] = values
    return out


@njit(cache=True, fastmath=False)
def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """``a . b`` summed in four interleaved partial sums (fixed order, so deterministic)."""
    n = a.shape[0]
    s0 = s1 = s2 = s3 = a.dtype.type(0.0)
    m = n - n % 4
    for k in range(0, m, 4):
        s0 += a[k] * b[k]
        s1 += a[k + 1] * b[k + 1]
        s2 += a[k + 2] * b[k + 2]
        s3 += a[k + 3] * b[k + 3]
    for k in range(m, n):
        s0 += a[k] * b[k]
    return (s0 + s1) + (s2 + s3)


@njit(parallel=True, cache=True, fastmath=False)
def gram(Y: np.ndarray) -> np.ndarray:
    """:math:`Y^\\top Y` (f, f) of Y (n, f), in Y's dtype; each entry summed in float64 over the rows
    in order (deterministic: one thread owns each row of the result)."""
    n, f = Y.shape
    out = np.zeros((f, f), dtype=np.float64)
    for a in prange(f):
        out_a = out[a]
        for i in range(n):                  # an axpy per row of Y
            ya = np.float64(Y[i, a])
            for c in range(f):
                out_a[c] += ya * np.float64(Y[i, c])
    return out.astype(Y.dtype)


@njit(cache=True, fastmath=False)
def _row_reg(data: np.ndarray, start: int, stop: int, n_other: int, alpha: float, reg: float,
             reg_exponent: float) -> float:
    """:math:`\\lambda (\\sum_i c_{ui})^\\nu`, where :math:`\\sum_i c_{ui} = n_{other} + \\alpha \\sum_i r_{ui}`
    over all ``n_other`` items (unobserved ones have :math:`c = 1`)."""
    if reg_exponent == 0.0:
        return reg
    total = 0.0
    for k in range(start, stop):
        total += alpha * data[k]
    return reg * (n_other + total) ** reg_exponent


@njit(cache=True, fastmath=False)
def _add_weighted_rows(M: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    """``out += x @ M`` in place, i.e. :math:`out_c \\mathrel{+}= \\sum_a x_a M_{ac}`, for M (n, m),
    x (n,), out (m,): four rows of ``M`` per pass over ``out``, summed as
    ``(x0 M0 + x1 M1) + (x2 M2 + x3 M3)``, then the remaining rows one by one. A fixed order (so
    deterministic), each pass an element-wise loop the compiler vectorises, and a quarter of the
    loads and stores of ``out`` of one row per pass."""
    n = x.shape[0]
    m = n - n % 4
    for a in range(0, m, 4):
        x0, x1, x2, x3 = x[a], x[a + 1], x[a + 2], x[a + 3]
        m0, m1, m2, m3 = M[a], M[a + 1], M[a + 2], M[a + 3]
        for c in range(out.shape[0]):
            out[c] += (m0[c] * x0 + m1[c] * x1) + (m2[c] * x2 + m3[c] * x3)
    for a in range(m, n):
        xa = x[a]
        for c in range(out.shape[0]):
            out[c] += M[a, c] * xa


@njit(cache=True, fastmath=False)
def _ials_apply(v: np.ndarray, YtY: np.ndarray, Yu: np.ndarray, Yu_t: np.ndarray, weight: np.ndarray,
                lam: float, shift: float, proj: np.ndarray, coef: np.ndarray, out: np.ndarray) -> None:
    """``out = (Y^T Y + Y^T (C_u - I) Y + lam I) v - shift * Y^T C_u p(u)`` without forming the
    matrix, in O(f^2 + f |I_u|): ``shift=0`` is the product ``A v``; ``shift=1`` at ``v = x`` is
    minus the residual ``b - A x`` (:math:`b = \\sum_i c_{ui} y_i`), in the same single pass.

    Yu: the factors of the row's items, gathered (n_u, f); Yu_t: the same transposed (f, n_u), so
    that the projections :math:`y_i \\cdot v` are a weighted sum of contiguous rows too; weight:
    :math:`c_{ui} - 1` (n_u,); proj (receives :math:`y_i \\cdot v`) and coef: scratch (n_u,). All
    three products are :func:`_add_weighted_rows` (a fixed order).
    """
    real = v.dtype.type
    for c in range(v.shape[0]):
        out[c] = lam * v[c]
    _add_weighted_rows(YtY, v, out)         # + Y^T Y v (YtY is symmetric)
    proj[:] = 0
    _add_weighted_rows(Yu_t, v, proj)       # y_i . v for the row's items
    one, s = real(1.0), real(shift)
    for k in range(proj.shape[0]):
        coef[k] = weight[k] * proj[k] - s * (weight[k] + one)
    _add_weighted_rows(Yu, coef, out)       # + sum_i ((c_ui - 1) y_i . v - shift c_ui) y_i


@njit(parallel=True, cache=True, fastmath=False)
def ials_cg_half_step(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, Y: np.ndarray,
                      YtY: np.ndarray, X: np.ndarray, alpha: float, reg: float, reg_exponent: float,
                      cg_steps: int, row_loss: np.ndarray, n_chunks: int) -> None:
    """Update every row of ``X`` (n_rows, f) in place by ``cg_steps`` conjugate-gradient steps.

    Each row ``u`` approximately solves :math:`(Y^\\top C_u Y + \\lambda_u I) x_u = Y^\\top C_u p(u)`
    (Takács et al. 2011), warm-started from its current value; :math:`c_{ui} = 1 + \\alpha r_{ui}`.
    Arithmetic is in ``X``'s dtype. ``row_loss`` (n_rows,) float64, or empty to skip: receives each
    updated row's observed-pair term of the loss, :math:`\\sum_{i \\in I_u} c_{ui} (1 - \\hat p)^2 -
    \\hat p^2` with :math:`\\hat p = x_u \\cdot y_i` (:func:`ials_loss` adds the rest), almost free:
    the conjugate-gradient steps already project every direction they take on the row's items.

    Rows are dealt round-robin to ``n_chunks`` chunks (row ``u`` to chunk ``u % n_chunks``; pass
    ``CHUNKS_PER_THREAD * numba.get_num_threads()``), so popular and rare rows mix in every chunk
    and the threads get even work; the chunking never changes the numbers (every row is computed
    alone).
    """
    n_rows, f = X.shape
    n_other = Y.shape[0]
    real = X.dtype.type
    if row_loss.shape[0] != 0 and row_loss.shape[0] != n_rows:
        raise ValueError("row_loss must be empty or have one entry per row of X")
    n_chunks = max(min(n_rows, n_chunks), 1)
    for chunk in prange(n_chunks):          # scratch allocated once per chunk of rows, not per row
        width = 1
        for u in range(chunk, n_rows, n_chunks):
            width = max(width, indptr[u + 1] - indptr[u])
        weight_buf = np.empty(width, dtype=X.dtype)
        proj_buf = np.empty(width, dtype=X.dtype)
        coef_buf = np.empty(width, dtype=X.dtype)
        pred_buf = np.empty(width if row_loss.shape[0] else 0, dtype=X.dtype)
        yu_buf = np.empty(f * width, dtype=X.dtype)
        yu_t_buf = np.empty(f * width, dtype=X.dtype)
        r = np.empty(f, dtype=X.dtype)
        p = np.empty(f, dtype=X.dtype)
        ap = np.empty(f, dtype=X.dtype)
        for u in range(chunk, n_rows, n_chunks):
            start, stop = indptr[u], indptr[u + 1]
            n_u = stop - start
            lam = real(_row_reg(data, start, stop, n_other, alpha, reg, reg_exponent))
            rows = indices[start:stop]
            weight, proj, coef = weight_buf[:n_u], proj_buf[:n_u], coef_buf[:n_u]
            Yu = yu_buf[:f * n_u].reshape((n_u, f))
            Yu_t = yu_t_buf[:f * n_u].reshape((f, n_u))
            for k in range(n_u):            # gather the rows first (memory-bound, vector copies) ...
                weight[k] = real(alpha * data[start + k])
                Yu[k, :] = Y[rows[k]]
            for k in range(n_u):            # ... then transpose them in cache
                for c in range(f):
                    Yu_t[c, k] = Yu[k, c]
            pred = pred_buf[:n_u] if row_loss.shape[0] else pred_buf
            _cg_row(X[u], YtY, Yu, Yu_t, weight, lam, proj, coef, r, p, ap, cg_steps, pred)
            if row_loss.shape[0]:
                s = 0.0
                for k in range(n_u):
                    p_k = np.float64(pred[k])
                    s += (1.0 + np.float64(weight[k])) * (1.0 - p_k) ** 2 - p_k ** 2
                row_loss[u] = s


@njit(cache=True, fastmath=False)
def _cg_row(x: np.ndarray, YtY: np.ndarray, Yu: np.ndarray, Yu_t: np.ndarray, weight: np.ndarray,
            lam: float, proj: np.ndarray, coef: np.ndarray, r: np.ndarray, p: np.ndarray, ap: np.ndarray,
            cg_steps: int, pred: np.ndarray) -> None:
    """``cg_steps`` conjugate-gradient steps on one row ``x`` (f,), in place, warm-started; r, p, ap:
    scratch (f,); the other arguments as :func:`_ials_apply`. ``pred`` (n_u,), unless empty,
    receives :math:`y_i \\cdot x` at the final ``x``, tracked through the steps
    (:math:`x \\leftarrow x + s p` moves every projection by :math:`s \\, y_i \\cdot p`, which each step
    has just computed)."""
    f = x.shape[0]
    real = x.dtype.type
    _ials_apply(x, YtY, Yu, Yu_t, weight, lam, 1.0, proj, coef, ap)
    track = pred.shape[0] > 0
    if track:
        pred[:] = proj                      # y_i . x at the start
    for c in range(f):
        r[c] = -ap[c]                       # r = b - A x
        p[c] = r[c]
    rs_old = _dot(r, r)
    for _ in range(cg_steps):
        if rs_old < 1e-20:
            break
        _ials_apply(p, YtY, Yu, Yu_t, weight, lam, 0.0, proj, coef, ap)
        step = real(rs_old / _dot(p, ap))
        for c in range(f):
            x[c] += step * p[c]
            r[c] -= step * ap[c]
        if track:
            for k in range(pred.shape[0]):
                pred[k] += step * proj[k]
        rs_new = _dot(r, r)
        beta = real(rs_new / rs_old)
        for c in range(f):
            p[c] = r[c] + beta * p[c]
        rs_old = rs_new


@njit(parallel=True, cache=True, fastmath=False)
def ials_cholesky_half_step(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray,
                            Y: np.ndarray, YtY: np.ndarray, X: np.ndarray, alpha: float, reg: float,
                            reg_exponent: float) -> int:
    """Solve every row of ``X`` (n_rows, f) exactly, in place, by a Cholesky factorisation.

    Forms :math:`A_u = Y^\\top Y + \\sum_{i \\in I_u} (c_{ui} - 1) y_i y_i^\\top + \\lambda_u I` (f^2 per
    interaction) and solves :math:`A_u x_u = \\sum_{i \\in I_u} c_{ui} y_i`. Returns the number of rows
    whose matrix was not positive definite (their rows are set to NaN).
    """
    n_rows, f = X.shape
    n_other = Y.shape[0]
    failed = np.zeros(n_rows, dtype=np.int64)
    for u in prange(n_rows):
        start, stop = indptr[u], indptr[u + 1]
        lam = _row_reg(data, start, stop, n_other, alpha, reg, reg_exponent)
        A = np.empty((f, f), dtype=np.float64)
        rhs = np.zeros(f, dtype=np.float64)
        for a in range(f):
            for c in range(f):
                A[a, c] = YtY[a, c]
            A[a, a] += lam
        for k in range(start, stop):
            y = Y[indices[k]]
            w = alpha * data[k]
            for a in range(f):
                wa = w * y[a]
                for c in range(a, f):
                    A[a, c] += wa * y[c]
                rhs[a] += (1.0 + w) * y[a]
        for a in range(f):                  # Cholesky A = L L^T, L in the lower triangle
            for c in range(a):
                A[a, c] = A[c, a]
        ok = True
        for j in range(f):
            s = A[j, j]
            for k in range(j):
                s -= A[j, k] * A[j, k]
            if not s > 0.0:
                ok = False
                break
            d = math.sqrt(s)
            A[j, j] = d
            for i in range(j + 1, f):
                t = A[i, j]
                for k in range(j):
                    t -= A[i, k] * A[j, k]
                A[i, j] = t / d
        if not ok:
            failed[u] = 1
            for c in range(f):
                X[u, c] = np.nan
            continue
        for i in range(f):                  # L z = rhs
            t = rhs[i]
            for k in range(i):
                t -= A[i, k] * rhs[k]
            rhs[i] = t / A[i, i]
        for i in range(f - 1, -1, -1):      # L^T x = z
            t = rhs[i]
            for k in range(i + 1, f):
                t -= A[k, i] * rhs[k]
            rhs[i] = t / A[i, i]
        for c in range(f):
            X[u, c] = rhs[c]
    return int(failed.sum())


@njit(parallel=True, cache=True, fastmath=False)
def ials_loss(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, X: np.ndarray,
              Y: np.ndarray, XtX: np.ndarray, YtY: np.ndarray, alpha: float, reg: float) -> float:
    """The weighted loss over all pairs, :func:`reclib.cf.implicit.implicit_als_loss`, in O(nnz f)."""
    n_rows, f = X.shape
    per_row = np.zeros(n_rows, dtype=np.float64)
    for u in prange(n_rows):
        s = 0.0
        x = X[u]
        for k in range(indptr[u], indptr[u + 1]):
            pred = _dot(x, Y[indices[k]])
            s += (1.0 + alpha * data[k]) * (1.0 - pred) ** 2 - pred ** 2
        per_row[u] = s + reg * _dot(x, x)
    total = 0.0
    for u in range(n_rows):
        total += per_row[u]
    for a in range(f):
        for c in range(f):
            total += XtX[a, c] * YtY[a, c]
    for i in range(Y.shape[0]):
        total += reg * _dot(Y[i], Y[i])
    return total


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


@njit(cache=True, fastmath=False)
def mf_loss(P: np.ndarray, Q: np.ndarray, b_u: np.ndarray, b_i: np.ndarray, mu: float,
            users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
            reg: float) -> tuple[float, float]:
    """(loss ``L`` of ``mf_loss_and_grads``, summed squared error) over the given ratings."""
    loss = 0.0
    sse = 0.0
    for k in range(users.shape[0]):
        p, q = P[users[k]], Q[items[k]]
        bu, bi = b_u[users[k]], b_i[items[k]]
        err = ratings[k] - (mu + bu + bi + _dot(p, q))
        sse += err * err
        loss += 0.5 * (err * err + reg * (bu * bu + bi * bi + _dot(p, p) + _dot(q, q)))
    return loss, sse


@njit(cache=True, fastmath=False)
def _mf_rating(p: np.ndarray, q: np.ndarray, bu: float, bi: float, mu: float, rating: float,
               reg: float) -> tuple[float, float]:
    """(loss, error) of one rating: :math:`\\tfrac12 [e^2 + \\lambda(\\dots)]` and :math:`e_{ui}`."""
    pred = mu + bu + bi
    sq = bu * bu + bi * bi
    for c in range(p.shape[0]):
        pred += p[c] * q[c]
        sq += p[c] * p[c] + q[c] * q[c]
    err = rating - pred
    return 0.5 * (err * err + reg * sq), err


@njit(cache=True, fastmath=False)
def mf_epoch(P: np.ndarray, Q: np.ndarray, b_u: np.ndarray, b_i: np.ndarray, mu: float,
             users: np.ndarray, items: np.ndarray, ratings: np.ndarray, reg: float, lr: float,
             batch_size: int) -> float:
    """One SGD pass over the ratings in the given order, in place; returns the summed loss.

    ``batch_size=1``: per-rating SGD with the gradients of ``mf_loss_and_grads`` at the current
    parameters. ``batch_size > 1``: each batch of consecutive ratings takes its gradients at the
    parameters before the batch. The loss of a rating is taken before its step. Single-threaded.
    """
    n, f = users.shape[0], P.shape[1]
    total = 0.0
    if batch_size == 1:
        for k in range(n):
            p, q = P[users[k]], Q[items[k]]
            bu, bi = b_u[users[k]], b_i[items[k]]
            loss, err = _mf_rating(p, q, bu, bi, mu, ratings[k], reg)
            total += loss
            for c in range(f):
                pc, qc = p[c], q[c]
                p[c] = pc - lr * (-err * qc + reg * pc)
                q[c] = qc - lr * (-err * pc + reg * qc)
            b_u[users[k]] = bu - lr * (-err + reg * bu)
            b_i[items[k]] = bi - lr * (-err + reg * bi)
        return total
    gp = np.empty((batch_size, f), dtype=P.dtype)
    gq = np.empty((batch_size, f), dtype=P.dtype)
    gb = np.empty((batch_size, 2), dtype=np.float64)
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        for k in range(start, stop):
            p, q = P[users[k]], Q[items[k]]
            bu, bi = b_u[users[k]], b_i[items[k]]
            loss, err = _mf_rating(p, q, bu, bi, mu, ratings[k], reg)
            total += loss
            m = k - start
            for c in range(f):
                gp[m, c] = -err * q[c] + reg * p[c]
                gq[m, c] = -err * p[c] + reg * q[c]
            gb[m, 0] = -err + reg * bu
            gb[m, 1] = -err + reg * bi
        for k in range(start, stop):
            m = k - start
            p, q = P[users[k]], Q[items[k]]
            for c in range(f):
                p[c] -= lr * gp[m, c]
                q[c] -= lr * gq[m, c]
            b_u[users[k]] -= lr * gb[m, 0]
            b_i[items[k]] -= lr * gb[m, 1]
    return total

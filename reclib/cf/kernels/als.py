"""Implicit ALS (Hu, Koren & Volinsky): the conjugate-gradient and Cholesky half steps and the loss, compiled
(the math is derived in :mod:`reclib.cf.implicit`)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from reclib.cf.kernels.common import _dot

__all__ = ["ials_cg_half_step", "ials_cholesky_half_step", "ials_loss"]


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

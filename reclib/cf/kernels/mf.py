"""Biased matrix factorisation: the SGD epoch and the regularised loss, compiled (the math is derived in
:mod:`reclib.cf.mf`)."""

from __future__ import annotations

import numpy as np
from numba import njit

from reclib.cf.kernels.common import _dot

__all__ = ["mf_epoch", "mf_loss"]


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

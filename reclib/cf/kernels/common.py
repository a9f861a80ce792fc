"""Shared pieces of the compiled kernels: cache-line aligned rows, a fixed-order dot product, the Gram matrix."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["CACHE_LINE", "CHUNKS_PER_THREAD", "cache_line_rows", "gram"]


#: a parallel half step deals its rows to this many chunks per thread (each chunk allocates its
#: scratch once; a few chunks per thread even out the work without many allocations)
CHUNKS_PER_THREAD = 4

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

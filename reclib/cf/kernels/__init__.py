r"""Compiled inner loops (numba) of the factorisation models: one place for the per-user and per-sample work.

Every kernel here is the plain loop of the math derived in :mod:`reclib.cf.implicit`, :mod:`reclib.cf.bpr` and
:mod:`reclib.cf.mf`; the NumPy functions there (``implicit_als_half_step``, ``bpr_loss_and_grads``,
``mf_loss_and_grads``) stay as the readable references that notebooks 02 and 02b and the tests compare against.

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

The kernels live by algorithm: :mod:`~reclib.cf.kernels.common` (aligned rows, the Gram matrix),
:mod:`~reclib.cf.kernels.als`, :mod:`~reclib.cf.kernels.bpr` and :mod:`~reclib.cf.kernels.mf`;
this package exports them all.
"""

from __future__ import annotations

from reclib.cf.kernels.als import _ials_apply, ials_cg_half_step, ials_cholesky_half_step, ials_loss
from reclib.cf.kernels.bpr import (MAX_NEGATIVE_DRAWS, bpr_blocked_epoch, bpr_epoch, counting_sort, draw_triplets,
                                   group_by_cell)
from reclib.cf.kernels.common import CACHE_LINE, CHUNKS_PER_THREAD, cache_line_rows, gram
from reclib.cf.kernels.mf import mf_epoch, mf_loss

__all__ = ["CACHE_LINE", "CHUNKS_PER_THREAD", "MAX_NEGATIVE_DRAWS", "bpr_blocked_epoch", "bpr_epoch",
           "cache_line_rows", "counting_sort", "draw_triplets", "gram", "group_by_cell", "ials_cg_half_step",
           "ials_cholesky_half_step", "ials_loss", "mf_epoch", "mf_loss"]

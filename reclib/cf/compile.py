"""Compile the numba kernels of :mod:`reclib.cf` ahead of the first fit: ``python -m reclib.cf.compile``.

numba compiles a kernel the first time it is called with a new argument type and keeps the
machine code in its on-disk cache (``cache=True``), so on a fresh install the first fit of each
model and dtype pays seconds of compilation and every later process only loads the code (about
0.15-0.2 s on a first fit; README, "First use"). ``make setup`` runs this module once, so a user's
first fit is already a cache load. It fits every compiled model for one epoch on a tiny matrix, in
both dtypes and with every solver, which calls each kernel with each signature it is used with.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["compile_kernels"]


def _tiny_ratings() -> pd.DataFrame:
    """30 users x 20 items, 240 distinct seeded ratings in 1..5."""
    rng = np.random.default_rng(0)
    keys = rng.choice(30 * 20, size=240, replace=False)
    return pd.DataFrame({"user_id": keys // 20, "item_id": keys % 20,
                         "rating": rng.integers(1, 6, size=240).astype(float)})


def compile_kernels() -> dict[str, float]:
    """Fit ImplicitALS (cg and cholesky; then fold in one user and a batch), BPR (one and two
    blocks) and BiasedMF (SGD and ALS) for one epoch, in float64 and float32 where the model has a
    dtype; return seconds per call."""
    from reclib.cf import BPR, BiasedMF, ImplicitALS

    ratings = _tiny_ratings()
    fits = {}
    for dtype in ("float64", "float32"):
        for solver in ("cg", "cholesky"):
            fits[f"ImplicitALS[{solver}, {dtype}]"] = lambda d=dtype, s=solver: ImplicitALS(
                n_factors=4, epochs=1, solver=s, dtype=d).fit(ratings)
        for n_blocks in (1, 2):
            fits[f"BPR[{n_blocks} blocks, {dtype}]"] = lambda d=dtype, b=n_blocks: BPR(
                n_factors=4, epochs=1, n_blocks=b, dtype=d).fit(ratings)
        fits[f"ImplicitALS.fold_in[{dtype}]"] = lambda d=dtype: [         # one row, and a batch of rows
            ImplicitALS(n_factors=4, epochs=1, dtype=d).fit(ratings).fold_in_matrix(sp.eye(n, 20, format="csr"))
            for n in (1, 3)]
    for solver in ("sgd", "als"):
        fits[f"BiasedMF[{solver}]"] = lambda s=solver: BiasedMF(n_factors=4, epochs=1, solver=s).fit(ratings)
    seconds = {}
    for name, fit in fits.items():
        start = time.perf_counter()
        fit()
        seconds[name] = time.perf_counter() - start
    return seconds


if __name__ == "__main__":
    took = compile_kernels()
    print(f"reclib.cf kernels compiled or loaded from numba's cache: {len(took)} fits in "
          f"{sum(took.values()):.1f} s")

"""The compiled factorisation kernels (reclib.cf.kernels) against the NumPy references of notebook 02.

One compiled SGD step equals ``param -= lr * grad`` with the reference gradients; the conjugate-gradient
and Cholesky half steps equal the naive dense ridge solve; the fits are deterministic (same seed, same
numbers; ALS the same whatever the number of threads).
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from reclib.cf import (BPR, BiasedMF, ImplicitALS, bpr_loss_and_grads, implicit_als_half_step,
                       implicit_als_loss, kernels)
from reclib.cf.bpr import bpr_sgd_step
from reclib.cf.mf import mf_loss_and_grads, mf_sgd_step


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def naive_rows(R: np.ndarray, Y: np.ndarray, alpha: float, reg: float, nu: float = 0.0) -> np.ndarray:
    """Every row's exact optimum by dense matrices: (Y^T C_u Y + lam_u I)^-1 Y^T C_u p(u)."""
    f = Y.shape[1]
    out = []
    for r in R:
        C = np.diag(1 + alpha * r)
        lam = reg * np.trace(C) ** nu
        out.append(np.linalg.solve(Y.T @ C @ Y + lam * np.eye(f), Y.T @ C @ (r > 0)))
    return np.array(out)


def test_bpr_compiled_step_equals_the_numpy_gradient_step(rng):
    P, Q, b = rng.normal(size=(4, 3)), rng.normal(size=(6, 3)), rng.normal(size=6)
    u, i, j = np.array([0, 0, 2, 3, 1]), np.array([0, 1, 3, 2, 1]), np.array([2, 2, 4, 0, 5])
    loss, grads = bpr_loss_and_grads(P, Q, b, u, i, j, reg=0.05)
    P2, Q2, b2 = P.copy(), Q.copy(), b.copy()
    step_loss = bpr_sgd_step(P2, Q2, b2, u, i, j, reg=0.05, lr=0.1)    # one batch of 5 triplets
    np.testing.assert_allclose(P2, P - 0.1 * grads["P"], atol=1e-12)
    np.testing.assert_allclose(Q2, Q - 0.1 * grads["Q"], atol=1e-12)
    np.testing.assert_allclose(b2, b - 0.1 * grads["b"], atol=1e-12)
    x = b[i] - b[j] + np.sum(P[u] * (Q[i] - Q[j]), axis=1)
    log_loss = np.sum(np.logaddexp(0.0, -x))            # the kernels report the loss without penalty
    penalty = 0.5 * 0.05 * (np.sum(P[u] ** 2) + np.sum(Q[i] ** 2) + np.sum(Q[j] ** 2)
                            + np.sum(b[i] ** 2) + np.sum(b[j] ** 2))
    assert step_loss == pytest.approx(log_loss, rel=1e-12)
    assert loss == pytest.approx(log_loss + penalty, rel=1e-12)


def test_bpr_batch_size_one_is_sequential_per_triplet_sgd(rng):
    P, Q, b = rng.normal(size=(4, 3)), rng.normal(size=(6, 3)), rng.normal(size=6)
    u, i, j = np.array([0, 0, 2, 3, 0]), np.array([0, 1, 3, 2, 1]), np.array([2, 2, 4, 0, 5])
    ref = [P.copy(), Q.copy(), b.copy()]
    for k in range(len(u)):
        _, g = bpr_loss_and_grads(*ref, u[k:k + 1], i[k:k + 1], j[k:k + 1], reg=0.05)
        ref = [ref[0] - 0.1 * g["P"], ref[1] - 0.1 * g["Q"], ref[2] - 0.1 * g["b"]]
    kernels.bpr_epoch(P, Q, b[:, None], u, i, j, 0.05, 0.1, 1)
    for got, want in zip((P, Q, b), ref):
        np.testing.assert_allclose(got, want, atol=1e-12)


def test_mf_compiled_step_equals_the_numpy_gradient_step(rng):
    P, Q = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    bu, bi = rng.normal(size=4), rng.normal(size=5)
    u, i = np.array([0, 0, 1, 3, 2, 3]), np.array([0, 2, 2, 4, 1, 4])
    r = np.array([5.0, 3.0, 4.0, 1.0, 2.0, 2.0])
    loss, grads = mf_loss_and_grads(P, Q, bu, bi, 3.0, u, i, r, reg=0.1)
    new = [P.copy(), Q.copy(), bu.copy(), bi.copy()]
    step_loss = mf_sgd_step(*new, 3.0, u, i, r, reg=0.1, lr=0.05)
    assert step_loss == pytest.approx(loss, rel=1e-12)
    for got, old, name in zip(new, (P, Q, bu, bi), ("P", "Q", "b_u", "b_i")):
        np.testing.assert_allclose(got, old - 0.05 * grads[name], atol=1e-12, err_msg=name)
    k_loss, sse = kernels.mf_loss(P, Q, bu, bi, 3.0, u, i, r, 0.1)
    assert k_loss == pytest.approx(loss, rel=1e-12)
    assert sse == pytest.approx(np.sum((r - (3.0 + bu[u] + bi[i] + np.sum(P[u] * Q[i], 1))) ** 2))


@pytest.mark.parametrize("nu", [0.0, 0.5])
def test_cholesky_half_step_equals_naive_dense_solve(rng, nu):
    R = (rng.random((7, 9)) < 0.4) * rng.integers(1, 4, (7, 9)).astype(float)
    Y = rng.normal(size=(9, 4))
    X = implicit_als_half_step(sp.csr_matrix(R), Y, 2.0, 0.3, reg_exponent=nu)
    np.testing.assert_allclose(X, naive_rows(R, Y, 2.0, 0.3, nu), atol=1e-10)


@pytest.mark.parametrize("f", [3, 4, 5, 7])     # widths that are and are not a multiple of 4
@pytest.mark.parametrize("nu", [0.0, 1.0])
def test_cg_half_step_converges_to_the_exact_solution(rng, nu, f):
    R = (rng.random((6, 10)) < 0.5).astype(float)
    R[0] = 0                                          # a row without interactions
    Y = rng.normal(size=(10, f))
    exact = naive_rows(R, Y, 3.0, 0.5, nu)
    start = rng.normal(size=(6, f))
    few = implicit_als_half_step(sp.csr_matrix(R), Y, 3.0, 0.5, nu, solver="cg", current=start,
                                 cg_steps=1)
    many = implicit_als_half_step(sp.csr_matrix(R), Y, 3.0, 0.5, nu, solver="cg", current=start,
                                  cg_steps=f)     # f steps solve an f x f SPD system exactly
    assert np.abs(few - exact).max() < np.abs(start - exact).max()
    np.testing.assert_allclose(many, exact, atol=1e-8)
    f32 = implicit_als_half_step(sp.csr_matrix(R), Y.astype(np.float32), 3.0, 0.5, nu, solver="cg",
                                 current=start, cg_steps=f)
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, exact, atol=5e-3)     # f float32 CG steps, rounding included


def test_cg_product_and_residual_equal_the_dense_formula(rng):
    """``_ials_apply`` for every width f = 1..9 and item count n_u = 0..9 (the four-at-a-time
    loops and their remainders): shift 0 is A v, shift 1 is A v - b."""
    for f in range(1, 10):
        for n_u in range(10):
            Yu, v = rng.normal(size=(n_u, f)), rng.normal(size=f)
            YtY, weight = rng.normal(size=(f, f)), rng.random(n_u) * 3
            YtY = YtY @ YtY.T
            A = YtY + Yu.T @ (weight[:, None] * Yu) + 0.7 * np.eye(f)
            b = Yu.T @ (1 + weight)
            proj, coef, out = np.empty(n_u), np.empty(n_u), np.empty(f)
            for shift, expected in ((0.0, A @ v), (1.0, A @ v - b)):
                kernels._ials_apply(v, YtY, Yu, np.ascontiguousarray(Yu.T), weight, 0.7, shift,
                                    proj, coef, out)
                np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
                np.testing.assert_allclose(proj, Yu @ v, rtol=1e-12, atol=1e-12)


def test_compiled_loss_and_gram_equal_the_numpy_reference(rng):
    R = (rng.random((8, 11)) < 0.3) * 2.0
    X, Y = rng.normal(size=(8, 5)), rng.normal(size=(11, 5))
    M = sp.csr_matrix(R)
    np.testing.assert_allclose(kernels.gram(Y), Y.T @ Y, atol=1e-12)
    got = kernels.ials_loss(M.indptr, M.indices, M.data, X, Y, kernels.gram(X), kernels.gram(Y), 3.0, 0.2)
    assert got == pytest.approx(implicit_als_loss(M, X, Y, 3.0, 0.2), rel=1e-12)


@pytest.mark.parametrize("solver", ["cg", "cholesky"])
def test_implicit_als_is_the_same_whatever_the_thread_count(synthetic_interactions, solver):
    make = lambda: ImplicitALS(n_factors=8, epochs=3, solver=solver, verbose=False)  # noqa: E731
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = make().fit(synthetic_interactions)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = make().fit(synthetic_interactions)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one.user_factors_, many.user_factors_)
    np.testing.assert_array_equal(one.item_factors_, many.item_factors_)


@pytest.mark.parametrize("make", [
    lambda: ImplicitALS(n_factors=8, epochs=3, verbose=False),
    lambda: ImplicitALS(n_factors=8, epochs=3, dtype="float32", reg_exponent=0.5, verbose=False),
    lambda: BPR(n_factors=8, epochs=3, verbose=False),
    lambda: BPR(n_factors=8, epochs=3, batch_size=1, verbose=False),
    lambda: BiasedMF(n_factors=8, epochs=3, verbose=False),
])
def test_compiled_fits_are_deterministic(synthetic_interactions, make):
    a, b = make().fit(synthetic_interactions), make().fit(synthetic_interactions)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    np.testing.assert_array_equal(a.history_.loss, b.history_.loss)


def test_cg_and_cholesky_fits_agree_and_float32_is_float32(synthetic_interactions):
    users = np.unique(synthetic_interactions.user_id)[:20]
    fits = {name: ImplicitALS(n_factors=8, epochs=8, verbose=False, **kw).fit(synthetic_interactions)
            for name, kw in [("cg", {}), ("chol", {"solver": "cholesky"}), ("f32", {"dtype": "float32"})]}
    assert fits["f32"].user_factors_.dtype == np.float32
    top = {name: np.argsort(-m.score(users), axis=1)[:, :5] for name, m in fits.items()}
    assert np.mean(top["cg"] == top["chol"]) > 0.8
    assert np.mean(top["cg"] == top["f32"]) > 0.9
    assert fits["cg"].history_.loss.iloc[-1] == pytest.approx(fits["chol"].history_.loss.iloc[-1],
                                                               rel=0.02)


def test_fits_print_nothing(synthetic_interactions, capfd):
    ImplicitALS(n_factors=4, epochs=1, verbose=False).fit(synthetic_interactions)
    BPR(n_factors=4, epochs=1, verbose=False).fit(synthetic_interactions)
    BiasedMF(n_factors=4, epochs=1, verbose=False).fit(synthetic_interactions)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


@pytest.mark.parametrize("make, culprit", [
    (lambda: ImplicitALS(solver="lu"), "solver"), (lambda: ImplicitALS(solver=None), "solver"),
    (lambda: ImplicitALS(cg_steps=0), "cg_steps"), (lambda: ImplicitALS(cg_steps=2.0), "cg_steps"),
    (lambda: ImplicitALS(cg_steps=True), "cg_steps"), (lambda: ImplicitALS(dtype="float16"), "dtype"),
    (lambda: ImplicitALS(dtype=np.float32), "dtype"),
])
def test_new_parameters_are_checked(make, culprit):
    with pytest.raises(ValueError, match=culprit):
        make()


@pytest.mark.parametrize("kwargs, culprit", [
    ({"solver": "qr"}, "solver"), ({"solver": "cg", "cg_steps": 0}, "cg_steps"),
    ({"solver": "cg", "current": np.full((4, 2), np.nan)}, "current"),
    ({"solver": "cg", "current": np.zeros((3, 2))}, "current"),
])
def test_half_step_new_arguments_are_checked(kwargs, culprit):
    R = sp.csr_matrix(np.eye(4, 5))
    with pytest.raises(ValueError, match=culprit):
        implicit_als_half_step(R, np.ones((5, 2)), 1.0, 0.1, **kwargs)


def _small_interactions(rng: np.random.Generator) -> "pd.DataFrame":
    import pandas as pd
    pairs = np.unique(rng.integers(0, [30, 25], size=(300, 2)), axis=0)
    return pd.DataFrame({"user_id": pairs[:, 0], "item_id": pairs[:, 1], "rating": 1.0})


def _replay_bpr(model: BPR, epochs: int) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """BPR's fit written out as a plain sequential loop over the cells of every epoch."""
    from reclib.cf.bpr import _balanced_blocks
    matrix = sp.csr_matrix(model.train_matrix_)
    coo = matrix.tocoo()
    users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
    draws = np.random.default_rng(model.random_state)
    f, B = model.n_factors, model.n_blocks
    P, Q = draws.normal(0, 0.1, (matrix.shape[0], f)), draws.normal(0, 0.1, (matrix.shape[1], f))
    b = np.zeros(matrix.shape[1])
    losses = []
    for _ in range(epochs):
        user_block = _balanced_blocks(np.diff(matrix.indptr), B, draws)
        item_block = _balanced_blocks(np.bincount(items, minlength=matrix.shape[1]), B, draws)
        order, starts = kernels.group_by_cell(users, items, user_block, item_block, B)
        block_items, block_starts = kernels.counting_sort(item_block, B)
        seeds = draws.integers(0, 2**64, B * B, dtype=np.uint64)
        total, kept = 0.0, 0
        for r in range(B):
            for s in range(B):
                cell, t = s * B + (s + r) % B, (s + r) % B
                out = np.empty((3, len(users)), dtype=np.int64)
                n = kernels.draw_triplets(matrix.indptr, matrix.indices, users, items,
                                          order[starts[cell]:starts[cell + 1]],
                                          block_items[block_starts[t]:block_starts[t + 1]],
                                          seeds[cell], out, np.zeros(matrix.shape[1], np.uint8))
                total += kernels.bpr_epoch(P, Q, b[:, None], *out[:, :n], 0.03, 0.05, 1)
                kept += n
        losses.append(total / kept)
    return P, b, losses


@pytest.mark.parametrize("n_blocks", [1, 2, 3])
def test_bpr_fit_is_the_sequential_loop_over_its_cells(rng, n_blocks):
    frame = _small_interactions(rng)
    model = BPR(n_factors=4, epochs=3, random_state=7, n_blocks=n_blocks).fit(frame)
    P, b, losses = _replay_bpr(model, 3)
    np.testing.assert_array_equal(model.user_factors_, P)
    np.testing.assert_array_equal(model.item_bias_, b)
    np.testing.assert_allclose(model.history_["loss"].to_numpy(), losses, rtol=1e-12)
    assert (model.history_["skipped"] == 0).all()


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two threads to compare with one")
def test_bpr_is_the_same_whatever_the_number_of_cores(synthetic_interactions):
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = BPR(n_factors=8, epochs=3, n_blocks=4).fit(synthetic_interactions)
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        many = BPR(n_factors=8, epochs=3, n_blocks=4).fit(synthetic_interactions)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(one.user_factors_, many.user_factors_)
    np.testing.assert_array_equal(one.item_factors_, many.item_factors_)


def test_drawn_triplets_are_a_shuffle_of_the_pairs_with_unseen_negatives_from_the_candidates(rng):
    R = sp.csr_matrix((rng.random((40, 30)) < 0.3).astype(float))
    coo = R.tocoo()
    users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
    candidates = np.arange(0, 30, 2, dtype=np.int64)          # the even items only
    out = np.empty((3, len(users)), dtype=np.int64)
    marks = np.zeros(30, dtype=np.uint8)
    kept = kernels.draw_triplets(R.indptr, R.indices, users, items, np.arange(len(users)),
                                 candidates, np.uint64(3), out, marks)
    u, i, j = out[:, :kept]
    assert sorted(zip(u, i)) == sorted(zip(users, items))      # every pair once, reordered
    assert not np.array_equal(u, users)
    assert np.isin(j, candidates).all() and R[u, j].sum() == 0
    many = np.empty((3, 20000), dtype=np.int64)
    assert kernels.draw_triplets(R.indptr, R.indices, np.zeros(20000, np.int64),
                                 np.zeros(20000, np.int64), np.arange(20000), candidates,
                                 np.uint64(5), many, marks) == 20000
    counts = np.bincount(many[2], minlength=30)
    unseen = np.setdiff1d(candidates, R.indices[R.indptr[0]:R.indptr[1]])
    expected = 20000 / len(unseen)                             # uniform over user 0's unseen evens
    assert np.abs(counts[unseen] - expected).max() < 5 * np.sqrt(expected)
    assert counts.sum() == counts[unseen].sum()
    assert not marks.any()                                     # the scratch is left clean


def test_drawn_negatives_are_unseen_in_any_pair_order(rng):
    """The seen-item marks are set per run of one user's pairs: pairs in random order (mostly
    runs of length one) still get only unseen negatives, and the marks end clean."""
    R = sp.csr_matrix((rng.random((25, 12)) < 0.5).astype(float))
    coo = R.tocoo()
    users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
    marks = np.zeros(12, dtype=np.uint8)
    out = np.empty((3, len(users)), dtype=np.int64)
    dense = R.toarray()
    for seed in range(20):
        kept = kernels.draw_triplets(R.indptr, R.indices, users, items, rng.permutation(len(users)),
                                     np.arange(12), np.uint64(seed), out, marks)
        u, i, j = out[:, :kept]
        assert kept == len(users) and (dense[u, j] == 0).all() and (dense[u, i] == 1).all()
        assert not marks.any()


def _splitmix_triplets(indptr, indices, users, items, candidates, seed):
    """A plain-Python reference of draw_triplets: SplitMix64 bits, Lemire's multiply-shift, rejection
    against the user's items (at most MAX_NEGATIVE_DRAWS draws), then Fisher-Yates."""
    mask = 2**64 - 1
    state = [seed]

    def below(n):
        state[0] = (state[0] + 0x9E3779B97F4A7C15) & mask
        z = state[0]
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        return (((z ^ (z >> 31)) >> 32) * n) >> 32

    rows = []
    for u, i in zip(users, items):
        seen = set(indices[indptr[u]:indptr[u + 1]])
        for _ in range(kernels.MAX_NEGATIVE_DRAWS):
            j = candidates[below(len(candidates))]
            if j not in seen:
                rows.append((u, i, j))
                break
    for k in range(len(rows) - 1, 0, -1):
        m = below(k + 1)
        rows[k], rows[m] = rows[m], rows[k]
    return np.array(rows, dtype=np.int64).reshape(-1, 3).T


def test_drawn_triplets_equal_a_plain_python_reference_and_skip_users_with_nothing_unseen(rng):
    """User 0 has seen every candidate: its pairs are skipped; the others' triplets are exactly
    the reference's, and the marks end clean."""
    R = (rng.random((12, 9)) < 0.4).astype(float)
    R[0, ::2] = 1                                    # every candidate (the even items)
    R[0, 1] = 1
    R = sp.csr_matrix(R)
    coo = R.tocoo()
    users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
    candidates = np.arange(0, 9, 2, dtype=np.int64)
    marks = np.zeros(9, dtype=np.uint8)
    out = np.empty((3, len(users)), dtype=np.int64)
    kept = kernels.draw_triplets(R.indptr, R.indices, users, items, np.arange(len(users)),
                                 candidates, np.uint64(11), out, marks)
    assert kept == len(users) - R[0].nnz and not marks.any()
    np.testing.assert_array_equal(out[:, :kept], _splitmix_triplets(R.indptr, R.indices, users, items,
                                                                    candidates, 11))


def test_blocked_epoch_refuses_marks_too_small():
    R = sp.csr_matrix(np.eye(3, 4))
    P, Q, b = np.zeros((3, 2)), np.zeros((4, 2)), np.zeros((4, 1))
    one = np.arange(3, dtype=np.int64)
    with pytest.raises(ValueError, match="marks"):
        kernels.bpr_blocked_epoch(P, Q, b, R.indptr, R.indices, one, one, one,
                                  np.array([0, 3]), np.arange(4), np.array([0, 4]),
                                  np.zeros(1, np.uint64), np.empty((3, 3), np.int64),
                                  np.zeros((1, 3), np.uint8), 0.0, 0.1, 1)


def test_bpr_scans_the_factors_after_the_last_epoch(monkeypatch):
    """A NaN in a factor row that no later triplet reads (here: written after the last epoch's
    updates) is still reported, by the scan after the last epoch."""
    real_epoch = kernels.bpr_blocked_epoch

    def poisoning_epoch(P, Q, *args):
        result = real_epoch(P, Q, *args)
        Q[-1, 0] = np.nan
        return result

    monkeypatch.setattr(kernels, "bpr_blocked_epoch", poisoning_epoch)
    frame = pd.DataFrame({"user_id": np.repeat(np.arange(20), 5), "item_id": np.arange(100) % 37})
    with pytest.raises(FloatingPointError, match="item_factors became NaN"):
        BPR(n_factors=4, epochs=1).fit(frame)


def test_the_shuffle_gives_every_order_equally_often():
    """Fisher-Yates over 3 triplets: all 3! = 6 orders, each about 1/6 of the time (Sattolo's
    off-by-one variant would give only the 2 cyclic ones)."""
    R = sp.csr_matrix(np.eye(3, 4))
    out = np.empty((3, 3), dtype=np.int64)
    counts: dict[tuple[int, ...], int] = {}
    for seed in range(6000):
        kernels.draw_triplets(R.indptr, R.indices, np.arange(3), np.arange(3), np.arange(3),
                              np.array([3]), np.uint64(seed), out, np.zeros(4, np.uint8))
        counts[tuple(out[0])] = counts.get(tuple(out[0]), 0) + 1
    assert len(counts) == 6
    assert max(abs(c - 1000) for c in counts.values()) < 5 * np.sqrt(1000 * 5 / 6)


def test_every_triplet_of_a_cell_stays_inside_its_user_block_and_item_block(rng):
    """The invariant that makes a round race-free: cell (s, t) touches users of block s and
    items (positives and negatives) of block t only."""
    from reclib.cf.bpr import _balanced_blocks
    R = sp.csr_matrix((rng.random((60, 45)) < 0.2).astype(float))
    coo = R.tocoo()
    users, items = coo.row.astype(np.int64), coo.col.astype(np.int64)
    B = 3
    user_block = _balanced_blocks(np.diff(R.indptr), B, rng)
    item_block = _balanced_blocks(np.bincount(items, minlength=45), B, rng)
    order, starts = kernels.group_by_cell(users, items, user_block, item_block, B)
    block_items, block_starts = kernels.counting_sort(item_block, B)
    out = np.empty((3, len(users)), dtype=np.int64)
    seen = 0
    for s in range(B):
        for t in range(B):
            cell = s * B + t
            kept = kernels.draw_triplets(R.indptr, R.indices, users, items,
                                         order[starts[cell]:starts[cell + 1]],
                                         block_items[block_starts[t]:block_starts[t + 1]],
                                         np.uint64(cell), out, np.zeros(45, np.uint8))
            u, i, j = out[:, :kept]
            assert (user_block[u] == s).all() and (item_block[i] == t).all()
            assert (item_block[j] == t).all()
            seen += kept
    assert seen == len(users)


def test_bpr_refuses_blocks_that_skip_many_triplets():
    """One item holds most interactions: in its own block, its users have no negative left."""
    import pandas as pd
    frame = pd.DataFrame({"user_id": np.arange(230),           # 200 users of item 0, 2 of each other
                          "item_id": [0] * 200 + [i for i in range(1, 16) for _ in range(2)]})
    with pytest.raises(ValueError, match="n_blocks=2"):     # once item 0 is a block of its own
        BPR(n_factors=4, epochs=60, n_blocks=2).fit(frame)
    BPR(n_factors=4, epochs=60, n_blocks=1).fit(frame)          # one block: nothing skipped


def test_counting_sort_is_a_stable_sort_and_blocks_split_the_mass_evenly(rng):
    from reclib.cf.bpr import _balanced_blocks
    keys = rng.integers(0, 7, 1000)
    order, starts = kernels.counting_sort(keys, 7)
    np.testing.assert_array_equal(order, np.argsort(keys, kind="stable"))
    np.testing.assert_array_equal(starts, np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=7))]))
    degree = rng.integers(1, 20, 500)
    blocks = _balanced_blocks(degree, 3, rng)
    mass = np.bincount(blocks, weights=degree, minlength=3)
    assert set(blocks) == {0, 1, 2} and mass.max() - mass.min() <= 2 * degree.max()
    for _ in range(20):                          # rows of degree 0 last in the order: still in range
        assert _balanced_blocks(np.array([3, 1, 0, 0]), 2, rng).max() <= 1
    with pytest.raises(ValueError, match="outside"):
        kernels.counting_sort(np.array([0, 3]), 3)


def test_bpr_float32_follows_float64(rng):
    frame = _small_interactions(rng)
    wide = BPR(n_factors=8, epochs=5).fit(frame)
    narrow = BPR(n_factors=8, epochs=5, dtype="float32").fit(frame)
    assert narrow.user_factors_.dtype == np.float32 and narrow.item_bias_.dtype == np.float32
    np.testing.assert_allclose(narrow.user_factors_, wide.user_factors_, atol=1e-5)
    np.testing.assert_allclose(narrow.history_["loss"], wide.history_["loss"], rtol=1e-5)
    with pytest.raises(ValueError, match="dtype"):
        BPR(dtype="float16")


@pytest.mark.parametrize("dtype, rel", [("float64", 1e-10), ("float32", 1e-5)])
def test_als_loss_tracked_through_the_cg_steps_is_the_loss_at_the_fitted_factors(
        synthetic_interactions, dtype, rel):
    model = ImplicitALS(n_factors=8, epochs=3, dtype=dtype, verbose=False).fit(synthetic_interactions)
    X, Y = (np.asarray(a, dtype=np.float64) for a in (model.user_factors_, model.item_factors_))
    want = implicit_als_loss(model.train_matrix_, X, Y, model.alpha, model.reg)
    assert model.history_.loss.iloc[-1] == pytest.approx(want, rel=rel)
    assert model.history_.loss.is_monotonic_decreasing


def test_cg_half_step_refuses_a_row_loss_buffer_of_the_wrong_length(rng):
    M = sp.csr_matrix((rng.random((5, 4)) < 0.5).astype(float))
    Y, X = rng.normal(size=(4, 3)), np.zeros((5, 3))
    with pytest.raises(ValueError, match="one entry per row"):
        kernels.ials_cg_half_step(M.indptr, M.indices, M.data, Y, kernels.gram(Y), X, 3.0, 0.5, 0.0,
                                  3, np.zeros(4), 8)


def test_compile_kernels_fits_every_compiled_model_in_both_dtypes():
    from reclib.cf.compile import compile_kernels

    took = compile_kernels()
    assert sorted(took) == sorted(
        [f"ImplicitALS[{s}, {d}]" for d in ("float64", "float32") for s in ("cg", "cholesky")]
        + [f"BPR[{b} blocks, {d}]" for d in ("float64", "float32") for b in (1, 2)]
        + [f"ImplicitALS.fold_in[{d}]" for d in ("float64", "float32")]
        + ["BiasedMF[sgd]", "BiasedMF[als]"])
    assert all(seconds > 0 for seconds in took.values())

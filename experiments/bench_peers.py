"""reclib's factorisation models next to the compiled libraries `implicit` and Cornac, in one run.

    python -m experiments.bench_peers [--small] [--repeats 3] [--output-dir build]

Needs the optional extra ``peers`` (``pip install -c requirements.lock implicit cornac``).

What is timed: ``fit`` only, on the same machine, in one process, alternately (A B C ... A B C ...),
``--repeats`` times; the table reports the median. One warm-up fit of every contender on a tiny
matrix comes first and is not timed (numba compiles reclib's kernels there, or loads them from its
on-disk cache). First use is timed apart: for P1, each contender's first ``fit`` in a fresh Python
process (libraries imported and data loaded beforehand, not timed), which for reclib includes
loading its compiled kernels from numba's cache (``first_fit_s``). All contenders get 2 threads (numba, implicit's ``num_threads``, Cornac's
``num_threads``, BLAS via threadpoolctl); reclib's BPR trains two cells of a stratified split at a
time (``n_blocks=2``, its default: bit-reproducible whatever the thread timing); implicit's and
Cornac's BPR are multi-threaded Hogwild (not reproducible run to run).

Settings (matched): ALS 64 factors, 15 iterations, regularisation 30, alpha 3, 3 CG steps; `implicit`
weights an interaction by alpha * r, reclib by 1 + alpha * r (Hu et al.); `implicit` computes in
float32, reclib in float64 by default (both dtypes of reclib are timed, for ALS and BPR). BPR 64 factors, 100 epochs
(P1), lr 0.05, reg 0.03, one uniformly sampled negative per interaction and epoch. EASE reg 500.
reclib models are fitted from the interaction frame (their time includes encoding the ids); the
peers get a ready CSR matrix (Cornac its ``Dataset``, built outside the timing).

Data: P1 = ``stratified_split(ml.ratings, 0.75, random_state=42)`` of MovieLens-100K, every rating a positive,
NDCG@10 by :func:`reclib.evaluation.ranking_result` (reclib) and by
:func:`reclib.evaluation.evaluate_scores` on the peers' factor products, same train/test matrices.
Synthetic: a seeded 50,000 users x 20,000 items matrix with about 5,000,000 interactions (item
popularity Zipf-like), fit time only, BPR 10 epochs; EASE (a dense 20,000 x 20,000 inverse) and
implicit's exact ALS (minutes per fit) are left out there.
``--small`` shrinks the synthetic matrix (5,000 x 2,000 x 200,000) and the repeats for a quick run.

Writes ``build/bench_peers.json``, ``build/bench_peers.md`` (a table) and ``build/bench_peers.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

THREADS = 2
ALS = {"factors": 64, "iterations": 15, "reg": 30.0, "alpha": 3.0, "cg_steps": 3}
BPR_SET = {"factors": 64, "epochs": 100, "lr": 0.05, "reg": 0.03}


def synthetic(n_users: int, n_items: int, n_target: int, seed: int = 0) -> pd.DataFrame:
    """About ``n_target`` distinct (user, item) pairs: users uniform, items Zipf-like (exponent 0.8)."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.8
    items = rng.choice(n_items, size=int(n_target * 1.08), p=weights / weights.sum())
    users = rng.integers(0, n_users, size=len(items))
    keys = np.unique(users.astype(np.int64) * n_items + items)[:n_target]
    rng.shuffle(keys)
    return pd.DataFrame({"user_id": keys // n_items, "item_id": keys % n_items, "rating": 1.0})


def contenders(train: pd.DataFrame, matrix: sp.csr_matrix, bpr_epochs: int,
               small_data: bool) -> dict[str, Callable[[], object]]:
    """name -> a function that fits one model (the thing timed) and returns it."""
    import cornac
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.cpu.bpr import BayesianPersonalizedRanking

    from reclib.cf import BPR, EASE, ImplicitALS

    item_user32 = matrix.astype(np.float32)
    uir = cornac.data.Dataset.from_uir(
        zip(*(a.astype(str) for a in matrix.nonzero()), np.ones(matrix.nnz)), seed=42)

    def reclib_als(dtype: str) -> Callable[[], object]:
        return lambda: ImplicitALS(n_factors=ALS["factors"], alpha=ALS["alpha"], reg=ALS["reg"],
                                   epochs=ALS["iterations"], cg_steps=ALS["cg_steps"], dtype=dtype,
                                   verbose=False).fit(train)

    def reclib_bpr(dtype: str) -> Callable[[], object]:
        return lambda: BPR(n_factors=BPR_SET["factors"], learning_rate=BPR_SET["lr"], reg=BPR_SET["reg"],
                           epochs=bpr_epochs, dtype=dtype, verbose=False).fit(train)

    def implicit_als(use_cg: bool) -> Callable[[], object]:
        def fit() -> object:
            model = AlternatingLeastSquares(factors=ALS["factors"], regularization=ALS["reg"],
                                            alpha=ALS["alpha"], iterations=ALS["iterations"],
                                            use_cg=use_cg, num_threads=THREADS, random_state=42)
            model.cg_steps = ALS["cg_steps"]
            model.fit(item_user32, show_progress=False)
            return model
        return fit

    def implicit_bpr() -> object:
        model = BayesianPersonalizedRanking(factors=BPR_SET["factors"], learning_rate=BPR_SET["lr"],
                                            regularization=BPR_SET["reg"], iterations=bpr_epochs,
                                            num_threads=THREADS, random_state=42)
        model.fit(item_user32, show_progress=False)
        return model

    def cornac_bpr() -> object:
        model = cornac.models.BPR(k=BPR_SET["factors"], max_iter=bpr_epochs,
                                  learning_rate=BPR_SET["lr"], lambda_reg=BPR_SET["reg"],
                                  num_threads=THREADS, seed=42)
        return model.fit(uir)

    out = {"reclib ImplicitALS (cg, float64)": reclib_als("float64"),
           "reclib ImplicitALS (cg, float32)": reclib_als("float32"),
           "implicit ALS (cg)": implicit_als(True),
           "implicit ALS (exact)": implicit_als(False) if small_data else None,
           "reclib BPR (float64)": reclib_bpr("float64"),
           "reclib BPR (float32)": reclib_bpr("float32"),
           "implicit BPR": implicit_bpr,
           "Cornac BPR": cornac_bpr}
    if small_data:
        out["reclib EASE"] = lambda: EASE(500.0).fit(train)
    out["_cornac_uid"] = uir      # type: ignore[assignment]  (for the score mapping, not timed)
    return {name: fit for name, fit in out.items() if fit is not None}


def peer_scores(name: str, model: object, n_users: int, n_items: int, uir: object) -> np.ndarray:
    """(n_users, n_items) scores of a peer model in reclib's index order."""
    if name.startswith("implicit"):
        U, V = model.user_factors, model.item_factors          # type: ignore[attr-defined]
        return np.asarray(U, dtype=np.float64) @ np.asarray(V, dtype=np.float64).T
    scores = np.full((n_users, n_items), -np.inf)
    uids = np.array([int(u) for u in uir.uid_map.keys()])          # type: ignore[attr-defined]
    upos = np.array(list(uir.uid_map.values()))                    # type: ignore[attr-defined]
    iids = np.array([int(i) for i in uir.iid_map.keys()])          # type: ignore[attr-defined]
    ipos = np.array(list(uir.iid_map.values()))                    # type: ignore[attr-defined]
    full = (model.u_factors @ model.i_factors.T + model.i_biases[None, :])   # type: ignore[attr-defined]
    scores[np.ix_(uids, iids)] = full[np.ix_(upos, ipos)]
    return scores


def run(train: pd.DataFrame, test: pd.DataFrame | None, repeats: int, bpr_epochs: int,
        small_data: bool, label: str) -> list[dict[str, object]]:
    """Time every contender alternately; with ``test``, also its NDCG@10 (last fit)."""
    from reclib.cf import MostPopular
    from reclib.evaluation import evaluate_scores, ranking_result

    reference = MostPopular().fit(train)           # the encoders and train matrix everyone shares
    matrix = reference.train_matrix_.tocsr()
    fits = contenders(train, matrix, bpr_epochs, small_data)
    uir = fits.pop("_cornac_uid")
    times: dict[str, list[float]] = {name: [] for name in fits}
    models: dict[str, object] = {}
    for rep in range(repeats):
        for name, fit in fits.items():
            start = time.perf_counter()
            models[name] = fit()
            times[name].append(time.perf_counter() - start)
            print(f"[{label}] repeat {rep + 1}/{repeats} {name}: {times[name][-1]:.3f} s", flush=True)
    rows = []
    for name, ts in times.items():
        row: dict[str, object] = {"data": label, "model": name, "fit_s_median": float(np.median(ts)),
                                  "fit_s_all": [round(t, 4) for t in ts]}
        if test is not None:
            if name.startswith("reclib"):
                table = ranking_result(models[name], train, test, k=10)
            else:
                known = test[test.item_id.isin(reference.item_ids_) & test.user_id.isin(reference.user_ids_)]
                test_matrix = sp.csr_matrix(
                    (np.ones(len(known)), (reference.user_index(known.user_id),
                                           reference.item_encoder_.transform(known.item_id))),
                    shape=matrix.shape)
                scores = peer_scores(name, models[name], *matrix.shape, uir)
                table = evaluate_scores(scores, matrix, test_matrix, k=10)
            row["ndcg@10"] = table["ndcg"]
            row["first_fit_s"] = first_fit(name)
        rows.append(row)
    return rows


def first_fit(name: str) -> float:
    """Seconds of ``name``'s first P1 fit in a fresh Python process (module doc)."""
    done = subprocess.run([sys.executable, "-m", "experiments.bench_peers", "--first-fit", name],
                          capture_output=True, text=True, check=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["first_fit_s"])


def _first_fit_child(name: str) -> None:
    """In the fresh process of :func:`first_fit`: load P1, build the contenders, time one fit."""
    import numba
    from threadpoolctl import threadpool_limits

    from reclib.data import load_movielens, stratified_split

    numba.set_num_threads(THREADS)
    with threadpool_limits(THREADS):
        from reclib.cf import MostPopular

        train, _ = stratified_split(load_movielens("100k").ratings, 0.75, random_state=42)
        matrix = MostPopular().fit(train).train_matrix_.tocsr()         # as run() builds it
        fit = contenders(train, matrix, BPR_SET["epochs"], True)[name]
        start = time.perf_counter()
        fit()
        print(json.dumps({"first_fit_s": time.perf_counter() - start}))


def warm_up() -> None:
    """One untimed fit of each contender on a tiny matrix (numba compile or cache load)."""
    tiny = synthetic(60, 40, 600, seed=1)
    run(tiny, None, 1, 2, True, "warm-up")


def write(rows: list[dict[str, object]], out: Path, meta: dict[str, object]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_peers.json").write_text(json.dumps({"meta": meta, "results": rows}, indent=1))
    frame = pd.DataFrame(rows)
    lines = [f"# reclib vs implicit vs Cornac ({meta['machine']}, {THREADS} threads, median of "
             f"{meta['repeats']} alternating fits, compile warm-up excluded)", ""]
    for data, part in frame.groupby("data", sort=False):
        lines += [f"## {data}", "", "| model | fit s (median) | all fits s | first fit s, fresh process | NDCG@10 |",
                  "|---|---|---|---|---|"]
        for _, r in part.iterrows():
            ndcg = f"{r['ndcg@10']:.4f}" if "ndcg@10" in r and pd.notna(r.get("ndcg@10")) else "-"
            first = f"{r['first_fit_s']:.3f}" if pd.notna(r.get("first_fit_s", np.nan)) else "-"
            lines.append(f"| {r['model']} | {r['fit_s_median']:.3f} | {r['fit_s_all']} | {first} | {ndcg} |")
        lines.append("")
    lines += ["Settings: " + json.dumps({"als": ALS, "bpr": BPR_SET}), "",
              "implicit weights an interaction by alpha*r, reclib by 1 + alpha*r.", ""]
    (out / "bench_peers.md").write_text("\n".join(lines))
    datasets = list(dict.fromkeys(frame["data"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4), squeeze=False)
    for ax, data in zip(axes[0], datasets):
        part = frame[frame["data"] == data]
        colours = ["tab:blue" if m.startswith("reclib") else "tab:gray" for m in part["model"]]
        ax.barh(part["model"], part["fit_s_median"], color=colours)
        ax.set(xscale="log", xlabel="fit time, s (median, log scale)", title=data)
        ax.invert_yaxis()
    plt.tight_layout()
    fig.savefig(out / "bench_peers.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", action="store_true", help="a small synthetic matrix, 3 repeats")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output-dir", default="build")
    parser.add_argument("--first-fit", metavar="MODEL", help=argparse.SUPPRESS)   # the child of first_fit
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))
    warnings.filterwarnings("ignore", module="implicit")
    if args.first_fit:
        _first_fit_child(args.first_fit)
        return
    import numba
    from threadpoolctl import threadpool_limits

    from reclib.data import load_movielens, stratified_split

    numba.set_num_threads(THREADS)
    meta = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
            "threads": THREADS, "repeats": args.repeats, "small": args.small,
            "warm_up": "one untimed fit of every contender on a 60x40 matrix first"}
    with threadpool_limits(THREADS):
        warm_up()
        ml = load_movielens("100k")
        train, test = stratified_split(ml.ratings, 0.75, random_state=42)
        rows = run(train, test, args.repeats, BPR_SET["epochs"], True, "MovieLens-100K P1")
        shape = (5_000, 2_000, 200_000) if args.small else (50_000, 20_000, 5_000_000)
        big = synthetic(*shape)
        label = f"synthetic {shape[0]:,} x {shape[1]:,} x {len(big):,} (BPR 10 epochs)"
        rows += run(big, None, args.repeats, 10, False, label)
    write(rows, Path(args.output_dir), meta)
    print(Path(args.output_dir, "bench_peers.md").read_text())


if __name__ == "__main__":
    main()

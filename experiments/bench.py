"""``python -m experiments.bench`` (``make bench``): speed figures, written to ``build/bench.json``.

Each case is timed with :func:`time.perf_counter` as the best of ``--repeat`` runs after one
warm-up. Speed is measured here, never in unit tests.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

import reclib
from reclib.base import interaction_matrix
from reclib.io import atomic_write_bytes

__all__ = ["main", "timed"]


def timed(fn: Callable[[], Any], repeat: int = 3) -> float:
    """Best wall time in seconds of ``repeat`` calls of ``fn`` after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _random_split_matrices(n_users: int, n_items: int, n_train: int, n_test: int,
                           seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    keys = rng.choice(n_users * n_items, size=n_train + n_test, replace=False)
    users, items = keys // n_items, keys % n_items
    shape = (n_users, n_items)
    return (interaction_matrix(users[:n_train], items[:n_train], shape),
            interaction_matrix(users[n_train:], items[n_train:], shape))


def bench_evaluation(repeat: int) -> dict[str, float]:
    """Top-10 evaluation of a full score matrix: ML-100K size and 5,000 x 10,000 (5M train)."""
    from reclib.cf import ItemKNN
    from reclib.data import load_movielens
    from reclib.evaluation import P1, evaluate_scores

    ml = load_movielens("100k")
    split = P1.split(ml.ratings)
    train, test = split.train, split.test
    model = ItemKNN().fit(train)
    scores = model.score(model.user_ids_)
    shape = (len(model.user_ids_), len(model.item_ids_))
    tr = interaction_matrix(model.user_index(train.user_id), model.item_encoder_.transform(train.item_id), shape)
    known = test[test.item_id.isin(model.item_ids_)]
    te = interaction_matrix(model.user_index(known.user_id), model.item_encoder_.transform(known.item_id), shape)
    out = {"ml100k_eval_943x1682_s": timed(lambda: evaluate_scores(scores, tr, te, k=10), repeat),
           "ml100k_itemknn_fit_s": timed(lambda: ItemKNN().fit(train), repeat),
           "ml100k_itemknn_score_all_s": timed(lambda: model.score(model.user_ids_), repeat)}
    big_train, big_test = _random_split_matrices(5000, 10_000, 5_000_000, 1_000_000)
    big_scores = np.random.default_rng(1).random((5000, 10_000), dtype=np.float32)
    out["eval_5000x10000_5M_train_s"] = timed(
        lambda: evaluate_scores(big_scores, big_train, big_test, k=10), repeat)
    return out


def bench_cf(repeat: int) -> dict[str, float]:
    """Collaborative filtering on ML-100K P1/P2: fit times and the notebook-02 test metrics."""
    from reclib.cf import EASE, BiasedMF, ImplicitALS
    from reclib.cf.implicit import implicit_als_half_step
    from reclib.data import load_movielens
    from reclib.evaluation import P1, P2, ranking_result, rmse

    ml = load_movielens("100k")
    p1_split = P1.split(ml.ratings)
    p1_train, p1_test = p1_split.train, p1_split.test
    p2_split = P2.split(ml.ratings)
    p2_train, p2_test = p2_split.train, p2_split.test
    ials = ImplicitALS(n_factors=64, epochs=1, verbose=False).fit(p1_train)
    matrix, items_t = ials.train_matrix_, ials.train_matrix_.T.tocsr()

    def one_ials_iteration() -> None:
        X = implicit_als_half_step(matrix, ials.item_factors_, 10.0, 30.0)
        implicit_als_half_step(items_t, X, 10.0, 30.0)

    out = {"implicit_als_iteration_64f_s": timed(one_ials_iteration, repeat),
           "ease_fit_s": timed(lambda: EASE(500.0).fit(p1_train), repeat)}
    ease = EASE(500.0).fit(p1_train)
    out["ease_p1_ndcg@10"] = ranking_result(ease, p1_train, p1_test)["ndcg"]
    start = time.perf_counter()
    mf = BiasedMF(n_factors=200, reg=0.06, learning_rate=0.005, epochs=70, init_std=0.01, verbose=False).fit(p2_train)
    out["biased_mf_sgd_fit_s"] = time.perf_counter() - start
    out["biased_mf_sgd_p2_rmse"] = rmse(p2_test.rating, mf.predict(p2_test.user_id, p2_test.item_id))
    return out


def bench_text(repeat: int) -> dict[str, float]:
    """Encoding throughput of reclib's TextEncoder next to sentence-transformers' ``encode``
    (same model folder, batch size, texts and threads, measured in one run), and the cache."""
    import tempfile

    from sentence_transformers import SentenceTransformer

    from reclib.data import load_movielens, load_womens_reviews
    from reclib.features import TextEncoder, item_text

    reviews = load_womens_reviews().dropna(subset=["review_text"])["review_text"].head(1000).tolist()
    texts = item_text(load_movielens("100k").items).tolist() + reviews
    with tempfile.TemporaryDirectory() as tmp:
        ours = TextEncoder(batch_size=64, max_length=128, cache_dir=tmp, show_progress=False)
        theirs = SentenceTransformer(str(ours.folder), device="cpu")
        theirs.max_seq_length = 128
        ours_s = timed(lambda: ours.encode_uncached(texts), repeat)
        theirs_s = timed(lambda: theirs.encode(texts, batch_size=64, normalize_embeddings=True), repeat)
        diff = float(np.abs(ours.encode_uncached(texts[:64]) - theirs.encode(
            texts[:64], batch_size=64, normalize_embeddings=True)).max())
        ours.encode(texts)
        start = time.perf_counter()
        ours.encode(texts)
        cached_s = time.perf_counter() - start
    return {"n_texts": float(len(texts)), "reclib_texts_per_s": len(texts) / ours_s,
            "sentence_transformers_texts_per_s": len(texts) / theirs_s,
            "reclib_over_sentence_transformers": theirs_s / ours_s,
            "max_abs_vector_difference": diff, "cached_second_run_s": cached_s}


def bench_deep(repeat: int) -> dict[str, float]:
    """NeuMF and two-tower (+ text) on P1 with notebook 05's default settings: NDCG@10 and time."""
    del repeat                                   # one training run each: minutes, not milliseconds
    from reclib.data import GENRES, load_movielens
    from reclib.evaluation import P1, ranking_result
    from reclib.features import ItemFeatures, TextEncoder, genre_matrix, item_text
    from reclib.models import NCF, TwoTowerRecommender

    ml = load_movielens("100k")
    split = P1.split(ml.ratings)
    train, test = split.train, split.test
    ids = ml.items["item_id"].to_numpy()
    text = TextEncoder(show_progress=False).encode(item_text(ml.items).tolist())
    features = ItemFeatures(ids, vectors=text, categories=genre_matrix(ml.items["genres"], GENRES))
    models = {"neumf": (NCF(), {}), "two_tower_text": (TwoTowerRecommender(embedding_dim=64, temperature=0.1,
                                                                           use_user_id=False, epochs=3),
                                                       {"item_features": features})}
    out = {}
    for name, (model, fit_data) in models.items():
        start = time.perf_counter()
        model.fit(train, **fit_data)
        out[f"{name}_fit_s_per_epoch"] = (time.perf_counter() - start) / model.epochs
        out[f"{name}_p1_ndcg@10"] = ranking_result(model, train, test)["ndcg"]
    return out


def bench_sequential(repeat: int) -> dict[str, float]:
    """Real-time update + top-10 over the ML-100K catalogue (p50/p99 ms per event) for the
    sequential models at their default sizes; 2 training epochs (latency does not depend on it)."""
    del repeat                                   # 500 timed events per model are the repeats
    import pandas as pd

    from reclib.data import load_movielens
    from reclib.evaluation import P3
    from reclib.models import ItemGPT2Recommender, RecurrentRecommender, SASRecRecommender
    from reclib.serving import RealTimeRecommender, update_latency

    split = P3.split(load_movielens("100k").ratings)
    fit_part = split.fit
    events = pd.concat([split.valid, split.test]).sort_values(["timestamp", "user_id", "item_id"]).iloc[:505]
    histories = fit_part.sort_values(["user_id", "timestamp", "item_id"]).groupby("user_id")["item_id"].apply(list)
    out = {}
    models = {"gru": RecurrentRecommender(epochs=2), "sasrec": SASRecRecommender(epochs=2),
              "gpt2": ItemGPT2Recommender(epochs=1)}
    for name, model in models.items():
        model.fit(fit_part)
        server = RealTimeRecommender(model, k=10)
        for user in events["user_id"].unique():
            server.seed(user, histories[user])
        latency = update_latency(server, events)
        out.update({f"{name}_update_top10_p50_ms": latency["p50"], f"{name}_update_top10_p99_ms": latency["p99"]})
    return out


#: catalogue sizes of the synthetic approximate-search benchmark (the 10^6 build takes minutes)
ANN_SIZES = (100_000, 1_000_000)


def bench_interactive(repeat: int, sizes: tuple[int, ...] = ANN_SIZES,
                      n_queries: int = 1000) -> dict[str, float]:
    """Online serving: an ImplicitALS fold-in of one user + a fresh top-10 over ML-100K items, and
    exact vs approximate (faiss HNSW) top-10 search on ML-100K item factors and on synthetic
    clustered catalogues of ``sizes`` items: recall@10 against exact search, p50/p99 per query (ms),
    build time (s). ``repeat`` is unused: latencies are percentiles over ``n_queries`` single queries."""
    del repeat
    from reclib.base import top_k
    from reclib.cf import ImplicitALS
    from reclib.data import load_movielens
    from reclib.evaluation import P1
    from reclib.serving import ApproximateIndex, ExactIndex, clustered_vectors, latency_ms, neighbor_recall

    train = P1.split(load_movielens("100k").ratings).train
    model = ImplicitALS().fit(train)
    histories = train.groupby("user_id")["item_id"].apply(list)
    matrices = [model.history_matrix([h]) for h in histories]
    Y = model.item_factors_

    def fold_in_top10(j: np.ndarray) -> None:
        history = matrices[int(j[0])]
        top_k(model.fold_in_matrix(history) @ Y.T, 10, history)

    order = np.arange(len(matrices))[:, None]
    out = dict(zip(("ml100k_fold_in_top10_p50_ms", "ml100k_fold_in_top10_p99_ms"),
                   latency_ms(fold_in_top10, np.resize(order, (n_queries, 1)))))
    cases = {"ml100k": (Y, model.user_factors_)}
    for n in sizes:
        vectors = clustered_vectors(n, random_state=0)
        cases[f"synthetic_{n}"] = (vectors, clustered_vectors(n_queries, random_state=1))
    for name, (items, queries) in cases.items():
        queries = queries[:n_queries]
        exact = ExactIndex(items.astype(np.float32))
        start = time.perf_counter()
        approximate = ApproximateIndex(items)
        out[f"{name}_hnsw_build_s"] = time.perf_counter() - start
        truth, _ = exact.search_arrays(queries, 10)
        found, _ = approximate.search_arrays(queries, 10)
        out[f"{name}_hnsw_recall@10"] = neighbor_recall(found, truth)
        for label, index in (("exact", exact), ("hnsw", approximate)):
            p50, p99 = latency_ms(lambda q, index=index: index.search_arrays(q, 10),
                                   queries[:200] if label == "exact" and len(items) > 10**5 else queries)
            out[f"{name}_{label}_p50_ms"], out[f"{name}_{label}_p99_ms"] = p50, p99
    return out


def bench_train(repeat: int, batch_sizes: tuple[int, ...] = (1024, 4096), row_counts: tuple[int, ...] = (
        50_000, 100_000, 200_000, 400_000)) -> dict[str, float]:
    """DCN-V2 (``build_ctr_model``, 8 Zipf id fields + 4 numbers, embedding 16, MLP 128-64) on
    synthetic clicks through ``Trainer``: samples/s (best later epoch) eager (``run_eagerly``, the
    uncompiled baseline) vs graph-only (``jit_compile=False``) vs XLA vs XLA with
    ``steps_per_execution=8``, float32 vs ``mixed_bfloat16``, at ``batch_sizes``;
    then time per epoch vs rows (XLA, batch 4096) with the linear fit's R^2. ``repeat`` unused."""
    del repeat
    import keras

    from reclib.models import build_ctr_model
    from reclib.training.timing import ctr_arrays, linear_scaling, time_training

    space, x, y = ctr_arrays(max(row_counts), random_state=0)
    build = lambda: build_ctr_model("dcnv2", space, embedding_dim=16, hidden_units=(128, 64))  # noqa: E731
    loss = keras.losses.BinaryCrossentropy(from_logits=True)
    small = ({k: v[:row_counts[0]] for k, v in x.items()}, y[:row_counts[0]])
    cases = {"graph": dict(jit_compile=False), "xla": dict(jit_compile=True),
             "xla_spe8": dict(jit_compile=True, steps_per_execution=8),
             "xla_bf16": dict(jit_compile=True, precision="mixed_bfloat16")}
    def eager() -> keras.Model:          # the uncompiled baseline: every step runs op by op in Python
        model = build()
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=loss, run_eagerly=True)
        return model

    out = {}
    for batch in batch_sizes:
        out[f"dcnv2_eager_b{batch}_samples_per_s"] = time_training(
            eager, small, batch_size=batch, learning_rate=None)["samples_per_s"]
        for name, options in cases.items():
            out[f"dcnv2_{name}_b{batch}_samples_per_s"] = time_training(
                build, small, batch_size=batch, loss=loss, **options)["samples_per_s"]
    seconds = []
    for n in row_counts:
        part = ({k: v[:n] for k, v in x.items()}, y[:n])
        seconds.append(time_training(build, part, batch_size=4096, loss=loss, jit_compile=True)["epoch_s"])
        out[f"dcnv2_xla_epoch_s_{n}_rows"] = seconds[-1]
    out["dcnv2_epoch_time_vs_rows_r2"] = linear_scaling(np.array(row_counts), np.array(seconds))["r2"]
    return out


def bench_processes(repeat: int, n_rows: int = 262_144, batches: tuple[int, ...] = (4096, 16_384),
                    epochs: int = 4) -> dict[str, float]:
    """The DCN-V2 of :func:`bench_train` on JAX, trained by one process and by two on this machine
    (``reclib.models.multi_process.multi_process_check``: real processes, gloo over loopback, the
    same global batch), rank ``r`` pinned to core ``r`` as if each process had a machine of its
    own (unpinned, two processes on a 2-core machine would only share the cores one process had).
    Per global batch size: samples/s of the fastest epoch after the first (which compiles) and the
    speed-up; the largest per-epoch relative loss difference; the gradient bytes the all-reduce
    sums each step (float32), which equal the bytes a ring all-reduce sends per process at
    ``P = 2`` (``2 (P - 1) / P`` times the gradient). ``repeat`` unused."""
    del repeat
    from reclib.models.multi_process import multi_process_check

    out, differences = {}, []
    for batch in batches:
        frame = multi_process_check("dcnv2_bench", n_processes=2, n_rows=n_rows, batch_size=batch, epochs=epochs,
                                    timeout=1800, one_core_each=True)
        seen = {n: n_rows - (n_rows % batch) % n for n in frame.attrs["epoch_seconds"]}   # rows of an epoch
        speed = {n: seen[n] / min(seconds[1:]) for n, seconds in frame.attrs["epoch_seconds"].items()}
        out.update({f"dcnv2_jax_b{batch}_{n}_process_samples_per_s": value for n, value in speed.items()})
        out[f"dcnv2_jax_b{batch}_2_process_speedup"] = speed[2] / speed[1]
        differences.append(float(frame["rel_diff"].max()))
    out["gradient_allreduce_mb_per_step"] = frame.attrs["trainable_parameters"] * 4 / 1e6
    out["max_loss_rel_diff_1_vs_2_processes"] = max(differences)
    return out


# every benchmark group, by the name `--only` takes; each returns {measurement: seconds or ratio}
BENCHES: dict[str, Callable[[int], dict[str, float]]] = {
    "evaluation": bench_evaluation, "cf": bench_cf, "text": bench_text, "deep": bench_deep,
    "interactive": bench_interactive,
    "sequential": bench_sequential,
    "train": bench_train,
    "processes": bench_processes,
}


def main(argv: list[str] | None = None) -> int:
    reclib.quiet()          # TensorFlow's and transformers' start-up logs off, before they load
    parser = argparse.ArgumentParser(prog="python -m experiments.bench", description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("build/bench.json"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", nargs="*", choices=list(BENCHES),
                        help="run only these benchmark groups")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"machine": {"python": platform.python_version(),
                                           "processor": platform.processor() or platform.machine(),
                                           "cpus": __import__("os").cpu_count()}}
    for name, bench in ((n, BENCHES[n]) for n in (args.only or list(BENCHES))):
        print(f"benchmark: {name} …", flush=True)
        results[name] = bench(args.repeat)
        for key, value in results[name].items():
            print(f"  {key:40s} {value:8.3f}")
    atomic_write_bytes(args.output, json.dumps(results, indent=2).encode())
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

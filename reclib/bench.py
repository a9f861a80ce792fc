"""``python -m reclib.bench`` (``make bench``): speed figures, written to ``build/bench.json``.

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
    from reclib.data import load_movielens, stratified_split
    from reclib.evaluation import evaluate_scores

    ml = load_movielens("100k")
    train, test = stratified_split(ml.ratings, 0.75, seed=42)
    model = ItemKNN().fit(train)
    users = model.user_index(train["user_id"].unique())
    scores = model.score(model.user_ids_)
    shape = (len(model.user_ids_), len(model.item_ids_))
    tr = interaction_matrix(model.user_index(train.user_id), model.item_encoder_.transform(train.item_id), shape)
    known = test[test.item_id.isin(model.item_ids_)]
    te = interaction_matrix(model.user_index(known.user_id), model.item_encoder_.transform(known.item_id), shape)
    out = {"ml100k_eval_943x1682_s": timed(lambda: evaluate_scores(scores, tr, te, k=10), repeat),
           "ml100k_itemknn_fit_s": timed(lambda: ItemKNN().fit(train), repeat),
           "ml100k_itemknn_score_all_s": timed(lambda: model._score(users), repeat)}
    big_train, big_test = _random_split_matrices(5000, 10_000, 5_000_000, 1_000_000)
    big_scores = np.random.default_rng(1).random((5000, 10_000), dtype=np.float32)
    out["eval_5000x10000_5M_train_s"] = timed(
        lambda: evaluate_scores(big_scores, big_train, big_test, k=10), repeat)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reclib.bench", description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("build/bench.json"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"machine": {"python": platform.python_version(),
                                           "processor": platform.processor() or platform.machine(),
                                           "cpus": __import__("os").cpu_count()}}
    for name, bench in (("evaluation", bench_evaluation),):
        print(f"benchmark: {name} …", flush=True)
        results[name] = bench(args.repeat)
        for key, value in results[name].items():
            print(f"  {key:40s} {value:8.3f}")
    atomic_write_bytes(args.output, json.dumps(results, indent=2).encode())
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m experiments.defaults``: every recommender with its DEFAULT constructor arguments on
the kit's protocols (P1 NDCG@10 for the ranking models, P2 RMSE for BiasedMF), so the claim
"constructor defaults are the validated values" is measured, not asserted. Writes
``build/defaults.json`` and prints a table."""

from __future__ import annotations

import reclib

reclib.quiet()  # a script: TensorFlow's start-up logs off before anything imports it

import argparse
import json
import time
from pathlib import Path

from reclib.cf import BPR, EASE, BiasedMF, ImplicitALS, ItemKNN
from reclib.data import load_movielens
from reclib.evaluation import P1, P2
from reclib.io import atomic_write_bytes
from reclib.models import NCF, TwoTowerRecommender

RANKING = {"ImplicitALS": ImplicitALS, "EASE": EASE, "BPR": BPR, "ItemKNN": ItemKNN, "NCF": NCF,
           "TwoTowerRecommender": TwoTowerRecommender}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.defaults", description=__doc__)
    parser.add_argument("models", nargs="*", help=f"default: all of {[*RANKING, 'BiasedMF']}")
    parser.add_argument("--output", type=Path, default=Path("build/defaults.json"))
    args = parser.parse_args(argv)
    ratings = load_movielens("100k").ratings
    results = {}
    for name in args.models or [*RANKING, "BiasedMF"]:
        protocol, make = (P2, BiasedMF) if name == "BiasedMF" else (P1, RANKING[name])
        split = protocol.split(ratings)
        train, test = split.train, split.test
        start = time.perf_counter()
        model = make().fit(train)
        seconds = time.perf_counter() - start
        result = protocol.evaluate(model, train, test)
        metric = "rmse" if protocol is P2 else "ndcg"
        results[name] = {"protocol": protocol.name, metric: float(result[metric]), "fit_seconds": round(seconds, 2)}
        print(f"{name:22s} {protocol.name} {metric} {result[metric]:.4f}  ({seconds:.1f} s)", flush=True)
    atomic_write_bytes(args.output, json.dumps(results, indent=2).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m experiments.tune`` (``make tune``): the searches behind the defaults of notebooks 02 and 02b.

Each search fits one model per grid point on a protocol's validation carve-out of its training
part (``split.fit`` and ``split.valid`` of ``P1.split(ratings)``, P2 likewise), never on test, and scores
it with the protocol's metric (P1: NDCG@10, P2: minus the RMSE). The tables' best rows are written
to ``build/tuning/cf.json`` (merged with what is there, so searches can be run one at a time).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from reclib.evaluation.protocols import P1, P2, Protocol
from reclib.evaluation.tuning import protocol_search
from reclib.io import atomic_write_bytes

__all__ = ["cf_searches", "main"]

Search = tuple[Callable[..., Any], dict[str, list[Any]], Protocol]


def cf_searches() -> dict[str, Search]:
    """Name -> (model factory, grid, protocol) for the collaborative-filtering models."""
    from reclib.cf import BPR, EASE, BiasedMF, ImplicitALS, ItemKNN, NeighborhoodCF

    return {
        "EASE": (EASE, {"reg": [100.0, 250.0, 500.0, 1000.0, 2000.0]}, P1),
        "ItemKNN": (ItemKNN, {"n_neighbors": [20, 50, 100, 200, 400]}, P1),
        "ImplicitALS": (lambda **p: ImplicitALS(verbose=False, epochs=15, **p),
                        {"n_factors": [64, 128], "alpha": [3.0, 10.0, 30.0],
                         "reg": [10.0, 30.0, 100.0]}, P1),
        "BPR": (lambda **p: BPR(verbose=False, **p),
                {"n_factors": [64, 128], "reg": [0.01, 0.03, 0.05, 0.1], "epochs": [100]}, P1),
        "NeighborhoodCF": (NeighborhoodCF, {"k": [20, 40, 80], "shrinkage": [50.0, 100.0, 200.0]}, P2),
        "BiasedMF": (lambda **p: BiasedMF(verbose=False, init_std=0.01, learning_rate=0.005, epochs=70, **p),
                     {"n_factors": [100, 200, 400], "reg": [0.05, 0.06, 0.08]}, P2),
    }


def main(argv: list[str] | None = None) -> int:
    from reclib.data.movielens import load_movielens

    searches = cf_searches()
    parser = argparse.ArgumentParser(prog="python -m experiments.tune", description=__doc__)
    parser.add_argument("models", nargs="*", help=f"which searches (default all): {', '.join(searches)}")
    parser.add_argument("--output", type=Path, default=Path("build/tuning/cf.json"))
    args = parser.parse_args(argv)
    unknown = [name for name in args.models if name not in searches]
    if unknown:
        parser.error(f"unknown search(es) {unknown}; choose from {list(searches)}")
    ratings = load_movielens("100k").ratings
    splits = {p.name: p.split(ratings) for p in (P1, P2)}
    results = json.loads(args.output.read_text()) if args.output.exists() else {}
    for name in args.models or list(searches):
        make_model, grid, protocol = searches[name]
        table = protocol_search(protocol, make_model, grid, splits[protocol.name])
        print(f"\n{name} ({protocol.name}, objective {'ndcg@10' if protocol is P1 else '-rmse'}):")
        print(table.head(8).to_string(index=False))
        best = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in table.iloc[0].items()}
        results[name] = {"protocol": protocol.name, "best": best, "grid": grid}
        atomic_write_bytes(args.output, json.dumps(results, indent=2, default=str).encode())
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

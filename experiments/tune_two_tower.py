"""``python -m experiments.tune_two_tower``: the search behind ``TwoTowerRecommender()``'s defaults.

The ids-only two-tower (no item features) is fitted on P1's validation carve-out of ML-100K,
``split.fit`` and ``split.valid`` of ``split = P1.split(ratings)``, once per grid point, early-stopped on
validation NDCG@10 (at most ``--max-epochs`` epochs, patience 2). The grid point with the best
validation NDCG@10 wins and its early-stopped epoch becomes ``epochs``. Test is touched once:
the winner is refitted on all of P1's training part for that many epochs and scored on P1 test.

The grid covers only parameters notebook 05 passes explicitly (``use_user_id``, ``temperature``,
``embedding_dim``), so changing the defaults cannot move the notebook's recorded numbers. The
other parameters keep their values (``BASE``). Everything is written to
``build/tuning/two_tower.json`` after every fit (a partial search can be inspected).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import reclib

__all__ = ["BASE", "GRID", "main"]

#: parameters held fixed during the search (those of notebook 05 / the current defaults)
BASE: dict[str, Any] = {"learning_rate": 1e-3, "batch_size": 512, "random_state": 42}
#: the searched grid: 2 x 3 x 2 = 12 fits
GRID: dict[str, list[Any]] = {"use_user_id": [False, True], "temperature": [0.05, 0.1, 0.2],
                              "embedding_dim": [64, 128]}


def main(argv: list[str] | None = None) -> int:
    reclib.quiet()          # TensorFlow's and transformers' start-up logs off, before they load
    from reclib.data import load_movielens
    from reclib.evaluation import P1
    from reclib.io import atomic_write_bytes
    from reclib.models import TwoTowerRecommender

    parser = argparse.ArgumentParser(prog="python -m experiments.tune_two_tower", description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("build/tuning/two_tower.json"))
    parser.add_argument("--max-epochs", type=int, default=20)
    parser.add_argument("--patience", type=int, default=2)
    args = parser.parse_args(argv)

    split = P1.split(load_movielens("100k").ratings)
    train, test = split.train, split.test
    fit, valid = split.fit, split.valid

    def validate(model: Any) -> dict[str, float]:
        return P1.evaluate(model, fit, valid).values[["ndcg", "recall"]].to_dict()

    results: dict[str, Any] = {"protocol": "P1 validation carve-out (ML-100K), ids only",
                               "base": BASE, "grid": GRID, "max_epochs": args.max_epochs,
                               "patience": args.patience, "runs": []}

    def save() -> None:
        atomic_write_bytes(args.output, json.dumps(results, indent=2).encode())

    for values in itertools.product(*GRID.values()):
        params = dict(zip(GRID, values))
        start = time.perf_counter()
        model = TwoTowerRecommender(epochs=args.max_epochs, patience=args.patience, **BASE, **params)
        model.fit(fit, validate=validate)
        best = model.history_.iloc[model.best_epoch_ - 1]
        run = {**params, "best_epoch": int(model.best_epoch_), "val_ndcg": float(best["val_ndcg"]),
               "val_recall": float(best["val_recall"]), "epochs_run": len(model.history_),
               "seconds": round(time.perf_counter() - start, 1)}
        results["runs"].append(run)
        print(run, flush=True)
        save()

    chosen = max(results["runs"], key=lambda run: run["val_ndcg"])
    params = {name: chosen[name] for name in GRID}
    results["chosen"] = {**params, "epochs": chosen["best_epoch"], "val_ndcg": chosen["val_ndcg"]}
    model = TwoTowerRecommender(epochs=chosen["best_epoch"], **BASE, **params).fit(train)
    scores = P1.evaluate(model, train, test).values
    results["test"] = {"ndcg": float(scores["ndcg"]), "recall": float(scores["recall"])}
    print("chosen", results["chosen"], "P1 test", results["test"], flush=True)
    save()
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

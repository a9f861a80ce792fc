"""``python -m experiments.tune_sequential``: the search behind the sequential models' defaults.

Protocol P3 on ML-100K: ``train, valid, test = P3.split(ratings)``. Every candidate is fitted on
``train`` and early-stopped on the validation event (NDCG@10 of each user's second-to-last item,
at most ``--max-epochs`` epochs, patience 3); the best validation NDCG@10 per model wins and its
early-stopped epoch becomes ``epochs``. Test is touched once per model: the winner is refitted on
``train + valid`` for that many epochs and scored on the last event.

Candidates are a short list, not a product grid: each varies one thing from the first (window
length, width, dropout, learning rate), because a fit takes minutes on two cores (a window of 200
items was dropped: one fit took over 20 minutes, far beyond a 3-minute training budget). Results
go to ``build/tuning/sequential.json`` after every fit; finished candidates are not refitted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["CANDIDATES", "main"]

BASE: dict[str, Any] = {"batch_size": 128, "random_state": 42}
CANDIDATES: dict[str, list[dict[str, Any]]] = {
    "sasrec": [
        {"max_length": 50, "embedding_dim": 64, "dropout": 0.2, "learning_rate": 5e-3},
        {"max_length": 100, "embedding_dim": 64, "dropout": 0.2, "learning_rate": 5e-3},
        {"max_length": 50, "embedding_dim": 64, "dropout": 0.5, "learning_rate": 5e-3},
        {"max_length": 50, "embedding_dim": 128, "dropout": 0.2, "learning_rate": 5e-3},
        {"max_length": 50, "embedding_dim": 64, "dropout": 0.2, "learning_rate": 2e-3},
    ],
    "gru": [
        {"cell": "gru", "max_length": 50, "embedding_dim": 64, "dropout": 0.2, "learning_rate": 5e-3},
        {"cell": "gru", "max_length": 50, "embedding_dim": 128, "dropout": 0.2, "learning_rate": 5e-3},
        {"cell": "lstm", "max_length": 50, "embedding_dim": 64, "dropout": 0.2, "learning_rate": 5e-3},
    ],
}


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    from reclib.data import load_movielens
    from reclib.evaluation import P3
    from reclib.features import ItemFeatures
    from reclib.io import atomic_write_bytes
    from reclib.models.sequential import RecurrentRecommender, SASRecRecommender

    parser = argparse.ArgumentParser(prog="python -m experiments.tune_sequential", description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("build/tuning/sequential.json"))
    parser.add_argument("--models", nargs="*", choices=list(CANDIDATES), default=list(CANDIDATES))
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=3)
    args = parser.parse_args(argv)
    classes = {"sasrec": SASRecRecommender, "gru": RecurrentRecommender}

    ml = load_movielens("100k")
    train, valid, test = P3.split(ml.ratings)
    catalogue = ItemFeatures(ml.items["item_id"].to_numpy())     # valid may name films unseen in train

    def validate(model: Any) -> dict[str, float]:
        return P3.evaluate(model, train, valid).values[["ndcg", "hit_rate"]].to_dict()

    results: dict[str, Any] = {"protocol": "P3 validation event (ML-100K)", "base": BASE,
                               "max_epochs": args.max_epochs, "patience": args.patience, "runs": []}
    if args.output.exists():                       # keep finished runs (same model and parameters)
        results = {**json.loads(args.output.read_text()), **{k: v for k, v in results.items() if k != "runs"}}

    def save() -> None:
        atomic_write_bytes(args.output, json.dumps(results, indent=2).encode())

    fitted: dict[str, Any] = {}
    for name in args.models:
        for params in CANDIDATES[name]:
            if any(r["model"] == name and all(r.get(k) == v for k, v in params.items()) for r in results["runs"]):
                continue
            start = time.perf_counter()
            model = classes[name](epochs=args.max_epochs, patience=args.patience, **BASE, **params)
            model.fit(train, validate=validate, item_features=catalogue)
            best = model.history_.iloc[model.best_epoch_ - 1]
            seconds = time.perf_counter() - start
            run = {"model": name, **params, "best_epoch": int(model.best_epoch_),
                   "val_ndcg": float(best["val_ndcg"]), "val_hit_rate": float(best["val_hit_rate"]),
                   "epochs_run": len(model.history_), "seconds": round(seconds, 1),
                   "seconds_to_best": round(seconds * model.best_epoch_ / len(model.history_), 1)}
            results["runs"].append(run)
            fitted[json.dumps(params, sort_keys=True)] = model
            print(run, flush=True)
            save()
        runs = [r for r in results["runs"] if r["model"] == name and
                any(all(r.get(k) == v for k, v in p.items()) for p in CANDIDATES[name])]
        chosen = max(runs, key=lambda r: r["val_ndcg"])
        params = {k: v for k, v in chosen.items() if k in CANDIDATES[name][0]}
        key = json.dumps(params, sort_keys=True)
        if key not in fitted:                      # chosen in an earlier run of this script: refit
            fitted[key] = classes[name](epochs=chosen["best_epoch"], **BASE, **params).fit(
                train, item_features=catalogue)
        scores = P3.evaluate(fitted[key].observe(valid), pd.concat([train, valid]), test).values
        results.setdefault("chosen", {})[name] = {**params, "epochs": chosen["best_epoch"],
                                                  "val_ndcg": chosen["val_ndcg"], "test_ndcg": float(scores["ndcg"]),
                                                  "test_hit_rate": float(scores["hit_rate"]),
                                                  "seconds_to_best": chosen["seconds_to_best"]}
        print("chosen", results["chosen"][name], flush=True)
        save()
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

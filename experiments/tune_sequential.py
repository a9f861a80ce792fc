"""``python -m experiments.tune_sequential``: the search behind the sequential models' defaults.

Protocol P3 on ML-100K: ``split = P3.split(ratings)``. Every candidate is fitted on
``split.fit`` and early-stopped on the validation event (NDCG@10 of each user's second-to-last item,
at most ``--max-epochs`` epochs, patience 3); the best validation NDCG@10 per model wins and its
early-stopped epoch becomes ``epochs``. Test is touched once per model: the winner is refitted on
``split.train`` (fit and validation events) for that many epochs and scored on the last event. (SASRec's defaults are not this
search's one-seed winner: its top candidates were closer than a seed's spread, and the defaults come
from ``experiments.sequential_seeds``.)

Candidates are a short list, not a product grid: each of the first round varies one thing from
the first candidate (window length, width, dropout, learning rate), the second round combines
the changes that helped, because a fit takes minutes on two cores (a window of 200
items was dropped: one fit took over 20 minutes, far beyond a 3-minute training budget). Results
go to ``build/tuning/sequential.json`` after every fit; finished candidates are not refitted. The
stored search, ``experiments/results/tune_sequential.json``, is read by notebook 06; every model in
it knows the whole catalogue at ``fit`` (a validation or test event may name a film that no training
event does). The gBCE candidate's row was re-run with ``--validation-only`` after the loss gained its
shift (``NextItemTask.gbce_shift``) and per-row negatives (``python -m experiments.gbce_collapse``):
its first row, at popularity's level, came from the earlier loss, and the stored choices were kept.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import reclib

__all__ = ["CANDIDATES", "main"]

BASE: dict[str, Any] = {"batch_size": 128, "random_state": 42}
CANDIDATES: dict[str, list[dict[str, Any]]] = {
    "sasrec": [
        {"max_length": 50, "embedding_dim": 64, "dropout": 0.2, "learning_rate": 5e-3},
        {"max_length": 100, "embedding_dim": 64, "dropout": 0.2, "learning_rate": 5e-3},
        {"max_length": 50, "embedding_dim": 64, "dropout": 0.5, "learning_rate": 5e-3},
        {"max_length": 50, "embedding_dim": 128, "dropout": 0.2, "learning_rate": 5e-3},
        {"max_length": 50, "embedding_dim": 64, "dropout": 0.2, "learning_rate": 2e-3},
        # second round: combine the two changes that helped (width 128, window 100; lower rate)
        {"max_length": 100, "embedding_dim": 128, "dropout": 0.2, "learning_rate": 5e-3},
        {"max_length": 50, "embedding_dim": 128, "dropout": 0.2, "learning_rate": 2e-3},
        # third round: overlapping windows, so that every target sees at least 25 earlier items
        {"max_length": 50, "embedding_dim": 128, "dropout": 0.2, "learning_rate": 5e-3, "stride": 25},
    ],
    # GPT-2 first mirrored SASRec's chosen sizes (like for like); then a search of its own, one
    # change at a time: narrower, a slower rate, heavier dropout (its feed-forward layer is 4x wider)
    "gpt2": [
        {"max_length": 50, "embedding_dim": 128, "dropout": 0.2, "learning_rate": 5e-3},
        {"max_length": 50, "embedding_dim": 64, "dropout": 0.2, "learning_rate": 5e-3},
        {"max_length": 50, "embedding_dim": 128, "dropout": 0.2, "learning_rate": 2e-3},
        {"max_length": 50, "embedding_dim": 128, "dropout": 0.5, "learning_rate": 5e-3},
    ],
    # HSTU: the paper's MovieLens setting (L2-normalised vectors, temperature 0.05) at SASRec's
    # window; width, rate and dropout varied one at a time
    "hstu": [
        {"max_length": 50, "embedding_dim": 64, "dropout": 0.2, "learning_rate": 2e-3},
        {"max_length": 50, "embedding_dim": 128, "dropout": 0.2, "learning_rate": 2e-3},
        {"max_length": 50, "embedding_dim": 64, "dropout": 0.2, "learning_rate": 5e-3},
        {"max_length": 50, "embedding_dim": 64, "dropout": 0.5, "learning_rate": 2e-3},
    ],
    # the recipe's options, each added alone to SASRec's chosen candidate
    "sasrec_recipe": [
        {"max_length": 50, "embedding_dim": 128, "dropout": 0.2, "learning_rate": 5e-3},
        {"max_length": 50, "embedding_dim": 128, "dropout": 0.2, "learning_rate": 5e-3, "normalize": True,
         "temperature": 0.05},
        {"max_length": 50, "embedding_dim": 128, "dropout": 0.2, "learning_rate": 5e-3, "separate_output": True},
        {"max_length": 50, "embedding_dim": 128, "dropout": 0.5, "learning_rate": 5e-3},
        {"max_length": 50, "embedding_dim": 128, "dropout": 0.2, "learning_rate": 5e-3, "n_sampled": 256,
         "loss": "gbce"},
    ],
    "gru": [
        {"cell": "gru", "max_length": 50, "embedding_dim": 64, "dropout": 0.2, "learning_rate": 5e-3},
        {"cell": "gru", "max_length": 50, "embedding_dim": 128, "dropout": 0.2, "learning_rate": 5e-3},
        {"cell": "lstm", "max_length": 50, "embedding_dim": 64, "dropout": 0.2, "learning_rate": 5e-3},
    ],
}


def main(argv: list[str] | None = None) -> int:
    reclib.quiet()          # TensorFlow's and transformers' start-up logs off, before they load

    from reclib.data import load_movielens
    from reclib.evaluation import P3
    from reclib.features import ItemFeatures
    from reclib.io import atomic_write_bytes
    from reclib.models.item_lm import ItemGPT2Recommender
    from reclib.models.sequential import HSTURecommender, RecurrentRecommender, SASRecRecommender

    parser = argparse.ArgumentParser(prog="python -m experiments.tune_sequential", description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("build/tuning/sequential.json"))
    parser.add_argument("--models", nargs="*", choices=list(CANDIDATES), default=list(CANDIDATES))
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--validation-only", action="store_true",
                        help="fit the missing candidates on validation only: no final refit, the stored choice "
                             "is kept (for a candidate re-run after a change to its code)")
    args = parser.parse_args(argv)
    classes = {"sasrec": SASRecRecommender, "gru": RecurrentRecommender, "gpt2": ItemGPT2Recommender,
               "hstu": HSTURecommender, "sasrec_recipe": SASRecRecommender}

    ml = load_movielens("100k")
    split = P3.split(ml.ratings)
    fit_part, valid_part, test = split.fit, split.valid, split.test
    catalogue = ItemFeatures(ml.items["item_id"].to_numpy())     # valid may name films unseen in train

    def validate(model: Any) -> dict[str, float]:
        return P3.evaluate(model, fit_part, valid_part).values[["ndcg", "hit_rate"]].to_dict()

    results: dict[str, Any] = {"protocol": "P3 validation event (ML-100K)", "base": BASE,
                               "max_epochs": args.max_epochs, "patience": args.patience, "runs": []}
    if args.output.exists():                       # keep finished runs (same model and parameters)
        results = {**json.loads(args.output.read_text()), **{k: v for k, v in results.items() if k != "runs"}}

    def save() -> None:
        atomic_write_bytes(args.output, json.dumps(results, indent=2).encode())

    for name in args.models:
        keys = sorted({k for candidate in CANDIDATES[name] for k in candidate})

        def same(run: dict, params: dict) -> bool:
            return run["model"] == name and all(run.get(k) == params.get(k) for k in keys)

        for params in CANDIDATES[name]:
            if any(same(r, params) for r in results["runs"]):
                continue
            start = time.perf_counter()
            model = classes[name](epochs=args.max_epochs, patience=args.patience, **BASE, **params)
            model.fit(fit_part, validate=validate, item_features=catalogue)
            best = model.history_.iloc[model.best_epoch_ - 1]
            seconds = time.perf_counter() - start
            run = {"model": name, **params, "best_epoch": int(model.best_epoch_),
                   "val_ndcg": float(best["val_ndcg"]), "val_hit_rate": float(best["val_hit_rate"]),
                   "epochs_run": len(model.history_), "seconds": round(seconds, 1),
                   "seconds_to_best": round(seconds * model.best_epoch_ / len(model.history_), 1)}
            results["runs"].append(run)
            print(run, flush=True)
            save()
        if args.validation_only:
            continue
        runs = [r for r in results["runs"] if any(same(r, p) for p in CANDIDATES[name])]
        chosen = max(runs, key=lambda r: r["val_ndcg"])
        params = {k: chosen[k] for k in keys if chosen.get(k) is not None}
        history = split.train
        start = time.perf_counter()
        final = classes[name](epochs=chosen["best_epoch"], **BASE, **params).fit(history, item_features=catalogue)
        seconds = time.perf_counter() - start
        scores = P3.evaluate(final, history, test).values
        results.setdefault("chosen", {})[name] = {**params, "epochs": chosen["best_epoch"],
                                                  "val_ndcg": chosen["val_ndcg"], "test_ndcg": float(scores["ndcg"]),
                                                  "test_hit_rate": float(scores["hit_rate"]),
                                                  "final_fit_seconds": round(seconds, 1)}
        print("chosen", results["chosen"][name], flush=True)
        save()
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m experiments.tune_finetune``: the search behind ``TextTowerRecommender()``'s defaults.

The two-tower with a text item tower (``reclib.models.text_tower``) is fitted on P5's validation
carve-out of ML-100K, ``split.fit`` and ``split.valid`` of ``split = P5.split(ratings)`` (20 % of the
training films held out with all their ratings: cold films again), once per grid point, and
scored by validation Recall@10 over the held-out films after every epoch (up to ``--max-epochs``). The grid point with the best validation
Recall@10 wins. Test is touched once: the frozen (``trainable_layers=0``) and the winning
configuration are refitted on all of P5's training part and scored on P5 test.

The grid is small because every fit runs on a CPU: on a shared 2-core machine an epoch takes about 2 s
with the encoder frozen (after a 15 s pass of the encoder over every film) and 2-3 minutes with the top
layer trained. ``--encoder-learning-rates`` replaces the searched encoder learning rates (e.g.
``--encoder-learning-rates 1e-3 --max-epochs 2 --output build/tuning/finetune_lr1e-3.json``). Results are
written to ``build/tuning/finetune.json`` after every fit (a partial search can be inspected). Notebook 08b
reads the committed copies ``experiments/results/tune_finetune.json`` and ``tune_finetune_lr1e-3.json``,
written by those two commands with ``--output`` pointing there, on a 2-core Intel Xeon (6 and 3 minutes).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

import reclib

__all__ = ["BASE", "GRID", "main"]

#: parameters held fixed during the search
BASE: dict[str, Any] = {"embedding_dim": 64, "batch_size": 2048, "learning_rate": 1e-2, "temperature": 0.1,
                        "id_dropout": 0.5, "random_state": 42}
#: the searched grid; every fit runs ``--max-epochs`` epochs and is validated after each, so the
#: epoch count is searched too
GRID: dict[str, list[Any]] = {"trainable_layers": [0, 1], "encoder_learning_rate": [1e-4]}


def main(argv: list[str] | None = None) -> int:
    reclib.quiet()          # TensorFlow's and transformers' start-up logs off, before they load
    from reclib.data import load_movielens
    from reclib.evaluation import P5
    from reclib.io import atomic_write_bytes
    from reclib.features import ItemFeatures, item_text
    from reclib.models.text_tower import TextTowerRecommender

    parser = argparse.ArgumentParser(prog="python -m experiments.tune_finetune", description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("build/tuning/finetune.json"))
    parser.add_argument("--max-epochs", type=int, default=3)
    parser.add_argument("--encoder-learning-rates", type=float, nargs="+", default=GRID["encoder_learning_rate"])
    args = parser.parse_args(argv)

    ml = load_movielens("100k")
    texts = ItemFeatures(ml.items["item_id"].to_numpy(), texts=item_text(ml.items).to_numpy())
    p5 = P5.with_params(random_state=42, k=10)
    split = p5.split(ml.ratings)
    train, test = split.train, split.test
    fit, valid = split.fit, split.valid
    results: dict[str, Any] = {"protocol": "P5 validation carve-out (ML-100K), metric recall@10",
                               "base": BASE, "grid": GRID, "runs": []}

    def save() -> None:
        atomic_write_bytes(args.output, json.dumps(results, indent=2).encode())

    def validate(model: Any) -> dict[str, float]:
        return p5.evaluate(model, fit, valid).values[["recall", "ndcg"]].to_dict()

    grid = {**GRID, "encoder_learning_rate": args.encoder_learning_rates}
    results["grid"] = grid
    for values in itertools.product(*grid.values()):
        # patience = max_epochs: every fit runs all its epochs, so the whole validation curve is read
        params = {**BASE, **dict(zip(grid, values)), "epochs": args.max_epochs, "patience": args.max_epochs}
        model = TextTowerRecommender(**params).fit(fit, validate, item_features=texts)
        for row in model.history_.to_dict("records"):
            results["runs"].append({"params": {**params, "epochs": int(row["epoch"])},
                                    "val_recall": row["val_recall"], "val_ndcg": row["val_ndcg"],
                                    "epoch_s": round(row["seconds"], 1)})
            print(results["runs"][-1], flush=True)
        save()
    best = max(results["runs"], key=lambda run: run["val_recall"])
    frozen = max((r for r in results["runs"] if r["params"]["trainable_layers"] == 0),
                 key=lambda run: run["val_recall"])
    results["best"] = best
    for name, run in (("frozen", frozen), ("fine-tuned", best)):
        model = TextTowerRecommender(**run["params"]).fit(train, item_features=texts)
        scores = p5.evaluate(model, train, test).values
        results[f"test.{name}"] = {"params": run["params"], "recall": float(scores["recall"]),
                                   "ndcg": float(scores["ndcg"]), "fit_s": round(model.fit_seconds_, 1)}
        print(name, results[f"test.{name}"], flush=True)
        save()
    return 0


if __name__ == "__main__":
    sys.exit(main())

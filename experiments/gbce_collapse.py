"""``python -m experiments.gbce_collapse``: why SASRec with gBCE sat at popularity's level, and the fix.

Protocol P3 on ML-100K, validation event (NDCG@10 of each user's second-to-last item), seed 0,
SASRec's default settings with one change each, ``--epochs`` epochs without early stopping
(about 8 minutes in all on 2 cores at the default 10):

- full softmax (the default loss), for reference;
- gBCE as gSASRec writes it, the logits unshifted: with 256 negatives drawn for every position
  (gSASRec's draw, the kit's); with 256 negatives shared by the batch (the kit's first draw);
  against 1,600 of the 1,681 other films with ``calibration=0`` (plain binary cross-entropy); at a
  learning rate of 0.001; with a separate output table;
- the kit's gBCE, whose logits enter the loss shifted by log(beta / m)
  (``NextItemTask.gbce_shift``), with per-position and with shared negatives.

For each fit it stores the validation curve and how much the encoder's output varies between
histories: the mean distance of the hidden vectors (the first 256 training windows, every trained
position) to their mean, divided by their mean length. Popularity's validation NDCG@10 is the
floor. Results go to ``experiments/results/gbce_collapse.json``; notebook 06 and the README quote them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import reclib

__all__ = ["VARIANTS", "main"]

#: label -> (SASRecRecommender's changed arguments, negatives drawn per position, logits shifted)
GBCE = {"loss": "gbce", "n_sampled": 256}
VARIANTS: dict[str, tuple[dict[str, Any], bool, bool]] = {
    "full softmax": ({}, True, True),                   # (no gBCE: the flags do nothing)
    "gBCE unshifted, 256 negatives per position": (GBCE, True, False),
    "gBCE unshifted, 256 shared negatives": (GBCE, False, False),
    "BCE unshifted, 1600 negatives per position": ({"loss": "gbce", "n_sampled": 1600, "calibration": 0.0}, True, False),
    "gBCE unshifted, rate 0.001": ({**GBCE, "learning_rate": 1e-3}, True, False),
    "gBCE unshifted, separate output table": ({**GBCE, "separate_output": True}, True, False),
    "gBCE, 256 negatives per position (the kit's)": (GBCE, True, True),
    "gBCE, 256 shared negatives": (GBCE, False, True),
}


def variant_recommender(per_row: bool, shifted: bool):
    """SASRecRecommender, or a subclass whose gBCE task draws one set of negatives for the whole
    batch (m,) instead of one per row (b, m) and/or leaves the logits unshifted (gSASRec's form);
    built here, for this check only."""
    from reclib import models
    from reclib.models.tasks import NextItemTask

    if per_row and shifted:
        return models.SASRecRecommender

    class VariantTask(NextItemTask):
        def gbce_shift(self, n_items: int) -> float:
            return super().gbce_shift(n_items) if shifted else 0.0

        def row_logits(self, query_vectors, targets, item_table, sampled=None):
            if per_row:
                return super().row_logits(query_vectors, targets, item_table, sampled)
            return self.sampled_logits(query_vectors, targets, item_table, correct=False)

    class SASRecVariant(models.SASRecRecommender):
        def _build_encoder(self, n_items: int):
            encoder = super()._build_encoder(n_items)
            encoder.task = VariantTask(n_sampled=self.n_sampled, temperature=self.temperature,
                                       seed=self.random_state, loss=self.loss, calibration=self.calibration,
                                       name="next_item")
            return encoder

    return SASRecVariant


def hidden_spread(model, n_windows: int = 256) -> float:
    """Mean distance of the encoder's output vectors to their mean over their mean length, at
    every trained position of the first ``n_windows`` training windows (0: one vector for all)."""
    import numpy as np
    from keras import ops

    from reclib.data.sequences import training_windows

    inputs, targets = training_windows(model.sequences_, model.max_length, model.stride)
    hidden = ops.convert_to_numpy(model.keras_model_(inputs[:n_windows]))[targets[:n_windows] > 0]
    return float(np.linalg.norm(hidden - hidden.mean(0), axis=1).mean() / np.linalg.norm(hidden, axis=1).mean())


def main(argv: list[str] | None = None) -> int:
    reclib.quiet()
    from reclib.cf import MostPopular
    from reclib.data import load_movielens
    from reclib.evaluation import P3
    from reclib.features import ItemFeatures
    from reclib.io import atomic_write_bytes

    parser = argparse.ArgumentParser(prog="python -m experiments.gbce_collapse", description=__doc__)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("experiments/results/gbce_collapse.json"))
    args = parser.parse_args(argv)

    ml = load_movielens("100k")
    catalogue = ItemFeatures(ml.items["item_id"].to_numpy())
    split = P3.split(ml.ratings)
    fit_part, valid_part = split.fit, split.valid

    def validate(model) -> dict[str, float]:
        return P3.evaluate(model, fit_part, valid_part).values[["ndcg"]].to_dict()

    popularity = float(validate(MostPopular().fit(fit_part))["ndcg"])
    results: dict[str, Any] = {"protocol": "P3 validation event (ML-100K)", "seed": args.seed,
                               "epochs": args.epochs, "popularity_val_ndcg": popularity, "fits": []}
    for label, (params, per_row, shifted) in VARIANTS.items():
        cls = variant_recommender(per_row, shifted)
        model = cls(epochs=args.epochs, patience=args.epochs, random_state=args.seed, **params)
        start = time.perf_counter()
        model.fit(fit_part, validate=validate, item_features=catalogue)
        curve = [round(float(v), 5) for v in model.history_["val_ndcg"]]
        record = {"variant": label, "params": params, "negatives_per_position": per_row,
                  "shifted": shifted, "val_curve": curve,
                  "best_val_ndcg": max(curve), "hidden_spread": round(hidden_spread(model), 4),
                  "seconds": round(time.perf_counter() - start, 1)}
        results["fits"].append(record)
        print(record, flush=True)
        atomic_write_bytes(args.output, json.dumps(results, indent=2).encode())
    print(f"popularity's validation NDCG@10: {popularity:.4f}; written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

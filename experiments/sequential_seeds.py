"""``python -m experiments.sequential_seeds``: the sequential recipe's choices re-checked over seeds,
then the chosen settings' test numbers as a mean over seeds, and their robustness to the tie rule.

Protocol P3 on ML-100K. One validation event per user leaves candidates closer than the noise
(about 0.008 NDCG@10), so each candidate of ``CANDIDATES`` (the settings
``experiments.tune_sequential`` found best for each model, with and without the recipe's options)
is fitted on ``split.fit`` with ``--seeds`` seeds and early-stopped on the validation event; the
validation NDCG@10 is reported as mean and standard deviation over seeds, and the candidate with the
best mean wins per model family. Test is touched once per family: the winner is refitted on
``split.train`` with every seed for the median early-stopped epoch, and its test HR@10 and NDCG@10
are reported as mean and spread over seeds. Last, the same winner is refitted on the split whose
equal timestamps are ordered by a seeded random hash instead of by item id
(``P3.with_params(tie_break="random")``), to show how much the number owes to the tie rule: once
with only the split following the random order (the models order the ties of their training
sequences by item id), and once with the models following it too (``random_models_too``: they
read the split's order from an ``event_order`` column, :func:`reclib.data.event_order`).

``--patience`` sets early stopping's patience (default 3, the searches'); a validation fit at
another patience is a fit of its own. GPT-2 over items learns more slowly than SASRec and its
validation curve is noisy, so at patience 3 a plateau of a few epochs stops it early; its family is
run with ``--patience 10``, and so is generative retrieval's (``--families generative``, run alone:
its results go to ``experiments/results/sequential_seeds_generative.json``), whose items are coded
from their MiniLM title vectors. ``--tie-rules`` limits the test stage to some of the three splits (none:
no test), ``--candidates`` the candidates to some of their family's.

A validation fit stores its whole validation curve (``val_curve``, NDCG@10 per epoch; fits stored
before it have none): the best epoch of a noisy curve flatters a candidate, and the curves let the
epoch be read off their mean over seeds instead. A stored fit without a curve is reused as it is:
delete it from the file to refit it with one.

Results go to ``--output`` after every fit; a fit whose stage,
candidate, parameters, epochs, seed and patience (3 for the fits stored before it had one) are
already there is not redone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import reclib
from experiments import title_vectors

__all__ = ["CANDIDATES", "main", "mean_curve_peak"]

SASREC = {"max_length": 50, "embedding_dim": 128, "dropout": 0.2, "learning_rate": 5e-3}
HSTU = {"max_length": 50, "embedding_dim": 64, "dropout": 0.2, "learning_rate": 5e-3}
GPT2 = {"max_length": 50, "embedding_dim": 64, "dropout": 0.2, "learning_rate": 5e-3}
GENERATIVE = {"n_levels": 2, "n_codes": 64, "collaborative_weight": 1.0, **SASREC}
#: family -> candidate name -> (model class name, parameters)
CANDIDATES: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "sasrec": {"sasrec": ("SASRecRecommender", SASREC),
               "sasrec + normalize (t 0.05)": ("SASRecRecommender", {**SASREC, "normalize": True, "temperature": 0.05}),
               # the one-seed search's leader (experiments.tune_sequential); about 1.4x the time per epoch
               "sasrec + overlapping windows (stride 25)": ("SASRecRecommender", {**SASREC, "stride": 25}),
               # gSASRec's loss once its logits were shifted and its negatives drawn per row (NextItemTask.gbce_shift;
               # experiments.gbce_collapse):
               # validation only so far, in experiments/results/sequential_seeds_gbce.json
               "sasrec + gBCE (256 negatives)": ("SASRecRecommender", {**SASREC, "loss": "gbce", "n_sampled": 256})},
    "hstu": {"hstu": ("HSTURecommender", HSTU)},
    # GPT-2's width 64 at SASRec's rate, and at twice that rate (tried for fewer epochs; it took as many,
    # and validated higher)
    "gpt2": {"gpt2": ("ItemGPT2Recommender", GPT2),
             "gpt2, rate 0.01": ("ItemGPT2Recommender", {**GPT2, "learning_rate": 1e-2})},
    # generative retrieval's codes as experiments.tune_generative chose them (one seed, patience 3), at
    # SASRec's rate ("generative": the default until this check) and at two and four times it (rate
    # 0.01 won and is the default now); its items are coded from their MiniLM title vectors, and the
    # seed also seeds the codes' k-means
    "generative": {"generative": ("GenerativeRetrievalRecommender", GENERATIVE),
                   "generative, rate 0.01": ("GenerativeRetrievalRecommender",
                                             {**GENERATIVE, "learning_rate": 1e-2}),
                   "generative, rate 0.02": ("GenerativeRetrievalRecommender",
                                             {**GENERATIVE, "learning_rate": 2e-2})},
}
#: families whose items need their title vectors (``ItemFeatures.vectors``), not only the catalogue
TEXT_FAMILIES = {"generative"}


def mean_curve_peak(curves: list[list[float]]) -> dict[str, float]:
    """The peak of the seeds' mean validation curve: ``{"epoch": e, "val_ndcg": v}``, epochs from 1.

    Each curve is one seed's NDCG@10 per epoch; the mean runs over the epochs every seed reached
    (early stopping ends curves at different epochs). Unlike the mean of each seed's best epoch, it
    does not pick each seed's luckiest epoch, so it flatters a noisy learner less. Ties go to the
    earlier epoch.
    """
    import numpy as np
    length = min(len(c) for c in curves)
    mean = np.mean([c[:length] for c in curves], axis=0)
    best = int(np.argmax(mean))
    return {"epoch": best + 1, "val_ndcg": float(mean[best])}


def main(argv: list[str] | None = None) -> int:
    reclib.quiet()
    import numpy as np

    from reclib import models
    from reclib.data import event_order, load_movielens
    from reclib.evaluation import P3
    from reclib.features import ItemFeatures
    from reclib.io import atomic_write_bytes

    parser = argparse.ArgumentParser(prog="python -m experiments.sequential_seeds", description=__doc__)
    parser.add_argument("--output", type=Path, default=None,
                        help="default: experiments/results/sequential_seeds.json, or sequential_seeds_generative.json "
                             "for --families generative")
    parser.add_argument("--families", nargs="*", choices=list(CANDIDATES),
                        default=[f for f in CANDIDATES if f not in TEXT_FAMILIES],
                        help="default: every family but generative, which runs alone")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    parser.add_argument("--max-epochs", type=int, default=60)
    parser.add_argument("--patience", type=int, default=3)
    parser.add_argument("--tie-rules", nargs="*", choices=["item_id", "random", "random_models_too"],
                        default=["item_id", "random", "random_models_too"])
    parser.add_argument("--candidates", nargs="*", default=None,
                        help="only these candidates of the families (default: all)")
    args = parser.parse_args(argv)
    if TEXT_FAMILIES & set(args.families) and set(args.families) - TEXT_FAMILIES:
        parser.error(f"--families: run {sorted(TEXT_FAMILIES)} alone (its results have a file of their own)")
    if args.output is None:
        name = "sequential_seeds_generative.json" if TEXT_FAMILIES & set(args.families) else "sequential_seeds.json"
        args.output = Path("experiments/results") / name

    ml = load_movielens("100k")
    catalogue = titles = ItemFeatures(ml.items["item_id"].to_numpy())
    if TEXT_FAMILIES & set(args.families):
        films = ml.items.sort_values("item_id")
        titles = ItemFeatures(films["item_id"].to_numpy(), vectors=title_vectors(films))
    results: dict[str, Any] = {"protocol": "P3 (ML-100K)", "seeds": args.seeds, "fits": []}
    if args.output.exists():
        results = {**json.loads(args.output.read_text()), "seeds": args.seeds}

    def save() -> None:
        atomic_write_bytes(args.output, json.dumps(results, indent=2).encode())

    def run(key: dict[str, Any], fit) -> dict[str, Any]:
        done = [f for f in results["fits"] if all(f.get(k, 3 if k == "patience" else None) == v  # stored before: 3
                                                  for k, v in key.items())]
        if done:
            return done[0]
        start = time.perf_counter()
        record = {**key, **fit(), "seconds": round(time.perf_counter() - start, 1)}
        results["fits"].append(record)
        print(record, flush=True)
        save()
        return record

    ordered = ml.ratings.assign(event_order=event_order(ml.ratings, tie_break="random", random_state=P3.random_state))
    splits = {"item_id": (P3.split(ml.ratings), "timestamp"),         # tie rule -> (split, the models' order column)
              "random": (P3.with_params(tie_break="random").split(ml.ratings), "timestamp"),
              "random_models_too": (P3.with_params(tie_break="random").split(ordered), "event_order")}
    fit_part, valid_part = splits["item_id"][0].fit, splits["item_id"][0].valid
    for family in args.families:
        features = titles if family in TEXT_FAMILIES else catalogue
        validation = {}
        for name, (cls, params) in CANDIDATES[family].items():
            if args.candidates is not None and name not in args.candidates:
                continue
            def validated(seed):
                model = getattr(models, cls)(epochs=args.max_epochs, patience=args.patience, random_state=seed,
                                             **params)
                model.fit(fit_part, validate=lambda m: P3.evaluate(m, fit_part, valid_part).values[["ndcg"]].to_dict(),
                          item_features=features)
                return {"best_epoch": int(model.best_epoch_),
                        "val_ndcg": float(model.history_.iloc[model.best_epoch_ - 1]["val_ndcg"]),
                        "val_curve": [round(float(v), 5) for v in model.history_["val_ndcg"]]}
            validation[name] = [run({"stage": "validation", "candidate": name, "params": params,
                                     "max_epochs": args.max_epochs, "seed": s, "patience": args.patience},
                                    lambda: validated(s)) for s in args.seeds]     # run() calls it at once
        summary = {name: {"val_ndcg_mean": float(np.mean([f["val_ndcg"] for f in fits])),
                          "val_ndcg_sd": float(np.std([f["val_ndcg"] for f in fits], ddof=1)),
                          "epochs": int(np.median([f["best_epoch"] for f in fits]))}
                   for name, fits in validation.items()}
        for name, fits in validation.items():
            if all("val_curve" in f for f in fits):
                summary[name]["mean_curve"] = mean_curve_peak([f["val_curve"] for f in fits])
        chosen = max(summary, key=lambda name: summary[name]["val_ndcg_mean"])
        cls, params = CANDIDATES[family][chosen]
        for tie in args.tie_rules:
            split, order_col = splits[tie]
            history, te = split.train, split.test

            def tested(seed):
                model = getattr(models, cls)(epochs=summary[chosen]["epochs"], random_state=seed,
                                             timestamp_col=order_col, **params)
                values = P3.evaluate(model.fit(history, item_features=features), history, te).values
                return {"test_ndcg": float(values["ndcg"]), "test_hit_rate": float(values["hit_rate"])}
            fits = [run({"stage": "test", "tie_break": tie, "candidate": chosen, "params": params,
                         "epochs": summary[chosen]["epochs"], "seed": s},
                        lambda: tested(s)) for s in args.seeds]
            summary[chosen][f"test_{tie}"] = {
                metric: {"mean": float(np.mean([f[metric] for f in fits])),
                         "sd": float(np.std([f[metric] for f in fits], ddof=1))}
                for metric in ("test_ndcg", "test_hit_rate")}
        label = family if args.patience == 3 else f"{family} (patience {args.patience})"
        results.setdefault("summary", {})[label] = {"chosen": chosen, "patience": args.patience, "candidates": summary}
        print(label, results["summary"][label], flush=True)
        save()
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

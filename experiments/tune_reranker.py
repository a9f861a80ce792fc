"""``python -m experiments.tune_reranker``: the choice of the shortlist reranker's trend windows,
and its P3 test against the retrievers' own order.

Protocol P3 on ML-100K (``split = P3.split(ratings)``); the head reads the packaged
MiniLM title vectors. Two retrievers: SASRec (the kit's P3 leader, its validated defaults, items
initialised from the same title vectors) and EASE (λ = 500, the best P1 model of its kind; it
ignores the order of a history). Validation: each candidate set of trend windows, for each
retriever, is fitted on ``split.fit`` (the head learns from lists carved out of it) and
scored on the validation event against the retriever's own order (paired bootstrap of the NDCG@10
difference over users); the windows with the best mean difference over the two retrievers become
the default. Test is touched once: the default reranker over each retriever is refitted on
``split.train`` and scored on the last event, with the paired interval and the level of a random
order of the same shortlist. Results go to ``build/tuning/reranker.json`` after every fit.

``--p1-validation`` instead scores the default reranker over EASE on P1's validation carve-out
(``P1.split(ratings).fit`` and ``.valid``, a random quarter of each user's ratings held out)
against EASE's own order: with lists of each user's last events (``carve="last"``, for each
``--n-holdout``) and with a random quarter of each user's events carved out (``carve="random"``,
P1's own recipe). P1's test is not touched.

``--seeds s ...`` fits the default reranker over EASE once per head seed (``random_state``: the
head's initialisation and its early-stopping users), on P3's ``split.fit`` scored on the validation
event and on ``split.train`` scored on the test event, each against EASE's order: how much of
either difference is the seed's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import reclib
from experiments import title_vectors

__all__ = ["CANDIDATES", "main"]

DAY = 86400.0
#: no trend signal, a week, and a day + a week + a month
CANDIDATES: list[tuple[float, ...]] = [(), (7 * DAY,), (DAY, 7 * DAY, 30 * DAY)]


def main(argv: list[str] | None = None) -> int:
    reclib.quiet()
    import numpy as np
    import pandas as pd

    from reclib.cf import EASE
    from reclib.data import load_movielens
    from reclib.evaluation import P3
    from reclib.evaluation.uncertainty import paired_difference
    from reclib.features import ItemFeatures
    from reclib.io import atomic_write_bytes
    from reclib.models import SASRecRecommender
    from reclib.models import ShortlistReranker, random_order_ndcg

    parser = argparse.ArgumentParser(prog="python -m experiments.tune_reranker", description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("build/tuning/reranker.json"))
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--p1-validation", action="store_true", help="score on P1's validation carve-out instead")
    parser.add_argument("--n-holdout", type=int, nargs="+", default=[3], help="with --p1-validation")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="the head's seed spread on P3 test")
    args = parser.parse_args(argv)

    ml = load_movielens("100k")
    films = ml.items.sort_values("item_id").reset_index(drop=True)
    vectors = title_vectors(films)
    features = ItemFeatures(films["item_id"].to_numpy(), vectors=vectors)
    split = P3.split(ml.ratings)
    fit_part, valid_part, test = split.fit, split.valid, split.test
    history = split.train
    retrievers = {"SASRec": SASRecRecommender, "EASE": lambda: EASE(reg=500.0)}
    results: dict[str, Any] = {"protocol": "P3 (ML-100K)", "validation": [], "test": {}}

    def save() -> None:
        atomic_write_bytes(args.output, json.dumps(results, indent=2).encode())

    def compare(model: ShortlistReranker, fitted_on: pd.DataFrame, target: pd.DataFrame) -> dict[str, float]:
        ours = P3.evaluate(model, fitted_on, target).per_user
        theirs = P3.evaluate(model.retriever_, fitted_on, target)
        shortlisted = P3.with_params(k=model.n_candidates).evaluate(model.retriever_, fitted_on, target)
        difference = paired_difference(ours["ndcg"], theirs.per_user["ndcg"], n_boot=args.n_boot)
        return {"retriever_ndcg": float(theirs.values["ndcg"]), "reranked_ndcg": float(ours["ndcg"].mean()),
                "difference": float(difference["mean_diff"]), "low": float(difference["low"]),
                "high": float(difference["high"]), "shortlist_hit_rate": float(shortlisted.values["hit_rate"]),
                "random_order_ndcg": float(shortlisted.values["hit_rate"] * random_order_ndcg(model.n_candidates)),
                "best_epoch": int(model.best_epoch_), "training_lists": int(model.n_lists_)}

    if args.p1_validation:
        return _p1_validation(args, ml.ratings, features)
    if args.seeds:
        results["seeds"] = {}
        for seed in args.seeds:
            on_valid = ShortlistReranker(EASE(reg=500.0), random_state=seed).fit(fit_part, item_features=features)
            model = ShortlistReranker(EASE(reg=500.0), random_state=seed).fit(history, item_features=features)
            results["seeds"][seed] = {"validation": compare(on_valid, fit_part, valid_part), "test": compare(model, history, test)}
            save()
            print(seed, json.dumps(results["seeds"][seed]), flush=True)
        return 0
    for windows in CANDIDATES:
        for name, make in retrievers.items():
            model = ShortlistReranker(make(), trend_windows=windows).fit(fit_part, item_features=features)
            run = {"retriever": name, "trend_windows": list(windows), **compare(model, fit_part, valid_part)}
            results["validation"].append(run)
            save()
            print(json.dumps(run), flush=True)
    means = {tuple(w): np.mean([r["difference"] for r in results["validation"] if tuple(r["trend_windows"]) == w])
             for w in CANDIDATES}
    chosen = max(CANDIDATES, key=lambda w: (means[w], -CANDIDATES.index(w)))
    results["chosen"] = {"trend_windows": list(chosen), "mean_validation_difference": float(means[chosen])}
    for name, make in retrievers.items():
        model = ShortlistReranker(make(), trend_windows=chosen).fit(history, item_features=features)
        results["test"][name] = compare(model, history, test)
        save()
        print(name, json.dumps(results["test"][name]), flush=True)
    return 0


def _p1_validation(args: argparse.Namespace, ratings: Any, features: Any) -> int:
    """The ``--p1-validation`` run (module doc); writes ``args.output``."""
    from reclib.cf import EASE
    from reclib.evaluation import P1
    from reclib.evaluation.uncertainty import paired_difference
    from reclib.io import atomic_write_bytes
    from reclib.models import ShortlistReranker

    p1_split = P1.split(ratings)
    fit, valid_part = p1_split.fit, p1_split.valid
    fit = fit.sort_values(["user_id", "timestamp", "item_id"], kind="stable")
    runs = []
    settings = [{"carve": "last", "n_holdout": n} for n in args.n_holdout] + [{"carve": "random", "holdout_share": 0.25}]
    for setting in settings:
        model = ShortlistReranker(EASE(reg=500.0), **setting).fit(fit, item_features=features)
        ours = P1.evaluate(model, fit, valid_part).per_user["ndcg"]
        theirs = P1.evaluate(model.retriever_, fit, valid_part).per_user["ndcg"]
        difference = paired_difference(ours, theirs, n_boot=args.n_boot)
        runs.append({**setting, "retriever_ndcg": float(theirs.mean()), "reranked_ndcg": float(ours.mean()),
                     "difference": float(difference["mean_diff"]), "low": float(difference["low"]),
                     "high": float(difference["high"]), "training_lists": int(model.n_lists_),
                     "best_epoch": int(model.best_epoch_)})
        print(json.dumps(runs[-1]), flush=True)
    result = {"protocol": "P1 validation carve-out (ML-100K), EASE (reg 500) reranked", "runs": runs,
              "command": " ".join(["python -m experiments.tune_reranker", *sys.argv[1:]])}
    atomic_write_bytes(args.output, json.dumps(result, indent=2).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())

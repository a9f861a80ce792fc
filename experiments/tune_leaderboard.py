"""``python -m experiments.tune_leaderboard``: the searches behind ``RP3beta()``'s defaults and the
blend weight of notebook 09's strongest P1 model.

Everything is chosen on P1's validation carve-out of ML-100K, ``fit, valid =
P1.split(ratings).fit`` and ``.valid``, by validation NDCG@10:

1. RP3beta over ``RP3_GRID`` (alpha x beta x n_neighbors; 3 x 6 x 4 = 72 fits, under a second each);
   the winner becomes ``RP3beta()``'s defaults.
2. Blends ``HybridRecommender(ImplicitALS(), other, text_weight=w)`` (each model's scores
   standardised per user, then ``(1 - w) * ALS + w * other``) with ``other`` the tuned RP3beta or
   EASE at its default, over ``BLEND_WEIGHTS``.

Test is touched once, at the end: the winners are refitted on all of P1's training part and
scored on P1 test. Results go to ``build/tuning/leaderboard.json`` (written atomically).
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

__all__ = ["BLEND_WEIGHTS", "RP3_GRID", "main"]

#: the RP3beta grid
RP3_GRID: dict[str, list[Any]] = {"alpha": [0.5, 0.75, 1.0], "beta": [0.0, 0.2, 0.3, 0.4, 0.5, 0.6],
                                  "n_neighbors": [50, 100, 200, None]}
#: weights of the second model in an ImplicitALS blend
BLEND_WEIGHTS: list[float] = [0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0]


def main(argv: list[str] | None = None) -> int:
    reclib.quiet()          # TensorFlow's and transformers' start-up logs off, before they load
    from reclib.cf import EASE, ImplicitALS, RP3beta
    from reclib.data import load_movielens
    from reclib.evaluation import P1
    from reclib.features import HybridRecommender
    from reclib.io import atomic_write_bytes

    parser = argparse.ArgumentParser(prog="python -m experiments.tune_leaderboard", description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("build/tuning/leaderboard.json"))
    args = parser.parse_args(argv)

    split = P1.split(load_movielens("100k").ratings)
    train, test = split.train, split.test
    fit, valid = split.fit, split.valid
    results: dict[str, Any] = {"protocol": "P1 validation carve-out (ML-100K)", "rp3beta": [],
                               "blends": []}

    def ndcg(model: Any, fitted_on: Any, target: Any) -> float:
        return float(P1.evaluate(model, fitted_on, target)["ndcg"])

    for values in itertools.product(*RP3_GRID.values()):
        params = dict(zip(RP3_GRID, values))
        start = time.perf_counter()
        score = ndcg(RP3beta(**params).fit(fit), fit, valid)
        results["rp3beta"].append({**params, "valid_ndcg": score, "seconds": time.perf_counter() - start})
    best_rp3 = max(results["rp3beta"], key=lambda r: r["valid_ndcg"])
    rp3_params = {name: best_rp3[name] for name in RP3_GRID}
    print("RP3beta best on validation:", best_rp3, file=sys.stderr)

    others = {"RP3beta": lambda: RP3beta(**rp3_params), "EASE": EASE}
    for (name, make), weight in itertools.product(others.items(), BLEND_WEIGHTS):
        model = HybridRecommender(ImplicitALS(verbose=False), make(), text_weight=weight)
        results["blends"].append({"other": name, "weight": weight,
                                  "valid_ndcg": ndcg(model.fit(fit), fit, valid)})
    best_blend = max(results["blends"], key=lambda r: r["valid_ndcg"])
    print("blend best on validation:", best_blend, file=sys.stderr)

    winner = HybridRecommender(ImplicitALS(verbose=False), others[best_blend["other"]](),
                               text_weight=best_blend["weight"])
    results["test"] = {"RP3beta": ndcg(RP3beta(**rp3_params).fit(train), train, test),
                       f"ALS + {best_blend['other']} (w={best_blend['weight']})":
                           ndcg(winner.fit(train), train, test),
                       "ImplicitALS": ndcg(ImplicitALS(verbose=False).fit(train), train, test)}
    print("test NDCG@10:", results["test"], file=sys.stderr)
    atomic_write_bytes(args.output, (json.dumps(results, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

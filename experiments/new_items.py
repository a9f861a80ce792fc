"""New items without retraining: the next item when it is one of the newest 10 % of films.

    python -m experiments.new_items            # ~3 minutes on 2 cores; prints a table, writes JSON

``new_item_split`` on ML-100K: the 168 films whose first rating came last are new; the models
train on every rating before the first of them; each test user's first rating of a new film is
the target, ranked among the 168 new films from the user's history (every earlier rating, the
ones after the cut included). Generative retrieval (its defaults) spells the new films from
their semantic IDs, coded from their titles with the codebooks fitted on every film's vector;
SASRec (its defaults, the same catalogue) has never trained a new film's row. Baselines:
popularity among the new films up to the event (the whole log, nothing later) and the title
similarity to the history's last film; random order over 168 films gives HR@10 = 10/168. Each
value carries a 95 % bootstrap interval over test users, and the generative model's paired
differences to both baselines.

``--validation`` runs the same recipe inside the test split's training part (the events before
its cut: no test-time new film in it), to study the model without touching the test;
``--collaborative-weight`` and ``--learning-rate`` vary the generative model, ``--skip-sasrec`` skips
SASRec.
``--popularity-weights b ...`` adds, for each b, the generative model with a popularity prior: its
log-probability plus b * log(1 + the film's events so far), a product of the two experts
(p_gen * (1 + count)^b); b is to be chosen with ``--validation``, then read once on test.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import reclib
from experiments import title_vectors


def main(argv: list[str] | None = None) -> int:
    reclib.quiet()
    import numpy as np
    import pandas as pd

    from reclib.data import load_movielens, new_item_split
    from reclib.evaluation import bootstrap_interval, paired_difference
    from reclib.evaluation.new_items import (evaluate_new_items, last_item_similarity, popularity_before,
                                             user_histories)
    from reclib.features import ItemFeatures
    from reclib.io import atomic_write_bytes
    from reclib.models import GenerativeRetrievalRecommender, SASRecRecommender

    parser = argparse.ArgumentParser(prog="python -m experiments.new_items", description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("build/new_items.json"))
    parser.add_argument("--validation", action="store_true", help="split the test split's training part again")
    parser.add_argument("--collaborative-weight", type=float, default=None,
                        help="the generative model's collaborative_weight (default: its own)")
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="the generative model's learning_rate (default: its own; the results stored "
                             "before it became 0.01 ran at 0.005)")
    parser.add_argument("--skip-sasrec", action="store_true")
    parser.add_argument("--popularity-weights", type=float, nargs="*", default=[],
                        help="b of the generative model's popularity prior (module doc)")
    args = parser.parse_args(argv)

    ml = load_movielens("100k")
    films = ml.items.sort_values("item_id")
    vectors = title_vectors(films)
    features = ItemFeatures(films["item_id"].to_numpy(), vectors=vectors)
    ratings = new_item_split(ml.ratings)[0] if args.validation else ml.ratings
    train, context, test, new = new_item_split(ratings)
    histories = user_histories(pd.concat([train, context]), test["user_id"])
    params = {} if args.collaborative_weight is None else {"collaborative_weight": args.collaborative_weight}
    if args.learning_rate is not None:
        params["learning_rate"] = args.learning_rate
    generative = GenerativeRetrievalRecommender(**params).fit(train, item_features=features)
    sasrec = None if args.skip_sasrec else SASRecRecommender().fit(train, item_features=features)
    catalogue = generative.item_ids_             # every score column below follows this order
    if sasrec is not None and not np.array_equal(sasrec.item_ids_, catalogue):
        raise RuntimeError("the two models order their catalogues differently")
    vectors = vectors[pd.Index(features.item_ids).get_indexer(catalogue)]
    last = pd.Index(catalogue).get_indexer([h[-1] for h in histories])
    scores = {
        "generative retrieval (semantic IDs)": generative.score_histories(histories),
        "popularity among new films so far": popularity_before(ratings, catalogue, test["timestamp"]),
        "title similarity to the last film": last_item_similarity(vectors, last),
    }
    if sasrec is not None:
        scores["SASRec (item ids)"] = sasrec.score_histories(histories)
    so_far = np.log1p(scores["popularity among new films so far"])
    for b in args.popularity_weights:
        scores[f"generative x (1 + events so far)^{b:g}"] = scores["generative retrieval (semantic IDs)"] + b * so_far
    per_user = {name: evaluate_new_items(s, test["item_id"], catalogue, new,
                                         user_ids=test["user_id"].to_numpy()).per_user
                for name, s in scores.items()}
    rows = []
    for name, values in per_user.items():
        interval = bootstrap_interval(values[["hit_rate", "ndcg"]])
        rows.append({"model": name, "HR@10": values["hit_rate"].mean(), "HR low": interval.loc["hit_rate", "low"],
                     "HR high": interval.loc["hit_rate", "high"], "NDCG@10": values["ndcg"].mean(),
                     "NDCG low": interval.loc["ndcg", "low"], "NDCG high": interval.loc["ndcg", "high"]})
    table = pd.DataFrame(rows)
    ours = per_user["generative retrieval (semantic IDs)"]["hit_rate"]
    differences = {name: paired_difference(ours, per_user[name]["hit_rate"])
                   for name in list(scores)[1:]}
    result = {"command": " ".join(["python -m experiments.new_items", *(argv if argv is not None else sys.argv[1:])]),
              "generative_params": {"collaborative_weight": generative.collaborative_weight,
                                    "learning_rate": generative.learning_rate},
              "popularity_weights": args.popularity_weights,
              "split": {"train": len(train), "context": len(context), "test_events": len(test),
                        "new_films": len(new)},
              "random_hr10": 10 / len(new), "table": table.round(4).to_dict(orient="records"),
              "hr10_difference_generative_minus": differences}
    print(table.round(3).to_string(index=False))
    print(f"random order: HR@10 = {10 / len(new):.3f}")
    print(json.dumps(differences, indent=1))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(args.output, json.dumps(result, indent=2).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())

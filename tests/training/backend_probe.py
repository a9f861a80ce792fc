"""Train reclib's Keras models on planted synthetic data and write their held-out metrics as JSON.

Run as ``KERAS_BACKEND=jax python tests/training/backend_probe.py OUT.json [--seed 42] [--untrained]``
(the backend is fixed when Keras is first imported, so each backend needs its own process);
``tests/training/test_backends.py`` runs it once per backend and compares the numbers.

Data (fixed, seed 0, whatever ``--seed``): 300 users x 200 items in 4 planted "genres" of 50
items. User ``u`` belongs to genre ``u % 4`` and walks 20 steps along that genre's cycle of items
from a random start (item ``start + t`` at time ``t``); 10 % of the events are a random item
instead. Each user's last event is held out: a collaborative model can learn the genres (about
1 in 3 of the unseen in-genre items is the answer), a sequential model can learn the cycle.
The click table (6,000 rows) has a label driven by a pure interaction: a click is likely when
``user_group % 5 == item_genre % 5``, which neither feature predicts alone (plus a weak ``price``
main effect and a useless ``device``).

``--seed`` seeds the models only (``random_state``/``seed``), so running several seeds measures
how much a metric moves with the initial weights alone. ``--untrained`` sets every learning rate
to 1e-9: the scores of models that learned nothing, to check that the test's floors catch a
broken backend.

Output: ``{"backend", "seed", "metrics": {model: {metric: value}}, "seconds": {model: s}}``;
``metrics`` also holds the floors ``popularity`` (MostPopular's recall/ndcg@10 on the same
split), ``random`` (the expected recall@10 of a random ranking) and ``ctr_floor`` (the AUC of
``price``, the only main effect: what a model without the interaction can reach).
"""

from __future__ import annotations

import argparse
import json
import time

import keras
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from reclib.cf import MostPopular
from reclib.evaluation import ranking_result
from reclib.features.specs import Categorical, FeatureSpace, Numeric
from reclib.models import NCF, SASRecRecommender, TwoTowerRecommender
from reclib.models.interaction import build_ctr_model
from reclib.training import fit_binary_classifier, set_seed

N_USERS, N_ITEMS, N_GENRES, LENGTH, NOISE = 300, 200, 4, 20, 0.1


def interactions() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, test): the planted walks of the module doc; test = each user's last event."""
    rng = np.random.default_rng(0)
    size = N_ITEMS // N_GENRES
    rows = []
    for user in range(N_USERS):
        start = rng.integers(size)
        for t in range(LENGTH):
            item = rng.integers(N_ITEMS) if rng.random() < NOISE else (user % N_GENRES) * size + (start + t) % size
            rows.append((user, int(item), t))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    frame = frame.drop_duplicates(["user_id", "item_id"]).reset_index(drop=True)
    last = frame.groupby("user_id")["timestamp"].transform("max") == frame["timestamp"]
    return frame[~last].reset_index(drop=True), frame[last].reset_index(drop=True)


def clicks() -> pd.DataFrame:
    """The click table of the module doc (6,000 rows, label ``click``)."""
    rng = np.random.default_rng(1)
    n = 6000
    frame = pd.DataFrame({"user_group": rng.integers(20, size=n), "item_genre": rng.integers(10, size=n),
                          "device": rng.integers(3, size=n), "price": rng.normal(size=n)})
    logit = -2.0 + 4.0 * (frame["user_group"] % 5 == frame["item_genre"] % 5) + 0.3 * frame["price"]
    frame["click"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return frame


def ranking(model, train: pd.DataFrame, test: pd.DataFrame) -> dict[str, float]:
    """Recall@10 and NDCG@10 over every unseen item (reclib's evaluation)."""
    result = ranking_result(model, train, test, k=10)
    return {"recall": result["recall"], "ndcg": result["ndcg"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--untrained", action="store_true")
    args = parser.parse_args()
    seed, lr = args.seed, (1e-9 if args.untrained else None)
    train, test = interactions()
    metrics: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}

    popularity = MostPopular().fit(train)
    unseen = N_ITEMS - train.groupby("user_id").size().mean()
    metrics["popularity"] = ranking(popularity, train, test)
    metrics["random"] = {"recall": 10 / unseen}

    models = {
        "ncf": (NCF(gmf_dim=16, mlp_dims=(32, 16), epochs=6, batch_size=256, learning_rate=lr or 5e-3,
                    random_state=seed), {}),
        "two_tower": (TwoTowerRecommender(embedding_dim=32, tower_dims=(32,), epochs=10, batch_size=128,
                                          learning_rate=lr or 5e-3, random_state=seed), {}),
        "sasrec": (SASRecRecommender(max_length=19, embedding_dim=32, n_blocks=1, n_heads=2, dropout=0.1,
                                     epochs=15, batch_size=64, learning_rate=lr or 5e-3,
                                     random_state=seed), {}),
    }
    for name, (model, fit_data) in models.items():
        start = time.perf_counter()
        model.fit(train, **fit_data)
        metrics[name] = ranking(model, train, test)
        seconds[name] = round(time.perf_counter() - start, 2)

    start = time.perf_counter()
    table = clicks()
    fit_rows, valid_rows, test_rows = table.iloc[:4000], table.iloc[4000:5000], table.iloc[5000:]
    space = FeatureSpace([Categorical("user_group"), Categorical("item_genre"), Categorical("device"),
                          Numeric("price")]).fit(fit_rows)
    set_seed(seed)                          # the functional model draws its weights when built
    ctr = build_ctr_model("dcnv2", space, embedding_dim=8, hidden_units=(32, 16), dropout=0.0,
                          cross_layers=2, learning_rate=lr or 2e-2)
    fit_binary_classifier(ctr, space.transform(fit_rows), fit_rows["click"].to_numpy(),
                          space.transform(valid_rows), valid_rows["click"].to_numpy(),
                          epochs=12, batch_size=256, patience=3, random_state=seed)
    scores = keras.ops.convert_to_numpy(ctr.predict(space.transform(test_rows), batch_size=1000, verbose=0))
    metrics["dcnv2"] = {"auc": float(roc_auc_score(test_rows["click"], scores))}
    metrics["ctr_floor"] = {"auc": float(roc_auc_score(test_rows["click"], test_rows["price"]))}
    seconds["dcnv2"] = round(time.perf_counter() - start, 2)

    result = {"backend": keras.backend.backend(), "seed": seed, "untrained": args.untrained,
              "metrics": {m: {k: round(float(v), 4) for k, v in d.items()} for m, d in metrics.items()},
              "seconds": seconds}
    with open(args.out, "w") as handle:
        json.dump(result, handle, indent=1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

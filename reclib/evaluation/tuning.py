"""Hyper-parameter search on a validation carve-out of the training data (never on test).

:func:`grid_search` fits one model per point of a grid on ``fit`` data and scores it on
``valid`` data; :func:`validation_split` makes that carve-out with the protocol's own splitter.
``python -m reclib.evaluation.tuning`` runs the searches behind the defaults of notebook 02 and
writes them to ``build/tuning/cf.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from reclib.data.splits import random_split, stratified_split
from reclib.evaluation.metrics import rmse
from reclib.evaluation.ranking import evaluate_ranking
from reclib.io import atomic_write_bytes

__all__ = ["grid_search", "ranking_objective", "rating_objective", "validation_split"]


def validation_split(train: pd.DataFrame, protocol: str, seed: int = 42) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Carve (fit, valid) out of ``train`` with the protocol's splitter: P1 per-user 75/25, P2 80/20."""
    if protocol == "P1":
        return stratified_split(train, train_size=0.75, seed=seed)
    if protocol == "P2":
        return random_split(train, test_size=0.2, seed=seed)
    raise ValueError(f"protocol={protocol!r}: expected 'P1' or 'P2'")


def ranking_objective(metric: str = "ndcg", k: int = 10) -> Callable[[Any, pd.DataFrame, pd.DataFrame], float]:
    """Validation objective for top-K models: ``metric`` at ``k`` (higher is better)."""
    def score(model: Any, fit: pd.DataFrame, valid: pd.DataFrame) -> float:
        return float(evaluate_ranking(model, fit, valid, k=k).set_index("metric")["value"][metric])
    return score


def rating_objective(model: Any, fit: pd.DataFrame, valid: pd.DataFrame) -> float:
    """Validation objective for rating models: minus the RMSE (higher is better)."""
    return -rmse(valid["rating"], model.predict(valid["user_id"], valid["item_id"]))


def grid_search(make_model: Callable[..., Any], grid: Mapping[str, Sequence[Any]], fit: pd.DataFrame,
                valid: pd.DataFrame,
                objective: Callable[[Any, pd.DataFrame, pd.DataFrame], float],
                verbose: bool = True) -> pd.DataFrame:
    """Fit ``make_model(**point)`` for every point of ``grid``; return a frame sorted best first.

    Columns: the grid's parameters, ``objective`` (higher is better) and ``seconds``.
    """
    if not grid:
        raise ValueError("grid is empty: give at least one parameter with candidate values")
    names = list(grid)
    rows = []
    points = list(itertools.product(*(grid[n] for n in names)))
    for values in tqdm(points, desc="grid search", disable=not verbose):
        params = dict(zip(names, values))
        start = time.perf_counter()
        model = make_model(**params).fit(fit)
        rows.append({**params, "objective": objective(model, fit, valid),
                     "seconds": time.perf_counter() - start})
    return pd.DataFrame(rows).sort_values("objective", ascending=False, ignore_index=True)


def _cf_searches() -> dict[str, tuple[Callable[..., Any], dict[str, list[Any]], str]]:
    from reclib.cf import BPR, EASE, BiasedMF, ImplicitALS, ItemKNN, NeighborhoodCF

    return {
        "EASE": (EASE, {"reg": [100.0, 250.0, 500.0, 1000.0, 2000.0]}, "P1"),
        "ItemKNN": (ItemKNN, {"n_neighbors": [20, 50, 100, 200, 400]}, "P1"),
        "ImplicitALS": (lambda **p: ImplicitALS(verbose=False, n_iter=15, **p),
                        {"n_factors": [64, 128], "alpha": [3.0, 10.0, 30.0],
                         "reg": [10.0, 30.0, 100.0]}, "P1"),
        "BPR": (lambda **p: BPR(verbose=False, **p),
                {"n_factors": [64, 128], "reg": [0.01, 0.03, 0.05, 0.1], "n_epochs": [100]}, "P1"),
        "NeighborhoodCF": (NeighborhoodCF, {"k": [20, 40, 80], "shrinkage": [50.0, 100.0, 200.0]}, "P2"),
        "BiasedMF": (lambda **p: BiasedMF(verbose=False, init_std=0.01, lr=0.005, n_epochs=70, **p),
                     {"n_factors": [100, 200, 400], "reg": [0.05, 0.06, 0.08]}, "P2"),
    }


def main(argv: list[str] | None = None) -> int:
    from reclib.data.movielens import load_movielens

    parser = argparse.ArgumentParser(prog="python -m reclib.evaluation.tuning", description=__doc__)
    parser.add_argument("models", nargs="*", help="which searches (default all)")
    parser.add_argument("--output", type=Path, default=Path("build/tuning/cf.json"))
    args = parser.parse_args(argv)
    searches = _cf_searches()
    ratings = load_movielens("100k").ratings
    splits = {"P1": stratified_split(ratings, 0.75, seed=42)[0], "P2": random_split(ratings, 0.2, seed=42)[0]}
    results = json.loads(args.output.read_text()) if args.output.exists() else {}
    for name in args.models or list(searches):
        make_model, grid, protocol = searches[name]
        fit, valid = validation_split(splits[protocol], protocol)
        objective = ranking_objective() if protocol == "P1" else rating_objective
        table = grid_search(make_model, grid, fit, valid, objective)
        print(f"\n{name} ({protocol}, objective {'ndcg@10' if protocol == 'P1' else '-rmse'}):")
        print(table.head(8).to_string(index=False))
        best = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in table.iloc[0].items()}
        results[name] = {"protocol": protocol, "best": best, "grid": grid}
        atomic_write_bytes(args.output, json.dumps(results, indent=2, default=str).encode())
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

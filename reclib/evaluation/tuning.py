"""Hyper-parameter search on a validation carve-out of the training data (never on test).

Generic pieces only; the searches behind the notebooks' defaults live in ``experiments/tune.py``
(``make tune``). :func:`grid_search` fits one model per point of a grid on ``fit`` data and scores
it on ``valid`` data; :func:`protocol_search` does it on a split's validation carve-out
(``split.fit``, ``split.valid``) with the protocol's metric::

    table = protocol_search(P1, EASE, {"reg": [250.0, 500.0]}, P1.split(ratings))
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd

from reclib import progress
from reclib.checks import ParameterTypeError, check_verbose
from reclib.evaluation.protocols import PROTOCOLS, Protocol, Split
from reclib.evaluation.ranking import ranking_result

__all__ = ["grid_search", "protocol_objective", "protocol_search", "ranking_objective",
           "rating_objective"]

Objective = Callable[[Any, pd.DataFrame, pd.DataFrame], float]

#: metrics where lower is better; their objective is minus the metric
LOWER_IS_BETTER = frozenset({"rmse", "mae", "log_loss"})


def ranking_objective(metric: str = "ndcg", k: int = 10) -> Objective:
    """Validation objective for top-K models: ``metric`` at ``k`` (higher is better)."""
    def score(model: Any, fit: pd.DataFrame, valid: pd.DataFrame) -> float:
        return ranking_result(model, fit, valid, k=k)[metric]
    return score


def rating_objective(model: Any, fit: pd.DataFrame, valid: pd.DataFrame) -> float:
    """Validation objective for rating models: minus the RMSE (higher is better)."""
    return -PROTOCOLS["P2"].evaluate(model, fit, valid)["rmse"]


def protocol_objective(protocol: Protocol, metric: str | None = None) -> Objective:
    """``protocol.evaluate(model, fit, valid)[metric]``, negated for RMSE, MAE and log loss so
    that higher is always better; ``metric`` defaults to ndcg (ranking) or the first metric."""
    if metric is None:
        metric = "ndcg" if protocol.k is not None else protocol.metrics[0]
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0

    def score(model: Any, fit: pd.DataFrame, valid: pd.DataFrame) -> float:
        return sign * protocol.evaluate(model, fit, valid)[metric]
    return score


def grid_search(make_model: Callable[..., Any], grid: Mapping[str, Sequence[Any]], fit: pd.DataFrame,
                valid: pd.DataFrame, objective: Objective, verbose: int = 1) -> pd.DataFrame:
    """Fit ``make_model(**point)`` for every point of ``grid``; return a frame sorted best first.

    Columns: the grid's parameters, ``objective`` (higher is better) and ``seconds``.
    """
    check_verbose(verbose)
    if not grid:
        raise ValueError("grid is empty: give at least one parameter with candidate values")
    names = list(grid)
    rows = []
    points = list(itertools.product(*(grid[n] for n in names)))
    for values in progress(points, verbose, desc="grid search"):
        params = dict(zip(names, values))
        start = time.perf_counter()
        model = make_model(**params).fit(fit)
        rows.append({**params, "objective": objective(model, fit, valid),
                     "seconds": time.perf_counter() - start})
    return pd.DataFrame(rows).sort_values("objective", ascending=False, ignore_index=True)


def protocol_search(protocol: Protocol, make_model: Callable[..., Any],
                    grid: Mapping[str, Sequence[Any]], split: Split,
                    metric: str | None = None, verbose: int = 1) -> pd.DataFrame:
    """:func:`grid_search` on ``split.fit`` and ``split.valid`` (``split = protocol.split(data)``)
    with :func:`protocol_objective` (``metric``); test is never touched."""
    if not isinstance(split, Split):
        raise ParameterTypeError(f"split must be a Split ({protocol.name}.split(data)), "
                                 f"got {type(split).__name__}")
    return grid_search(make_model, grid, split.fit, split.valid,
                       protocol_objective(protocol, metric), verbose)

"""The checks :func:`~reclib.evaluation.leaderboard` runs before it fits any model.

A leaderboard fits many models, which can take an hour: an argument that cannot work (a repeated
model name, ``random_state=-1``, item vectors missing an item a model can recommend, an expected list
missing a test user, a metric the board will not report, an output folder that cannot be
written) must fail at once, naming the culprit, not after the first models were fitted.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from reclib.checks import (ParameterTypeError, check_finite_array, check_fraction,
                           check_non_negative_int, check_positive_int)
from reclib.evaluation.protocols import Protocol
from reclib.io import check_writable_folder

__all__ = ["RANKING_PER_USER", "check_inputs", "entries", "metric_names", "writable_folder"]

#: the per-user metric columns of a ranking protocol's result, in its order
RANKING_PER_USER = ("precision", "recall", "ndcg", "map", "hit_rate", "mrr")


def entries(models: object) -> list[tuple[str, Any, Mapping[str, Any]]]:
    """``models`` (a mapping name -> model, or (name, model[, fit_kwargs]) tuples) as triples."""
    if isinstance(models, Mapping):
        models = list(models.items())
    if not isinstance(models, Sequence) or isinstance(models, str) or not models:
        raise ValueError("models must be a non-empty list of (name, model) or "
                         "(name, model, fit_kwargs) tuples, or a mapping name -> model")
    out = []
    for entry in models:
        if not isinstance(entry, tuple) or len(entry) not in (2, 3) or \
                not isinstance(entry[0], str):
            raise ValueError(f"each model entry must be (name, model) or (name, model, "
                             f"fit_kwargs), got {entry!r:.80}")
        if not entry[0].strip():
            raise ValueError(f"a model name must be a non-empty string, got {entry[0]!r} for "
                             f"{type(entry[1]).__name__}")
        kwargs = entry[2] if len(entry) == 3 else {}
        if not isinstance(kwargs, Mapping):
            raise ParameterTypeError(f"fit_kwargs of {entry[0]!r} must be a mapping, "
                                     f"got {type(kwargs).__name__}")
        out.append((entry[0], entry[1], kwargs))
    names = [name for name, _, _ in out]
    if len(set(names)) != len(names):
        raise ValueError(f"model names must be distinct, got {names}")
    return out


def metric_names(protocol: Protocol, item_vectors: Mapping[str, Any],
                 expected: object) -> list[str]:
    """The metrics a leaderboard on ``protocol`` reports, in the order of its frame."""
    if protocol.k is None:                             # a pointwise protocol: its own metrics
        return list(protocol.metrics)
    return [*RANKING_PER_USER, "novelty", "pop_percentile",
            *(f"diversity_{name}" for name in item_vectors),
            *(["serendipity"] if expected is not None else []),
            "coverage", "gini", "popularity_bias"]


def _first_missing(what: str, needed: object, have: pd.Index) -> None:
    """Raise naming how many of ``needed`` ids ``have`` lacks and the first of them."""
    missing = pd.Index(needed).difference(have, sort=False)
    if len(missing):
        raise ValueError(f"{what} for {len(missing)} id(s), first {missing[:1].tolist()[0]!r}")


def _check_ranking_inputs(protocol: Protocol, train: pd.DataFrame, test: pd.DataFrame,
                          item_vectors: Mapping[str, Any], expected: object,
                          user_col: str, item_col: str) -> None:
    """``item_vectors`` must cover every item a model can recommend (the protocol's candidates,
    else the items of ``train``), ``expected`` every test user, with known item ids."""
    candidates = protocol.candidates(train, test, item_col)
    needed = pd.unique(train[item_col]) if candidates is None else candidates
    for name, vectors in item_vectors.items():
        what = f"item_vectors[{name!r}]"
        if not isinstance(vectors, pd.DataFrame):
            raise ParameterTypeError(f"{what} must be a DataFrame (index: item ids), got "
                                     f"{type(vectors).__name__}")
        repeated = vectors.index[vectors.index.duplicated()]
        if len(repeated):
            raise ValueError(f"{what} repeats item id {repeated[:1].tolist()[0]!r}")
        check_finite_array(what, vectors)
        _first_missing(f"{what} has no row (needed for diversity_{name})", needed, vectors.index)
    if expected is None:
        return
    if not isinstance(expected, pd.DataFrame):
        raise ParameterTypeError(f"expected must be a DataFrame (users x K item ids, e.g. "
                                 f"MostPopular's top_items), got {type(expected).__name__}")
    users = pd.Index(pd.unique(test[user_col]))
    _first_missing("expected has no list (needed for serendipity)", users, expected.index)
    catalogue = pd.Index(pd.unique(pd.concat([train[item_col], test[item_col]])))
    items = pd.Index(expected.reindex(users).to_numpy().ravel())
    unknown = items[~items.isin(catalogue)]
    if len(unknown):
        raise ValueError(f"expected holds {len(unknown)} value(s) that are items of neither train "
                         f"nor test, first {unknown[:1].tolist()[0]!r}")


def check_inputs(protocol: Protocol, train: object, test: object, fit: object,
                 item_vectors: object, expected: object, user_col: str, item_col: str,
                 metrics: object, output_name: object, boot: Mapping[str, object]) -> None:
    """Every check of :func:`~reclib.evaluation.leaderboard` that needs no fitted model but
    the models themselves (:func:`entries`) and the output folder (:func:`writable_folder`);
    ``boot``: the bootstrap settings ``n_boot, confidence, random_state``."""
    check_positive_int(n_boot=boot["n_boot"])
    check_fraction(confidence=boot["confidence"])
    check_non_negative_int(random_state=boot["random_state"])
    if not isinstance(output_name, str) or not output_name.strip() or \
            Path(output_name).name != output_name:
        raise ValueError(f"output_name must be a plain file name, got {output_name!r}")
    if not isinstance(protocol, Protocol):
        raise ParameterTypeError(f"protocol must be a Protocol (P1-P5), got "
                                 f"{type(protocol).__name__}")
    if not isinstance(fit, bool):
        raise ParameterTypeError(f"fit must be True or False, got {fit!r}")
    if not isinstance(item_vectors, Mapping):
        raise ParameterTypeError(f"item_vectors must be a mapping name -> DataFrame, got "
                                 f"{type(item_vectors).__name__}")
    ranking = protocol.k is not None
    if not ranking and (item_vectors or expected is not None):
        raise ValueError(f"item_vectors and expected apply to ranking protocols (P1, P3, P5), "
                         f"not {protocol.name}")
    columns = protocol.test_columns(user_col, item_col)
    for what, frame in (("train", train), ("test", test)):
        if not isinstance(frame, pd.DataFrame):
            raise ParameterTypeError(f"{what} must be a DataFrame, got {type(frame).__name__}")
        missing = [c for c in columns if c not in frame.columns and (what == "test" or ranking)]
        if missing:
            raise ValueError(f"{what} has no column {missing[0]!r}; it has {list(frame.columns)}")
    if ranking:
        _check_ranking_inputs(protocol, train, test, item_vectors, expected, user_col, item_col)
    if metrics is not None:
        if isinstance(metrics, str) or not isinstance(metrics, Sequence):
            raise ParameterTypeError(f"metrics must be a list of metric names, got {metrics!r}")
        known = metric_names(protocol, item_vectors, expected)
        unknown = [m for m in metrics if m not in known]
        if unknown:
            raise ValueError(f"metrics: {unknown[0]!r} is not reported on {protocol.name} with "
                             f"these arguments; the metrics are {known}")


def writable_folder(folder: object) -> Path:
    """``folder`` created if needed and checked by writing a temporary file in it."""
    if not isinstance(folder, (str, os.PathLike)):
        raise ParameterTypeError(f"output_dir must be a path, got {type(folder).__name__}")
    return check_writable_folder("output_dir", folder)

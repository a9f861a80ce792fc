"""A leaderboard: fit several models on one protocol, evaluate each the same way, with intervals.

::

    board = leaderboard([("EASE", EASE()), ("ALS", ImplicitALS())], P1, train, test)
    board.frame            # tidy: model, metric, value, low, high (95 % bootstrap over users)
    board.wide()           # models x metrics (values)
    board.per_user["EASE"] # users x per-user metrics
    board.times            # fit and evaluation seconds per model
    board.significance("ndcg")   # paired tests of every pair, Holm-adjusted
    board.write("../build")      # leaderboard.md and leaderboard.json, one run id in both

Intervals come from the protocol (``protocol.intervals``, over ``protocol.units``), resampling
with one ``random_state`` for every model (so all models see the same user samples):

- ranking protocols (P1, P3, P5): every per-user metric (precision, recall, ndcg, map, hit_rate,
  mrr) plus per-user novelty (bits), popularity percentile of the recommended items, intra-list
  diversity on each of ``item_vectors`` and serendipity (with ``expected`` lists); catalogue-level
  figures (coverage, Gini of recommendation counts, ARP popularity bias) have no interval.
- P2: RMSE and MAE as ratios of per-user sums (:func:`~reclib.evaluation.bootstrap_ratio`).
- P4: AUC and log loss resampling test rows (the model must give probabilities).

Numbers depend only on the models, the data and ``random_state``; fit and evaluation times are reported
apart (``times``) so that two runs can be compared on the numbers alone.

Every argument is checked before the first model is fitted. When an entry raises while it is
fitted or evaluated, the entries that finished are kept: :class:`LeaderboardFailed` names the
entry, chains its error and holds the partial board (written to ``{output_name}-failed.md`` and
``.json`` when ``output_dir`` is given, so a complete earlier board is not overwritten).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reclib import progress
from reclib.checks import check_fraction, check_verbose
from reclib.evaluation.beyond import (gini_index, per_user_diversity, per_user_novelty,
                                      popularity_percentile, serendipity)
from reclib.evaluation.leaderboard_inputs import check_inputs, entries, writable_folder
from reclib.evaluation.protocols import Protocol
from reclib.evaluation.ranking import EvaluationResult
from reclib.evaluation.uncertainty import holm, paired_difference
from reclib.io import atomic_write

__all__ = ["Leaderboard", "LeaderboardFailed", "leaderboard"]

Entry = tuple[str, Any] | tuple[str, Any, Mapping[str, Any]]


@dataclass(frozen=True, repr=False)
class Leaderboard:
    """What :func:`leaderboard` returns.

    Attributes
    ----------
    - protocol: the protocol's name ("P1", ...); ``k``: its list length (``None`` for P2, P4).
    - frame: tidy results, one row per (model, metric), columns ``model, metric, value, low,
      high`` (``low``/``high`` NaN for catalogue-level metrics); models in the given order.
    - per_user: model name -> the per-user (P4: per-row) values behind the intervals.
    - times: one row per model: ``fit_seconds`` and ``eval_seconds`` (wall clock); with
      ``fit=False`` the model's own ``fit_seconds_`` (set by :func:`reclib.fit_cache.fit_cached`),
      else NaN: the board did not see the fit.
    - results: model name -> the protocol's :class:`EvaluationResult`.
    - n_boot, confidence, random_state: the bootstrap settings.
    - failure: ``None``, or for the partial board of a failed run the error that stopped it.
    """

    protocol: str
    k: int | None
    frame: pd.DataFrame
    per_user: dict[str, pd.DataFrame]
    times: pd.DataFrame
    results: dict[str, EvaluationResult] = field(default_factory=dict)
    n_boot: int = 1000
    confidence: float = 0.95
    random_state: int = 42
    failure: str | None = None

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(self.frame["model"]))

    def wide(self, column: str = "value") -> pd.DataFrame:
        """Models x metrics of one column of :attr:`frame` (``value``, ``low`` or ``high``),
        rows and columns in the order of the frame."""
        table = self.frame.pivot(index="model", columns="metric", values=column)
        return table.loc[self.models, list(dict.fromkeys(self.frame["metric"]))]

    def table(self, metrics: Sequence[str] | None = None, digits: int = 4) -> pd.DataFrame:
        """Models x metrics as text, ``"value [low, high]"`` (just the value without interval)."""
        metrics = list(self.wide().columns) if metrics is None else list(metrics)
        cells = {}
        for metric in metrics:
            rows = self.frame[self.frame["metric"] == metric].set_index("model")
            if rows.empty:
                raise ValueError(f"no metric {metric!r}; the leaderboard has "
                                 f"{list(self.wide().columns)}")
            cells[metric] = [_cell(rows.loc[m], digits) if m in rows.index else ""
                             for m in self.models]
        return pd.DataFrame(cells, index=pd.Index(self.models, name="model"))

    def significance(self, metric: str, pairs: str = "all", alpha: float = 0.05) -> pd.DataFrame:
        """Paired comparisons on one per-user ``metric`` with Holm's correction over the pairs.

        ``pairs``: ``"all"`` (every pair of models, in leaderboard order) or ``"best"`` (the model
        with the highest mean ``metric`` against each other one: use a column where higher is
        better). ``metric`` must be a per-user column (ndcg, recall, ... for ranking protocols;
        ``squared_error`` for P2; ``log_loss`` for P4). Columns of the answer: ``model_a, model_b,
        mean_diff, low, high, p_value, p_holm, significant`` (``p_holm <= alpha``), with
        ``mean_diff`` the mean of a - b over users and ``p_value`` Wilcoxon's signed-rank test.
        """
        check_fraction(alpha=alpha)
        missing = [m for m in self.models if metric not in self.per_user[m].columns]
        if missing:
            raise ValueError(f"metric {metric!r} has no per-user values for {missing}; per-user "
                             f"columns: {list(self.per_user[self.models[0]].columns)}")
        means = {m: self.per_user[m][metric].mean() for m in self.models}
        if pairs == "all":
            chosen = list(itertools.combinations(self.models, 2))
        elif pairs == "best":
            best = max(means, key=means.get)
            chosen = [(best, m) for m in self.models if m != best]
        else:
            raise ValueError(f"pairs={pairs!r}: expected 'all' or 'best'")
        if not chosen:
            raise ValueError("significance needs at least two models")
        rows = [{"model_a": a, "model_b": b,
                 **paired_difference(self.per_user[a][metric], self.per_user[b][metric],
                                     self.n_boot, self.confidence, self.random_state)}
                for a, b in chosen]
        table = pd.DataFrame(rows)
        table["p_holm"] = holm(table["p_value"].to_numpy())
        table["significant"] = table["p_holm"] <= alpha
        return table

    def leader(self, metric: str) -> dict[str, Any]:
        """The model with the highest mean per-user ``metric`` and how far ahead of the next one
        it is: ``model, value, low, high`` (its interval), ``runner_up``, ``mean_diff, diff_low,
        diff_high, p_holm`` (the paired difference leader - runner-up, Holm-corrected over the
        leader's comparisons with every other model) and ``fit_seconds``. Equal means go to the
        model listed first. Needs two or more models and a per-user ``metric`` that the frame reports
        and where higher is better (ndcg, recall, hit_rate, ...; not P2's errors or P4's log loss)."""
        reported = set(self.frame["metric"])
        if metric not in reported:
            raise ValueError(f"leader: metric {metric!r} is not on this board; it has {sorted(reported)}")
        tests = self.significance(metric, pairs="best")
        best = tests["model_a"].iloc[0]
        rest = tests.set_index("model_b")
        runner_up = max(rest.index, key=lambda m: (self.per_user[m][metric].mean(), -self.models.index(m)))
        row = self.frame[(self.frame["model"] == best) & (self.frame["metric"] == metric)].iloc[0]
        test = rest.loc[runner_up]
        return {"model": best, "value": float(row["value"]), "low": float(row["low"]), "high": float(row["high"]),
                "runner_up": runner_up, "mean_diff": float(test["mean_diff"]), "diff_low": float(test["low"]),
                "diff_high": float(test["high"]), "p_holm": float(test["p_holm"]),
                "fit_seconds": float(self.times.loc[best, "fit_seconds"])}

    def to_markdown(self, metrics: Sequence[str] | None = None, digits: int = 4) -> str:
        """A Markdown page: the table with intervals, then the times."""
        table = self.table(metrics, digits)
        times = self.times.round(2)
        k = "" if self.k is None else f" (K = {self.k})"
        stopped = [] if self.failure is None else [
            "**The run failed**; the models below finished before it stopped:", "",
            "```", self.failure, "```", ""]
        lines = [f"# Leaderboard: {self.protocol}{k}", "", *stopped,
                 f"Values with {self.confidence:.0%} percentile-bootstrap intervals over "
                 f"{'rows' if self.protocol == 'P4' else 'users'} ({self.n_boot} resamples, random_state "
                 f"{self.random_state}); catalogue-level metrics have no interval.", "",
                 _markdown(table), "", "## Times (seconds)", "", _markdown(times), ""]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: settings, ``rows`` (the tidy frame) and ``times``; NaN as null."""
        rows = self.frame.astype(object).where(self.frame.notna(), None).to_dict("records")
        times = self.times.reset_index()
        times = times.astype(object).where(times.notna(), None).to_dict("records")
        failure = {} if self.failure is None else {"failure": self.failure}
        return {"protocol": self.protocol, "k": self.k, "n_boot": self.n_boot,
                "confidence": self.confidence, "random_state": self.random_state, **failure, "rows": rows,
                "times": times}

    def write(self, folder: str | os.PathLike[str], name: str = "leaderboard",
              metrics: Sequence[str] | None = None) -> tuple[Path, Path]:
        """Write ``{name}.md`` and ``{name}.json`` into ``folder`` (created if needed); returns
        both paths.

        Both texts are made first and written to temporary files beside the targets; then the
        ``.md`` is renamed into place and the ``.json`` last (:func:`reclib.io.atomic_write`).
        Both carry the same ``run_id``, a hash of the JSON content, so a reader can tell a mixed
        pair (a new ``.md`` beside an old ``.json`` after a crash between the two renames).
        """
        folder = Path(folder)
        payload = self.to_json()
        run_id = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]
        data = (json.dumps({"run_id": run_id, **payload}, indent=1) + "\n").encode()
        text = f"{self.to_markdown(metrics)}\nrun id: `{run_id}`\n".encode()
        md, js = folder / f"{name}.md", folder / f"{name}.json"
        with atomic_write(js) as js_tmp, atomic_write(md) as md_tmp:   # md renamed first
            md_tmp.write_bytes(text)
            js_tmp.write_bytes(data)
        return md, js

    def __repr__(self) -> str:
        return (f"Leaderboard({self.protocol}, {len(self.models)} models, "
                f"{self.frame['metric'].nunique()} metrics)")


def _cell(row: pd.Series, digits: int) -> str:
    if pd.isna(row["low"]):
        return f"{row['value']:.{digits}f}"
    return f"{row['value']:.{digits}f} [{row['low']:.{digits}f}, {row['high']:.{digits}f}]"


def _markdown(table: pd.DataFrame) -> str:
    """A pipe table (pandas' ``to_markdown`` needs the optional ``tabulate``)."""
    header = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([str(i)] + [str(v) for v in row]) + " |"
              for i, row in zip(table.index, table.itertuples(index=False))]
    return "\n".join(lines)


def _ranking_extras(result: EvaluationResult, train: pd.DataFrame, test: pd.DataFrame,
                    item_vectors: Mapping[str, pd.DataFrame], expected: pd.DataFrame | None,
                    user_col: str, item_col: str) -> tuple[pd.DataFrame, dict[str, float]]:
    """Per-user beyond-accuracy columns and catalogue-level values of one ranking result."""
    top = result.top_items
    users = top.index
    seen = train[train[user_col].isin(users)]
    # popularity as in evaluate_scores: share of the evaluated users with the item in train
    share = seen.groupby(item_col).size() / len(users)
    catalogue = pd.Index(pd.unique(pd.concat([train[item_col], test[item_col]])))
    counts = train.groupby(item_col).size().reindex(catalogue, fill_value=0)
    codes = catalogue.get_indexer(top.to_numpy().ravel()).reshape(top.shape)
    if (codes < 0).any():
        raise ValueError("some recommended items are neither in train nor in test")
    columns = {
        "novelty": per_user_novelty(codes, share.reindex(catalogue, fill_value=0.0).to_numpy()),
        "pop_percentile": popularity_percentile(counts.to_numpy())[codes].mean(axis=1)}
    for name, vectors in item_vectors.items():
        rows = vectors.index.get_indexer(top.to_numpy().ravel())
        if (rows < 0).any():
            raise ValueError(f"item_vectors[{name!r}] has no row for "
                             f"{int((rows < 0).sum())} recommended item(s)")
        columns[f"diversity_{name}"] = per_user_diversity(rows.reshape(top.shape),
                                                          vectors.to_numpy(np.float64))
    if expected is not None:
        pairs = pd.MultiIndex.from_frame(test[[user_col, item_col]])
        flat = pd.MultiIndex.from_arrays([np.repeat(users, top.shape[1]), top.to_numpy().ravel()])
        hits = flat.isin(pairs).reshape(top.shape)
        exp = expected.reindex(users)
        if exp.isna().any(axis=None):
            raise ValueError("expected lists must cover every evaluated user")
        exp_codes = catalogue.get_indexer(exp.to_numpy().ravel()).reshape(exp.shape)
        columns["serendipity"] = serendipity(hits, codes, exp_codes)
    extra = pd.DataFrame(columns, index=users)
    catalogue_level = {"gini": gini_index(codes, len(catalogue))}
    return extra, catalogue_level


class LeaderboardFailed(RuntimeError):
    """An entry of :func:`leaderboard` raised while fitted or evaluated (the error is chained).

    ``entry``: its name; ``partial``: the :class:`Leaderboard` of the entries that finished
    before it (``None`` when none did); ``paths``: the files the partial board went to.
    """

    def __init__(self, message: str, entry: str, partial: Leaderboard | None,
                 paths: tuple[Path, ...]) -> None:
        super().__init__(message)
        self.entry, self.partial, self.paths = entry, partial, paths


def _evaluate_entry(name: str, model: Any, kwargs: Mapping[str, Any], protocol: Protocol,
                    train: pd.DataFrame, test: pd.DataFrame, fit: bool,
                    item_vectors: Mapping[str, pd.DataFrame], expected: pd.DataFrame | None,
                    boot: dict[str, Any], user_col: str, item_col: str) -> tuple[
                        list[dict[str, Any]], pd.DataFrame, dict[str, Any], EvaluationResult]:
    """Fit (with ``fit``) and evaluate one entry: its frame rows, per-user values, times, result."""
    start = time.perf_counter()
    if fit and hasattr(model, "fit"):
        model.fit(train, **kwargs)
    fitted = time.perf_counter()
    result = protocol.evaluate(model, train, test)
    evaluated = time.perf_counter()
    fit_seconds = fitted - start if fit else float(getattr(model, "fit_seconds_", np.nan))
    times = {"model": name, "fit_seconds": fit_seconds, "eval_seconds": evaluated - fitted}
    users, catalogue_level = protocol.units(result), {}
    if result.top_items is not None:                  # a ranking: beyond-accuracy values as well
        extra, catalogue_level = _ranking_extras(result, train, test, item_vectors, expected,
                                                 user_col, item_col)
        users = pd.concat([users, extra], axis=1)
        values = result.values
        catalogue_level = {"coverage": values["coverage"], **catalogue_level,
                           "popularity_bias": values["popularity_bias"]}
    table = protocol.intervals(result, users, **boot)
    rows = [{"model": name, "metric": metric, **row} for metric, row in table.iterrows()]
    rows += [{"model": name, "metric": metric, "value": value, "low": np.nan, "high": np.nan}
             for metric, value in catalogue_level.items()]
    return rows, users, times, result


def leaderboard(models: Sequence[Entry] | Mapping[str, Any], protocol: Protocol,
                train: pd.DataFrame, test: pd.DataFrame, *, fit: bool = True,
                item_vectors: Mapping[str, pd.DataFrame] | None = None,
                expected: pd.DataFrame | None = None, n_boot: int = 1000,
                confidence: float = 0.95, random_state: int = 42, verbose: int = 0,
                user_col: str = "user_id", item_col: str = "item_id",
                output_dir: str | os.PathLike[str] | None = None,
                output_name: str = "leaderboard",
                metrics: Sequence[str] | None = None) -> Leaderboard:
    """Fit each model on ``train``, evaluate it on ``test`` with ``protocol``, add intervals.

    Parameters
    ----------
    - models: ``[(name, model), (name, model, fit_kwargs), ...]`` or a mapping name -> model.
      With ``fit`` each model with a ``fit`` method is fitted as ``model.fit(train,
      **fit_kwargs)`` (e.g. ``{"item_features": features}`` for content models); a model
      without one (P4: an array of probabilities or a function of ``test``) is used as is.
    - protocol: one of P1-P5 (or a variant from ``with_params``); for P3 pass the history the model
      was fitted on as ``train`` (``split.train``: everything before each user's test event).
    - train, test: the protocol's split.
    - item_vectors: ranking only: name -> DataFrame (index: raw item ids, rows: vectors) for
      intra-list diversity columns ``diversity_<name>``; a row for every item a model can
      recommend (the protocol's candidates, else every item of ``train``).
    - expected: ranking only: users x K raw item ids of a primitive model (e.g. MostPopular's
      ``top_items``) for the serendipity column; a list for every user of ``test``.
    - n_boot, confidence, random_state: bootstrap settings (one seed: every model sees the same users).
    - verbose: 1 or 2 show a progress bar over the models (``check_verbose``).
    - output_dir: when given, the board is written there with :meth:`Leaderboard.write` as
      ``{output_name}.md`` / ``.json`` (the table limited to ``metrics``, all when ``None``),
      and stale ``{output_name}-failed.*`` files are removed; the folder is checked (created,
      written to) before any model is fitted.

    Everything above is checked before the first fit. Returns a :class:`Leaderboard`; raises
    :class:`LeaderboardFailed` (chaining the entry's error) when an entry fails.
    """
    check_verbose(verbose)
    chosen = entries(models)
    boot = {"n_boot": n_boot, "confidence": confidence, "random_state": random_state}
    item_vectors = {} if item_vectors is None else item_vectors
    check_inputs(protocol, train, test, fit, item_vectors, expected, user_col, item_col, metrics,
                 output_name, boot)
    folder = None if output_dir is None else writable_folder(output_dir)
    item_vectors = dict(item_vectors)
    rows, per_user, times, results = [], {}, [], {}

    def board(failure: str | None = None) -> Leaderboard:
        frame = pd.DataFrame(rows, columns=["model", "metric", "value", "low", "high"])
        frame[["value", "low", "high"]] = frame[["value", "low", "high"]].astype(np.float64)
        return Leaderboard(protocol.name, protocol.k, frame, per_user,
                           pd.DataFrame(times, columns=["model", "fit_seconds", "eval_seconds"])
                           .set_index("model"), results, n_boot, confidence, random_state, failure)

    for name, model, kwargs in progress(chosen, verbose, desc=f"{protocol.name} leaderboard"):
        try:
            entry = _evaluate_entry(name, model, kwargs, protocol, train, test, fit,
                                    item_vectors, expected, boot, user_col, item_col)
        except Exception as err:
            failure = f"model {name!r} ({type(model).__name__}) failed: {type(err).__name__}: {err}"
            partial = board(failure) if results else None
            paths = () if folder is None or partial is None else partial.write(
                folder, f"{output_name}-failed", metrics)
            kept = (f"; the {len(results)} model(s) that finished ({', '.join(results)}) are in "
                    f"the error's .partial" + (f" and in {paths[0]}" if paths else "")
                    if results else "; no model had finished")
            raise LeaderboardFailed(failure + kept, name, partial, paths) from err
        rows += entry[0]
        per_user[name], results[name] = entry[1], entry[3]
        times.append(entry[2])
    done = board()
    if folder is not None:
        done.write(folder, output_name, metrics)
        for suffix in (".md", ".json"):
            (folder / f"{output_name}-failed{suffix}").unlink(missing_ok=True)
    return done

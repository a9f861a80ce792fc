"""The evaluation protocols P1-P5 as objects: split recipe, validation carve-out, candidates, metrics.

Every notebook, benchmark and experiment evaluates through these five objects instead of re-typing
the split calls, so a protocol is defined once (seed 42 everywhere)::

    train, test = P1.split(ratings)               # P3 and P4 return (train, valid, test)
    fit, valid = P1.validation_split(train)       # the same recipe applied to train (tuning)
    result = P1.evaluate(model.fit(train), train, test)
    result.values                                 # Series metric -> value (result.frame: tidy)
    result.per_user                               # users x metrics (for confidence intervals)

======  =================  ==========================================  =================================
name    task               split (``split``)                           metrics (``metrics``)
======  =================  ==========================================  =================================
P1      top-N, implicit    per-user stratified 75/25                   precision, recall, ndcg, map,
                           (:func:`~reclib.data.stratified_split`)     hit_rate @10, coverage, novelty
P2      rating prediction  random 80/20 (:func:`~reclib.data.random_   rmse, mae
                           split`)
P3      next item          per user by time: last = test, second-to-   hit_rate, ndcg, mrr @10
                           last = valid (:func:`~reclib.data.leave_
                           last_out`)
P4      click-through      label = rating >= 4, random 80/10/10        auc, log_loss
                           (:func:`~reclib.data.click_split`)
P5      cold-start items   20 % of items held out with all their       recall, ndcg @10 over the held-
                           interactions (:func:`~reclib.data.cold_     out items only
                           start_item_split`)
======  =================  ==========================================  =================================

Ranking protocols (P1, P3, P5) rank, for every test user, the candidate items not in the user's
``train`` rows: all items the model knows (P1, P3) or only the held-out items (P5). Their
``evaluate`` is :func:`~reclib.evaluation.ranking.ranking_result` with the protocol's ``k`` and
candidates, so its numbers are exactly those of :func:`~reclib.evaluation.evaluate_ranking`; the
tidy frame holds every ranking metric (the protocol's ``metrics`` are the headline ones).

Variants (another seed, a notebook parameter) are new objects: ``P5.with_params(test_item_fraction=
0.3)`` or ``P1.with_params(seed=seed)``; the module-level P1-P5 never change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reclib.checks import (ParameterTypeError, check_finite_array, check_fraction,
                           check_in_range, check_non_negative_int, check_positive_int,
                           require_columns)
from reclib.data.clicks import build_click_dataset, click_split
from reclib.data.movielens import MovieLens
from reclib.data.splits import (cold_start_item_split, leave_last_out, random_split,
                                stratified_split)
from reclib.evaluation import metrics as M
from reclib.evaluation.ranking import EvaluationResult, ranking_result

__all__ = ["P1", "P2", "P3", "P4", "P5", "PROTOCOLS", "ClickProtocol", "ColdStartProtocol",
           "NextItemProtocol", "Protocol", "RatingProtocol", "TopNProtocol"]

Frames = tuple[pd.DataFrame, ...]


def _ratings(data: object) -> pd.DataFrame:
    """The interaction frame of ``data``: a DataFrame as is, a :class:`MovieLens` its ratings."""
    if isinstance(data, MovieLens):
        return data.ratings
    if not isinstance(data, pd.DataFrame):
        raise ParameterTypeError(f"data must be a ratings DataFrame or a MovieLens, "
                                 f"got {type(data).__name__}")
    return data


@dataclass(frozen=True, kw_only=True)
class Protocol:
    """An evaluation protocol: how to split, how to carve validation out of train, what to report.

    Attributes: ``name`` ("P1"...), ``task`` (one line), ``metrics`` (headline metric names, as
    in the result frame), ``k`` (list length of ranking protocols, else ``None``), ``seed`` (of
    the split and of the validation carve-out; a non-negative int).
    """

    name: str
    task: str
    metrics: tuple[str, ...]
    k: int | None = None
    seed: int = 42

    def __post_init__(self) -> None:
        check_non_negative_int(seed=self.seed)
        if self.k is not None:
            check_positive_int(k=self.k)

    # -- the recipe -------------------------------------------------------------------------
    def split(self, data: object) -> Frames:
        """(train, test), or (train, valid, test) for P3 and P4."""
        raise NotImplementedError

    def validation_split(self, train: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(fit, valid) carved out of ``train`` with the protocol's own recipe and seed."""
        raise ValueError(f"{self.name}.split already returns a validation part "
                         f"(train, valid, test); tune on that instead of carving one out of train")

    def candidates(self, train: pd.DataFrame, test: pd.DataFrame,
                   item_col: str = "item_id") -> np.ndarray | None:
        """Raw item ids that may be ranked; ``None`` means every item the model knows."""
        return None

    def evaluate(self, model: Any, train: pd.DataFrame, test: pd.DataFrame,
                 **extra: Any) -> EvaluationResult:
        """Evaluate ``model`` on ``test`` (``train`` = what it was fitted on); see the subclass."""
        raise NotImplementedError

    def compare(self, models: Mapping[str, Any], train: pd.DataFrame, test: pd.DataFrame,
                **extra: Any) -> pd.DataFrame:
        """One row per named, fitted model and one column per metric: the results table of a
        notebook, every model evaluated the same way (``extra`` as in :meth:`evaluate`)."""
        if not isinstance(models, Mapping) or not models:
            raise ValueError(f"models must be a non-empty mapping name -> fitted model, got {models!r:.80}")
        return pd.DataFrame({name: self.evaluate(model, train, test, **extra).values
                             for name, model in models.items()}).T

    def with_params(self, **changes: Any) -> Protocol:
        """A copy with some fields changed (checked again), e.g. ``P1.with_params(seed=7)``."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, kw_only=True)
class _RankingProtocol(Protocol):
    """Top-K ranking over the candidates not in each user's ``train`` rows."""

    k: int | None = 10

    def evaluate(self, model: Any, train: pd.DataFrame, test: pd.DataFrame,
                 **extra: Any) -> EvaluationResult:
        """:func:`~reclib.evaluation.ranking.ranking_result` at ``self.k`` over the candidates.

        ``model`` is a fitted recommender (public interface: ``score(user_ids)``); ``train`` the
        rows whose items are masked per user; ``extra``: ``item_vectors``, ``batch_size``,
        ``user_col``, ``item_col`` as for ``ranking_result``. Returns the tidy frame (every
        ranking metric), ``per_user`` (users x precision..mrr) and ``top_items`` (raw ids).
        """
        item_col = extra.get("item_col", "item_id")
        return ranking_result(model, train, test, k=self.k,
                              candidates=self.candidates(train, test, item_col), **extra)


@dataclass(frozen=True, kw_only=True)
class TopNProtocol(_RankingProtocol):
    """P1: per-user stratified random split (each user's rows shuffled, the first
    ``round(train_size * n)`` to train); the validation carve-out is the same split of train."""

    train_size: float = 0.75

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction(train_size=self.train_size)

    def split(self, data: object) -> Frames:
        """(train, test) = ``stratified_split(ratings, train_size, seed=seed)``."""
        return stratified_split(_ratings(data), train_size=self.train_size, seed=self.seed)

    def validation_split(self, train: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(fit, valid) = ``stratified_split(train, train_size, seed=seed)``."""
        return stratified_split(train, train_size=self.train_size, seed=self.seed)


@dataclass(frozen=True, kw_only=True)
class NextItemProtocol(_RankingProtocol):
    """P3: per user by timestamp (ties by item id), last row = test, second-to-last = valid.

    ``evaluate(model, history, test)`` masks each user's ``history`` rows: pass ``train`` when
    validating on ``valid``, and ``pd.concat([train, valid])`` (what the model was refitted on)
    when testing, so a user's earlier items are never ranked again.
    """

    min_history: int = 3

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int(min_history=self.min_history)
        if self.min_history < 3:
            raise ValueError(f"min_history must be an integer >= 3 (one row each for train, "
                             f"validation and test), got {self.min_history!r}")

    def split(self, data: object) -> Frames:
        """(train, valid, test) = ``leave_last_out(ratings, min_history=min_history)``."""
        return leave_last_out(_ratings(data), min_history=self.min_history)


@dataclass(frozen=True, kw_only=True)
class ColdStartProtocol(_RankingProtocol):
    """P5: ``round(test_item_fraction * n_items)`` random items held out with all their
    interactions; only the held-out items are ranked (a content model must place them)."""

    test_item_fraction: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction(test_item_fraction=self.test_item_fraction)

    def split(self, data: object) -> Frames:
        """(train, test) = ``cold_start_item_split(ratings, test_item_fraction, seed=seed)``."""
        return cold_start_item_split(_ratings(data), test_item_fraction=self.test_item_fraction,
                                     seed=self.seed)

    def validation_split(self, train: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(fit, valid) = ``cold_start_item_split(train, test_item_fraction, seed=seed)``."""
        return cold_start_item_split(train, test_item_fraction=self.test_item_fraction,
                                     seed=self.seed)

    def candidates(self, train: pd.DataFrame, test: pd.DataFrame,
                   item_col: str = "item_id") -> np.ndarray:
        """The held-out items: the sorted distinct items of ``test``."""
        require_columns(test, item_col)
        return np.sort(pd.unique(test[item_col]))


# -- pointwise protocols ----------------------------------------------------------------------
def _pointwise_values(name: str, source: Any, test: pd.DataFrame,
                      call: Callable[[Any], object]) -> np.ndarray:
    """One finite value per ``test`` row from ``source`` (an array, or a model via ``call``)."""
    if isinstance(source, (np.ndarray, pd.Series, list, tuple)):
        values = source
    else:
        values = call(source)
    values = check_finite_array(name, values)
    if values.shape != (len(test),):
        raise ValueError(f"{name} must hold one value per test row ({len(test)},), "
                         f"got shape {values.shape}")
    return values


def _tidy(values: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame({"metric": list(values), "k": None, "value": list(values.values())})


@dataclass(frozen=True, kw_only=True)
class RatingProtocol(Protocol):
    """P2: a random ``test_size`` share of all ratings to test; RMSE and MAE of the predictions.

    The validation carve-out is the same split of train (``random_split(train, test_size)``).
    """

    test_size: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction(test_size=self.test_size)

    def split(self, data: object) -> Frames:
        """(train, test) = ``random_split(ratings, test_size, seed=seed)``."""
        return random_split(_ratings(data), test_size=self.test_size, seed=self.seed)

    def validation_split(self, train: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(fit, valid) = ``random_split(train, test_size, seed=seed)``."""
        return random_split(train, test_size=self.test_size, seed=self.seed)

    def evaluate(self, model: Any, train: pd.DataFrame, test: pd.DataFrame,
                 user_col: str = "user_id", item_col: str = "item_id",
                 rating_col: str = "rating") -> EvaluationResult:
        """RMSE and MAE of ``model.predict(test users, test items)`` against ``test`` ratings.

        ``model`` is a fitted rating model (``predict(user_ids, item_ids)``) or an array of
        predictions, one per ``test`` row in order. ``train`` is not used (uniform signature).
        ``per_user`` (index: user ids) holds additive columns ``n`` (ratings), ``squared_error``
        and ``absolute_error`` (sums over the user's ratings): RMSE = sqrt(sum squared_error /
        sum n), MAE = sum absolute_error / sum n, so resampling users gives confidence intervals.
        """
        require_columns(test, user_col, item_col, rating_col)

        def call(source: Any) -> object:
            if not hasattr(source, "predict"):
                raise ParameterTypeError(f"model must be a rating model with predict(user_ids, "
                                         f"item_ids) or an array of predictions, got "
                                         f"{type(source).__name__}")
            return source.predict(test[user_col].to_numpy(), test[item_col].to_numpy())

        pred = _pointwise_values("predictions", model, test, call)
        truth = check_finite_array(f"test column {rating_col!r}", test[rating_col])
        error = pred - truth
        per_user = (pd.DataFrame({user_col: test[user_col].to_numpy(), "n": 1,
                                  "squared_error": error ** 2, "absolute_error": np.abs(error)})
                    .groupby(user_col, sort=False).sum())
        return EvaluationResult(_tidy({"rmse": M.rmse(truth, pred), "mae": M.mae(truth, pred)}),
                                per_user)


@dataclass(frozen=True, kw_only=True)
class ClickProtocol(Protocol):
    """P4: every rating an example with label ``rating >= threshold`` plus user and item
    features (:func:`~reclib.data.build_click_dataset`), split at random 80/10/10."""

    threshold: float = 4.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_in_range("threshold", self.threshold)

    def split(self, data: object) -> Frames:
        """(train, valid, test) = ``click_split(clicks, seed=seed)``; ``data`` is a click frame
        (with ``label``) or a :class:`MovieLens`, turned into one with ``threshold`` first."""
        if isinstance(data, MovieLens):
            data = build_click_dataset(data, threshold=self.threshold)
        return click_split(data, seed=self.seed)

    def evaluate(self, model: Any, train: pd.DataFrame, test: pd.DataFrame,
                 user_col: str = "user_id", label_col: str = "label",
                 eps: float = 1e-7) -> EvaluationResult:
        """AUC and log loss (nats) of predicted click probabilities against ``test`` labels.

        ``model`` is an array of probabilities, one per ``test`` row in order (e.g.
        ``sigmoid(keras_model(features))`` as in notebook 07), an object with
        ``predict_proba(test)`` (scikit-learn style; of a 2-D answer column 1 is taken), or a
        function ``f(test) -> probabilities``. ``train`` is not used (uniform signature).
        ``per_user`` (index: user ids) holds additive columns ``n`` (examples), ``positives``
        and ``log_loss`` (summed, probabilities clipped to ``[eps, 1 - eps]`` as in
        :func:`~reclib.evaluation.log_loss`); AUC is not additive over users.
        """
        require_columns(test, user_col, label_col)

        def call(source: Any) -> object:
            if hasattr(source, "predict_proba"):
                prob = np.asarray(source.predict_proba(test))
                return prob[:, 1] if prob.ndim == 2 else prob
            if callable(source):
                return source(test)
            raise ParameterTypeError(f"model must be an array of probabilities, an object with "
                                     f"predict_proba(test) or a function of test, got "
                                     f"{type(source).__name__}")

        prob = _pointwise_values("probabilities", model, test, call)
        labels = test[label_col].to_numpy()
        values = {"auc": M.auc(labels, prob), "log_loss": M.log_loss(labels, prob, eps=eps)}
        clipped = np.clip(prob, eps, 1 - eps)
        loss = -(labels * np.log(clipped) + (1 - labels) * np.log1p(-clipped))
        per_user = (pd.DataFrame({user_col: test[user_col].to_numpy(), "n": 1,
                                  "positives": labels, "log_loss": loss})
                    .groupby(user_col, sort=False).sum())
        return EvaluationResult(_tidy(values), per_user)


P1 = TopNProtocol(name="P1", task="top-N recommendation from implicit feedback (ML-100K)",
                  metrics=("precision", "recall", "ndcg", "map", "hit_rate", "coverage", "novelty"))
P2 = RatingProtocol(name="P2", task="rating prediction (ML-100K)", metrics=("rmse", "mae"))
P3 = NextItemProtocol(name="P3", task="next-item prediction (ML-100K, leave last out)",
                      metrics=("hit_rate", "ndcg", "mrr"))
P4 = ClickProtocol(name="P4", task="click-through prediction (ML-100K, label rating >= 4)",
                   metrics=("auc", "log_loss"))
P5 = ColdStartProtocol(name="P5", task="cold-start items: rank only the held-out items (ML-100K)",
                       metrics=("recall", "ndcg"))

#: the five protocols by name
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (P1, P2, P3, P4, P5)}

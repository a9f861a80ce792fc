"""The pointwise protocols: P2 (rating prediction: RMSE, MAE) and P4 (click-through: AUC, log
loss), with the intervals each needs (ratios of sums over users; AUC over examples)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reclib.checks import (ParameterTypeError, check_finite_array, check_fraction, check_in_range,
                           require_columns)
from reclib.data.clicks import build_click_dataset, click_split
from reclib.data.movielens import MovieLens
from reclib.data.splits import random_split
from reclib.evaluation import metrics as M
from reclib.evaluation.protocol_base import Protocol, Split
from reclib.evaluation.ranking import EvaluationResult
from reclib.evaluation.uncertainty import bootstrap_auc, bootstrap_interval, bootstrap_ratio

__all__ = ["ClickProtocol", "RatingProtocol"]


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

    ``split.fit`` and ``split.valid`` are the same split of train (``random_split(train, test_size)``).
    """

    test_size: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction(test_size=self.test_size)

    def _recipe(self, ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(train, test) = ``random_split(ratings, test_size, random_state=random_state)``."""
        return random_split(ratings, test_size=self.test_size, random_state=self.random_state)

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

    def intervals(self, result: EvaluationResult, units: pd.DataFrame | None = None,
                  n_boot: int = 1000, confidence: float = 0.95, random_state: int = 42) -> pd.DataFrame:
        """RMSE and MAE with intervals resampling users: ratios of per-user sums
        (:func:`~reclib.evaluation.bootstrap_ratio`); ``units`` as for every protocol."""
        users = self.units(result) if units is None else units
        rows = {metric: bootstrap_ratio(users[column], users["n"], sqrt=sqrt, n_boot=n_boot,
                                        confidence=confidence, random_state=random_state)
                for metric, column, sqrt in (("rmse", "squared_error", True),
                                             ("mae", "absolute_error", False))}
        table = pd.DataFrame(rows).T.rename_axis("metric")
        table["value"] = result.values[table.index]
        return table[["value", "low", "high"]]


@dataclass(frozen=True, kw_only=True)
class ClickProtocol(Protocol):
    """P4: every rating an example with label ``rating >= threshold`` plus user and item
    features (:func:`~reclib.data.build_click_dataset`), split at random 80/10/10."""

    threshold: float = 4.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_in_range("threshold", self.threshold)

    def split(self, data: object) -> Split:
        """``fit``, ``valid``, ``test`` = ``click_split(clicks, random_state=random_state)``
        (80/10/10) and ``train`` = ``pd.concat([fit, valid])``; ``data`` is a click frame (with
        ``label``) or a :class:`MovieLens`, turned into one with ``threshold`` first. Trained
        models fit on ``fit`` and stop early on ``valid``."""
        if isinstance(data, MovieLens):
            data = build_click_dataset(data, threshold=self.threshold)
        fit, valid, test = click_split(data, random_state=self.random_state)
        return Split.of_parts(fit, valid, test)

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
        examples = pd.DataFrame({"label": labels, "probability": clipped, "log_loss": loss},
                                index=test.index)
        return EvaluationResult(_tidy(values), per_user, examples=examples)

    def test_columns(self, user_col: str = "user_id", item_col: str = "item_id") -> tuple[str, ...]:
        """A user and a click ``label`` per test row."""
        return (user_col, "label")

    def units(self, result: EvaluationResult) -> pd.DataFrame:
        """The test examples (AUC is not additive over users): their ``log_loss``."""
        return result.examples[["log_loss"]]

    def intervals(self, result: EvaluationResult, units: pd.DataFrame | None = None,
                  n_boot: int = 1000, confidence: float = 0.95, random_state: int = 42) -> pd.DataFrame:
        """AUC (:func:`~reclib.evaluation.bootstrap_auc`) and log loss with intervals resampling
        the test examples; ``units`` as for every protocol."""
        boot = {"n_boot": n_boot, "confidence": confidence, "random_state": random_state}
        examples = self.units(result) if units is None else units
        auc = bootstrap_auc(result.examples["label"].to_numpy(np.float64),
                            result.examples["probability"].to_numpy(np.float64), **boot)
        loss = bootstrap_interval(examples[["log_loss"]], **boot).loc["log_loss"]
        table = pd.DataFrame({"auc": auc[["low", "high"]], "log_loss": loss[["low", "high"]]}).T
        table.insert(0, "value", result.values[table.index])
        return table.rename_axis("metric")

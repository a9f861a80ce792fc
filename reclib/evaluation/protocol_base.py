"""The base of the evaluation protocols (:mod:`reclib.evaluation.protocols`): the recipe every
protocol follows (split, validation carve-out, candidates, evaluate) and its uncertainty
(resampling units and bootstrap intervals)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reclib.checks import ParameterTypeError, check_non_negative_int, check_positive_int
from reclib.data.movielens import MovieLens
from reclib.evaluation.ranking import EvaluationResult
from reclib.evaluation.uncertainty import bootstrap_interval

__all__ = ["Frames", "Protocol"]

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
    in the result frame), ``k`` (list length of ranking protocols, else ``None``),
    ``random_state`` (the seed of the split and of the validation carve-out; a non-negative int).
    """

    name: str
    task: str
    metrics: tuple[str, ...]
    k: int | None = None
    random_state: int = 42

    def __post_init__(self) -> None:
        check_non_negative_int(random_state=self.random_state)
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

    def test_columns(self, user_col: str = "user_id", item_col: str = "item_id") -> tuple[str, ...]:
        """The columns :meth:`evaluate` needs in a test frame (train needs them too when ranking)."""
        return (user_col, item_col)

    # -- uncertainty ------------------------------------------------------------------------
    def units(self, result: EvaluationResult) -> pd.DataFrame:
        """What a bootstrap of ``result`` resamples and a paired test pairs: one row per unit, one
        column per value. Here (the ranking protocols) the users, ``result.per_user``."""
        return result.per_user

    def intervals(self, result: EvaluationResult, units: pd.DataFrame | None = None,
                  n_boot: int = 1000, confidence: float = 0.95, random_state: int = 42) -> pd.DataFrame:
        """Percentile-bootstrap intervals of ``result``'s metrics: a frame indexed by metric with
        ``value``, ``low``, ``high``. ``units``: :meth:`units` of the result by default, or
        those with more per-unit columns (e.g. beyond-accuracy values); here (the ranking
        protocols) every column is a mean over the users that have all of them (NaN rows
        dropped), its value the mean over the users that have it."""
        units = self.units(result) if units is None else units
        table = bootstrap_interval(units.dropna(axis=0, how="any"), n_boot=n_boot,
                                   confidence=confidence, random_state=random_state)
        return pd.DataFrame({"value": units.mean(), "low": table["low"], "high": table["high"]},
                            index=pd.Index(units.columns, name="metric"))

    def with_params(self, **changes: Any) -> Protocol:
        """A copy with some fields changed (checked again), e.g. ``P1.with_params(random_state=7)``."""
        return dataclasses.replace(self, **changes)



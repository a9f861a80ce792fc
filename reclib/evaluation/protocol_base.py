"""The base of the evaluation protocols (:mod:`reclib.evaluation.protocols`): the one split type
every protocol returns (:class:`Split`), the recipe every protocol follows (split, validation
carve-out, candidates, evaluate) and its uncertainty (resampling units and bootstrap intervals)."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reclib.checks import ParameterTypeError, check_non_negative_int, check_positive_int
from reclib.data.movielens import MovieLens
from reclib.evaluation.ranking import EvaluationResult
from reclib.evaluation.uncertainty import bootstrap_interval

__all__ = ["Protocol", "Split"]


@dataclass(frozen=True, eq=False)
class Split:
    """One protocol's split of the data, the same four parts for every protocol.

    ``train`` and ``test`` partition the data: ``train`` is everything a model may learn from
    (and what a ranking protocol masks per user), ``test`` is touched once. ``fit`` and ``valid``
    partition ``train``: the validation carve-out on which settings are chosen and training is
    stopped early. A reported model is refitted on ``train`` with the chosen settings, or, when
    it needs ``valid`` to stop early (P4's networks), fitted on ``fit``. P1, P2 and P5 carve
    ``fit`` and ``valid`` out of ``train`` with the protocol's own recipe and seed, when first
    read (so a split of data too small for a carve-out still gives train and test); P3's
    ``valid`` is each user's second-to-last event and P4's a random 10 % of the clicks, and their
    ``train`` is ``pd.concat([fit, valid])``. A split is not a tuple: its parts are read by name,
    never unpacked in the wrong order.

    ``carve_out``: ``train -> (fit, valid)``, called once, on the first read of either.
    """

    train: pd.DataFrame
    test: pd.DataFrame
    carve_out: Callable[[pd.DataFrame], tuple[pd.DataFrame, pd.DataFrame]] = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        for name in ("train", "test"):
            if not isinstance(getattr(self, name), pd.DataFrame):
                raise ParameterTypeError(f"Split.{name} must be a DataFrame, "
                                         f"got {type(getattr(self, name)).__name__}")
        if not callable(self.carve_out):
            raise ParameterTypeError(f"Split.carve_out must be a function train -> (fit, valid), "
                                     f"got {type(self.carve_out).__name__}")

    @functools.cached_property
    def _validation(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        try:
            fit, valid = self.carve_out(self.train)
        except ValueError as error:
            raise ValueError(f"the validation carve-out of train (Split.fit, Split.valid) is "
                             f"impossible: {error}") from error
        if len(fit) + len(valid) != len(self.train):
            raise ValueError(f"the validation carve-out must split Split.train's {len(self.train)} "
                             f"rows in two, got {len(fit)} + {len(valid)}")
        return fit, valid

    @property
    def fit(self) -> pd.DataFrame:
        """The part of ``train`` to fit on while choosing settings (or stopping early)."""
        return self._validation[0]

    @property
    def valid(self) -> pd.DataFrame:
        """The part of ``train`` to choose settings (or stop early) on."""
        return self._validation[1]

    @classmethod
    def of_parts(cls, fit: pd.DataFrame, valid: pd.DataFrame, test: pd.DataFrame) -> Split:
        """The split of a three-way recipe (P3, P4): ``train`` = ``pd.concat([fit, valid])``."""
        return cls(train=pd.concat([fit, valid]), test=test, carve_out=lambda train: (fit, valid))

    def __repr__(self) -> str:
        return f"Split(train={len(self.train):,} rows, test={len(self.test):,} rows)"


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
    def split(self, data: object) -> Split:
        """The :class:`Split` of ``data`` (a ratings frame or a :class:`MovieLens`). Here (P1,
        P2, P5) ``train`` and ``test`` come from the protocol's recipe, and ``fit`` and ``valid``
        from the same recipe applied to ``train`` with the same seed, when first read (see the
        subclass)."""
        train, test = self._recipe(_ratings(data))
        return Split(train=train, test=test, carve_out=self._recipe)

    def _recipe(self, ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(kept, held out) of ``ratings`` by the protocol's split recipe and seed."""
        raise NotImplementedError

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



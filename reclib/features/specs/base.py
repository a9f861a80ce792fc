"""The feature spec every kind derives from: declare, fit on training rows, transform any rows."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from reclib.features.specs.checks import check_frame

__all__ = ["FeatureSpec"]


@dataclass(frozen=True)
class FeatureSpec:
    """One declared feature (base class; the kinds below are frozen dataclasses).

    The declaration (name, options) is immutable; ``fit`` fills the spec's one mutable part, the
    learned-state dictionary (read through the attributes ending in ``_``), which is not part of
    the declaration: it is left out of equality, ``repr`` and :meth:`clone`. Subclasses implement
    ``_validate`` (check the column, return the value kind or ``None``), ``_learn``,
    ``_transform`` and ``fitted_state``; ``column`` is the frame column the feature reads (its
    name by default). How a Keras model reads a kind is :mod:`reclib.models.feature_inputs`.
    """

    name: str
    _fit_state: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def column(self) -> str:
        """The frame column this feature reads."""
        return self.name

    @property
    def fitted(self) -> bool:
        return bool(self.__dict__.get("_fit_state"))     # files saved before the field existed lack it

    def clone(self) -> FeatureSpec:
        """An unfitted copy of the declaration."""
        return dataclasses.replace(self)

    # public protocol
    def check(self, frame: pd.DataFrame, fitting: bool = False) -> str | None:
        """Check this feature's column of ``frame`` (module doc); after ``fit``, also its value
        kind against the kind seen at fit. Return the value kind (``None`` when not tracked)."""
        values = frame[self.column]
        kind = self._validate(values, f"column {self.column!r}")
        if not fitting and self.fitted:
            self._compare_kind(kind, values.dtype)
        return kind

    def fit(self, frame: pd.DataFrame) -> FeatureSpec:
        """Learn this feature's state from the training frame; return ``self``."""
        check_frame(frame, [self.column], fitting=True)
        return self._fit_checked(frame, self.check(frame, fitting=True))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """This feature's model input for every row of ``frame`` (shape and dtype per kind)."""
        self._require_fitted()
        check_frame(frame, [self.column], fitting=False)
        self.check(frame)
        return self._transform(frame)

    def fitted_state(self) -> dict[str, dict[str, Any]]:
        """Learned state for :class:`FeatureSpace`'s summary attributes: attribute -> {key: value}."""
        raise NotImplementedError

    # helpers for subclasses
    def _validate(self, values: pd.Series, what: str) -> str | None:
        raise NotImplementedError

    def _fit_checked(self, frame: pd.DataFrame, kind: str | None) -> FeatureSpec:
        """Learn from a frame ``check`` accepted (``kind``: the value kind it returned)."""
        state = self._learn(frame)
        state["kind"], state["dtype"] = kind, str(frame[self.column].dtype)
        self._fit_state.clear()
        self._fit_state.update(state)
        return self

    def _learn(self, frame: pd.DataFrame) -> dict[str, Any]:
        raise NotImplementedError

    def _transform(self, frame: pd.DataFrame) -> np.ndarray:
        raise NotImplementedError

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError(f"feature {self.name!r} is not fitted: call fit(train_frame) first")

    def _state(self, key: str) -> Any:
        self._require_fitted()
        return self._fit_state[key]

    @property
    def kind_(self) -> str | None:
        """The value kind seen at fit."""
        return self._state("kind")

    @property
    def dtype_(self) -> str:
        """The column dtype seen at fit."""
        return self._state("dtype")

    def _kind_state(self) -> dict[str, dict[str, Any]]:
        return {"kinds_": {self.column: self.kind_}, "dtypes_": {self.column: self.dtype_}}

    def _compare_kind(self, kind: str | None, dtype: object) -> None:
        seen = self.kind_
        if kind is None or seen is None or kind == seen:
            return
        raise ValueError(f"column {self.column!r} held {seen} values at fit (dtype {self.dtype_}) but "
                         f"holds {kind} values now (dtype {dtype}); convert it to the fitted kind, or every "
                         f"value would be unknown")

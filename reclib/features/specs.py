"""Declare features once; every feature-interaction model consumes the same inputs.

Four kinds (as in DeepCTR): :class:`Categorical` (one value per row; vocabulary learned from
training data, index 0 for values never seen there), :class:`MultiCategorical` (a list per row,
e.g. genres; padded to the longest list, 0 = padding or unknown), :class:`Numeric` (a number,
standardised with the training mean and standard deviation) and :class:`Vector` (a pretrained
dense vector per row, e.g. a 384-d BERT title embedding).

Each spec is polymorphic: it knows how to ``fit(frame)`` (learn its vocabulary, statistics, list
length or vector table), ``transform(frame)`` (its model input, a NumPy array), declare its
``keras_input()`` and ``embed`` itself into a field vector ``(b, dim)`` and a first-order logit
``(b, 1)``. :class:`FeatureSpace` is a container that loops over its specs calling those methods;
it fits *copies* of the declared specs, so one declaration can serve several spaces.

Checks, at ``fit`` and at ``transform`` alike (each error names the column, the count and the
first rows by index label):

- a missing value (NaN, ``None``, ``<NA>``) anywhere is an error; so is ±inf in a numeric column
  or in a float categorical column. There is no implicit "missing" category: fill or drop first.
- a (multi-)categorical column holds values of one *kind*: ``int``, ``float``, ``str``, ``bool``
  or ``object`` (one other Python type). A column mixing kinds (``1`` and ``"1"``) is an error,
  and the kind seen at ``fit`` is remembered: a column fitted on ints and transformed on floats
  raises instead of mapping every value to unknown. A numeric column may switch between int and
  float (both are read as float64), not to or from bool.
- a :class:`Vector` table is read once at ``fit``: every vector numeric, one-dimensional, finite
  in float32 and of one length.

The ``embed`` methods build Keras layers (Keras is imported when they run); the reusable layers
they need (``MaskedMeanPooling``) come in through their ``layers`` argument, the module
:mod:`reclib.models.layers`, since ``features`` sits left of ``models`` and must not import it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from reclib.checks import (ParameterTypeError, check_choice, check_non_negative, check_positive_int,
                           require_columns)

__all__ = ["Categorical", "FeatureSpace", "FeatureSpec", "MultiCategorical", "Numeric", "Vector"]

_COMBINERS = ("mean", "sum")
_KIND_OF = {"integer": "int", "floating": "float", "boolean": "bool", "string": "str"}
_MIXED = ("mixed", "mixed-integer", "mixed-integer-float")
_SHOWN = 5  # rows or values quoted in an error message


# -- shared helpers -------------------------------------------------------------------------------------------------

def _check_name(what: str, value: object) -> None:
    if not isinstance(value, str):
        raise ParameterTypeError(f"{what} must be a non-empty string, got {value!r} ({type(value).__name__})")
    if not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")


def _for_feature(name: str, check, **values: object) -> None:
    """Run a shared check and prefix its message with the feature name."""
    try:
        check(**values)
    except ValueError as err:  # ParameterTypeError included
        raise type(err)(f"feature {name!r}: {err}") from None


def _rows(index: pd.Index | np.ndarray, mask: np.ndarray) -> list:
    """The first few index labels where ``mask`` is true."""
    return np.asarray(index)[np.asarray(mask)][:_SHOWN].tolist()


def _value_kind(values: pd.Series, what: str) -> str | None:
    """Kind of a null-free Series: int, float, str, bool, object (one other type) or a pandas
    inference label such as ``datetime64``; ``None`` when empty. Raise if the values mix kinds."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        values = pd.Series(values.to_numpy(), index=values.index)
    label = pd.api.types.infer_dtype(values, skipna=False)
    if label == "empty":
        return None
    if label in _KIND_OF:
        return _KIND_OF[label]
    if label not in _MIXED:
        return label
    types = values.map(lambda v: type(v).__name__)
    counts = types.value_counts()
    if len(counts) == 1:
        return "object"
    minority = counts.index[-1]
    is_minority = (types == minority).to_numpy()
    raise ValueError(f"{what} mixes value types ({', '.join(f'{n} {t}' for t, n in counts.items())}); "
                     f"first {minority} values at rows {_rows(values.index, is_minority)}: "
                     f"{values[is_minority].head(_SHOWN).tolist()}. A column must hold one type "
                     f"(1 and '1' are different values): convert it first, e.g. with .astype(str)")


def _check_no_missing(values: pd.Series, what: str) -> None:
    missing = values.isna().to_numpy()
    if missing.any():
        raise ValueError(f"{what} holds {int(missing.sum())} missing value(s) (NaN/None/<NA>) at rows "
                         f"{_rows(values.index, missing)}; fill or drop them first")


def _check_finite_floats(values: pd.Series, kind: str | None, what: str) -> None:
    if kind != "float":
        return
    numbers = values.to_numpy(np.float64)
    bad = ~np.isfinite(numbers)
    if bad.any():
        raise ValueError(f"{what} holds {int(bad.sum())} infinite value(s) at rows {_rows(values.index, bad)}")


def _numeric_kind(dtype: object) -> str | None:
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    return None


def _check_frame(frame: pd.DataFrame, columns: Sequence[str], fitting: bool) -> None:
    """The columns are present, each once; a frame to fit on has rows."""
    needed = list(dict.fromkeys(columns))
    require_columns(frame, *needed)
    duplicated = [c for c in needed if int((frame.columns == c).sum()) > 1]
    if duplicated:
        raise ValueError(f"column {duplicated[0]!r} appears more than once in the frame")
    if fitting and len(frame) == 0:
        raise ValueError("fit needs a frame with at least one row, got an empty frame")


def _keras():
    import keras  # only the embedding side needs Keras

    return keras


def _check_embed_args(dim: int, l2: float) -> None:
    check_positive_int(dim=dim)
    check_non_negative(l2=l2)


# -- the spec protocol ----------------------------------------------------------------------------------------------

class FeatureSpec:
    """One declared feature (base class; the kinds below are frozen dataclasses).

    The declaration (name, options) is immutable; ``fit`` stores the learned state on the spec
    (attributes ending in ``_``). Subclasses implement ``_validate`` (check the column, return the
    value kind or ``None``), ``_fit``, ``_transform``, ``keras_input``, ``embed`` and
    ``fitted_state``; ``column`` is the frame column the feature reads (its name by default).
    """

    name: str

    @property
    def column(self) -> str:
        """The frame column this feature reads."""
        return self.name

    @property
    def fitted(self) -> bool:
        return "_fit_state" in self.__dict__

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
        _check_frame(frame, [self.column], fitting=True)
        return self._fit_checked(frame, self.check(frame, fitting=True))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """This feature's model input for every row of ``frame`` (shape and dtype per kind)."""
        self._require_fitted()
        _check_frame(frame, [self.column], fitting=False)
        self.check(frame)
        return self._transform(frame)

    def fitted_state(self) -> dict[str, dict[str, Any]]:
        """Learned state for :class:`FeatureSpace`'s summary attributes: attribute -> {key: value}."""
        raise NotImplementedError

    def keras_input(self):
        """The ``keras.Input`` this feature feeds, named like the feature (after ``fit``)."""
        raise NotImplementedError

    def embed(self, inputs, dim: int, l2: float, layers: ModuleType):
        """``inputs`` (this feature's Keras tensor) -> (field vector (b, dim), first-order logit (b, 1)).

        ``l2`` regularises the field embedding; ``layers`` is :mod:`reclib.models.layers`.
        """
        raise NotImplementedError

    # helpers for subclasses
    def _validate(self, values: pd.Series, what: str) -> str | None:
        raise NotImplementedError

    def _fit_checked(self, frame: pd.DataFrame, kind: str | None) -> FeatureSpec:
        """Learn from a frame ``check`` accepted (``kind``: the value kind it returned)."""
        state = self._learn(frame)
        state["kind"], state["dtype"] = kind, str(frame[self.column].dtype)
        object.__setattr__(self, "_fit_state", state)
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
        return self.__dict__["_fit_state"][key]

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


class _Vocabulary(FeatureSpec):
    """Shared by the categorical kinds: a vocabulary of string forms, index = position + 1."""

    @property
    def vocabulary_(self) -> list[str]:
        """Known values as strings, in string order (index = position + 1; 0 = unknown)."""
        return self._state("vocabulary")

    @property
    def vocabulary_size(self) -> int:
        """Embedding rows needed, the unknown index 0 included."""
        return len(self.vocabulary_) + 1

    def _embeddings(self, inputs, dim: int, l2: float, layers: ModuleType):
        """Field and first-order embeddings of the indices: (..., dim) and (..., 1), as
        ``layers.TableEmbedding`` (float32 gathers under mixed precision)."""
        _check_embed_args(dim, l2)
        keras = _keras()
        reg = keras.regularizers.L2(l2) if l2 else None
        vec = layers.TableEmbedding(self.vocabulary_size, dim, embeddings_regularizer=reg,
                                    name=f"{self.name}_embedding")(inputs)
        lin = layers.TableEmbedding(self.vocabulary_size, 1, embeddings_initializer="zeros",
                                    name=f"{self.name}_weight")(inputs)
        return vec, lin


@dataclass(frozen=True)
class Categorical(_Vocabulary):
    """One categorical value per row; ``min_count`` rarer values share the unknown index 0.

    Input: int32 indices ``(n,)``; field: an embedding ``(b, dim)``, first order: a weight per value.
    """

    name: str
    min_count: int = 1

    def __post_init__(self) -> None:
        _check_name("Categorical name", self.name)
        _for_feature(self.name, check_positive_int, min_count=self.min_count)

    def _validate(self, values: pd.Series, what: str) -> str | None:
        _check_no_missing(values, what)
        kind = _value_kind(values, what)
        _check_finite_floats(values, kind, what)
        return kind

    def _learn(self, frame: pd.DataFrame) -> dict[str, Any]:
        counts = frame[self.name].astype(str).value_counts()
        vocabulary = sorted(counts[counts >= self.min_count].index)
        if not vocabulary:
            raise ValueError(f"feature {self.name!r}: no value occurs min_count={self.min_count} times "
                             f"(the most frequent occurs {int(counts.max())} times); the vocabulary "
                             f"would be empty")
        return {"vocabulary": vocabulary}

    def _transform(self, frame: pd.DataFrame) -> np.ndarray:
        index = pd.Index(self.vocabulary_)
        return (index.get_indexer(frame[self.name].astype(str)) + 1).astype(np.int32)

    def fitted_state(self) -> dict[str, dict[str, Any]]:
        return {"vocabularies_": {self.name: self.vocabulary_}, **self._kind_state()}

    def keras_input(self):
        self._require_fitted()
        return _keras().Input(shape=(), dtype="int32", name=self.name)

    def embed(self, inputs, dim: int, l2: float, layers: ModuleType):
        vec, lin = self._embeddings(inputs, dim, l2, layers)
        return vec, _keras().ops.reshape(lin, (-1, 1))


@dataclass(frozen=True)
class MultiCategorical(_Vocabulary):
    """A list of categorical values per row, pooled by the model (``combiner``: mean or sum).

    Input: int32 indices ``(n, max_length)`` padded with 0; field: the masked mean (or sum) of the
    value embeddings ``(b, dim)``; first order: the same pooling of the values' weights.
    """

    name: str
    combiner: str = "mean"

    def __post_init__(self) -> None:
        _check_name("MultiCategorical name", self.name)
        _for_feature(self.name, lambda combiner: check_choice("combiner", combiner, _COMBINERS),
                     combiner=self.combiner)

    @property
    def max_length_(self) -> int:
        """List length of the input (the longest training list, at least 1)."""
        return self._state("max_length")

    def _validate(self, values: pd.Series, what: str) -> str | None:
        bad = values.map(lambda v: not isinstance(v, (list, tuple, np.ndarray))).to_numpy(bool)
        if bad.any():
            raise ValueError(f"{what} must hold lists; {int(bad.sum())} row(s) do not, first "
                             f"{_rows(values.index, bad)}: {values[bad].head(_SHOWN).tolist()}")
        lengths = values.map(len).to_numpy(np.int64)
        flat = pd.Series([x for v in values for x in v], dtype=object,
                         index=np.repeat(values.index.to_numpy(), lengths))
        what = f"{what} (list elements)"
        _check_no_missing(flat, what)
        kind = _value_kind(flat, what)
        _check_finite_floats(flat, kind, what)
        return kind

    def _learn(self, frame: pd.DataFrame) -> dict[str, Any]:
        return {"vocabulary": sorted({str(v) for values in frame[self.name] for v in values}),
                "max_length": max(1, int(frame[self.name].map(len).max()))}

    def _transform(self, frame: pd.DataFrame) -> np.ndarray:
        index = pd.Index(self.vocabulary_)
        width = self.max_length_
        rows = np.zeros((len(frame), width), dtype=np.int32)
        lists = [list(v)[:width] for v in frame[self.name]]
        lengths = np.array([len(v) for v in lists], dtype=np.int64)
        flat = [str(x) for v in lists for x in v]
        if flat:
            codes = index.get_indexer(flat) + 1
            r = np.repeat(np.arange(len(lists)), lengths)
            c = np.concatenate([np.arange(n) for n in lengths])
            rows[r, c] = codes
        return rows

    def fitted_state(self) -> dict[str, dict[str, Any]]:
        return {"vocabularies_": {self.name: self.vocabulary_}, "max_lengths_": {self.name: self.max_length_},
                **self._kind_state()}

    def keras_input(self):
        return _keras().Input(shape=(self.max_length_,), dtype="int32", name=self.name)

    def embed(self, inputs, dim: int, l2: float, layers: ModuleType):
        vec, lin = self._embeddings(inputs, dim, l2, layers)
        pooling = layers.MaskedMeanPooling(mean=self.combiner == "mean", name=f"{self.name}_pooling")
        mask = _keras().ops.not_equal(inputs, 0)
        return pooling([vec, mask]), pooling([lin, mask])


@dataclass(frozen=True)
class Numeric(FeatureSpec):
    """A real number per row, standardised with training statistics.

    Input: float32 ``(n, 1)``; field: a learned direction scaled by the value ``(b, dim)``;
    first order: a learned weight times the value.
    """

    name: str

    def __post_init__(self) -> None:
        _check_name("Numeric name", self.name)

    @property
    def stats_(self) -> tuple[float, float]:
        """Training (mean, standard deviation; 1 when constant)."""
        return self._state("stats")

    def _validate(self, values: pd.Series, what: str) -> str | None:
        kind = _numeric_kind(values.dtype)
        if kind is None:
            raise ValueError(f"{what} must be numeric (int, float or bool), got dtype {values.dtype}")
        numbers = values.to_numpy(np.float64, na_value=np.nan)
        bad = ~np.isfinite(numbers)
        if bad.any():
            raise ValueError(f"{what} holds {int(bad.sum())} missing or infinite value(s) "
                             f"(NaN/<NA>/±inf) at rows {_rows(values.index, bad)}: "
                             f"{values[bad].head(_SHOWN).tolist()}; fill or drop them first")
        return kind

    def _compare_kind(self, kind: str | None, dtype: object) -> None:
        if {kind, self.kind_} == {"int", "float"}:  # both read as float64
            return
        super()._compare_kind(kind, dtype)

    def _learn(self, frame: pd.DataFrame) -> dict[str, Any]:
        values = frame[self.name].to_numpy(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = float(values.mean()), float(values.std() or 1.0)
        if not (np.isfinite(mean) and np.isfinite(std)):
            raise ValueError(f"column {self.name!r}: mean {mean} or standard deviation {std} overflows; "
                             f"rescale the column")
        return {"stats": (mean, std)}

    def _transform(self, frame: pd.DataFrame) -> np.ndarray:
        mean, std = self.stats_
        values = frame[self.name].to_numpy(np.float64)
        with np.errstate(over="ignore"):
            scaled = ((values - mean) / std).astype(np.float32)
        bad = ~np.isfinite(scaled)
        if bad.any():
            raise ValueError(f"column {self.name!r}: {int(bad.sum())} value(s) overflow float32 once "
                             f"standardised (mean {mean:g}, std {std:g}), at rows {_rows(frame.index, bad)}")
        return scaled[:, None]

    def fitted_state(self) -> dict[str, dict[str, Any]]:
        return {"stats_": {self.name: self.stats_}, **self._kind_state()}

    def keras_input(self):
        self._require_fitted()
        return _keras().Input(shape=(1,), dtype="float32", name=self.name)

    def embed(self, inputs, dim: int, l2: float, layers: ModuleType):
        _check_embed_args(dim, l2)
        dense = _keras().layers.Dense
        vec = dense(dim, use_bias=False, name=f"{self.name}_direction")(inputs)
        lin = dense(1, use_bias=False, name=f"{self.name}_weight")(inputs)
        return vec, lin


@dataclass(frozen=True)
class Vector(FeatureSpec):
    """A pretrained vector per row, looked up by ``key`` (a column) in ``table`` (key -> vector).

    The table is validated and copied at ``fit``. Input: float32 ``(n, d)``; field: a linear
    projection ``(b, dim)``; first order: a linear function of the vector.
    """

    name: str
    key: str
    table: dict = field(repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        _check_name("Vector name", self.name)
        _check_name(f"feature {self.name!r}: key", self.key)
        if not isinstance(self.table, Mapping):
            raise ParameterTypeError(f"feature {self.name!r}: table must be a dict key -> vector, "
                                     f"got {type(self.table).__name__}")

    @property
    def column(self) -> str:
        return self.key

    @property
    def vectors_(self) -> tuple[pd.Index, np.ndarray]:
        """(keys Index, (n_keys, d) float32 matrix) read from the table at fit."""
        return self._state("vectors")

    def _validate(self, values: pd.Series, what: str) -> str | None:
        _check_no_missing(values, f"{what} (the key of vector feature {self.name!r})")
        return None

    def _learn(self, frame: pd.DataFrame) -> dict[str, Any]:
        where = f"feature {self.name!r}"
        if not self.table:
            raise ValueError(f"{where}: table is empty")
        rows, width = [], None
        for key, vector in self.table.items():
            try:
                array = np.asarray(vector)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{where}: the vector of key {key!r} is not an array ({err})") from None
            if array.dtype.kind not in "iuf":
                raise ValueError(f"{where}: the vector of key {key!r} must be numeric, got dtype {array.dtype}")
            if array.ndim != 1 or array.size == 0:
                raise ValueError(f"{where}: the vector of key {key!r} must be one-dimensional and non-empty, "
                                 f"got shape {array.shape}")
            if width is None:
                width, first = array.size, key
            elif array.size != width:
                raise ValueError(f"{where}: vectors must all have one length; key {first!r} has {width}, "
                                 f"key {key!r} has {array.size}")
            rows.append(array)
        with np.errstate(over="ignore"):
            matrix = np.stack(rows).astype(np.float32)
        bad = ~np.isfinite(matrix).all(axis=1)
        if bad.any():
            keys = [k for k, b in zip(self.table, bad) if b]
            raise ValueError(f"{where}: {int(bad.sum())} vector(s) hold NaN or ±inf (in float32), keys "
                             f"{keys[:_SHOWN]}")
        index = pd.Index(list(self.table), tupleize_cols=False)
        self._positions(frame, index)
        return {"vectors": (index, matrix)}

    def _positions(self, frame: pd.DataFrame, keys: pd.Index) -> np.ndarray:
        """Row of every key of ``frame`` in the table; raise on a key without a vector."""
        position = keys.get_indexer(frame[self.key])
        unknown = position < 0
        if unknown.any():
            values = list(dict.fromkeys(frame[self.key][unknown].tolist()))
            raise ValueError(f"feature {self.name!r}: no vector for {len(values)} {self.key} value(s), "
                             f"first {values[:_SHOWN]}")
        return position

    def _transform(self, frame: pd.DataFrame) -> np.ndarray:
        keys, matrix = self.vectors_
        return matrix[self._positions(frame, keys)]

    def _kind_state(self) -> dict[str, dict[str, Any]]:
        return {}  # the key column's kind is not tracked: an unknown key is an error anyway

    def fitted_state(self) -> dict[str, dict[str, Any]]:
        return {"vectors_": {self.name: self.vectors_}}

    def keras_input(self):
        return _keras().Input(shape=(self.vectors_[1].shape[1],), dtype="float32", name=self.name)

    def embed(self, inputs, dim: int, l2: float, layers: ModuleType):
        _check_embed_args(dim, l2)
        keras = _keras()
        reg = keras.regularizers.L2(l2) if l2 else None
        vec = keras.layers.Dense(dim, name=f"{self.name}_projection", kernel_regularizer=reg)(inputs)
        lin = keras.layers.Dense(1, use_bias=False, name=f"{self.name}_weight")(inputs)
        return vec, lin


Spec = FeatureSpec

_SUMMARIES = ("vocabularies_", "stats_", "max_lengths_", "kinds_", "dtypes_", "vectors_")


class FeatureSpace:
    """Fitted feature specifications (module doc): a container looping over its specs.

    ``fit`` fits unfitted copies of the declared specs (``specs`` then holds the fitted copies).
    After ``fit``, summaries gathered from the specs: ``vocabularies_`` (name -> list of known
    values as strings, in string order; index = position + 1), ``stats_`` (numeric name ->
    (mean, std)), ``max_lengths_`` (multi-valued name -> list length), ``kinds_`` and ``dtypes_``
    (column -> value kind and dtype seen at fit) and ``vectors_`` (vector name -> (keys Index,
    (n_keys, d) float32 matrix)).
    """

    def __init__(self, specs: Sequence[FeatureSpec]) -> None:
        if isinstance(specs, (str, bytes, Mapping)) or not isinstance(specs, Sequence):
            raise ParameterTypeError(f"specs must be a list of Categorical, MultiCategorical, Numeric or "
                                     f"Vector, got {type(specs).__name__}")
        if not specs:
            raise ValueError("specs is empty: declare at least one feature")
        for j, declared in enumerate(specs):
            if not isinstance(declared, FeatureSpec):  # a type check on the argument, not a dispatch
                raise ParameterTypeError(f"specs[{j}] must be a Categorical, MultiCategorical, Numeric or "
                                         f"Vector, got {declared!r} ({type(declared).__name__})")
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"feature names must be unique, got {names}")
        self.specs = list(specs)

    def _check(self, frame: pd.DataFrame, fitting: bool) -> list[str | None]:
        """Columns present and well-formed; at transform, also of the kinds seen at fit."""
        _check_frame(frame, [s.column for s in self.specs], fitting)
        return [s.check(frame, fitting) for s in self.specs]

    def fit(self, frame: pd.DataFrame) -> FeatureSpace:
        """Learn vocabularies, list lengths, numeric statistics and vector tables from the training
        frame; every column is checked before anything is learned."""
        fitted = FeatureSpace([s.clone() for s in self.specs])
        kinds = fitted._check(frame, fitting=True)
        summaries: dict[str, dict] = {attr: {} for attr in _SUMMARIES}
        for spec, kind in zip(fitted.specs, kinds):
            spec._fit_checked(frame, kind)
            for attr, values in spec.fitted_state().items():
                summaries[attr].update(values)
        self.specs = fitted.specs
        for attr, values in summaries.items():
            setattr(self, attr, values)
        return self

    def _require_fitted(self) -> None:
        if not hasattr(self, "vocabularies_"):
            raise RuntimeError("FeatureSpace is not fitted: call fit(train_frame) first")

    def vocabulary_size(self, name: str) -> int:
        """Embedding rows needed for a (multi-)categorical feature, the unknown index 0 included."""
        self._require_fitted()
        if name not in self.vocabularies_:
            raise ValueError(f"{name!r} is not a (multi-)categorical feature; those are {list(self.vocabularies_)}")
        return len(self.vocabularies_[name]) + 1

    def transform(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Model inputs: int32 indices (n,) or (n, max_length), float32 numbers (n, 1) and vectors
        (n, d); values never seen at fit map to 0."""
        self._require_fitted()
        self._check(frame, fitting=False)
        return {s.name: s._transform(frame) for s in self.specs}

    def keras_inputs(self) -> dict:
        """One ``keras.Input`` per feature, keyed and named by feature name."""
        self._require_fitted()
        return {s.name: s.keras_input() for s in self.specs}

    def embed(self, inputs: Mapping, dim: int, l2: float, layers: ModuleType) -> tuple[list, list]:
        """Every spec's ``embed``: lists of field vectors (b, dim) and first-order logits (b, 1)."""
        self._require_fitted()
        pairs = [s.embed(inputs[s.name], dim, l2, layers) for s in self.specs]
        return [p[0] for p in pairs], [p[1] for p in pairs]

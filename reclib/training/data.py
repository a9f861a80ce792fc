"""Keras input pipelines from NumPy arrays, re-sampling negatives every epoch.

Each dataset is a ``keras.utils.PyDataset``: it yields batches straight from NumPy index arrays
(so all negatives never sit in memory at once beyond one epoch's worth of indices) and draws fresh
negatives in ``on_epoch_end``, which Keras calls after every epoch. Works on every Keras backend.

The checks of the Trainer's array data (:func:`check_array_data`: numeric, NaN/inf named by input
and row, sample weights) live here too, so bad data are refused before a step runs and a diverging
loss can only mean a bad hyper-parameter.
"""

from __future__ import annotations

import math

import keras
import numpy as np

from reclib.checks import (ParameterTypeError, check_choice, check_non_negative_int,
                           check_positive_int)
from reclib.data.sampling import sample_negatives

__all__ = ["InBatchDataset", "NegativeSamplingDataset", "check_array_data", "check_inputs"]


def _check_indices(name: str, values: object, size: int | None, length: int) -> None:
    """A non-empty 1-D integer array of ``length`` entries in ``[0, size)`` (``[0, inf)`` if None)."""
    array = np.asarray(values)
    if array.dtype.kind not in "iu" or array.ndim != 1:
        raise ParameterTypeError(f"{name} must be a 1-D array of integer indices, got dtype "
                                 f"{array.dtype}, shape {array.shape}")
    if len(array) == 0 or len(array) != length:
        raise ValueError(f"users and items must be non-empty and of one length, got {name} of "
                         f"{len(array)} vs {length}")
    bad = (array < 0) if size is None else ((array < 0) | (array >= size))
    if bad.any():
        first = int(np.argmax(bad))
        bounds = "[0, inf)" if size is None else f"[0, {size})"
        raise ValueError(f"{name} holds {int(bad.sum())} index(es) outside {bounds}, first at row "
                         f"{first}: {array[first]!r}")


def _check_numeric(name: str, values: object) -> np.ndarray:
    """``values`` as an array (one row per example) if numeric with floating-point values finite,
    else raise naming ``name`` and the first bad row. One ``sum`` per float array (NaN and inf
    propagate through it); the exact element-wise scan runs only where that sum is not finite."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf" or array.ndim == 0:
        raise ParameterTypeError(f"{name} must be a numeric array with one row per example, got dtype "
                                 f"{array.dtype}, shape {array.shape}")
    if array.dtype.kind == "f" and not np.isfinite(array.sum(dtype=np.float64)):
        bad = ~np.isfinite(array)
        if bad.any():
            first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), array.shape))
            where = f"row {first[0]}" + (f" (index {first})" if array.ndim > 1 else "")
            raise ValueError(f"{name} holds {int(bad.sum())} non-finite value(s) (NaN or inf), first at "
                             f"{where}: {array[first].item()!r}")
    return array


def check_inputs(name: str, x: object) -> int:
    """Check one model input or target (an array, or a dict of named arrays): numeric, float
    values finite, one row count; return that count (the message names ``name['key']``)."""
    arrays = x.items() if isinstance(x, dict) else [(None, x)]
    rows = {len(_check_numeric(name if key is None else f"{name}[{key!r}]", values)) for key, values in arrays}
    if len(rows) != 1:
        raise ValueError(f"{name}: every input array needs the same number of rows, got {sorted(rows)}")
    return rows.pop()


def check_array_data(data: tuple, prefix: str = "") -> tuple[object, object, np.ndarray | None]:
    """Check array data ``(x, y)`` or ``(x, y, sample_weight)`` before any training; return
    ``(x, y, sample_weight)``, x and y as given and the weights scaled to mean 1 (float32).

    x (and y, which may be ``None`` for a model whose loss needs no labels) pass
    :func:`check_inputs`, with one row per example each. ``sample_weight``: one finite weight >= 0
    per row, not all 0. Weights are relative: scaled to mean 1, the loss keeps the scale of the
    unweighted loss (Keras divides a batch's weighted sum by its row count), a weight of 2 counts
    a row twice and a weight of 0 drops it (exactly so when one batch holds every row).
    ``prefix`` starts every name in a message (``"validation "``).
    """
    if not isinstance(data, tuple) or len(data) not in (2, 3):
        got = f"a tuple of {len(data)}" if isinstance(data, tuple) else type(data).__name__
        raise ParameterTypeError(f"{prefix}data must be a tuple (x, y) or (x, y, sample_weight), got {got}")
    x, y, weight = (*data, None)[:3]
    n = check_inputs(f"{prefix}x", x)
    if n == 0:
        raise ValueError(f"{prefix}x has no rows")
    rows = n if y is None else check_inputs(f"{prefix}y", y)
    if rows != n:
        raise ValueError(f"{prefix}y has {rows} rows but {prefix}x has {n}")
    if weight is None:
        return x, y, None
    weight = _check_numeric(f"{prefix}sample_weight", weight).astype(np.float64)
    if weight.shape != (n,):
        raise ValueError(f"{prefix}sample_weight must hold one weight per row, shape ({n},), got shape "
                         f"{weight.shape}")
    if (weight < 0).any():
        first = int(np.argmax(weight < 0))
        raise ValueError(f"{prefix}sample_weight must be >= 0, got {weight[first].item()!r} at row {first}")
    if weight.sum() == 0:
        raise ValueError(f"{prefix}sample_weight is 0 on every row: nothing would be trained")
    return x, y, (weight * (n / weight.sum())).astype(np.float32)


class NegativeSamplingDataset(keras.utils.PyDataset):
    """Positive pairs plus sampled negatives, shuffled, in batches.

    ``mode="pointwise"``: each positive (u, i) with label 1 and ``n_negatives`` pairs (u, j) with
    label 0, yielded as ``({"user", "item"}, labels)``. ``mode="pairwise"``: one triplet per
    positive and negative draw, ``{"user", "item", "negative"}`` (inputs only: the BPR task,
    ``reclib.models.tasks.PairwiseTask``, needs no labels).
    Negatives are uniform over items the user never interacted with (never a positive).
    ``users`` and ``items`` are non-empty 1-D integer arrays of one length, ``items`` in
    ``[0, n_items)`` and ``users`` >= 0; the other arguments are checked likewise.
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, n_items: int, n_negatives: int = 4,
                 batch_size: int = 1024, mode: str = "pointwise", random_state: int = 42, **kwargs) -> None:
        check_choice("mode", mode, ("pointwise", "pairwise"))
        check_positive_int(n_items=n_items, n_negatives=n_negatives, batch_size=batch_size)
        check_non_negative_int(random_state=random_state)
        _check_indices("users", users, None, len(np.asarray(items)))
        _check_indices("items", items, n_items, len(np.asarray(users)))
        super().__init__(**kwargs)
        self.users, self.items = np.asarray(users, np.int32), np.asarray(items, np.int32)
        self.n_items, self.n_negatives, self.batch_size, self.mode = n_items, n_negatives, batch_size, mode
        self.rng = np.random.default_rng(random_state)
        self.epoch = 0
        self._resample()

    def _resample(self) -> None:
        reps = np.repeat(np.arange(len(self.users)), self.n_negatives)
        negatives = sample_negatives(self.users, self.items, self.n_items, self.users[reps],
                                     random_state=self.rng).astype(np.int32)
        if self.mode == "pointwise":
            users = np.concatenate([self.users, self.users[reps]])
            items = np.concatenate([self.items, negatives])
            labels = np.concatenate([np.ones(len(self.users)), np.zeros(len(reps))]).astype(np.float32)
            order = self.rng.permutation(len(users))
            self._arrays = {"user": users[order], "item": items[order]}
            self._labels = labels[order]
        else:
            order = self.rng.permutation(len(reps))
            self._arrays = {"user": self.users[reps][order], "item": self.items[reps][order],
                            "negative": negatives[order]}
            self._labels = np.ones(len(reps), np.float32)

    def __len__(self) -> int:
        return math.ceil(len(self._labels) / self.batch_size)

    def __getitem__(self, index: int):
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        inputs = {k: v[part] for k, v in self._arrays.items()}
        return (inputs, self._labels[part]) if self.mode == "pointwise" else inputs

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._resample()


class InBatchDataset(keras.utils.PyDataset):
    """Positive examples only, reshuffled every epoch, for in-batch softmax training.

    ``features`` maps input names to arrays with one row per positive example; ``lookups`` maps
    further input names to ``(table, key)``: the batch gets ``table[features[key][batch]]``, so
    per-item or per-user rows (text vectors, histories) are gathered per batch instead of being
    copied for every example. Each batch yields the inputs only: example ``r``'s positive is
    column ``r`` of the in-batch logits, which the retrieval task
    (``reclib.models.tasks.RetrievalTask``) knows without labels. The last partial batch is dropped so every
    batch has ``batch_size`` rows. Every array must be numeric, and floating-point ones free of
    NaN/inf (checked once here, not per batch).
    """

    def __init__(self, features: dict[str, np.ndarray], batch_size: int = 512, random_state: int = 42,
                 lookups: dict[str, tuple[np.ndarray, str]] | None = None, **kwargs) -> None:
        check_positive_int(batch_size=batch_size)
        check_non_negative_int(random_state=random_state)
        if not isinstance(features, dict) or not features:
            raise ParameterTypeError(f"features must be a non-empty dict of arrays, got {features!r:.80}")
        for name, values in features.items():
            _check_numeric(f"features[{name!r}]", values)
        for name, (table, _) in (lookups or {}).items():
            _check_numeric(f"lookups[{name!r}]", table)
        super().__init__(**kwargs)
        self.lookups = dict(lookups or {})
        unknown = [key for _, key in self.lookups.values() if key not in features]
        if unknown:
            raise ValueError(f"lookups refer to {unknown}, which are not in features {sorted(features)}")
        lengths = {len(v) for v in features.values()}
        if len(lengths) != 1:
            raise ValueError(f"every feature array needs the same number of rows, got {sorted(lengths)}")
        self.features, self.batch_size = features, batch_size
        self.n = lengths.pop()
        if self.n < batch_size:
            raise ValueError(f"{self.n} examples are fewer than one batch of {batch_size}")
        self.rng = np.random.default_rng(random_state)
        self.order = self.rng.permutation(self.n)

    def __len__(self) -> int:
        return self.n // self.batch_size

    def __getitem__(self, index: int):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        batch = {k: v[rows] for k, v in self.features.items()}
        batch.update({name: table[batch[key]] for name, (table, key) in self.lookups.items()})
        return batch

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(self.n)

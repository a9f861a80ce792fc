"""How fast training runs: synthetic click data as model inputs, throughput timing through
:class:`~reclib.training.Trainer` and the linear-scaling fit (notebook 08; ``make bench-train``).

- :func:`ctr_arrays`: :func:`reclib.data.synthetic_ctr_chunks` rows through a fitted
  :class:`~reclib.features.FeatureSpace`: the inputs of ``build_ctr_model``.
- :func:`time_training`: samples per second of a ``Trainer`` fit, from the epochs after the first
  (the first also traces and compiles); :class:`EpochTimer` records each epoch's wall time.
- :func:`linear_scaling`: least-squares line and :math:`R^2` of time per epoch against rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import keras
import numpy as np

from reclib.checks import ParameterTypeError, check_positive_int
from reclib.data.synthetic import synthetic_ctr_chunks
from reclib.features.specs import Categorical, FeatureSpace, Numeric

__all__ = ["EpochTimer", "ctr_arrays", "linear_scaling", "time_training"]


def ctr_arrays(n_rows: int, n_categorical: int = 8, n_numeric: int = 4, vocabulary: int = 1000,
               chunk_size: int = 1_000_000, random_state: int = 0) -> tuple[FeatureSpace, dict[str, np.ndarray], np.ndarray]:
    """Synthetic click rows as model inputs: ``(space, x, y)``. The space is fitted on the first
    chunk (ids first seen later map to the unknown index 0); ``x`` maps feature names to int32
    (n_rows,) ids and float32 (n_rows, 1) numbers, ``y`` is the float32 (n_rows,) click label.
    Chunks are transformed one at a time, then concatenated."""
    chunks = synthetic_ctr_chunks(n_rows, n_categorical, n_numeric, vocabulary, chunk_size=chunk_size, random_state=random_state)
    parts: list[dict[str, np.ndarray]] = []
    labels: list[np.ndarray] = []
    space = None
    for chunk in chunks:
        if space is None:
            specs = [Categorical(f"c{f}") for f in range(n_categorical)] + [Numeric(f"n{j}") for j in range(n_numeric)]
            space = FeatureSpace(specs).fit(chunk)
        parts.append(space.transform(chunk))
        labels.append(chunk["click"].to_numpy(np.float32))
    x = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    return space, x, np.concatenate(labels)


class EpochTimer(keras.callbacks.Callback):
    """Wall time in seconds of every training epoch (``seconds``, a list)."""

    def on_train_begin(self, logs=None) -> None:
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def time_training(model: keras.Model | Callable[[], keras.Model], data: tuple, epochs: int = 3,
                  **trainer_options: object) -> dict[str, float]:
    """Fit ``model`` on ``data = (x, y)`` with ``Trainer(epochs=epochs, **trainer_options)`` and
    time it: ``first_epoch_s`` (includes tracing and compilation), ``epoch_s`` (the fastest later
    epoch), ``samples_per_s`` (rows / ``epoch_s``), ``samples_per_s_slowest`` (rows / the slowest
    later epoch: with the fastest, the spread of one run's repeated epochs, the noise a comparison
    of two timings must exceed) and ``final_loss``. ``epochs`` >= 2; the default
    3 because the second epoch can still compile: when the last batch is partial, Keras retraces the
    step with a relaxed batch dimension, and XLA (``jit_compile=True``) compiles that trace again for
    each concrete batch shape it meets, during the second epoch."""
    from reclib.training.trainer import Trainer

    check_positive_int(epochs=epochs)
    if epochs < 2:
        raise ValueError(f"epochs must be >= 2 (the first epoch also compiles), got {epochs}")
    if not isinstance(data, tuple) or len(data) != 2:
        raise ParameterTypeError(f"data must be a tuple (x, y) of arrays, got {type(data).__name__}")
    timer = EpochTimer()
    callbacks = [*trainer_options.pop("callbacks", ()), timer]
    trainer = Trainer(epochs=epochs, callbacks=callbacks, patience=epochs, **trainer_options)
    history = trainer.fit(model, data)
    y = data[1]
    epoch_s = min(timer.seconds[1:])
    return {"first_epoch_s": timer.seconds[0], "epoch_s": epoch_s, "samples_per_s": len(y) / epoch_s,
            "samples_per_s_slowest": len(y) / max(timer.seconds[1:]), "final_loss": float(history["loss"].iloc[-1])}


def linear_scaling(rows: np.ndarray, seconds: np.ndarray) -> dict[str, float]:
    """Least-squares line ``seconds = slope * rows + intercept`` and its :math:`R^2`
    (1 - residual / total sum of squares). ``rows`` and ``seconds``: 1-D, same length >= 3, finite."""
    x, y = np.asarray(rows, np.float64), np.asarray(seconds, np.float64)
    if x.ndim != 1 or x.shape != y.shape or len(x) < 3:
        raise ValueError(f"rows and seconds must be 1-D of one length >= 3, got shapes {x.shape} and {y.shape}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("rows and seconds must be finite")
    slope, intercept = np.polyfit(x, y, 1)
    residual = float(((y - (slope * x + intercept)) ** 2).sum())
    total = float(((y - y.mean()) ** 2).sum())
    return {"slope": float(slope), "intercept": float(intercept), "r2": 1.0 - residual / total if total else 1.0}

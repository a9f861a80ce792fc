"""One trainer for every Keras model of reclib: seeding, precision, distribution, compile, callbacks.

:class:`Trainer` ``.fit(model, data, validate=None)`` does, in this order:

1. seeds Python, NumPy and the backend (``keras.utils.set_random_seed(random_state)``);
2. sets the dtype policy ``precision`` (``None`` keeps the current one; ``"mixed_float16"``,
   ``"mixed_bfloat16"``), restored to the previous policy when ``fit`` returns or raises;
3. enters ``distribution.scope()`` if given: a ``keras.distribution`` object (e.g.
   ``DataParallel``) on JAX, or a ``tf.distribute`` strategy (e.g. ``MirroredStrategy``) on
   TensorFlow; nothing else is done with it (the variables are created inside the scope). A
   multi-process JAX run (:mod:`reclib.training.processes`) needs a distribution and data that
   give each process its part of every batch (``ShardedArrays``, ``ProcessShard``, which
   reshuffle themselves: Keras' own batch shuffle is off for them), and no early stopping;
4. builds the model: ``model`` is a ``keras.Model`` or a function returning one, called *after*
   seeding and inside the policy and the scope (so weights draw their seeds in a fixed order,
   take the policy's dtypes and live on the distribution's devices: pass a function for
   ``precision`` and ``distribution`` to act on the layers); an unbuilt model is built by
   calling it on one real batch;
5. compiles it with Adam(``learning_rate``), no compiled loss (a model that trains on a
   ``reclib.models.tasks`` task overrides ``compute_loss``) unless ``loss`` is given,
   ``steps_per_execution`` and ``jit_compile``. ``learning_rate=None`` keeps the compile of
   an already compiled model (its optimizer, loss and metrics);
6. runs ``model.fit`` (or, with ``device_data=True`` on JAX or PyTorch, the device-resident loop of
   :mod:`reclib.training.device_loop`: data on the device once, ``steps_per_execution`` steps per
   host call, optional row-sparse embedding updates) with, first, :class:`StopOnNonFiniteLoss`
   (``FloatingPointError`` naming the epoch and ``learning_rate`` when an epoch's loss or a weight
   is NaN or inf, or the loss grew past ``reclib.checks.GROWTH_LIMIT`` times its first batch's),
   then early stopping — on ``validate()``'s ranking metric (:class:`RankingEarlyStopping`) or,
   with ``validation_data``, Keras' ``EarlyStopping`` on the logged ``monitor`` — restoring the
   best weights, then ``callbacks``.

After ``fit``: ``history_`` (a frame, one row per epoch: ``epoch``, ``loss``, metrics),
``best_epoch_`` (1-based), ``model_`` (the trained model) and ``keras_history_``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence

import keras
import numpy as np
import pandas as pd

from reclib.checks import (ParameterTypeError, check_bool, check_choice, check_non_negative_int, check_positive,
                           check_positive_int)
from reclib.training.callbacks import EvaluateEachEpoch, RankingEarlyStopping, StopOnNonFiniteLoss
from reclib.training.data import check_array_data, check_inputs
from reclib.training.device_loop import DEVICE_BACKENDS, LinearWarmup, fit_on_device
from reclib.training.processes import ProcessShard, ShardedArrays

__all__ = ["PRECISIONS", "Trainer", "check_keras_verbose", "fit_binary_classifier"]

PRECISIONS = (None, "float32", "mixed_float16", "mixed_bfloat16")


def check_keras_verbose(verbose: object) -> None:
    """``verbose`` of ``keras.Model.fit``: 0 (silent), 1 (progress bar), 2 (one line per epoch) or "auto"."""
    check_choice("verbose", verbose, (0, 1, 2, "auto"))


def _process_count() -> int:
    """How many processes train together: ``jax.process_count()`` on JAX, else 1."""
    if keras.backend.backend() != "jax":
        return 1
    import jax
    return int(jax.process_count())


def _first_inputs(data: object, batch_size: int):
    """The inputs of one real batch: ``data[0]`` of a PyDataset (its x), or the first rows of arrays."""
    if isinstance(data, tuple):
        x = data[0]
        if isinstance(x, dict):
            return {k: np.asarray(v)[:batch_size] for k, v in x.items()}
        return np.asarray(x)[:batch_size]
    batch = data[0]
    return batch[0] if isinstance(batch, tuple) else batch


def _checked_data(data: object, validation_data: object, device_data: bool):
    """``(data, sample_weight, validation_data)`` for ``Trainer.fit``: array tuples checked by
    :func:`~reclib.training.data.check_array_data` (data as ``(x, y)`` and its weights apart,
    validation weights kept in the tuple Keras takes); anything else passes unchanged."""
    weight, validation_weight = None, None
    if isinstance(data, tuple):
        x, y, weight = check_array_data(data)
        data = (x, y)
    if isinstance(validation_data, tuple):
        x, y, validation_weight = check_array_data(validation_data, "validation ")
        validation_data = (x, y) if validation_weight is None else (x, y, validation_weight)
    if device_data and not isinstance(data, tuple):
        raise ParameterTypeError(f"device_data=True needs data=(x, y) arrays, got {type(data).__name__}")
    if device_data and (weight is not None or validation_weight is not None):
        raise ValueError("sample_weight is not supported with device_data=True (the device loop trains every "
                         "row alike): pass data=(x, y) or device_data=False")
    return data, weight, validation_data


class Trainer:
    """Compile and fit a Keras model the one reclib way (module doc).

    Parameters
    ----------
    - epochs, batch_size: ints >= 1 (``batch_size`` is used for array data; a PyDataset batches itself).
    - learning_rate: Adam's step, > 0; ``None`` keeps an already compiled model's compile.
    - patience: epochs without improvement before stopping (>= 0); monitor: the metric early
      stopping watches (a key of ``validate()``'s dict, or a logged name such as ``val_auc``
      with ``validation_data``); mode: ``"max"`` or ``"min"`` (``validate`` metrics are maximised).
    - random_state: seed, >= 0; verbose: 0, 1, 2 or "auto".
    - precision: ``None``, ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``.
    - distribution: ``None``, a ``keras.distribution`` object (JAX) or a ``tf.distribute``
      strategy (TensorFlow): anything with a ``scope()``; applied, nothing more.
    - steps_per_execution, jit_compile: passed to ``compile``; loss: a compiled loss (``None``
      for models that own their loss through a task); callbacks: further Keras callbacks.
    - warmup_steps: the learning rate rises linearly over this many optimizer steps (0: none).
    - device_data: train from arrays held on the accelerator (``data=(x, y)`` with ``x`` a dict;
      JAX and PyTorch backends); sparse_embeddings: with it, row-wise Adagrad at
      ``sparse_learning_rate`` on the rows of the batch for the embedding tables that read a
      model input (:func:`~reclib.training.device_loop.fit_on_device`). The default rate, 0.03, was
      chosen on P4's validation rows at batch 1,024 (``experiments/tune_device_loop.py``); larger
      batches may want another.
    """

    def __init__(self, epochs: int = 20, batch_size: int = 1024, learning_rate: float | None = 1e-3,
                 patience: int = 3, monitor: str = "ndcg", random_state: int = 42, verbose: int | str = 0,
                 precision: str | None = None, distribution: object = None, steps_per_execution: int = 1,
                 jit_compile: bool | str = "auto", callbacks: Sequence[keras.callbacks.Callback] = (),
                 loss: object = None, mode: str = "max", warmup_steps: int = 0, device_data: bool = False,
                 sparse_embeddings: bool = False, sparse_learning_rate: float = 0.03) -> None:
        check_positive_int(epochs=epochs, batch_size=batch_size, steps_per_execution=steps_per_execution)
        if learning_rate is not None:
            check_positive(learning_rate=learning_rate)
        check_non_negative_int(patience=patience, random_state=random_state)
        if not isinstance(monitor, str) or not monitor:
            raise ParameterTypeError(f"monitor must be a metric name (a non-empty string), got {monitor!r}")
        check_keras_verbose(verbose)
        check_choice("precision", precision, PRECISIONS)
        if distribution is not None and not callable(getattr(distribution, "scope", None)):
            raise ParameterTypeError(f"distribution must be a keras.distribution object or a tf.distribute "
                                     f"strategy (with a scope()), got {type(distribution).__name__}")
        check_choice("jit_compile", jit_compile, ("auto", True, False))
        check_choice("mode", mode, ("max", "min"))
        check_non_negative_int(warmup_steps=warmup_steps)
        check_bool(device_data=device_data)
        check_bool(sparse_embeddings=sparse_embeddings)
        check_positive(sparse_learning_rate=sparse_learning_rate)
        if warmup_steps and learning_rate is None:
            raise ValueError("warmup_steps needs learning_rate: with learning_rate=None the model keeps its own "
                             "compiled optimizer and schedule")
        if sparse_embeddings and not device_data:
            raise ValueError("sparse_embeddings=True needs device_data=True (the row-sparse update is part of "
                             "the device-resident loop)")
        if device_data and keras.backend.backend() not in DEVICE_BACKENDS:
            raise ValueError(f"device_data=True runs on the {' and '.join(DEVICE_BACKENDS)} backends, not "
                             f"{keras.backend.backend()!r} (set KERAS_BACKEND before importing keras)")
        if device_data and distribution is not None:
            raise ValueError("device_data=True trains on one device: pass distribution=None")
        callbacks = list(callbacks)
        for j, callback in enumerate(callbacks):
            if not isinstance(callback, keras.callbacks.Callback):
                raise ParameterTypeError(f"callbacks[{j}] must be a keras.callbacks.Callback, got "
                                         f"{type(callback).__name__}")
        self.epochs, self.batch_size, self.learning_rate = epochs, batch_size, learning_rate
        self.patience, self.monitor, self.random_state, self.verbose = patience, monitor, random_state, verbose
        self.precision, self.distribution = precision, distribution
        self.steps_per_execution, self.jit_compile, self.callbacks = steps_per_execution, jit_compile, callbacks
        self.loss, self.mode = loss, mode
        self.warmup_steps, self.device_data = warmup_steps, device_data
        self.sparse_embeddings, self.sparse_learning_rate = sparse_embeddings, sparse_learning_rate

    def fit(self, model: keras.Model | Callable[[], keras.Model], data: object,
            validate: Callable[[], dict[str, float]] | None = None,
            validation_data: tuple | None = None, name: str | None = None) -> pd.DataFrame:
        """Train ``model`` on ``data`` (module doc); return the history frame.

        data: a ``keras.utils.PyDataset`` (yielding inputs, or (inputs, labels)) or a tuple
        ``(x, y)`` or ``(x, y, sample_weight)`` of arrays (x an array or a dict of arrays; y may be
        ``None`` for a model whose loss needs no labels), shuffled every epoch. Array data are
        checked before anything runs (:func:`~reclib.training.data.check_array_data`: NaN or inf
        is named by input and row, so a later divergence error can only mean the hyper-parameters);
        sample weights are relative (scaled to mean 1: a weight of 0 drops a row); not with
        ``device_data=True``.
        validate: a function ``() -> {metric: value}`` run after every epoch (ranking early
        stopping on ``monitor``); validation_data: ``(x, y)`` or ``(x, y, sample_weight)`` for
        Keras' own validation, checked likewise.
        name: names the model in a divergence error (default: the model's name).
        """
        if validate is not None and not callable(validate):
            raise ParameterTypeError(f"validate must be a function () -> dict of metrics, or None; "
                                     f"got {type(validate).__name__}")
        if not isinstance(model, keras.Model) and not callable(model):
            raise ParameterTypeError(f"model must be a keras.Model or a function returning one, got "
                                     f"{type(model).__name__}")
        if _process_count() > 1:
            self._check_multi_process(data, validate, validation_data)
        data, weight, validation_data = _checked_data(data, validation_data, self.device_data)
        previous = keras.config.dtype_policy()
        scope = self.distribution.scope() if self.distribution is not None else contextlib.nullcontext()
        try:
            keras.utils.set_random_seed(self.random_state)
            if self.precision is not None:
                keras.config.set_dtype_policy(self.precision)
            with scope:
                return self._fit(model, data, weight, validate, validation_data, name)
        finally:
            keras.config.set_dtype_policy(previous)

    def _check_multi_process(self, data, validate, validation_data) -> None:
        """In a multi-process JAX run (:mod:`reclib.training.processes`), before any work: one model
        needs a ``distribution``, each process reads its part of every batch, and early stopping
        (a decision every process must take alike) is not supported."""
        if self.distribution is None:
            raise ValueError("in a multi-process run distribution=None would train one independent model per "
                             "process: pass reclib.training.data_parallel() or sharded_tables()")
        if not isinstance(data, (ShardedArrays, ProcessShard)):
            raise ValueError(f"in a multi-process run every process would read data ({type(data).__name__}) whole: "
                             f"pass reclib.training.ShardedArrays(x, y, global_batch) or ProcessShard(dataset), "
                             f"which give each process its part of every batch")
        if validate is not None or validation_data is not None:
            raise ValueError("validate and validation_data are not supported in a multi-process run (every "
                             "process would have to take the same early-stopping decision): train a fixed number "
                             "of epochs, then evaluate the saved model in one process")

    def _fit(self, model, data, weight, validate, validation_data, name) -> pd.DataFrame:
        if not isinstance(model, keras.Model):
            model = model()
            if not isinstance(model, keras.Model):
                raise ParameterTypeError(f"the model function must return a keras.Model, got {type(model).__name__}")
        if not model.built:
            model(_first_inputs(data, self.batch_size))          # build every layer on one real batch
        if self.learning_rate is not None:
            rate = LinearWarmup(self.learning_rate, self.warmup_steps) if self.warmup_steps else self.learning_rate
            model.compile(optimizer=keras.optimizers.Adam(rate), loss=self.loss,
                          steps_per_execution=self.steps_per_execution, jit_compile=self.jit_compile)
        elif not model.compiled:
            raise ValueError("learning_rate=None keeps the model's compile, but the model is not compiled")
        callbacks: list[keras.callbacks.Callback] = [   # first: before anything scores a NaN model
            StopOnNonFiniteLoss(name or model.name, self.epochs, self.learning_rate)]
        ranking, keras_stop = None, None
        if validate is not None:
            ranking = RankingEarlyStopping(validate, self.monitor, self.patience)
            callbacks.append(ranking)
        elif validation_data is not None:
            if self.device_data:        # fit_on_device computes no val_* logs itself
                callbacks.append(EvaluateEachEpoch(validation_data, self.batch_size))
            keras_stop = keras.callbacks.EarlyStopping(monitor=self.monitor, mode=self.mode, patience=self.patience,
                                                       restore_best_weights=True)
            callbacks.append(keras_stop)
        callbacks += self.callbacks
        if self.device_data:
            logged = fit_on_device(model, data[0], data[1], self.epochs, self.batch_size, self.steps_per_execution,
                                   callbacks, self.random_state, self.sparse_embeddings,
                                   self.sparse_learning_rate, self.warmup_steps)
            fitted = keras.callbacks.History()
            fitted.history = logged
        elif isinstance(data, tuple):
            x, y = data
            fitted = model.fit(x, y, batch_size=self.batch_size, validation_data=validation_data, sample_weight=weight,
                               epochs=self.epochs, callbacks=callbacks, verbose=self.verbose, shuffle=True)
        else:                           # process shards reshuffle themselves, alike on every process
            fitted = model.fit(data, validation_data=validation_data, epochs=self.epochs, callbacks=callbacks,
                               verbose=self.verbose, shuffle=not isinstance(data, (ShardedArrays, ProcessShard)))
        history = pd.DataFrame(fitted.history)
        history.insert(0, "epoch", np.arange(1, len(history) + 1))
        if ranking is not None:
            best = ranking.best_epoch
        elif keras_stop is not None and keras_stop.best_weights is not None:
            best = keras_stop.best_epoch + 1
        else:
            best = len(history)
        self.model_, self.keras_history_, self.history_, self.best_epoch_ = model, fitted, history, best
        return history


def _check_labels(name: str, y: object, n_rows: int) -> None:
    """Binary-classification targets: n_rows finite values in [0, 1]."""
    array = np.asarray(y)
    if array.dtype.kind not in "biuf":
        raise ParameterTypeError(f"{name} must be numeric labels in [0, 1], got dtype {array.dtype}")
    array = array.astype(np.float64).ravel()
    if len(array) != n_rows:
        raise ValueError(f"{name} has {len(array)} labels but the inputs have {n_rows} rows")
    bad = ~(np.isfinite(array) & (array >= 0) & (array <= 1))
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(f"{name} holds {int(bad.sum())} label(s) outside [0, 1] or non-finite, "
                         f"first at row {first}: {array[first]!r}")


def fit_binary_classifier(model, x_train: np.ndarray | dict, y_train: np.ndarray,
                          x_valid: np.ndarray | dict, y_valid: np.ndarray, epochs: int = 30, batch_size: int = 128,
                          patience: int = 3, random_state: int = 42, verbose: int = 0):
    """Train with early stopping on validation AUC, restoring the best weights; returns the
    Keras ``History`` (``.history["auc"]``, ``["val_auc"]``, ...).

    ``x_train`` and ``x_valid`` are arrays or dicts of named input arrays (multi-input models);
    they must be numeric and free of NaN/inf, and the labels finite values in [0, 1], one per row.
    ``model`` must be a compiled Keras model with an ``auc`` metric (``mlp_classifier``,
    ``build_ctr_model``); it keeps its compile (a :class:`Trainer` with ``learning_rate=None``).
    A training loss that becomes NaN or inf or grows without bound stops the fit with
    ``FloatingPointError`` naming the epoch and the optimizer's ``learning_rate``.
    """
    if not isinstance(model, keras.Model):
        raise ParameterTypeError(f"model must be a compiled keras.Model, got {type(model).__name__}")
    check_positive_int(epochs=epochs, batch_size=batch_size)
    check_non_negative_int(patience=patience, random_state=random_state)
    check_keras_verbose(verbose)
    _check_labels("y_train", y_train, check_inputs("x_train", x_train))
    _check_labels("y_valid", y_valid, check_inputs("x_valid", x_valid))
    as_inputs = lambda x: x if isinstance(x, dict) else np.asarray(x, np.float32)  # noqa: E731
    trainer = Trainer(epochs=epochs, batch_size=batch_size, learning_rate=None, patience=patience,
                      monitor="val_auc", mode="max", random_state=random_state, verbose=verbose)
    trainer.fit(model, (as_inputs(x_train), np.asarray(y_train, np.float32)),
                validation_data=(as_inputs(x_valid), np.asarray(y_valid, np.float32)))
    return trainer.keras_history_

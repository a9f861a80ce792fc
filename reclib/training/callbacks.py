"""Keras callbacks: early stopping on validation ranking metrics, and a stop on a diverged loss.

``validate`` is any function returning a dict of metrics (e.g. NDCG@10 and Recall@10 from
``reclib.evaluation.ranking_result`` on a validation split); it is passed in, so this module
needs nothing from the evaluation stage. :class:`RankingEarlyStopping` logs the metrics as
``val_<name>``, stops after ``patience`` epochs without improvement of ``monitor`` and restores
the best weights. :class:`StopOnNonFiniteLoss` raises ``FloatingPointError`` (the error every
reclib training loop raises when it diverges, :func:`reclib.checks.check_divergence`) as soon as an
epoch's training loss or a trained weight is NaN or inf, or the loss has grown past
:data:`~reclib.checks.GROWTH_LIMIT` times its starting value.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

from reclib.checks import (ParameterTypeError, check_bool, check_divergence, check_non_negative_int,
                           check_positive, monitored_value)

__all__ = ["EvaluateEachEpoch", "RankingEarlyStopping", "StopOnNonFiniteLoss"]


class RankingEarlyStopping(keras.callbacks.Callback):
    """Early stopping on a validation ranking metric (module doc).

    After training: ``history`` (one dict of metrics per epoch), ``best_epoch`` (1-based) and
    ``best_value``; the model holds the best epoch's weights when ``restore_best_weights``.
    A ``monitor`` value that is NaN or inf raises ``ValueError`` naming the epoch.
    """

    def __init__(self, validate: Callable[[], dict[str, float]], monitor: str = "ndcg",
                 patience: int = 3, restore_best_weights: bool = True) -> None:
        super().__init__()
        if not callable(validate):
            raise ParameterTypeError(f"validate must be a function returning a dict of metrics, "
                                     f"got {type(validate).__name__}")
        if not isinstance(monitor, str) or not monitor:
            raise ParameterTypeError(f"monitor must be a metric name (a non-empty string), got {monitor!r}")
        check_non_negative_int(patience=patience)
        check_bool(restore_best_weights=restore_best_weights)
        self.validate, self.monitor, self.patience = validate, monitor, patience
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, logs=None) -> None:
        self.history: list[dict[str, float]] = []
        self.best_value, self.best_epoch, self.best_weights, self.wait = -np.inf, 0, None, 0

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        metrics = {name: float(value) for name, value in self.validate().items()}
        value = monitored_value(metrics, self.monitor, epoch + 1)
        self.history.append({"epoch": epoch + 1, **metrics})
        if logs is not None:
            logs.update({f"val_{k}": v for k, v in metrics.items()})
        if value > self.best_value:
            self.best_value, self.best_epoch, self.wait = value, epoch + 1, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait > self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs=None) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Raise ``FloatingPointError`` when the fit diverges (:func:`reclib.checks.check_divergence`).

    Checked once per epoch: the epoch's mean loss (Keras averages the batch losses, so one NaN
    batch makes it NaN) must be finite and at most ``GROWTH_LIMIT`` times ``max(start, 1)``, and
    every trained weight finite (one ``isfinite`` reduction per variable, no per-batch
    synchronisation). ``start`` is the loss of the first batch (logged before its update), or the
    first epoch's loss in loops that log no batches (``fit_on_device``): a too large step blows
    the loss up within the first epoch, and then it may fall again while staying absurd.
    The message names ``name``, the epoch (of ``n_epochs``, if given) and ``learning_rate`` (by
    default the optimizer's). Put it first in the callback list, so that it fires before
    callbacks that would evaluate the broken model. It only reads the loss and the weights.
    """

    async_safe = True         # its batch hook only reads the logs: Keras may dispatch it in a thread

    def __init__(self, name: str = "model", n_epochs: int | None = None,
                 learning_rate: float | None = None) -> None:
        super().__init__()
        if n_epochs is not None:
            check_non_negative_int(n_epochs=n_epochs)
        if learning_rate is not None:
            check_positive(learning_rate=learning_rate)
        self.name, self.n_epochs, self.learning_rate = str(name), n_epochs, learning_rate
        self.start_loss: float | None = None

    def _current_learning_rate(self) -> float | str:
        if self.learning_rate is not None:
            return self.learning_rate
        try:
            value = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        except (AttributeError, TypeError, ValueError):
            return "unknown"
        return float(f"{value:.6g}")                 # 0.001, not float32's 0.0010000000474974513

    def on_train_begin(self, logs=None) -> None:
        self.start_loss = None

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if self.start_loss is None and (logs or {}).get("loss") is not None:
            self.start_loss = float(logs["loss"])

    def _bad_weights(self) -> dict[str, np.ndarray]:
        """The trained weights holding NaN or inf, by path (empty when all are finite)."""
        weights = [w for w in self.model.trainable_weights if "float" in str(w.dtype)]
        if not weights or bool(keras.ops.all(keras.ops.stack(
                [keras.ops.all(keras.ops.isfinite(w)) for w in weights]))):
            return {}
        values = {w.path: keras.ops.convert_to_numpy(w) for w in weights}
        return {path: value for path, value in values.items() if not np.isfinite(value).all()}

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)
        if self.start_loss is None:
            self.start_loss = loss
        check_divergence(self.name, "epoch", epoch + 1, self.n_epochs, loss, self.start_loss,
                         {"learning_rate": self._current_learning_rate()},
                         "lower learning_rate (the optimizer's steps blow the weights up)",
                         **self._bad_weights())


class EvaluateEachEpoch(keras.callbacks.Callback):
    """Log ``val_<metric>`` (``model.evaluate`` on ``validation_data = (x, y)``) after every epoch,
    for training loops that do not validate themselves (``fit_on_device``); put it before the
    callbacks that read those logs (early stopping)."""

    def __init__(self, validation_data: tuple, batch_size: int = 1024) -> None:
        super().__init__()
        if not isinstance(validation_data, tuple) or len(validation_data) != 2:
            raise ParameterTypeError("validation_data must be a tuple (x, y)")
        self.validation_data, self.batch_size = validation_data, batch_size

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        x, y = self.validation_data
        results = self.model.evaluate(x, y, batch_size=self.batch_size, verbose=0, return_dict=True)
        if logs is not None:
            logs.update({f"val_{name}": float(value) for name, value in results.items()})

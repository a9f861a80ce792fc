"""A Keras callback that scores ranking metrics on validation data after every epoch.

``validate`` is any function returning a dict of metrics (e.g. NDCG@10 and Recall@10 from
``reclib.evaluation.evaluate_ranking`` on a validation split); it is passed in, so this module
needs nothing from the evaluation stage. The callback logs the metrics as ``val_<name>``, stops
after ``patience`` epochs without improvement of ``monitor`` and restores the best weights.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np

__all__ = ["RankingEarlyStopping"]


class RankingEarlyStopping(keras.callbacks.Callback):
    """Early stopping on a validation ranking metric (module doc).

    After training: ``history`` (one dict of metrics per epoch), ``best_epoch`` (1-based) and
    ``best_value``; the model holds the best epoch's weights when ``restore_best_weights``.
    """

    def __init__(self, validate: Callable[[], dict[str, float]], monitor: str = "ndcg",
                 patience: int = 3, restore_best_weights: bool = True) -> None:
        super().__init__()
        if patience < 0:
            raise ValueError(f"patience must be non-negative, got {patience!r}")
        self.validate, self.monitor, self.patience = validate, monitor, patience
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, logs=None) -> None:
        self.history: list[dict[str, float]] = []
        self.best_value, self.best_epoch, self.best_weights, self.wait = -np.inf, 0, None, 0

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        metrics = {name: float(value) for name, value in self.validate().items()}
        if self.monitor not in metrics:
            raise ValueError(f"validate() returned {sorted(metrics)}, without monitor={self.monitor!r}")
        self.history.append({"epoch": epoch + 1, **metrics})
        if logs is not None:
            logs.update({f"val_{k}": v for k, v in metrics.items()})
        if metrics[self.monitor] > self.best_value:
            self.best_value, self.best_epoch, self.wait = metrics[self.monitor], epoch + 1, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
        else:
            self.wait += 1
            if self.wait > self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs=None) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)

"""A small Keras 3 classifier head over fixed feature vectors (e.g. BERT embeddings of text).

Written with Keras layers only, so it runs on the TensorFlow, JAX or PyTorch backend.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["fit_binary_classifier", "mlp_classifier"]


def mlp_classifier(input_dim: int, hidden_units: Sequence[int] = (128,), dropout: float = 0.2,
                   learning_rate: float = 1e-3, name: str = "mlp_classifier"):
    """A compiled binary classifier: input (batch, input_dim) -> P(label = 1), shape (batch, 1).

    Dense ReLU layers of ``hidden_units`` with dropout, a sigmoid output, Adam and binary
    cross-entropy, tracking AUC as ``auc``.
    """
    import keras

    if input_dim < 1 or any(u < 1 for u in hidden_units):
        raise ValueError(f"input_dim and hidden_units must be positive, got {input_dim}, {hidden_units}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must lie in [0, 1), got {dropout!r}")
    inputs = keras.Input(shape=(input_dim,), name="features")
    x = inputs
    for j, units in enumerate(hidden_units):
        x = keras.layers.Dense(units, activation="relu", name=f"dense_{j}")(x)
        x = keras.layers.Dropout(dropout, name=f"dropout_{j}")(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="probability")(x)
    model = keras.Model(inputs, outputs, name=name)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc")])
    return model


def fit_binary_classifier(model, x_train: np.ndarray | dict, y_train: np.ndarray,
                          x_valid: np.ndarray | dict, y_valid: np.ndarray, epochs: int = 30, batch_size: int = 128,
                          patience: int = 3, seed: int = 42, verbose: int = 0):
    """Train with early stopping on validation AUC, restoring the best weights; returns the history.

    ``x_train`` and ``x_valid`` are arrays or dicts of named input arrays (multi-input models).
    """
    import keras

    keras.utils.set_random_seed(seed)
    stop = keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience,
                                         restore_best_weights=True)
    as_inputs = lambda x: x if isinstance(x, dict) else np.asarray(x, np.float32)  # noqa: E731
    return model.fit(as_inputs(x_train), np.asarray(y_train, np.float32),
                     validation_data=(as_inputs(x_valid), np.asarray(y_valid, np.float32)),
                     epochs=epochs, batch_size=batch_size, callbacks=[stop], verbose=verbose,
                     shuffle=True)

"""A small Keras 3 classifier head over fixed feature vectors (e.g. BERT embeddings of text).

Written with Keras layers only, so it runs on the TensorFlow, JAX or PyTorch backend. Also home of
the argument checks shared by the Keras models of ``reclib.models``: :func:`check_layer_sizes`
and :func:`check_keras_verbose`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reclib.checks import (ParameterTypeError, check_choice, check_in_range, check_non_negative_int,
                           check_positive, check_positive_int)

__all__ = ["check_keras_verbose", "check_layer_sizes", "fit_binary_classifier", "mlp_classifier"]


def check_layer_sizes(name: str, sizes: object, allow_empty: bool = True) -> tuple[int, ...]:
    """Return ``sizes`` as a tuple if it is a list, tuple or 1-D array of positive integers.

    Raises :class:`~reclib.checks.ParameterTypeError` for anything else (a string, a number,
    ``None``, a float or bool size) and ``ValueError`` for a size below 1, or for no sizes at all
    unless ``allow_empty``; the message names ``name`` and the offending entry.
    """
    if isinstance(sizes, np.ndarray) and sizes.ndim == 1:
        sizes = sizes.tolist()
    if not isinstance(sizes, (list, tuple)):
        raise ParameterTypeError(f"{name} must be a list or tuple of positive integers (layer sizes), "
                                 f"got {sizes!r} ({type(sizes).__name__})")
    for j, size in enumerate(sizes):
        check_positive_int(**{f"{name}[{j}]": size})
    if not sizes and not allow_empty:
        raise ValueError(f"{name} must hold at least one layer size, got {sizes!r}")
    return tuple(int(size) for size in sizes)


def check_keras_verbose(verbose: object) -> None:
    """``verbose`` of ``keras.Model.fit``: 0 (silent), 1 (progress bar), 2 (one line per epoch) or "auto"."""
    check_choice("verbose", verbose, (0, 1, 2, "auto"))


def _check_features(name: str, x: object) -> int:
    """Check one model input (an array, or a dict of named arrays); return its number of rows.

    Floating-point arrays must be free of NaN/inf: one ``sum`` per array (NaN and inf propagate
    through it), and an exact element-wise check only where that sum is not finite.
    """
    arrays = x.items() if isinstance(x, dict) else [(None, x)]
    rows = set()
    for key, values in arrays:
        label = name if key is None else f"{name}[{key!r}]"
        array = np.asarray(values)
        if array.dtype.kind not in "biuf" or array.ndim == 0:
            raise ParameterTypeError(f"{label} must be a numeric array with one row per example, "
                                     f"got dtype {array.dtype}, shape {array.shape}")
        if array.dtype.kind == "f" and not np.isfinite(array.sum(dtype=np.float64)):
            bad = ~np.isfinite(array)
            if bad.any():
                first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), array.shape))
                raise ValueError(f"{label} holds {int(bad.sum())} non-finite value(s) (NaN or inf), "
                                 f"first at index {first}: {array[first]!r}")
        rows.add(len(array))
    if len(rows) != 1:
        raise ValueError(f"{name}: every input array needs the same number of rows, got {sorted(rows)}")
    return rows.pop()


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


def mlp_classifier(input_dim: int, hidden_units: Sequence[int] = (128,), dropout: float = 0.2,
                   learning_rate: float = 1e-3, name: str = "mlp_classifier"):
    """A compiled binary classifier: input (batch, input_dim) -> P(label = 1), shape (batch, 1).

    Dense ReLU layers of ``hidden_units`` with dropout, a sigmoid output, Adam and binary
    cross-entropy, tracking AUC as ``auc``. Arguments are checked first: ``input_dim`` a positive
    int, ``hidden_units`` positive ints, ``dropout`` in [0, 1), ``learning_rate`` > 0.
    """
    import keras

    check_positive_int(input_dim=input_dim)
    hidden_units = check_layer_sizes("hidden_units", hidden_units)
    check_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
    check_positive(learning_rate=learning_rate)
    if not isinstance(name, str) or not name:
        raise ParameterTypeError(f"name must be a non-empty string, got {name!r}")
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

    ``x_train`` and ``x_valid`` are arrays or dicts of named input arrays (multi-input models);
    they must be numeric and free of NaN/inf, and the labels finite values in [0, 1], one per row.
    ``model`` must be a compiled Keras model with an ``auc`` metric. A training loss that becomes
    NaN or inf stops the fit with ``FloatingPointError`` naming the epoch and the optimizer's
    ``learning_rate``.
    """
    import keras

    from reclib.training.callbacks import StopOnNonFiniteLoss

    if not isinstance(model, keras.Model):
        raise ParameterTypeError(f"model must be a compiled keras.Model, got {type(model).__name__}")
    check_positive_int(epochs=epochs, batch_size=batch_size)
    check_non_negative_int(patience=patience, seed=seed)
    check_keras_verbose(verbose)
    _check_labels("y_train", y_train, _check_features("x_train", x_train))
    _check_labels("y_valid", y_valid, _check_features("x_valid", x_valid))
    keras.utils.set_random_seed(seed)
    stop = keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience,
                                         restore_best_weights=True)
    diverged = StopOnNonFiniteLoss(model.name, epochs)
    as_inputs = lambda x: x if isinstance(x, dict) else np.asarray(x, np.float32)  # noqa: E731
    return model.fit(as_inputs(x_train), np.asarray(y_train, np.float32),
                     validation_data=(as_inputs(x_valid), np.asarray(y_valid, np.float32)),
                     epochs=epochs, batch_size=batch_size, callbacks=[diverged, stop], verbose=verbose,
                     shuffle=True)

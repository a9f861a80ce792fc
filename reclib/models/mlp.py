"""A small Keras 3 classifier head over fixed feature vectors (e.g. BERT embeddings of text).

Written with Keras layers only, so it runs on the TensorFlow, JAX or PyTorch backend. Also home of
:func:`check_layer_sizes`, the layer-size check shared by the Keras models of ``reclib.models``.
Its training loop, :func:`~reclib.training.trainer.fit_binary_classifier`, lives in
``reclib.training`` (one trainer for every model) and is re-exported here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from reclib.checks import ParameterTypeError, check_in_range, check_positive, check_positive_int
from reclib.training.trainer import check_keras_verbose, fit_binary_classifier

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

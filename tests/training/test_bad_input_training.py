"""Bad training data and diverging fits in the one Trainer: array data (features, labels, sample
weights) are checked before anything is built, with an error naming the input and the first bad
row; a fit whose loss explodes (or whose weights turn NaN) stops with ``FloatingPointError`` naming
``learning_rate``; sample weights are relative (a weight of 0 drops a row, 2 counts it twice).

Wrong types raise :class:`~reclib.checks.ParameterTypeError`, everything else ``ValueError``.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from reclib.checks import ParameterTypeError
from reclib.training import StopOnNonFiniteLoss, Trainer
from reclib.training.data import check_array_data

NAN, INF = float("nan"), float("inf")
TYPE = ParameterTypeError
RNG = np.random.default_rng(0)
X = RNG.normal(size=(12, 3))
Y = X @ np.array([1.0, -2.0, 0.5]) + 0.1
W = np.ones(12)


def with_value(array: np.ndarray, index, value) -> np.ndarray:
    """A copy of ``array`` with ``value`` at ``index``."""
    out = np.array(array, dtype=np.result_type(array, type(value)))
    out[index] = value
    return out


def linear() -> keras.Model:
    """A linear regression 3 -> 1 (no dropout, so a fit is a function of data and seed)."""
    inputs = keras.Input((3,), name="x")
    return keras.Model(inputs, keras.layers.Dense(1)(inputs))


def fit(data, validation_data=None, **options):
    """Two epochs of ``linear`` on ``data`` (and ``validation_data``) through a Trainer."""
    settings = dict(epochs=2, batch_size=4, learning_rate=0.01, loss="mse", random_state=0)
    return Trainer(**{**settings, **options}).fit(linear, data, validation_data=validation_data)


# -- (id, call, exception, pattern the message must match) ------------------------------------
DATA_CASES = [
    ("x-nan", lambda: fit((with_value(X, (3, 1), NAN), Y)), ValueError,
     r"^x holds 1 non-finite .*row 3 \(index \(3, 1\)\): nan"),
    ("x-inf", lambda: fit((with_value(X, (5, 0), INF), Y)), ValueError, r"^x holds .*first at row 5"),
    ("x-dict-nan", lambda: fit(({"x": with_value(X, (2, 2), NAN)}, Y)), ValueError, r"x\['x'\] holds .*row 2"),
    ("x-strings", lambda: fit((X.astype(str), Y)), TYPE, r"^x must be a numeric array"),
    ("x-scalar", lambda: fit((1.0, Y)), TYPE, r"^x must be a numeric array"),
    ("x-empty", lambda: fit((X[:0], Y[:0])), ValueError, r"^x has no rows"),
    ("x-dict-ragged", lambda: fit(({"a": X, "b": X[:5]}, Y)), ValueError, r"^x: every input array"),
    ("y-nan", lambda: fit((X, with_value(Y, 7, NAN))), ValueError, r"^y holds 1 non-finite .*row 7: nan"),
    ("y-inf", lambda: fit((X, with_value(Y, 0, -INF))), ValueError, r"^y holds .*row 0: -inf"),
    ("y-length", lambda: fit((X, Y[:9])), ValueError, r"^y has 9 rows but x has 12"),
    ("y-objects", lambda: fit((X, np.array([None] * 12))), TYPE, r"^y must be a numeric array"),
    ("weight-nan", lambda: fit((X, Y, with_value(W, 4, NAN))), ValueError, r"^sample_weight holds .*row 4: nan"),
    ("weight-inf", lambda: fit((X, Y, with_value(W, 1, INF))), ValueError, r"^sample_weight holds .*row 1: inf"),
    ("weight-negative", lambda: fit((X, Y, with_value(W, 2, -1.0))), ValueError,
     r"^sample_weight must be >= 0, got -1.0 at row 2"),
    ("weight-length", lambda: fit((X, Y, W[:11])), ValueError,
     r"^sample_weight must hold one weight per row, shape \(12,\)"),
    ("weight-2d", lambda: fit((X, Y, np.ones((12, 2)))), ValueError, r"^sample_weight must hold one weight per row"),
    ("weight-all-zero", lambda: fit((X, Y, np.zeros(12))), ValueError, r"^sample_weight is 0 on every row"),
    ("weight-strings", lambda: fit((X, Y, np.array(["1"] * 12))), TYPE, r"^sample_weight must be a numeric array"),
    ("data-4-tuple", lambda: fit((X, Y, W, W)), TYPE,
     r"^data must be a tuple \(x, y\) or \(x, y, sample_weight\), got a tuple of 4"),
    ("data-1-tuple", lambda: fit((X,)), TYPE, r"^data must be a tuple"),
    ("validation-x-nan", lambda: fit((X, Y), (with_value(X, (1, 0), NAN), Y)), ValueError,
     r"^validation x holds .*row 1"),
    ("validation-y-length", lambda: fit((X, Y), (X, Y[:3])), ValueError, r"^validation y has 3 rows"),
    ("validation-weight-negative", lambda: fit((X, Y), (X, Y, with_value(W, 0, -2.0))), ValueError,
     r"^validation sample_weight must be >= 0"),
    ("check_array_data-list", lambda: check_array_data([X, Y]), TYPE, r"^data must be a tuple .*got list"),
]


@pytest.mark.parametrize("make, error, pattern", [pytest.param(*c[1:], id=c[0]) for c in DATA_CASES])
def test_bad_training_data_is_rejected_and_named(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_bad_data_is_refused_before_the_model_is_built():
    built = []

    def build():
        built.append(1)
        return linear()

    with pytest.raises(ValueError, match=r"^x holds"):
        Trainer(epochs=1, learning_rate=0.01, loss="mse").fit(build, (with_value(X, (0, 0), NAN), Y))
    assert built == []


def test_nan_data_names_the_data_not_the_learning_rate():
    with pytest.raises(ValueError) as err:
        fit((X, with_value(Y, 3, NAN)), learning_rate=1e-3)
    assert "y holds" in str(err.value) and "learning_rate" not in str(err.value)


# -- divergence -----------------------------------------------------------------------------------
def test_an_exploding_loss_stops_naming_the_learning_rate():
    with pytest.raises(FloatingPointError, match=r"^toy diverged at epoch \d of 3 with learning_rate=100000.0: "
                                                 r"the training loss grew from"):
        Trainer(epochs=3, batch_size=4, learning_rate=1e5, loss="mse", random_state=0).fit(
            linear, (X, Y), name="toy")


def test_a_sane_fit_is_untouched_by_the_check():
    history = fit((X, Y), epochs=3)
    assert history["loss"].is_monotonic_decreasing and np.isfinite(history["loss"]).all()


def stopper(model: keras.Model | None = None) -> StopOnNonFiniteLoss:
    callback = StopOnNonFiniteLoss("toy", 3, 0.5)
    callback.set_model(model if model is not None else linear())
    callback.on_train_begin()
    return callback


def test_growth_is_measured_from_the_first_batch():
    callback = stopper()
    callback.on_train_batch_end(0, {"loss": 0.5})
    callback.on_train_batch_end(1, {"loss": 1e9})         # only the first batch counts as the start
    callback.on_epoch_end(0, {"loss": 9e3})               # below 1e4 x max(0.5, 1)
    with pytest.raises(FloatingPointError, match=r"epoch 2 of 3 with learning_rate=0.5: the training loss grew "
                                                 r"from 0.5 to 2e\+04"):
        callback.on_epoch_end(1, {"loss": 2e4})


def test_without_batch_logs_growth_is_measured_from_the_first_epoch():
    callback = stopper()                                   # as fit_on_device: epoch logs only
    callback.on_epoch_end(0, {"loss": 5.0})
    with pytest.raises(FloatingPointError, match=r"grew from 5 to 6e\+04"):
        callback.on_epoch_end(1, {"loss": 6e4})


def test_a_nan_weight_stops_even_with_a_finite_loss():
    model = linear()
    kernel, bias = model.get_weights()
    model.set_weights([with_value(kernel, (1, 0), NAN), bias])
    with pytest.raises(FloatingPointError, match=r"epoch 1 of 3 .*1 of 3 values of .*kernel became NaN or inf"):
        stopper(model).on_epoch_end(0, {"loss": 0.5})


def test_the_start_is_reset_for_every_fit():
    callback = stopper()
    callback.on_train_batch_end(0, {"loss": 1e6})
    callback.on_train_begin()
    callback.on_train_batch_end(0, {"loss": 0.1})
    with pytest.raises(FloatingPointError, match="grew from 0.1"):
        callback.on_epoch_end(0, {"loss": 1e5})


# -- sample weights -------------------------------------------------------------------------------
def one_step(data) -> tuple[list[np.ndarray], float]:
    """The weights and the loss after one full-batch step of ``linear`` on ``data``."""
    trainer = Trainer(epochs=1, batch_size=64, learning_rate=0.1, loss="mse", random_state=0)
    history = trainer.fit(linear, data)
    return trainer.model_.get_weights(), float(history["loss"].iloc[0])


def assert_same_step(a, b) -> None:
    (weights_a, loss_a), (weights_b, loss_b) = a, b
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    for wa, wb in zip(weights_a, weights_b):
        np.testing.assert_allclose(wa, wb, rtol=1e-5, atol=1e-7)


def test_a_zero_weight_drops_the_row():
    assert_same_step(one_step((X, Y, with_value(W, 4, 0.0))), one_step((np.delete(X, 4, 0), np.delete(Y, 4))))


def test_a_weight_of_two_counts_the_row_twice():
    assert_same_step(one_step((X, Y, with_value(W, 4, 2.0))), one_step((np.vstack([X, X[4:5]]), np.r_[Y, Y[4]])))


def test_weights_are_relative_and_change_the_loss():
    assert_same_step(one_step((X, Y, W * 7.0)), one_step((X, Y)))
    weighted = one_step((X, Y, np.arange(12.0)))
    assert weighted[1] != pytest.approx(one_step((X, Y))[1], rel=1e-3)


def test_weights_reach_keras_scaled_to_mean_one():
    x, y, weight = check_array_data((X, Y, np.r_[np.zeros(6), np.full(6, 3.0)]))
    assert x is X and y is Y and weight.dtype == np.float32
    np.testing.assert_array_equal(weight, np.r_[np.zeros(6), np.full(6, 2.0)])
    assert check_array_data((X, Y))[2] is None and check_array_data((X, None))[1] is None

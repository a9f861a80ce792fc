"""The device-resident training path (``Trainer(device_data=True)``): its row-wise Adagrad math
and warm-up here, and whole fits on the JAX and PyTorch backends in their own processes
(``device_loop_probe.py``): the same Adam step as Keras' ``model.fit``, updates confined to the
batch's rows, repeatable runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from reclib.training import Trainer
from reclib.training.device_loop import ADAGRAD_EPSILON, LinearWarmup, rowwise_adagrad

PROBE = Path(__file__).with_name("device_loop_probe.py")


def test_rowwise_adagrad_is_the_formula():
    grads = np.array([[3.0, 4.0], [0.0, 0.0], [1.0, -1.0]], np.float32)
    acc = np.array([0.1, 0.1, 2.0], np.float32)
    step, new_acc = (keras.ops.convert_to_numpy(t) for t in rowwise_adagrad(grads, acc, 0.5))
    # row 0: a' = 0.1 + (9 + 16) / 2 = 12.6, step = 0.5 g / sqrt(12.6); row 1: no gradient, no step
    np.testing.assert_allclose(new_acc, [12.6, 0.1, 3.0], rtol=1e-6)
    np.testing.assert_allclose(step[0], 0.5 * grads[0] / (np.sqrt(12.6) + ADAGRAD_EPSILON), rtol=1e-6)
    np.testing.assert_array_equal(step[1], [0.0, 0.0])
    np.testing.assert_allclose(step[2], 0.5 * grads[2] / (np.sqrt(3.0) + ADAGRAD_EPSILON), rtol=1e-6)


def test_linear_warmup_ramps_then_holds():
    schedule = LinearWarmup(0.2, 4)
    rates = [float(keras.ops.convert_to_numpy(schedule(s))) for s in range(6)]
    np.testing.assert_allclose(rates, [0.05, 0.1, 0.15, 0.2, 0.2, 0.2], rtol=1e-6)
    assert float(keras.ops.convert_to_numpy(LinearWarmup(0.2, 0)(7))) == pytest.approx(0.2)
    assert LinearWarmup.from_config(schedule.get_config()).get_config() == schedule.get_config()
    with pytest.raises(ValueError, match="rate"):
        LinearWarmup(0.0, 3)
    with pytest.raises(TypeError, match="warmup_steps"):
        LinearWarmup(0.1, -1)


@pytest.mark.parametrize("options, match", [
    ({"sparse_embeddings": True}, "sparse_embeddings=True needs device_data=True"),
    ({"device_data": "yes"}, "device_data"),
    ({"warmup_steps": -2}, "warmup_steps"),
    ({"sparse_learning_rate": 0.0, "device_data": False}, "sparse_learning_rate"),
])
def test_bad_options_are_named(options, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Trainer(**options)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="checks the TensorFlow refusal")
def test_tensorflow_backend_is_refused_clearly():
    with pytest.raises(ValueError, match="device_data=True runs on the jax and torch backends, not 'tensorflow'"):
        Trainer(device_data=True)


@pytest.fixture(scope="module", params=["jax", "torch"])
def probe(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param) / "probe.json"
    env = dict(os.environ, KERAS_BACKEND=request.param, PYTHONHASHSEED="0")
    done = subprocess.run([sys.executable, str(PROBE), str(out)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_one_device_step_is_keras_fit_step(probe):
    """One full-batch step from the same seeded weights: the same Adam update as ``model.fit``
    (measured 8.9e-08 on both backends: float32 rounding of the mean loss's summation order)."""
    assert probe["one_step_max_diff"] < 1e-6


@pytest.mark.slow
def test_row_sparse_step_changes_exactly_the_batch_rows(probe):
    for name, counts in probe["sparse_rows"].items():
        assert counts["used_rows"] > 10, name
        assert counts["untouched_rows_changed"] == 0, name
        assert counts["used_rows_unchanged"] == 0, name


@pytest.mark.slow
def test_row_sparse_step_is_the_rowwise_adagrad_formula(probe):
    """One step against 0.01 g / (sqrt(mean g^2) + eps) on the batch's rows, g read off a plain
    SGD step from the same weights (measured max error 4e-8 on JAX; the step is ~0.01)."""
    for name, error in probe["sparse_step_error"].items():
        assert error < 1e-6, name


@pytest.mark.slow
def test_steps_per_call_does_not_change_the_numbers(probe):
    """Four steps in one compiled call (a fori_loop over donated state) or in four calls."""
    assert probe["steps_per_call_max_diff"] < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("path", ["dense", "sparse"])
def test_device_runs_repeat_and_learn(probe, path):
    first, second = probe[f"{path}_losses"]
    assert first == second                       # same seed, same process: the same numbers
    assert len(first) == 6 and first[-1] < 0.5 * first[0]   # measured: 0.66 -> 0.01
    assert probe[f"{path}_table_moved"] > 0.05   # the embedding tables themselves trained (0.5-1.4)


def test_mixed_float16_is_refused_on_the_device_path(probe):
    assert "mixed_float16" in probe["float16_refused"]


def test_table_embedding_gradient_scatters_in_float32(probe):
    """Under mixed_bfloat16 on JAX: keras.layers.Embedding in a functional model lowers its
    gradient to a bfloat16 scatter-add (the table is cast whole); TableEmbedding to a float32 one."""
    if probe["backend"] != "jax":
        pytest.skip("the lowered program is read on JAX")
    assert probe["scatter_dtypes"] == {"keras": ["bfloat16"], "reclib": ["float32"]}


@pytest.mark.slow
def test_validation_logs_and_best_weights(probe):
    """``validation_data`` on the device path: ``val_*`` logged every epoch, Keras' early stopping
    keeps the best epoch's weights (their validation loss is the best logged one)."""
    validated = probe["validated"]
    assert {"loss", "val_loss", "val_auc"} <= set(validated["columns"])
    assert 1 <= validated["best_epoch"] <= validated["epochs"] <= 4
    assert validated["restored_val_loss"] == pytest.approx(validated["best_val_loss"], rel=1e-5)


def test_training_data_is_not_compiled_into_the_program(probe):
    """8x the rows, the same program (a captured array would be copied into it as a constant)."""
    if probe["backend"] != "jax":
        pytest.skip("the lowered program is read on JAX")
    small, large = probe["program_chars"]
    assert large < 1.05 * small

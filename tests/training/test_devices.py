"""reclib.training.devices and reclib.training.timing: device report, synthetic CTR arrays, timing and the linear fit."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from reclib.training.devices import device_report
from reclib.training.timing import ctr_arrays, linear_scaling, time_training


def test_device_report_names_backend_devices_and_policy():
    report = device_report()
    assert report["backend"] == keras.backend.backend()
    assert report["keras"] == keras.__version__
    assert report["precision"] == keras.config.dtype_policy().name == "float32"
    assert report["compute_dtype"] == report["variable_dtype"] == "float32"
    assert report["devices"] and any("cpu" in d.lower() for d in report["devices"])
    assert report["accelerators"] == sum("gpu" in d.lower() or "cuda" in d.lower() for d in report["devices"])


def test_linear_scaling_worked_example():
    fit = linear_scaling(np.array([1, 2, 3, 4]), np.array([2.0, 4.0, 6.0, 8.0]))
    assert fit["slope"] == pytest.approx(2.0) and fit["intercept"] == pytest.approx(0.0, abs=1e-12)
    assert fit["r2"] == pytest.approx(1.0)
    noisy = linear_scaling(np.array([1, 2, 3, 4]), np.array([3.0, 3.0, 5.0, 9.0]))
    # y = (3, 3, 5, 9): least squares gives slope 2, intercept 0; residuals (1, -1, -1, 1), mean 5,
    # total sum of squares 4 + 4 + 0 + 16 = 24, so R^2 = 1 - 4 / 24
    assert noisy["slope"] == pytest.approx(2.0) and noisy["intercept"] == pytest.approx(0.0, abs=1e-12)
    assert noisy["r2"] == pytest.approx(1 - 4 / 24)
    with pytest.raises(ValueError, match="length >= 3"):
        linear_scaling(np.array([1, 2]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="finite"):
        linear_scaling(np.array([1, 2, 3]), np.array([1.0, np.nan, 2.0]))


def test_ctr_arrays_shapes_and_dtypes():
    space, x, y = ctr_arrays(3000, n_categorical=3, n_numeric=2, vocabulary=40, chunk_size=1000)
    assert sorted(x) == ["c0", "c1", "c2", "n0", "n1"]
    assert x["c0"].shape == (3000,) and x["c0"].dtype == np.int32
    assert x["n0"].shape == (3000, 1) and x["n0"].dtype == np.float32
    assert y.shape == (3000,) and set(np.unique(y)) == {0.0, 1.0}
    assert x["c0"].max() <= len(space.vocabularies_["c0"])


@pytest.mark.slow
def test_time_training_reports_positive_throughput():
    from reclib.models import build_ctr_model

    space, x, y = ctr_arrays(2048, n_categorical=3, n_numeric=1, vocabulary=30)
    result = time_training(lambda: build_ctr_model("dcnv2", space, embedding_dim=4, hidden_units=(8,)), (x, y),
                           epochs=3, batch_size=512, loss=keras.losses.BinaryCrossentropy(from_logits=True))
    assert result["samples_per_s"] == pytest.approx(2048 / result["epoch_s"])
    assert result["samples_per_s"] > 0 and np.isfinite(result["final_loss"])
    assert 0 < result["samples_per_s_slowest"] <= result["samples_per_s"]     # two later epochs: their spread
    with pytest.raises(ValueError, match="epochs must be >= 2"):
        time_training(lambda: None, (x, y), epochs=1)

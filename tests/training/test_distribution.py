"""Data parallelism through Trainer(distribution=...): MirroredStrategy over two virtual CPU
devices trains like one device at the same global batch (run in a fresh process, < 60 s)."""

from __future__ import annotations

import pytest

from reclib.models.distribution import data_parallel_check, multi_worker_check


@pytest.mark.slow
def test_two_virtual_devices_follow_the_one_device_trajectory():
    frame = data_parallel_check(n_devices=2, n_rows=4096, batch_size=256, epochs=3, random_state=0, timeout=120)
    assert frame.attrs["devices"] == ["/device:CPU:0", "/device:CPU:1"] and frame.attrs["replicas"] == 2
    # measured: logged losses 0.6107 / 0.5177 / 0.4737 on one device, |diff| <= 4e-4 on two
    assert frame["loss_1_device"].tolist() == pytest.approx([0.6107, 0.5177, 0.4737], abs=2e-3)
    assert frame["abs_diff"].max() < 2e-3
    assert frame["loss_2_devices"].is_monotonic_decreasing
    # recomputed without Keras' logging: the two trained models fit the data alike (0.4472 vs 0.4469)
    assert frame.attrs["final_loss_1_device"] == pytest.approx(0.4472, abs=2e-3)
    assert frame.attrs["final_loss_n_devices"] == pytest.approx(frame.attrs["final_loss_1_device"], abs=2e-3)
    assert frame.attrs["max_weight_diff"] < 0.05


def test_bad_arguments_fail_before_starting_a_process():
    with pytest.raises(ValueError, match="n_devices must be >= 2"):
        data_parallel_check(n_devices=1)
    with pytest.raises(ValueError, match="multiple of n_devices"):
        data_parallel_check(n_devices=2, batch_size=255)


@pytest.mark.slow
def test_two_workers_on_loopback_train_one_model():
    try:
        frame = multi_worker_check(n_workers=2, n_rows=2048, batch_size=256, epochs=2, random_state=0, timeout=180)
    except RuntimeError as error:
        # Keras 3.15 on TensorFlow 2.21: fit's first symbolic build calls strategy.reduce on the
        # input batch, which the collective all-reduce rejects (keras-team/keras issue 20329)
        if "PerReplica" in str(error) and "to a Tensor" in str(error):
            pytest.xfail("Keras 3.15 cannot fit under MultiWorkerMirroredStrategy (keras issue 20329)")
        raise
    assert frame.attrs["workers"] == 2
    assert frame["weight_sum"].nunique() == 1            # the workers hold one model
    assert frame["final_loss"].max() < 0.6


def test_multi_worker_bad_arguments_fail_before_starting_processes():
    with pytest.raises(ValueError, match="n_workers must be >= 2"):
        multi_worker_check(n_workers=1)
    with pytest.raises(ValueError, match="multiple of n_workers"):
        multi_worker_check(n_workers=2, batch_size=255)

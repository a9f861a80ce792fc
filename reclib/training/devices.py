"""Where training runs: :func:`device_report` (backend, framework and Keras versions, devices,
accelerators, the dtype policy; a dict, ``pd.Series(report)`` shows it) and
:func:`virtual_cpu_devices` (TensorFlow's CPU split into logical devices, for the data-parallel
check of :mod:`reclib.models.distribution`). How fast it runs: :mod:`reclib.training.timing`.
"""

from __future__ import annotations

import os
import platform

import keras

from reclib.checks import check_positive_int

__all__ = ["device_report", "virtual_cpu_devices"]

_ACCELERATORS = ("gpu", "tpu", "cuda", "mps")


def _backend_devices(backend: str) -> tuple[str, str, list[str]]:
    """(framework name, its version, device names) of the Keras backend in use.

    On TensorFlow this lists the *logical* devices, which initialises the runtime (after that,
    :func:`virtual_cpu_devices` can no longer be applied in this process)."""
    if backend == "tensorflow":
        import tensorflow as tf
        return "tensorflow", tf.__version__, [d.name for d in tf.config.list_logical_devices()]
    if backend == "jax":
        import jax
        return "jax", jax.__version__, [f"{d.platform}:{d.id}" for d in jax.devices()]
    if backend == "torch":
        import torch
        names = ["cpu"] + [f"cuda:{j}" for j in range(torch.cuda.device_count())]
        return "torch", torch.__version__, names
    return backend, "", []


def device_report() -> dict[str, object]:
    """What this process trains on: ``backend``, ``framework`` and ``framework_version``, ``keras``
    version, ``devices`` (names, in the framework's order), ``accelerators`` (how many are GPUs or
    TPUs), ``precision`` (the global dtype policy), its ``compute_dtype`` and ``variable_dtype``,
    ``cpu_count`` and ``python``."""
    backend = keras.backend.backend()
    framework, version, devices = _backend_devices(backend)
    policy = keras.config.dtype_policy()
    return {"backend": backend, "framework": framework, "framework_version": version,
            "keras": keras.__version__, "devices": devices,
            "accelerators": sum(any(a in d.lower() for a in _ACCELERATORS) for d in devices),
            "precision": policy.name, "compute_dtype": policy.compute_dtype,
            "variable_dtype": policy.variable_dtype, "cpu_count": os.cpu_count(),
            "python": platform.python_version()}


def virtual_cpu_devices(n: int) -> list[str]:
    """Split TensorFlow's CPU into ``n`` logical devices; returns their names. Must run before
    TensorFlow initialises (before any tensor op or device listing) in this process; otherwise a
    ``RuntimeError`` says so (use :func:`reclib.models.distribution.data_parallel_check`, which starts a
    fresh process)."""
    check_positive_int(n=n)
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError as error:
        raise RuntimeError(f"virtual_cpu_devices({n}) must run before TensorFlow initialises; this process "
                           f"already uses TensorFlow: run it in a fresh process") from error
    return [d.name for d in tf.config.list_logical_devices("CPU")]

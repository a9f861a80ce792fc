"""Does a model train the same when distributed? The checks of notebook 08, each in fresh Python
processes on the TensorFlow backend, on a small DCN-V2 (:func:`~reclib.models.build_ctr_model`)
trained through :class:`~reclib.training.Trainer`:

- :func:`data_parallel_check`: ``MirroredStrategy`` over ``n`` logical CPU devices
  (:func:`reclib.training.devices.virtual_cpu_devices`) against one device at the same global
  batch. Logical devices can only be configured before TensorFlow initialises, so the check runs
  in a fresh process (``python -m reclib.models.distribution data-parallel``).
- :func:`multi_worker_check`: ``MultiWorkerMirroredStrategy`` over local workers on loopback,
  started exactly as on a cluster (``TF_CONFIG``; ``... worker --index i``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd

from reclib.checks import check_non_negative_int, check_positive_int
from reclib.models.tasks import PointwiseTask
from reclib.training.devices import device_report, virtual_cpu_devices
from reclib.training.launch import free_ports
from reclib.training.timing import ctr_arrays

__all__ = ["data_parallel_check", "multi_worker_check"]


def _data_parallel_losses(n_devices: int, n_rows: int, batch_size: int, epochs: int, random_state: int) -> dict:
    """In a fresh process: train a small DCN-V2 on one device and on ``MirroredStrategy`` over
    ``n_devices`` virtual CPU devices, same data, seed and global batch; the per-epoch losses."""
    devices = virtual_cpu_devices(n_devices)
    import tensorflow as tf

    from reclib.models.interaction import build_ctr_model

    space, x, y = ctr_arrays(n_rows, n_categorical=4, n_numeric=2, vocabulary=100, random_state=random_state)
    build = lambda: build_ctr_model("dcnv2", space, embedding_dim=8, hidden_units=(32,), dropout=0.0)  # noqa: E731
    options = dict(epochs=epochs, batch_size=batch_size, learning_rate=3e-3, random_state=random_state, patience=epochs,
                   loss=PointwiseTask.compiled_loss())
    from reclib.training.trainer import Trainer

    runs = {}
    for label, strategy in (("1_device", None), (f"{n_devices}_devices", tf.distribute.MirroredStrategy(
            devices=devices, cross_device_ops=tf.distribute.ReductionToOneDevice()))):
        trainer = Trainer(distribution=strategy, **options)
        logged = trainer.fit(build, (x, y))["loss"].to_numpy()
        replicas = 1 if strategy is None else int(strategy.num_replicas_in_sync)
        logits = np.asarray(trainer.model_.predict(x, batch_size=4096, verbose=0), np.float64)
        runs[label] = {"logged": logged.tolist(), "replicas": replicas, "weights": trainer.model_.get_weights(),
                       "loss": float(np.mean(np.logaddexp(0.0, logits) - y * logits))}    # BCE from logits
    one, many = runs["1_device"], runs[f"{n_devices}_devices"]
    weight_diff = max(float(np.max(np.abs(a - b))) for a, b in zip(one["weights"], many["weights"]))
    return {"devices": devices, "replicas": many["replicas"], "logged_1_device": one["logged"],
            "logged_n_devices": many["logged"], "final_loss_1_device": one["loss"],
            "final_loss_n_devices": many["loss"], "max_weight_diff": weight_diff}


def _check_parallel_run(name: str, parts: int, n_rows: int, batch_size: int, epochs: int, random_state: int) -> None:
    """The arguments of a parallel check, before any process starts: ``parts`` (devices or workers,
    named ``name``) >= 2 and dividing the global ``batch_size``."""
    check_positive_int(**{name: parts}, n_rows=n_rows, batch_size=batch_size, epochs=epochs)
    check_non_negative_int(random_state=random_state)
    if parts < 2:
        raise ValueError(f"{name} must be >= 2 for a parallel run, got {parts}")
    if batch_size % parts:
        raise ValueError(f"batch_size ({batch_size}) must be a multiple of {name} ({parts})")


def data_parallel_check(n_devices: int = 2, n_rows: int = 4096, batch_size: int = 256, epochs: int = 3,
                        random_state: int = 0, timeout: float = 300.0) -> pd.DataFrame:
    """Run the one-device vs ``n_devices``-device comparison (module doc) in a fresh Python process
    on the TensorFlow backend; a frame with one row per epoch: ``epoch``, ``loss_1_device``,
    ``loss_<n>_devices`` (the training losses Keras logs) and ``abs_diff``. ``batch_size`` is the
    global batch (each replica gets ``batch_size / n_devices`` rows).

    Keras 3 (3.15, TensorFlow 2.21) logs the mirrored training loss summed over the replicas (the
    per-replica loss is scaled by 1/replicas for the gradient all-reduce and then multiplied back
    on every replica before the sum): the logged value is divided by ``replicas`` here. The
    gradients are right, which ``attrs`` shows independently of the logging: ``final_loss_1_device``
    and ``final_loss_n_devices`` (mean binary cross-entropy of each trained model on the training
    rows, recomputed with NumPy) and ``max_weight_diff`` (largest absolute difference between the
    two models' weights); also ``devices`` and ``replicas``."""
    _check_parallel_run("n_devices", n_devices, n_rows, batch_size, epochs, random_state)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
    command = [sys.executable, "-m", "reclib.models.distribution", "data-parallel", "--devices", str(n_devices),
               "--rows", str(n_rows), "--batch-size", str(batch_size), "--epochs", str(epochs), "--seed", str(random_state)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the data-parallel process failed ({done.returncode}):\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    many = f"loss_{n_devices}_devices"
    frame = pd.DataFrame({"epoch": np.arange(1, epochs + 1), "loss_1_device": result["logged_1_device"],
                          many: np.asarray(result["logged_n_devices"]) / result["replicas"]})
    frame["abs_diff"] = (frame["loss_1_device"] - frame[many]).abs()
    frame.attrs.update({key: result[key] for key in ("devices", "replicas", "final_loss_1_device",
                                                     "final_loss_n_devices", "max_weight_diff")})
    return frame


def _multi_worker_losses(index: int, n_rows: int, batch_size: int, epochs: int, random_state: int) -> dict:
    """In one worker process (``TF_CONFIG`` set by :func:`multi_worker_check`): train the small
    DCN-V2 of :func:`_data_parallel_losses` under ``MultiWorkerMirroredStrategy``, every worker on
    the same seeded rows (Keras shards them by the strategy's auto-shard policy); the logged losses,
    the final mean training loss and a checksum of the weights."""
    import tensorflow as tf
    strategy = tf.distribute.MultiWorkerMirroredStrategy()     # before any other TensorFlow op
    from reclib.models.interaction import build_ctr_model
    from reclib.training.trainer import Trainer

    space, x, y = ctr_arrays(n_rows, n_categorical=4, n_numeric=2, vocabulary=100, random_state=random_state)
    trainer = Trainer(distribution=strategy, epochs=epochs, batch_size=batch_size, learning_rate=3e-3,
                      random_state=random_state, patience=epochs, loss=PointwiseTask.compiled_loss())
    logged = trainer.fit(lambda: build_ctr_model("dcnv2", space, embedding_dim=8, hidden_units=(32,),
                                                 dropout=0.0), (x, y))["loss"].to_numpy()
    logits = np.asarray(trainer.model_.predict(x, batch_size=4096, verbose=0), np.float64)
    return {"index": index, "workers": len(json.loads(os.environ["TF_CONFIG"])["cluster"]["worker"]), "logged": logged.tolist(),
            "final_loss": float(np.mean(np.logaddexp(0.0, logits) - y * logits)),
            "weight_sum": float(sum(np.abs(w).sum() for w in trainer.model_.get_weights()))}


def multi_worker_check(n_workers: int = 2, n_rows: int = 4096, batch_size: int = 256, epochs: int = 3,
                       random_state: int = 0, timeout: float = 300.0) -> pd.DataFrame:
    """Train one small DCN-V2 with ``tf.distribute.MultiWorkerMirroredStrategy`` across
    ``n_workers`` local worker processes that talk over loopback TCP, each started with its own
    ``TF_CONFIG`` (``{"cluster": {"worker": ["localhost:PORT", ...]}, "task": {"type": "worker",
    "index": i}}``) exactly as on a cluster of machines; ``batch_size`` is the global batch.

    Returns a frame with one row per worker: ``worker``, ``final_loss`` (mean binary cross-entropy
    of its trained model on the training rows, NumPy), ``weight_sum`` (sum of absolute weights: the
    workers hold one model, so these agree) and ``loss_epoch_<e>`` (the losses Keras logs).
    ``attrs["workers"]`` is the number of workers the strategy saw.

    Known upstream failure: with Keras 3.15 on TensorFlow 2.21, ``model.fit`` under
    ``MultiWorkerMirroredStrategy`` stops at its first symbolic build (it calls ``strategy.reduce``
    on the input batch, which the collective all-reduce cannot convert; keras-team/keras issue
    20329, also with a plain ``Sequential`` model); the worker's error comes back as a
    ``RuntimeError``. Multi-machine training works on the JAX backend with ``keras.distribution``
    after ``keras.distribution.initialize()``."""
    _check_parallel_run("n_workers", n_workers, n_rows, batch_size, epochs, random_state)
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(n_workers)]}
    processes = []
    for index in range(n_workers):
        env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0",
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        command = [sys.executable, "-m", "reclib.models.distribution", "worker", "--index", str(index),
                   "--rows", str(n_rows), "--batch-size", str(batch_size), "--epochs", str(epochs),
                   "--seed", str(random_state)]
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
    results = []
    try:
        for index, process in enumerate(processes):
            out, err = process.communicate(timeout=timeout)
            if process.returncode != 0:
                raise RuntimeError(f"worker {index} failed ({process.returncode}): {err.strip().splitlines()[-1]}")
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    frame = pd.DataFrame({"worker": [r["index"] for r in results],
                          "final_loss": [r["final_loss"] for r in results],
                          "weight_sum": [r["weight_sum"] for r in results]})
    for epoch in range(epochs):
        frame[f"loss_epoch_{epoch + 1}"] = [r["logged"][epoch] for r in results]
    frame.attrs["workers"] = results[0]["workers"]
    return frame


def main(argv: list[str] | None = None) -> int:
    """``python -m reclib.models.distribution report`` prints :func:`device_report` as JSON;
    ``... data-parallel`` runs :func:`_data_parallel_losses` and prints its JSON (last line);
    ``... worker --index i`` (with ``TF_CONFIG`` set) runs :func:`_multi_worker_losses`."""
    parser = argparse.ArgumentParser(prog="python -m reclib.models.distribution")
    parser.add_argument("command", choices=("report", "data-parallel", "worker"))
    parser.add_argument("--index", type=int, default=0)
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "report":
        print(json.dumps(device_report()))
    elif args.command == "worker":
        try:
            print(json.dumps(_multi_worker_losses(args.index, args.rows, args.batch_size, args.epochs, args.seed)))
        except Exception as error:            # one short line for the parent (tensor dumps cut out)
            message = str(error)
            short = message if len(message) < 400 else f"{message[:200]} ... {message[-200:]}"
            print(f"{type(error).__name__}: {' '.join(short.split())}", file=sys.stderr)
            return 1
    else:
        print(json.dumps(_data_parallel_losses(args.devices, args.rows, args.batch_size, args.epochs, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""One model trained by several processes (on one machine or many) with ``keras.distribution`` on
JAX: joining the processes, the two layouts, and each process's shard of the data. The PyTorch
models join with :func:`initialize_torch_processes` and train under ``DistributedDataParallel``
(:mod:`reclib.models.item_lm`, :mod:`reclib.models.text_tower`).

A run of ``P`` processes is started by :mod:`reclib.training.launch` (or by a cluster's scheduler)
with three environment variables per process, those ``keras.distribution.initialize`` reads:
``KERAS_DISTRIBUTION_JOB_ADDRESSES`` (the coordinator, ``host:port`` of process 0),
``KERAS_DISTRIBUTION_NUM_PROCESSES`` (``P``) and ``KERAS_DISTRIBUTION_PROCESS_ID`` (``0..P-1``).
Every process then runs the same script:

1. :func:`initialize_processes` joins the run (``jax.distributed`` underneath; on CPU the
   collectives go over gloo/TCP, so two processes on one machine are a real multi-host run) and
   returns ``(process_index, process_count)``;
2. the model is built and trained under :func:`data_parallel` (every variable replicated, each
   global batch split over the processes, gradients all-reduced) or :func:`sharded_tables`
   (likewise, but the embedding tables are split by rows: each process holds ``1/P`` of every
   table, so a table larger than one device's memory fits across several);
3. each process reads only its part of every global batch: :class:`ShardedArrays` for arrays,
   :class:`ProcessShard` around any ``PyDataset`` of global batches.

Why the result equals one process at the same global batch: JAX assembles the processes' parts
into one global array (:func:`jax.make_array_from_process_local_data`, process 0's rows first) and
compiles the training step for the global array, so the loss (an in-batch softmax included) is the
single-process loss of the same rows; only the order of floating-point sums in the collectives
differs (measured by ``tests/training/test_multi_process.py``: at most 2.2e-7 relative per epoch
at a global batch of 256; 2.4e-5 at 16,384 in ``make bench-train``).
"""

from __future__ import annotations

import os

import keras
import numpy as np

from reclib.checks import ParameterTypeError, check_non_negative_int, check_positive_int

__all__ = ["ProcessShard", "ShardedArrays", "data_parallel", "epoch_batches", "initialize_processes",
           "initialize_torch_processes", "process_rows", "sharded_tables"]

PROCESS_VARIABLES = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                     "KERAS_DISTRIBUTION_PROCESS_ID")


def _process_from_environment() -> tuple[int, int]:
    """``(process_index, process_count)`` from the environment: ``(0, 1)`` when the variables are
    absent; a ``ValueError`` naming the variable when one is malformed."""
    values = {}
    for name, default in ((PROCESS_VARIABLES[1], "1"), (PROCESS_VARIABLES[2], "0")):
        text = os.environ.get(name, default)
        if not text.isdigit():
            raise ValueError(f"{name} must be a non-negative integer, got {text!r}")
        values[name] = int(text)
    count, index = values[PROCESS_VARIABLES[1]], values[PROCESS_VARIABLES[2]]
    if count < 1 or index >= count:
        raise ValueError(f"{PROCESS_VARIABLES[2]} ({index}) must be in [0, {PROCESS_VARIABLES[1]}) = [0, {count})")
    if count > 1 and not os.environ.get(PROCESS_VARIABLES[0]):
        raise ValueError(f"{PROCESS_VARIABLES[0]} must name the coordinator (host:port of process 0) when "
                         f"{PROCESS_VARIABLES[1]} is {count}")
    return index, count


def initialize_processes() -> tuple[int, int]:
    """Join the multi-process run the environment describes (module doc) and return
    ``(process_index, process_count)``; a single process (no variables, or a count of 1) returns
    ``(0, 1)`` and initialises nothing. Call it first in the script, before any computation; the
    Keras backend must be JAX (``KERAS_BACKEND=jax``) for a count above 1."""
    index, count = _process_from_environment()
    if count > 1:
        if keras.backend.backend() != "jax":
            raise ValueError(f"multi-process training runs on the JAX backend, not {keras.backend.backend()!r} "
                             f"(set KERAS_BACKEND=jax before importing keras)")
        keras.distribution.initialize()          # reads the three variables; jax.distributed underneath
    return index, count


def initialize_torch_processes(backend: str | None = None) -> tuple[int, int]:
    """The PyTorch counterpart of :func:`initialize_processes`, for the PyTorch-backed models
    (:class:`~reclib.models.item_lm.ItemGPT2Recommender`): join the ``torch.distributed`` run that
    ``MASTER_ADDR``, ``MASTER_PORT``, ``RANK`` and ``WORLD_SIZE`` describe (the launcher sets them,
    as ``torchrun`` does) and return ``(rank, world_size)``. ``backend``: ``"gloo"`` (CPU) or
    ``"nccl"`` (GPUs: one per process, rank ``LOCAL_RANK`` on GPU ``LOCAL_RANK``, which becomes the
    current CUDA device); by default nccl where CUDA is visible, else gloo. The models then train
    on ``device="cuda"`` (or ``"cpu"`` with gloo). ``WORLD_SIZE`` absent or 1: ``(0, 1)``, nothing
    initialised. Not run on GPUs yet (no GPU machine was lent)."""
    text = os.environ.get("WORLD_SIZE", "1")
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"WORLD_SIZE must be a positive integer, got {text!r}")
    if int(text) == 1:
        return 0, 1
    if backend not in (None, "gloo", "nccl"):
        raise ValueError(f"backend must be None, 'gloo' or 'nccl', got {backend!r}")
    import torch
    import torch.distributed as dist
    backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
    if backend == "nccl":           # one GPU per process: "cuda" then means this rank's GPU
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        dist.init_process_group(backend, init_method="env://")
    return int(dist.get_rank()), int(dist.get_world_size())


def data_parallel() -> keras.distribution.DataParallel:
    """Every variable replicated on every device of every process, batches split over them. The
    data are sharded by the caller (:class:`ShardedArrays`, :class:`ProcessShard`), so Keras' own
    ``tf.data`` auto-sharding is off."""
    return keras.distribution.DataParallel(devices=keras.distribution.list_devices(), auto_shard_dataset=False)


def sharded_tables(pattern: str = ".*embeddings") -> keras.distribution.ModelParallel:
    """Like :func:`data_parallel`, but the variables whose path matches ``pattern`` (a regular
    expression; by default every ``Embedding``/``TableEmbedding`` table) are split by rows over
    all devices: with ``D`` devices each holds ``rows / D`` of every table, so ``rows`` must be a
    multiple of ``D`` (size a vocabulary accordingly). The batch is split over the same axis."""
    if not isinstance(pattern, str) or not pattern:
        raise ParameterTypeError(f"pattern must be a regular expression over variable paths, got {pattern!r}")
    devices = keras.distribution.list_devices()
    mesh = keras.distribution.DeviceMesh((len(devices),), ["batch"], devices)
    layout = keras.distribution.LayoutMap(mesh)
    layout[pattern] = ("batch", None)
    return keras.distribution.ModelParallel(layout_map=layout, batch_dim_name="batch", auto_shard_dataset=False)


def _device_count() -> int:
    """Every device of the run, all processes together (JAX)."""
    import jax
    return int(jax.device_count())


def _check_shard(process_index: int | None, process_count: int | None) -> tuple[int, int]:
    """The given ``(process_index, process_count)``, or the environment's where both are None."""
    if process_index is None and process_count is None:
        return _process_from_environment()
    check_non_negative_int(process_index=process_index)
    check_positive_int(process_count=process_count)
    if process_index >= process_count:
        raise ValueError(f"process_index ({process_index}) must be < process_count ({process_count})")
    return process_index, process_count


def epoch_batches(n_rows: int, global_batch: int, epoch: int, random_state: int,
                  parts: int = 1) -> list[np.ndarray]:
    """The rows of every global batch of one epoch, a list of 1-D index arrays: a permutation of
    ``range(n_rows)`` drawn from ``default_rng([random_state, epoch])`` (so any process computes
    any epoch's order alone, and a resumed run continues it), cut into batches of
    ``global_batch`` rows. The last, partial batch is cut to a multiple of ``parts`` (the devices
    it is split over, so every one gets an equal part of it): at most ``parts - 1`` rows are left
    out of an epoch, a different set each epoch, and none on one device."""
    check_positive_int(n_rows=n_rows, global_batch=global_batch, parts=parts)
    check_non_negative_int(epoch=epoch, random_state=random_state)
    if n_rows < global_batch:
        raise ValueError(f"{n_rows} rows are fewer than one global batch of {global_batch}")
    order = np.random.default_rng([random_state, epoch]).permutation(n_rows)
    kept = n_rows - (n_rows % global_batch) % parts
    return [order[start:min(start + global_batch, kept)] for start in range(0, kept, global_batch)]


def process_rows(batch: np.ndarray, process_index: int, process_count: int) -> np.ndarray:
    """Process ``process_index``'s contiguous part of one global ``batch`` of row indices:
    ``len(batch) / process_count`` rows. Contiguous, because JAX puts process 0's rows first when
    it assembles the global batch: the global batch is then the single-process batch, row for
    row."""
    process_index, process_count = _check_shard(process_index, process_count)
    if len(batch) % process_count:
        raise ValueError(f"a global batch of {len(batch)} rows cannot be split over {process_count} processes")
    local = len(batch) // process_count
    return batch[process_index * local:(process_index + 1) * local]


class ShardedArrays(keras.utils.PyDataset):
    """This process's part of seeded, reshuffled global batches of arrays.

    ``x`` is an array or a dict of arrays, ``y`` an array or ``None`` (models that need no
    labels); ``global_batch`` is the batch of the whole run (each process yields
    ``global_batch / process_count`` rows per step). Epoch ``e`` follows
    :func:`epoch_batches` ``(n, global_batch, e, random_state, n_devices)``; each process gathers
    only its own rows (:func:`process_rows`). ``process_index``/``process_count`` default to the
    environment's (:mod:`reclib.training.launch` sets it), ``(0, 1)`` outside a multi-process run.
    ``n_devices``: the devices the batch is split over, a multiple of ``process_count`` (default:
    ``jax.device_count()`` on JAX, else ``process_count``); ``global_batch`` must be a multiple of
    it, and the last batch of an epoch is cut to one."""

    def __init__(self, x: np.ndarray | dict, y: np.ndarray | None, global_batch: int, random_state: int = 42,
                 process_index: int | None = None, process_count: int | None = None,
                 n_devices: int | None = None, **kwargs) -> None:
        from reclib.training.data import check_inputs
        n = check_inputs("x", x)
        if y is not None and check_inputs("y", y) != n:
            raise ValueError(f"y must have one row per row of x ({n})")
        check_positive_int(global_batch=global_batch)
        check_non_negative_int(random_state=random_state)
        self.process_index, self.process_count = _check_shard(process_index, process_count)
        if n_devices is None:
            n_devices = _device_count() if keras.backend.backend() == "jax" else self.process_count
        check_positive_int(n_devices=n_devices)
        if n_devices % self.process_count:
            raise ValueError(f"n_devices ({n_devices}) must be a multiple of process_count ({self.process_count})")
        if global_batch % n_devices:
            raise ValueError(f"global_batch ({global_batch}) must be a multiple of the {n_devices} device(s) "
                             f"it is split over")
        epoch_batches(n, global_batch, 0, random_state)          # refuses fewer rows than a batch
        super().__init__(**kwargs)
        self.x, self.y, self.n_rows, self.n_devices = x, y, n, n_devices
        self.global_batch, self.random_state, self.epoch = global_batch, random_state, 0
        self._rows = self._epoch_rows()

    def _epoch_rows(self) -> list[np.ndarray]:
        batches = epoch_batches(self.n_rows, self.global_batch, self.epoch, self.random_state, self.n_devices)
        return [process_rows(batch, self.process_index, self.process_count) for batch in batches]

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: int):
        rows = self._rows[index]
        take = lambda a: np.asarray(a)[rows]  # noqa: E731
        x = {k: take(v) for k, v in self.x.items()} if isinstance(self.x, dict) else take(self.x)
        return x if self.y is None else (x, take(self.y))

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self._rows = self._epoch_rows()


class ProcessShard(keras.utils.PyDataset):
    """This process's contiguous part of every batch of ``dataset``, a ``PyDataset`` of global
    batches (inputs, or ``(inputs, labels)``; arrays or dicts of arrays) that every process builds
    alike from the same seed, e.g. :class:`~reclib.training.InBatchDataset` over MovieLens. The
    wrapped dataset still gathers the whole global batch and this keeps ``1/process_count`` of it
    (the data of every process are the same; the work per step is shared): use
    :class:`ShardedArrays` where that gather is costly. ``on_epoch_end`` is passed on."""

    def __init__(self, dataset: keras.utils.PyDataset, process_index: int | None = None,
                 process_count: int | None = None, **kwargs) -> None:
        if not isinstance(dataset, keras.utils.PyDataset):
            raise ParameterTypeError(f"dataset must be a keras.utils.PyDataset, got {type(dataset).__name__}")
        super().__init__(**kwargs)
        self.dataset = dataset
        self.process_index, self.process_count = _check_shard(process_index, process_count)

    def __len__(self) -> int:
        return len(self.dataset)

    def _part(self, array):
        return process_rows(np.asarray(array), self.process_index, self.process_count)

    def __getitem__(self, index: int):
        batch = self.dataset[index]
        parts = batch if isinstance(batch, tuple) else (batch,)
        cut = tuple({k: self._part(v) for k, v in p.items()} if isinstance(p, dict) else self._part(p) for p in parts)
        return cut if isinstance(batch, tuple) else cut[0]

    def on_epoch_end(self) -> None:
        self.dataset.on_epoch_end()


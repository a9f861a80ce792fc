"""Does a model train the same across processes? Notebook 08's check of multi-process training
on JAX (:mod:`reclib.training.processes`), with real processes talking over loopback TCP, started
by :func:`reclib.training.launch.launch` exactly as a cluster starts them.

:func:`multi_process_check` trains one small model through :class:`~reclib.training.Trainer`
twice, in one process and in ``n_processes``, same data, seed and *global* batch, each process
reading only its part of every batch (:class:`~reclib.training.processes.ShardedArrays`):

- ``model="dcnv2"``: a small DCN-V2 (:func:`~reclib.models.build_ctr_model`) on synthetic click
  rows, binary cross-entropy (``"dcnv2_bench"``: the larger one ``make bench-train`` times);
- ``model="two_tower"``: the :class:`~reclib.models.retrieval.TwoTower` model with in-batch
  softmax on synthetic implicit feedback (511 users, 255 items: tables of 512 and 256 rows, which
  split evenly over 2 or 4 processes).

- ``model="gpt2_items"`` and ``"text_tower"``: GPT-2 over items
  (:class:`~reclib.models.item_lm.ItemGPT2Recommender`) on planted sequences and the text tower
  (:class:`~reclib.models.text_tower.TextTowerRecommender`, frozen MiniLM) on synthetic events,
  both PyTorch without dropout, under ``torch.distributed`` with ``DistributedDataParallel`` on
  gloo: the same launcher, the other engine.

With ``shard_tables=True`` (Keras models only) the embedding tables are split by rows over the processes
(:func:`~reclib.training.processes.sharded_tables`); otherwise every variable is replicated
(:func:`~reclib.training.processes.data_parallel`). The one-process run holds every table whole
either way, so with ``shard_tables=True`` the check compares sharded tables with replicated ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile

import numpy as np
import pandas as pd

from reclib.checks import check_bool, check_choice, check_non_negative_int, check_positive_int
from reclib.training.launch import launch

__all__ = ["multi_process_check"]

MODELS = ("dcnv2", "dcnv2_bench", "two_tower", "gpt2_items", "text_tower")
TWO_TOWER_USERS, TWO_TOWER_ITEMS = 511, 255


def _dcnv2_run(n_rows: int, random_state: int, bench: bool = False):
    """``(build, x, y, loss, learning_rate)`` of a DCN-V2 on synthetic click rows: small (4 id
    fields of 100 values, embedding 8, MLP 32), or with ``bench`` the model of ``make bench-train``
    (8 fields of 1,000 values, 4 numbers, embedding 16, MLP 128-64)."""
    from reclib.models.interaction import build_ctr_model
    from reclib.models.tasks import PointwiseTask
    from reclib.training.timing import ctr_arrays

    fields, numbers, values, width, hidden = (8, 4, 1000, 16, (128, 64)) if bench else (4, 2, 100, 8, (32,))
    space, x, y = ctr_arrays(n_rows, n_categorical=fields, n_numeric=numbers, vocabulary=values,
                             random_state=random_state)
    build = lambda: build_ctr_model("dcnv2", space, embedding_dim=width, hidden_units=hidden, dropout=0.0)  # noqa: E731
    return build, x, y, PointwiseTask.compiled_loss(), 3e-3


def _two_tower_run(n_rows: int, random_state: int):
    """``(build, x, None, None, learning_rate)`` of a small two-tower model on synthetic feedback."""
    from reclib.data.synthetic import SyntheticImplicit
    from reclib.models.retrieval import TwoTower

    events = SyntheticImplicit(n_users=TWO_TOWER_USERS, n_items=TWO_TOWER_ITEMS, random_state=random_state).frame(n_rows)
    users, items = events["user_id"].to_numpy(), events["item_id"].to_numpy()
    counts = np.bincount(items, minlength=TWO_TOWER_ITEMS)
    x = {"user": (users + 1).astype(np.int32), "item": (items + 1).astype(np.int32),
         "log_q": np.log(counts[items] / len(items)).astype(np.float32)}
    build = lambda: TwoTower(TWO_TOWER_USERS, TWO_TOWER_ITEMS, embedding_dim=16, tower_dims=(32,),  # noqa: E731
                             use_history=False)
    return build, x, None, None, 1e-2


def _digest(arrays: list[np.ndarray]) -> str:
    """SHA-256 over the bytes of ``arrays`` in order (equal digests: bit-identical values)."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _fit_gpt2_items(n_rows: int, batch_size: int, epochs: int, random_state: int):
    """:class:`~reclib.models.item_lm.ItemGPT2Recommender` (one layer, width 16, no dropout) on
    planted sequences of ``n_rows // 15`` users with 15 events each; ``(model, trained modules)``."""
    from reclib.data.synthetic import planted_sequences
    from reclib.models.item_lm import ItemGPT2Recommender

    events, _ = planted_sequences(n_users=max(1, n_rows // 15), n_items=100, length=15, random_state=random_state)
    model = ItemGPT2Recommender(max_length=10, embedding_dim=16, n_layers=1, n_heads=2, dropout=0.0, epochs=epochs,
                                batch_size=batch_size, learning_rate=5e-3, random_state=random_state,
                                device="cpu").fit(events)      # the rate its recorded losses were measured at
    return model, [model.torch_model_]


def _fit_text_tower(n_rows: int, batch_size: int, epochs: int, random_state: int):
    """:class:`~reclib.models.text_tower.TextTowerRecommender` over the frozen MiniLM encoder (no
    dropout anywhere: ``trainable_layers=0``, ``id_dropout=0``) on ``n_rows`` synthetic events of
    120 users and 40 films with short made-up texts; ``(model, trained modules)``."""
    from reclib.data.synthetic import SyntheticImplicit
    from reclib.features.content import ItemFeatures
    from reclib.models.text_tower import TextTowerRecommender

    events = SyntheticImplicit(n_users=120, n_items=40, random_state=random_state).frame(n_rows)
    texts = np.array([f"Film {i} ({1950 + i}): a story of kind {i % 7}, told in {i % 3 + 1} parts." for i in range(40)])
    model = TextTowerRecommender(trainable_layers=0, embedding_dim=16, epochs=epochs, batch_size=batch_size,
                                 max_length=24, id_dropout=0.0, random_state=random_state, device="cpu")
    model.fit(events, item_features=ItemFeatures(np.arange(40), texts=texts))
    return model, [model._projection, model._user_embedding, model._item_embedding]


TORCH_MODELS = {"gpt2_items": _fit_gpt2_items, "text_tower": _fit_text_tower}


def _torch_worker(model: str, n_rows: int, batch_size: int, epochs: int, random_state: int, weights_file: str) -> dict:
    """One process of a PyTorch run (``TORCH_MODELS``), under ``DistributedDataParallel`` (gloo)
    when launched as several processes; the report of :func:`_worker`."""
    from reclib.training.processes import initialize_torch_processes

    index, count = initialize_torch_processes("gloo")     # the models train on the CPU, GPU or not
    fitted, modules = TORCH_MODELS[model](n_rows, batch_size, epochs, random_state)
    weights = [p.detach().numpy().copy() for module in modules for p in module.parameters()]
    if index == 0:
        np.savez(weights_file, **{f"w{j}": w for j, w in enumerate(weights)})
    return {"process": index, "processes": count, "losses": fitted.history_["loss"].tolist(),
            "epoch_seconds": fitted.history_["seconds"].tolist(), "replicated_digest": _digest(weights), "tables": {},
            "trainable_parameters": int(sum(w.size for w in weights))}


def _worker(model: str, shard_tables: bool, n_rows: int, batch_size: int, epochs: int, random_state: int,
            weights_file: str, fail_rank: int) -> dict:
    """One process of a run (module doc): train, then report the logged losses, a digest of this
    process's copies of the replicated variables, each table's local rows; process 0 writes every
    variable, gathered whole, to ``weights_file`` (``.npz``)."""
    import keras
    from jax.experimental import multihost_utils

    from reclib.training.processes import ShardedArrays, data_parallel, initialize_processes, sharded_tables
    from reclib.training.trainer import Trainer

    from reclib.training.timing import EpochTimer

    index, count = initialize_processes()
    if model == "two_tower":
        build, x, y, loss, rate = _two_tower_run(n_rows, random_state)
    else:
        build, x, y, loss, rate = _dcnv2_run(n_rows, random_state, bench=model == "dcnv2_bench")
    distribution = sharded_tables() if shard_tables else data_parallel()

    class CrashAfterFirstEpoch(keras.callbacks.Callback):       # a worker that dies mid-run
        def on_epoch_end(self, epoch, logs=None):
            if index == fail_rank:
                print(f"rank {index} stops on purpose after epoch {epoch + 1}", file=sys.stderr, flush=True)
                os._exit(3)

    timer = EpochTimer()
    trainer = Trainer(epochs=epochs, batch_size=batch_size, learning_rate=rate, patience=epochs,
                      random_state=random_state, distribution=distribution, loss=loss,
                      callbacks=[CrashAfterFirstEpoch(), timer])
    history = trainer.fit(build, ShardedArrays(x, y, batch_size, random_state))
    variables = trainer.model_.weights
    replicated = [np.asarray(v.value.addressable_shards[0].data) for v in variables if v.value.is_fully_replicated]
    tables = {v.path: [int(v.value.addressable_shards[0].data.shape[0]), int(v.shape[0])]
              for v in variables if "embeddings" in v.path}
    whole = {f"w{j}": np.asarray(multihost_utils.process_allgather(v.value, tiled=True)) for j, v in enumerate(variables)}
    if index == 0:
        np.savez(weights_file, **whole)
    return {"process": index, "processes": count, "losses": history["loss"].tolist(),
            "epoch_seconds": timer.seconds, "replicated_digest": _digest(replicated), "tables": tables,
            "trainable_parameters": int(sum(np.prod(v.shape) for v in trainer.model_.trainable_weights))}


def _run(model: str, n_processes: int, shard_tables: bool, n_rows: int, batch_size: int, epochs: int,
         random_state: int, timeout: float, weights_file: str, fail_rank: int = -1,
         one_core_each: bool = False) -> list[dict]:
    """Launch the workers of one run; their reports, in rank order."""
    command = [sys.executable, "-m", "reclib.models.multi_process", "--model", model, "--rows", str(n_rows),
               "--batch-size", str(batch_size), "--epochs", str(epochs), "--seed", str(random_state),
               "--weights", weights_file, "--fail-rank", str(fail_rank)] + (["--shard-tables"] if shard_tables else [])
    env = {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}
    texts = launch(command, n_processes, timeout, env, pin_cores=one_core_each)
    return [json.loads(text.strip().splitlines()[-1]) for text in texts]


def multi_process_check(model: str = "dcnv2", n_processes: int = 2, shard_tables: bool = False,
                        n_rows: int = 8192, batch_size: int = 256, epochs: int = 3, random_state: int = 0,
                        timeout: float = 120.0, fail_rank: int = -1, one_core_each: bool = False) -> pd.DataFrame:
    """Train ``model`` in one process, then in ``n_processes`` (module doc); a frame with one row
    per epoch: ``epoch``, ``loss_1_process``, ``loss_<n>_processes`` (the mean training loss Keras
    logs: over the global batch in both runs) and ``rel_diff``.

    ``attrs``: ``max_weight_diff`` (largest absolute difference between the two trained models'
    weights, tables gathered whole), ``replicated_digests`` (per rank: SHA-256 of its copies of the
    replicated variables; all equal means the ranks hold one model), ``tables`` (per rank:
    ``{path: [rows held, rows]}``), ``epoch_seconds`` (``{1: [...], n: [...]}``, rank 0's wall
    time of each epoch, the first with compilation) and ``trainable_parameters`` (what the
    gradient all-reduce sums every step, in float32). ``batch_size`` is the global batch and must be a multiple of ``n_processes``;
    ``fail_rank`` >= 0 makes that rank die after its first epoch (the launcher's failure path:
    :class:`~reclib.training.launch.WorkerFailed` is raised); ``one_core_each=True`` pins rank
    ``r`` to core ``r`` (both runs), as when each process has a machine of its own, for timing."""
    check_choice("model", model, MODELS)
    check_bool(shard_tables=shard_tables)
    check_bool(one_core_each=one_core_each)
    if shard_tables and model in TORCH_MODELS:
        raise ValueError(f"shard_tables=True splits Keras embedding tables on JAX; {model} trains with "
                         f"PyTorch's DistributedDataParallel, which replicates every parameter")
    check_positive_int(n_processes=n_processes, n_rows=n_rows, batch_size=batch_size, epochs=epochs)
    check_non_negative_int(random_state=random_state)
    if n_processes < 2:
        raise ValueError(f"n_processes must be >= 2 for a multi-process run, got {n_processes}")
    if not isinstance(fail_rank, int) or not -1 <= fail_rank < n_processes:
        raise ValueError(f"fail_rank must be -1 (none) or a rank in [0, {n_processes}), got {fail_rank!r}")
    if fail_rank >= 0 and model in TORCH_MODELS:
        raise ValueError(f"fail_rank stops a Keras worker after its first epoch; {model} has no such hook")
    if batch_size % n_processes:
        raise ValueError(f"batch_size ({batch_size}) must be a multiple of n_processes ({n_processes})")
    if n_rows < batch_size:
        raise ValueError(f"n_rows ({n_rows}) must hold at least one global batch ({batch_size})")
    with tempfile.TemporaryDirectory(prefix="reclib-multi-process-") as folder:
        files = [os.path.join(folder, f"{n}.npz") for n in (1, n_processes)]
        many = _run(model, n_processes, shard_tables, n_rows, batch_size, epochs, random_state, timeout, files[1],
                    fail_rank, one_core_each)                    # first: a failure needs no reference run
        one = _run(model, 1, shard_tables, n_rows, batch_size, epochs, random_state, timeout, files[0],
                   one_core_each=one_core_each)
        with np.load(files[0]) as a, np.load(files[1]) as b:
            weight_diff = max(float(np.max(np.abs(a[key] - b[key]))) for key in a.files)
    losses = f"loss_{n_processes}_processes"
    frame = pd.DataFrame({"epoch": np.arange(1, len(one[0]["losses"]) + 1), "loss_1_process": one[0]["losses"],
                          losses: many[0]["losses"]})
    frame["rel_diff"] = (frame[losses] - frame["loss_1_process"]).abs() / frame["loss_1_process"].abs()
    frame.attrs.update({"max_weight_diff": weight_diff,
                        "replicated_digests": [report["replicated_digest"] for report in many],
                        "tables": [report["tables"] for report in many],
                        "epoch_seconds": {1: one[0]["epoch_seconds"], n_processes: many[0]["epoch_seconds"]},
                        "trainable_parameters": one[0]["trainable_parameters"]})
    return frame


def main(argv: list[str] | None = None) -> int:
    """One worker of :func:`multi_process_check` (started by the launcher): prints its report as
    one JSON line."""
    parser = argparse.ArgumentParser(prog="python -m reclib.models.multi_process")
    parser.add_argument("--model", choices=MODELS, required=True)
    parser.add_argument("--shard-tables", action="store_true")
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--batch-size", type=int, required=True)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", required=True, help="where process 0 writes the trained weights (.npz)")
    parser.add_argument("--fail-rank", type=int, default=-1)
    args = parser.parse_args(argv)
    if args.model in TORCH_MODELS:
        print(json.dumps(_torch_worker(args.model, args.rows, args.batch_size, args.epochs, args.seed, args.weights)))
        return 0
    report = _worker(args.model, args.shard_tables, args.rows, args.batch_size, args.epochs, args.seed,
                     args.weights, args.fail_rank)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

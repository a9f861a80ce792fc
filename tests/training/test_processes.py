"""Each process's part of the data (reclib.training.processes), without starting processes: every
epoch's global batches are split into disjoint parts that together are the batch, row for row."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reclib.training import InBatchDataset
from reclib.training.processes import ProcessShard, ShardedArrays, epoch_batches, initialize_processes, process_rows


@settings(max_examples=60, deadline=None)
@given(n_rows=st.integers(8, 300), local=st.integers(1, 8), count=st.integers(1, 4), epoch=st.integers(0, 5),
       seed=st.integers(0, 2**31))
def test_the_processes_parts_are_disjoint_and_make_up_each_global_batch(n_rows, local, count, epoch, seed):
    batch = local * count
    if n_rows < batch:
        return
    batches = epoch_batches(n_rows, batch, epoch, seed, count)
    assert all(len(b) == batch for b in batches[:-1]) and 0 < len(batches[-1]) <= batch
    seen = np.concatenate(batches)
    assert len(np.unique(seen)) == len(seen)                            # no row twice in an epoch
    assert n_rows - len(seen) <= count - 1 and len(seen) % count == 0   # at most P - 1 rows left out
    for rows in batches:
        parts = [process_rows(rows, p, count) for p in range(count)]
        assert len({len(part) for part in parts}) == 1                   # equal parts: one global array
        np.testing.assert_array_equal(np.concatenate(parts), rows)       # process 0's rows first
    again = epoch_batches(n_rows, batch, epoch, seed, count)             # any process, the same order
    assert all(np.array_equal(a, b) for a, b in zip(again, batches))


def test_one_process_sees_every_row_and_the_left_out_rows_change_every_epoch():
    assert sorted(np.concatenate(epoch_batches(10, 4, 0, 0))) == list(range(10))       # 4 + 4 + 2
    left = [np.setdiff1d(np.arange(11), np.concatenate(epoch_batches(11, 4, e, 0, 2))) for e in range(6)]
    assert all(len(rows) == 1 for rows in left)                          # 11 = 4 + 4 + 2 (+ 1 left out)
    assert len({int(rows[0]) for rows in left}) > 1
    assert not np.array_equal(epoch_batches(10, 4, 0, 0)[0], epoch_batches(10, 4, 1, 0)[0])


def test_sharded_arrays_yield_the_process_rows_with_their_labels_and_reshuffle():
    x = {"a": np.arange(40, dtype=np.int32), "b": np.arange(40, dtype=np.float32)[:, None] * 2}
    y = np.arange(40, dtype=np.float32) * 10
    parts = [ShardedArrays(x, y, global_batch=8, random_state=3, process_index=p, process_count=2) for p in range(2)]
    assert len(parts[0]) == 5
    first = [part[0] for part in parts]
    rows = epoch_batches(40, 8, 0, 3, 2)[0]
    np.testing.assert_array_equal(np.concatenate([inputs["a"] for inputs, _ in first]), rows)
    for inputs, labels in first:
        np.testing.assert_array_equal(labels, inputs["a"] * 10)
        np.testing.assert_array_equal(inputs["b"][:, 0], inputs["a"] * 2)
    parts[0].on_epoch_end()
    np.testing.assert_array_equal(parts[0][0][0]["a"], epoch_batches(40, 8, 1, 3, 2)[0][:4])
    odd = ShardedArrays(x, y, global_batch=16, random_state=3, process_index=1, process_count=2)
    assert len(odd) == 3 and len(odd[2][1]) == 4                         # 40 = 16 + 16 + 8: the last part 4
    # two devices per process: the last batch (40 % 16 = 8) is cut to a multiple of the 4 devices
    spread = ShardedArrays({"a": x["a"][:38]}, None, global_batch=16, process_index=1, process_count=2, n_devices=4)
    assert [len(spread[i]["a"]) for i in range(len(spread))] == [8, 8, 2]     # 38 = 16 + 16 + 4 (+ 2 left out)
    alone = ShardedArrays(x["a"], None, global_batch=8, random_state=3)     # no run: the whole batch
    np.testing.assert_array_equal(alone[0], rows)


def test_process_shard_cuts_any_dataset_of_global_batches():
    features = {"user": np.arange(64, dtype=np.int32), "item": np.arange(64, dtype=np.int32) + 100}
    whole = InBatchDataset(features, batch_size=16, random_state=0)
    halves = [ProcessShard(InBatchDataset(features, batch_size=16, random_state=0), p, 2) for p in range(2)]
    for index in range(len(whole)):
        np.testing.assert_array_equal(np.concatenate([h[index]["user"] for h in halves]), whole[index]["user"])
    for shard in halves:
        shard.on_epoch_end()
    whole.on_epoch_end()
    np.testing.assert_array_equal(np.concatenate([h[0]["item"] for h in halves]), whole[0]["item"])


def test_bad_shards_are_refused_naming_the_value(monkeypatch):
    x = np.zeros((20, 2), np.float32)
    with pytest.raises(ValueError, match=r"global_batch \(9\) must be a multiple of the 2 device\(s\)"):
        ShardedArrays(x, None, 9, process_index=0, process_count=2)
    with pytest.raises(ValueError, match=r"n_devices \(3\) must be a multiple of process_count \(2\)"):
        ShardedArrays(x, None, 6, process_index=0, process_count=2, n_devices=3)
    with pytest.raises(ValueError, match=r"process_index \(2\) must be < process_count \(2\)"):
        ShardedArrays(x, None, 8, process_index=2, process_count=2)
    with pytest.raises(ValueError, match="20 rows are fewer than one global batch of 32"):
        ShardedArrays(x, None, 32)
    with pytest.raises(ValueError, match="one row per row of x"):
        ShardedArrays(x, np.zeros(3), 8)
    with pytest.raises(ValueError, match="a global batch of 8 rows cannot be split over 3 processes"):
        ProcessShard(InBatchDataset({"a": np.arange(20)}, batch_size=8), 0, 3)[0]
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "two")
    with pytest.raises(ValueError, match="KERAS_DISTRIBUTION_NUM_PROCESSES must be a non-negative integer, got 'two'"):
        initialize_processes()
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "1")
    monkeypatch.delenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", raising=False)
    with pytest.raises(ValueError, match="KERAS_DISTRIBUTION_JOB_ADDRESSES must name the coordinator"):
        initialize_processes()


def test_one_process_initialises_nothing(monkeypatch):
    for name in ("KERAS_DISTRIBUTION_NUM_PROCESSES", "KERAS_DISTRIBUTION_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    assert initialize_processes() == (0, 1)


def test_the_trainer_refuses_what_a_multi_process_run_cannot_do(monkeypatch):
    import keras

    from reclib.training import Trainer
    from reclib.training import trainer as trainer_module
    monkeypatch.setattr(trainer_module, "_process_count", lambda: 2)
    distribution = type("Distribution", (), {"scope": lambda self: None})()
    x, y = np.zeros((8, 2), np.float32), np.zeros(8, np.float32)
    shards = ShardedArrays(x, y, 4, process_index=0, process_count=2)
    never = lambda: keras.Model()  # noqa: E731  (refused before any model is built)
    with pytest.raises(ValueError, match="pass reclib.training.ShardedArrays"):
        Trainer(epochs=1, distribution=distribution).fit(never, (x, y))
    with pytest.raises(ValueError, match="distribution=None would train one independent model per process"):
        Trainer(epochs=1).fit(never, shards)
    with pytest.raises(ValueError, match="validate and validation_data are not supported in a multi-process run"):
        Trainer(epochs=1, distribution=distribution).fit(never, shards, validate=lambda: {"ndcg": 0.0})

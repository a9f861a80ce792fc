"""Multi-process training with real processes on loopback (reclib.training.launch,
reclib.training.processes, reclib.models.multi_process): two processes train the model of one
at the same global batch (JAX through keras.distribution, PyTorch through DDP), tables split by
rows hold half each, and a dying worker fails the launch.

Tolerances: the two runs differ only in the order of floating-point sums inside the collectives
(float32, relative rounding ~6e-8 per addition). Measured on this 2-core machine: per-epoch loss
differences <= 2.2e-7 relative; weights <= 1.5e-7 (DCN-V2), 2.2e-5 (two-tower, whose in-batch
softmax sums over 256 columns), 3e-5 (GPT-2 under PyTorch DDP, 39 Adam steps) and 7e-7 (the text tower
under DDP). The asserted bounds, 1e-5 relative for losses and 1e-4 (GPT-2: 5e-4) for weights, are
far below what a wrong shard shows: leaving out a single window of 781 per epoch moved GPT-2's
losses by 7e-4 relative."""

from __future__ import annotations

import os
import sys

import pytest

from reclib.models.multi_process import multi_process_check
from reclib.training.launch import WorkerFailed, launch


@pytest.mark.slow
def test_two_processes_train_the_dcnv2_of_one_process():
    frame = multi_process_check("dcnv2", n_processes=2, n_rows=8000, batch_size=256, epochs=3, random_state=0)
    # 8,000 rows = 31 batches of 256 and one of 64: the partial batch splits too
    # measured: 0.5473 / 0.4769 / 0.4471 on one process and on two
    assert frame["loss_1_process"].tolist() == pytest.approx([0.5473, 0.4769, 0.4471], abs=2e-3)
    assert frame["rel_diff"].max() < 1e-5
    assert frame.attrs["max_weight_diff"] < 1e-4
    digests = frame.attrs["replicated_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]            # the ranks hold one model, bit for bit
    assert all(held == rows for tables in frame.attrs["tables"] for held, rows in tables.values())


@pytest.mark.slow
def test_sharded_tables_hold_half_each_and_train_like_whole_tables():
    frame = multi_process_check("two_tower", n_processes=2, shard_tables=True, n_rows=8192, batch_size=256,
                                epochs=3, random_state=0)
    expected = {"two_tower/user_id/embeddings": [256, 512], "two_tower/item_id/embeddings": [128, 256]}
    assert frame.attrs["tables"] == [expected, expected]             # read from each variable's local shard
    # measured: in-batch softmax loss 6.156 / 5.562 / 5.456, one process with whole tables and two with halves
    assert frame["loss_1_process"].tolist() == pytest.approx([6.156, 5.562, 5.456], abs=0.02)
    assert frame["rel_diff"].max() < 1e-5
    assert frame.attrs["max_weight_diff"] < 1e-4
    assert frame.attrs["replicated_digests"][0] == frame.attrs["replicated_digests"][1]


@pytest.mark.slow
@pytest.mark.parametrize("model, rows, losses, weight_bound", [
    # measured: per-epoch losses within 2e-8 relative (both), weights within 3e-5 (GPT-2) and 7e-7 (text tower)
    ("gpt2_items", 6045, [4.357, 3.820, 3.297], 5e-4),     # 792 windows: 12 batches of 64 and one of 24
    # each rank encodes half of every batch; all_gather (with gradients) makes the other half its negatives
    ("text_tower", 2048, [4.246, 3.702, 3.514], 1e-4)])
def test_two_torch_processes_train_like_one_under_ddp(model, rows, losses, weight_bound):
    frame = multi_process_check(model, n_processes=2, n_rows=rows, batch_size=64, epochs=3, random_state=0)
    assert frame["loss_1_process"].tolist() == pytest.approx(losses, abs=0.01)
    assert frame["rel_diff"].max() < 1e-5
    assert frame.attrs["max_weight_diff"] < weight_bound
    assert frame.attrs["replicated_digests"][0] == frame.attrs["replicated_digests"][1]


@pytest.mark.slow
def test_a_worker_that_dies_mid_run_fails_the_launch_with_its_rank():
    # rank 0 would wait for rank 1 in the next all-reduce for ever: the launcher must stop it, within the
    # 30 s limit (past it the launch raises TimeoutError instead)
    with pytest.raises(WorkerFailed, match="rank 1 of 2 failed with exit code 3: rank 1 stops on purpose") as caught:
        multi_process_check("dcnv2", n_processes=2, n_rows=2048, batch_size=256, epochs=3, timeout=30, fail_rank=1)
    assert caught.value.rank == 1 and caught.value.returncode == 3


def test_the_check_refuses_bad_arguments_before_starting_processes():
    with pytest.raises(ValueError, match="n_processes must be >= 2"):
        multi_process_check(n_processes=1)
    with pytest.raises(ValueError, match=r"batch_size \(255\) must be a multiple of n_processes"):
        multi_process_check(batch_size=255)
    with pytest.raises(ValueError, match="model"):
        multi_process_check("gru")
    with pytest.raises(ValueError, match="DistributedDataParallel, which replicates"):
        multi_process_check("gpt2_items", shard_tables=True)
    with pytest.raises(ValueError, match=r"fail_rank must be -1 \(none\) or a rank in \[0, 2\), got 2"):
        multi_process_check(fail_rank=2)


PRINT_RANK = "import os; print(os.environ['RANK'], os.environ['WORLD_SIZE'], os.environ['KERAS_DISTRIBUTION_PROCESS_ID'], " \
             "os.environ['KERAS_DISTRIBUTION_NUM_PROCESSES'], os.environ['KERAS_DISTRIBUTION_JOB_ADDRESSES'], " \
             "os.environ['MASTER_ADDR'] + ':' + os.environ['MASTER_PORT'])"


def test_launch_gives_each_process_its_rank_and_one_coordinator():
    outputs = launch([sys.executable, "-c", PRINT_RANK], nproc=3, timeout=30)
    fields = [text.split() for text in outputs]
    assert [f[:4] for f in fields] == [[str(r), "3", str(r), "3"] for r in range(3)]
    assert len({f[4] for f in fields}) == 1 and fields[0][4] == fields[0][5]
    assert fields[0][4].startswith("127.0.0.1:")


def test_launch_stops_the_others_when_one_fails():
    script = "import os, sys, time\nif os.environ['RANK'] == '1': sys.exit('rank one cannot go on')\ntime.sleep(120)"
    with pytest.raises(WorkerFailed, match="rank 1 of 2 failed with exit code 1: rank one cannot go on"):
        launch([sys.executable, "-c", script], nproc=2, timeout=60)


def test_launch_names_the_first_process_to_fail_not_the_lowest_rank():
    # rank 0 fails 0.5 s after rank 1, as a peer of a dead process does ("connection closed")
    script = ("import os, sys, time\nif os.environ['RANK'] == '1': sys.exit('the real cause')\n"
              "time.sleep(0.5)\nsys.exit('connection closed by peer')")
    with pytest.raises(WorkerFailed, match="rank 1 of 2 failed with exit code 1: the real cause"):
        launch([sys.executable, "-c", script], nproc=2, timeout=60)


def test_launch_times_out_and_names_the_ranks_still_running():
    script = "import os, time\nif os.environ['RANK'] == '0': time.sleep(120)"
    with pytest.raises(TimeoutError, match=r"processes \[0\] of 2 still ran after 3 s"):
        launch([sys.executable, "-c", script], nproc=2, timeout=3)


def test_launch_refuses_bad_arguments():
    with pytest.raises(TypeError, match="command must be a non-empty list of strings"):
        launch("python train.py", nproc=2)
    with pytest.raises(ValueError, match="nproc"):
        launch([sys.executable, "-c", "pass"], nproc=0)


def test_the_launch_command_line_prints_every_rank_and_fails_with_the_rank(capsys):
    from reclib.training.launch import main
    assert main(["--nproc", "2", "--timeout", "30", "--", sys.executable, "-c", "import os; print('hi', os.environ['RANK'])"]) == 0
    assert capsys.readouterr().out == "[rank 0]\nhi 0\n[rank 1]\nhi 1\n"
    assert main(["--nproc", "2", "--", sys.executable, "-c", "import os, sys; sys.exit(int(os.environ['RANK']) * 5)"]) == 1
    assert "process rank 1 of 2 failed with exit code 5" in capsys.readouterr().err


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="pinning needs Linux and two cores")
def test_pinned_ranks_each_run_on_one_core_of_their_own():
    outputs = launch([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"], nproc=2,
                     timeout=30, pin_cores=True)
    cores = sorted(os.sched_getaffinity(0))
    assert outputs == [f"[{cores[0]}]\n", f"[{cores[1]}]\n"]
    with pytest.raises(ValueError, match="needs a core per process"):
        launch([sys.executable, "-c", "pass"], nproc=len(cores) + 1, pin_cores=True)

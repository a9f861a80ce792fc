"""The GPU benchmark rehearsed on the CPU: ``experiments.bench_gpu --tiny`` runs every part with
tiny shapes, and ``experiments.stage_device`` stages and restores what the GPU machine needs, so
a GPU session spends its minutes measuring, not debugging."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from experiments import stage_device
from experiments.bench_gpu import PARTS
from reclib.data.sources import default_cache_dir

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench_gpu")
    # two host devices stand in for two GPUs, so the JAX DCN-V2 part adds its data-parallel point
    # (one process: no cross-process collectives)
    env = dict(os.environ, PYTHONHASHSEED="0",
               XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2".strip())
    done = subprocess.run([sys.executable, "-m", "experiments.bench_gpu", "--tiny", "--output", str(out),
                           "--budget", "400"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=450)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert (out / "bench_gpu.md").read_text().startswith("# GPU benchmark")
    return json.loads((out / "bench_gpu.json").read_text())


@pytest.mark.slow
def test_every_part_ran(report):
    assert list(report["parts"]) == list(PARTS)
    assert not [p for p, r in report["parts"].items() if "error" in r]
    assert report["command"].startswith("python -m experiments.bench_gpu --tiny")
    assert report["machine"]["keras"] and report["machine"]["jax"] and report["machine"]["torch"]


@pytest.mark.slow
@pytest.mark.parametrize("part", ["dcnv2_jax", "dcnv2_torch"])
def test_dcnv2_rows_train_in_the_precision_asked(report, part):
    result = report["parts"][part]
    rows = result["rows"]
    assert len(rows) == (8 if part == "dcnv2_jax" else 7)    # JAX adds the data-parallel point
    assert result["peak_bf16_tflops"] > 0 and result["flops_per_sample"] > 0
    for row in rows:
        assert row["samples_per_s"] > 0 and row["loss_last"] < row["loss_first"], row
        assert row["compute_dtypes"] == ("bfloat16" if row["precision"] == "mixed_bfloat16" else "float32"), row
    assert {r["batch"] for r in rows} == {256, 512}
    assert {r["embeddings"] for r in rows} == {"row-sparse Adagrad", "dense Adam", "frozen (no gradient)"}


@pytest.mark.slow
def test_a_machine_with_several_devices_adds_a_data_parallel_point(report):
    rows = report["parts"]["dcnv2_jax"]["rows"]
    spread = [r for r in rows if "DataParallel over 2 devices" in r["path"]]
    assert len(spread) == 1 and not [r for r in report["parts"]["dcnv2_torch"]["rows"] if "DataParallel" in r["path"]]
    assert spread[0]["batch"] == 512 and spread[0]["loss_last"] < spread[0]["loss_first"]


@pytest.mark.slow
def test_movielens_rows_have_metrics(report):
    rows = report["parts"]["ml100k_jax"]["rows"] + report["parts"]["ml100k_torch"]["rows"]
    models = [r["model"] for r in rows]
    assert models == ["two-tower (ids)", "SASRec", "GPT-2 over item ids", "text tower, fine-tuned",
                      "text tower, frozen", "BERT -> factor map"]
    for row in rows:
        assert row["fit_s"] > 0 and 0 < row["ndcg"] <= 1 and math.isfinite(row["ndcg"]), row
    torch_part = report["parts"]["ml100k_torch"]
    assert 1 <= torch_part["finetune_epochs_chosen"] <= len(torch_part["finetune_validation_recall"])
    for other in ("text tower, frozen", "BERT -> factor map"):
        interval = torch_part["paired_recall"][other]
        assert interval["low"] <= interval["mean_diff"] <= interval["high"]


def test_locked_versions_of_the_device_wheels():
    versions = stage_device.locked_versions(ROOT / "requirements.lock", stage_device.WHEELS)
    assert set(versions) == {"keras", "namex", "optree"} and all(v[0].isdigit() for v in versions.values())
    with pytest.raises(ValueError, match="pins no version"):
        stage_device.locked_versions(ROOT / "requirements.lock", ("no-such-package",))


@pytest.mark.slow
def test_staged_encoder_is_restored_to_float32(tmp_path):
    """The staged folder holds float16 weights (fits a 64 MB transfer); unpacking restores a
    float32 model.safetensors within float16 rounding of the original."""
    from safetensors.numpy import load_file

    folder = stage_device.stage(tmp_path / "stage", default_cache_dir(), "3.12", wheels=False)
    encoder = folder / "cache" / stage_device.MINILM
    assert not (encoder / "model.safetensors").exists()
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 50 * 2 ** 20
    stage_device.unpack(folder / "cache")
    original = load_file(default_cache_dir() / stage_device.MINILM / "model.safetensors")
    restored = load_file(encoder / "model.safetensors")
    assert original.keys() == restored.keys()
    for name, values in original.items():
        assert restored[name].dtype == values.dtype
        np.testing.assert_allclose(restored[name], values, rtol=1e-3, atol=1e-7)

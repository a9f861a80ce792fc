"""One GPU benchmark of the kit's own training paths: ``make bench-gpu`` (or ``python -m experiments.bench_gpu``).

Parts, each in its own process (the Keras backend is fixed per process):

- ``dcnv2_jax`` / ``dcnv2_torch``: DCN-V2 in the shape of NVIDIA's reference (26 categorical
  fields of 100,000 values, 13 numbers, 128-d embeddings, three low-rank (512) cross layers, an
  MLP 1024-1024-512-256) built by ``build_ctr_model`` and trained through
  ``reclib.training.Trainer(device_data=True)`` on Zipf-distributed synthetic clicks: float32
  vs mixed bfloat16, batch 65,536 and 131,072, row-sparse vs dense (Adam) embedding updates, and
  Keras' own ``model.fit`` on NumPy batches for comparison; a bf16 matrix product measured in the
  same process gives the share of peak.
- ``ml100k_jax`` / ``ml100k_torch``: fit times and test metrics on MovieLens-100K of the two-tower
  model (P1), SASRec (P3), GPT-2 over item ids (P3) and the MiniLM text tower on P5, frozen and
  fully fine-tuned (its epoch count chosen on P5's validation carve-out, test touched once),
  with the BERT -> factor map beside it and paired intervals.

Writes ``<output>/bench_gpu.json`` and ``bench_gpu.md`` (device, driver, versions, command, one
table per part) after every part, so a run cut short keeps what it measured. ``--tiny``: the same
code on tiny shapes (the CPU rehearsal that ``make test`` runs). No network is used.
"""

from __future__ import annotations

import argparse
from importlib import metadata
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

PARTS = {"dcnv2_jax": "jax", "dcnv2_torch": "torch", "ml100k_torch": "torch", "ml100k_jax": "jax"}
#: each part's share of the time left when it starts (time a part does not use goes to the next)
WEIGHTS = {"dcnv2_jax": 3.0, "dcnv2_torch": 2.0, "ml100k_torch": 2.0, "ml100k_jax": 1.5}
#: NVIDIA's DCNv2 reference shape, and a tiny one for the rehearsal
SHAPES = {
    "full": {"fields": 26, "vocabulary": 100_000, "numeric": 13, "dim": 128, "cross": 3, "rank": 512,
             "mlp": (1024, 1024, 512, 256), "batches": (65_536, 131_072), "rows": 2 ** 21, "matmul": 8192},
    "tiny": {"fields": 4, "vocabulary": 500, "numeric": 2, "dim": 8, "cross": 1, "rank": 4,
             "mlp": (16,), "batches": (256, 512), "rows": 4096, "matmul": 128},
}


def machine() -> dict[str, object]:
    """The device, driver and library versions this run measured on."""
    info: dict[str, object] = {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                               "platform": platform.platform()}
    try:
        query = "--query-gpu=name,driver_version,memory.total"
        out = subprocess.run(["nvidia-smi", query, "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30)
        info["gpu"] = out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        info["gpu"] = None
    for name in ("keras", "jax", "jaxlib", "torch", "transformers", "numpy", "numba"):
        try:                       # versions without importing (importing keras would load a backend)
            info[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            info[name] = None
    return info


def _write(path: Path, payload: dict) -> None:
    """Atomic JSON write (a reader never sees half a file)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=float))
    os.replace(tmp, path)


def run_part(part: str, output: Path, tiny: bool, timeout: float, skip_finetune: bool = False) -> dict:
    """Run one part in a fresh process with its Keras backend; return its JSON (or the failure)."""
    target = output / f"part_{part}.json"
    env = dict(os.environ, KERAS_BACKEND=PARTS[part], PYTHONHASHSEED="0", OMP_WAIT_POLICY="PASSIVE",
               XLA_PYTHON_CLIENT_PREALLOCATE="false", RECLIB_BENCH_SKIP_FINETUNE="1" if skip_finetune else "0")
    command = [sys.executable, "-m", "experiments.bench_gpu_parts", part, str(target)] + (["--tiny"] if tiny else [])
    start = time.perf_counter()
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as stopped:
        tail = (stopped.stderr or b"")[-2000:]
        tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
        result = json.loads(target.read_text()) if target.exists() else {}
        return {**result, "error": f"timed out after {timeout:.0f} s", "stderr_tail": tail}
    result = json.loads(target.read_text()) if target.exists() else {}
    result["seconds"] = round(time.perf_counter() - start, 1)
    if done.returncode != 0:
        result["error"] = f"exit code {done.returncode}"
        result["stderr_tail"] = done.stderr[-3000:]
    return result


def markdown(report: dict) -> str:
    """The report as Markdown tables (one per part)."""
    lines = ["# GPU benchmark", "", f"Command: `{report['command']}`", "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in report["machine"].items() if v is not None), ""]
    for part, result in report["parts"].items():
        lines += [f"## {part}", ""]
        if "error" in result:
            lines += [f"**{result['error']}**", "", "```", str(result.get("stderr_tail", ""))[-1500:], "```", ""]
        for key in ("device", "peak_bf16_tflops", "flops_per_sample", "parameters", "data_seconds", "click_rate",
                    "finetune_validation_recall", "finetune_epochs_chosen", "paired_recall", "seconds"):
            if key in result:
                lines.append(f"- {key}: {result[key]}")
        rows = result.get("rows", [])
        if rows:
            columns = list(dict.fromkeys(k for row in rows for k in row))
            lines += ["", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
            for row in rows:
                cells = [f"{row[c]:.4g}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns]
                lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="build/bench_gpu", help="folder for bench_gpu.json / .md")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {list(PARTS)}")
    parser.add_argument("--tiny", action="store_true", help="tiny shapes: the CPU rehearsal")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds for all parts together")
    parser.add_argument("--skip-finetune", action="store_true",
                        help="leave out the P5 text towers (their full fine-tuning is for a GPU)")
    args = parser.parse_args(argv)
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {list(PARTS)}")
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    command = "python -m experiments.bench_gpu " + " ".join(argv if argv is not None else sys.argv[1:])
    report = {"command": command.strip(), "machine": machine(), "parts": {}}
    deadline = time.perf_counter() + args.budget
    for j, part in enumerate(parts):
        left = deadline - time.perf_counter()
        if left < 20:
            report["parts"][part] = {"error": f"skipped: the {args.budget:.0f} s budget is spent"}
            continue
        share = left * WEIGHTS[part] / sum(WEIGHTS[p] for p in parts[j:])
        print(f"[bench_gpu] {part} ({share:.0f} of {left:.0f} s left)", flush=True)
        report["parts"][part] = run_part(part, output, args.tiny, share, args.skip_finetune)
        _write(output / "bench_gpu.json", report)
        (output / "bench_gpu.md").write_text(markdown(report))
    _write(output / "bench_gpu.json", report)
    (output / "bench_gpu.md").write_text(markdown(report))
    failed = [p for p, r in report["parts"].items() if "error" in r]
    print(f"[bench_gpu] wrote {output}/bench_gpu.json and .md; failed or skipped: {failed or 'none'}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

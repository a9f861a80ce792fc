"""Stage what a GPU machine without a package index or network needs to run ``experiments.bench_gpu``.

Here (a machine with the project's environment and ``make data`` done)::

    python -m experiments.stage_device            # -> .stage/ (git-ignored), about 50 MB

- ``.stage/wheels/``: Keras and the two of its requirements that a plain CUDA image with JAX and
  PyTorch usually lacks (namex, optree), for Python 3.12 on x86-64 Linux, at the versions of
  ``requirements.lock`` (``--python-version`` to change);
- ``.stage/cache/``: the MovieLens-100K cache and the MiniLM encoder, its weights stored as
  float16 (45 MB instead of 91 MB, so the folder fits a 64 MB transfer; every weight is rounded
  to float16's 11 significant bits, a relative change below 5e-4).

There, before the benchmark::

    python -m pip install --no-index --no-deps --target /tmp/site .stage/wheels/*.whl
    export PYTHONPATH=/tmp/site:$PWD RECLIB_DATA_DIR=$PWD/.stage/cache
    python -m experiments.stage_device --unpack   # float16 weights -> float32 model.safetensors
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from reclib.data.sources import default_cache_dir

#: what the device needs besides its own image, by the name requirements.lock pins
WHEELS = ("keras", "namex", "optree")
MINILM = Path("models") / "all-MiniLM-L6-v2"
HALF_WEIGHTS = "model.float16.safetensors"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def locked_versions(lock: Path, names: tuple[str, ...]) -> dict[str, str]:
    """``{name: version}`` of ``names`` as pinned in a pip lock file (``name==version`` lines)."""
    pins = dict(line.split("==", 1) for line in lock.read_text().splitlines() if "==" in line and line[0].isalpha())
    missing = [n for n in names if n not in pins]
    if missing:
        raise ValueError(f"{lock} pins no version of {missing}")
    return {n: pins[n].strip() for n in names}


def download_wheels(folder: Path, versions: dict[str, str], python_version: str) -> list[Path]:
    """``pip download`` binary wheels for the device's Python, no dependencies."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", python_version, "--implementation", "cp", "-d", str(folder)]
    command += [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run(command + [f"{n}=={v}" for n, v in versions.items()], check=True)
    return sorted(folder.glob("*.whl"))


def halve_weights(source: Path, target: Path) -> None:
    """Write the float32 tensors of a safetensors file as float16 (others unchanged)."""
    import numpy as np
    from safetensors.numpy import load_file, save_file
    tensors = load_file(source)
    save_file({k: v.astype(np.float16) if v.dtype == np.float32 else v for k, v in tensors.items()}, target)


def unhalve_weights(source: Path, target: Path) -> None:
    """Write float16 tensors back as float32 (``target`` appears whole: written, then renamed)."""
    import numpy as np
    from safetensors.numpy import load_file, save_file
    tensors = load_file(source)
    partial = target.with_suffix(".partial")
    save_file({k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in tensors.items()}, partial)
    partial.replace(target)


def stage(folder: Path, cache: Path, python_version: str, wheels: bool = True) -> Path:
    """Fill ``folder`` (module doc) from the project's ``cache``; return it."""
    movielens = cache / "ml-100k"
    encoder = cache / MINILM
    for needed in (movielens / "manifest.json", encoder / "model.safetensors"):
        if not needed.exists():
            raise FileNotFoundError(f"{needed} is missing: run `make data` first")
    if wheels:
        lock = Path(__file__).resolve().parents[1] / "requirements.lock"
        download_wheels(folder / "wheels", locked_versions(lock, WHEELS), python_version)
    shutil.copytree(movielens, folder / "cache" / "ml-100k", dirs_exist_ok=True)
    target = folder / "cache" / MINILM
    shutil.copytree(encoder, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("model.safetensors"))
    halve_weights(encoder / "model.safetensors", target / HALF_WEIGHTS)
    return folder


def unpack(cache: Path) -> Path:
    """On the device: the float32 ``model.safetensors`` from the staged float16 one."""
    encoder = cache / MINILM
    if not (encoder / "model.safetensors").exists():
        unhalve_weights(encoder / HALF_WEIGHTS, encoder / "model.safetensors")
    return encoder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=".stage", help="the folder to fill (default .stage)")
    parser.add_argument("--python-version", default="3.12", help="the device's Python (wheels are built for it)")
    parser.add_argument("--no-wheels", action="store_true", help="stage the caches only")
    parser.add_argument("--unpack", action="store_true", help="on the device: restore the float32 encoder weights")
    args = parser.parse_args(argv)
    if args.unpack:
        print(f"[stage_device] {unpack(default_cache_dir())}")
        return 0
    folder = stage(Path(args.folder), default_cache_dir(), args.python_version, wheels=not args.no_wheels)
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"[stage_device] {folder}: {size / 2 ** 20:.1f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""reclib installs like a library: its wheel, installed with the core dependencies only into a fresh
virtual environment, imports without any deep-learning stack and fits ItemKNN, EASE and ImplicitALS
on a fixture shipped with the tests (and keeps the shipped contract, ``reclib.testing``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).with_name("fixtures") / "interactions.csv"

SCRIPT = """
import sys
import numpy as np
import pandas as pd
import reclib.cf
from reclib.cf import BPR, EASE, ImplicitALS, ItemKNN, MostPopular
from reclib.data.sources import default_cache_dir
from reclib.testing import check_recommender

frame = pd.read_csv(sys.argv[1])
heavy = sorted(m for m in ("tensorflow", "torch", "keras", "jax", "transformers", "matplotlib") if m in sys.modules)
for model in (ItemKNN(n_neighbors=10), EASE(reg=10.0), ImplicitALS(n_factors=4, epochs=3, verbose=False),
              BPR(n_factors=4, epochs=3, verbose=False), MostPopular()):
    check_recommender(model, frame)
print("heavy:", heavy, "| cache:", default_cache_dir().name)
"""


#: the fresh environment must not see the checkout or a cache folder chosen for it
_ENV = {k: v for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "RECLIB_DATA_DIR", "XDG_CACHE_HOME", "VIRTUAL_ENV")}


@pytest.mark.slow
def test_core_wheel_installs_and_fits_three_models(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "reclib", source / "reclib", ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
                   check=True, timeout=300)
    wheel = next((tmp_path / "dist").glob("reclib-*.whl"))
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=120, env=_ENV)
    python = tmp_path / "venv" / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "--disable-pip-version-check", "--quiet", "install",
                    "-c", str(ROOT / "requirements.lock"), str(wheel)], check=True, timeout=600, env=_ENV)
    installed = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True,
                               check=True, env=_ENV).stdout.lower()
    assert "tensorflow" not in installed and "torch" not in installed and "keras" not in installed
    done = subprocess.run([str(python), "-c", SCRIPT, str(FIXTURE)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env=_ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("heavy: [] | cache: reclib"), done.stdout

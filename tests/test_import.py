"""Importing reclib changes nothing global; ``reclib.quiet()`` is the explicit call that quiets
TensorFlow's and transformers' start-up logs, and every notebook makes it first."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from reclib.run_notebooks import NOTEBOOK_DIR, find_notebooks

_CLEAN_ENV = {k: v for k, v in os.environ.items()
              if k not in ("TF_CPP_MIN_LOG_LEVEL", "ABSL_MIN_LOG_LEVEL", "TRANSFORMERS_VERBOSITY",
                           "HF_HUB_DISABLE_PROGRESS_BARS", "RECLIB_QUIET_TF")}


def _python(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], env=_CLEAN_ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_import_reclib_changes_nothing_global_and_cf_stays_light():
    out = _python("import os, sys; env, finders = dict(os.environ), list(sys.meta_path)\n"
                  "import reclib, reclib.cf\n"
                  "print(dict(os.environ) == env, sys.meta_path == finders,\n"
                  "      sorted(m for m in ('tensorflow', 'torch', 'keras', 'jax') if m in sys.modules))")
    assert out == "True True []"


def test_quiet_sets_the_levels_once():
    out = _python("import os, sys, reclib\nreclib.quiet(); reclib.quiet()\n"
                  "print(os.environ['TF_CPP_MIN_LOG_LEVEL'], os.environ['TRANSFORMERS_VERBOSITY'],\n"
                  "      sum(type(f).__name__ == '_QuietTensorFlowImport' for f in sys.meta_path))")
    assert out == "3 error 1"


def test_quiet_keeps_a_level_the_user_chose():
    env = dict(_CLEAN_ENV, TF_CPP_MIN_LOG_LEVEL="0")
    code = ("import os, sys, reclib\nreclib.quiet()\nprint(os.environ['TF_CPP_MIN_LOG_LEVEL'],\n"
            "      any(type(f).__name__ == '_QuietTensorFlowImport' for f in sys.meta_path))")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "0 False"


def test_same_cpu_kernels_pins_pytorch_to_avx2_on_x86_only_and_keeps_a_choice(monkeypatch):
    import platform

    import reclib

    for machine, chosen, expected in [("x86_64", None, "avx2"), ("AMD64", None, "avx2"),
                                      ("x86_64", "avx512", "avx512"), ("aarch64", None, None)]:
        monkeypatch.setattr(platform, "machine", lambda machine=machine: machine)
        if chosen is None:
            monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
        else:
            monkeypatch.setenv("ATEN_CPU_CAPABILITY", chosen)
        reclib.same_cpu_kernels()
        assert os.environ.get("ATEN_CPU_CAPABILITY") == expected, machine


def test_every_notebook_quiets_first():
    """The first cell after the parameters calls reclib.quiet() before importing anything else."""
    for path in find_notebooks(folder=NOTEBOOK_DIR):
        cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        source = "".join(cells[1]["source"])
        assert source.startswith("import reclib\n\nreclib.quiet()"), path.name

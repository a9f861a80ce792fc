"""reclib: a notebook-driven tutorial and reference kit for recommender systems.

Subpackages follow the notebooks in reading order and data flows one way:
``data`` (01) -> ``features`` (03, 04) -> ``cf`` (02) / ``models`` (04-07, with ``training``)
-> ``evaluation`` -> ``serving``; no subpackage imports one to its right. Shared roots:
``reclib.base`` (the one ``Recommender`` interface and the deterministic ``top_k``),
``reclib.checks`` (argument checks), ``reclib.io`` (atomic writes), ``reclib.model_format``
(saved models, no pickle), ``reclib.fit_cache`` (fitted models kept by content), ``reclib.notebook``
(metric records read back from executed notebooks) and ``reclib.figures`` (the notebooks' figure
style and its readability check).

Importing reclib changes nothing global. :func:`quiet` (which every notebook and the notebook
runner call first, before TensorFlow or transformers load) quiets their start-up logs:

- sets ``TF_CPP_MIN_LOG_LEVEL=3``, ``ABSL_MIN_LOG_LEVEL=3``, ``TRANSFORMERS_VERBOSITY=error`` and
  ``HF_HUB_DISABLE_PROGRESS_BARS=1`` unless the environment already sets them;
- imports TensorFlow, whenever something first imports it, with the C-level stderr sent to
  /dev/null: its libraries print "Could not find cuda drivers", the oneDNN notice and absl's
  "log messages before absl::InitializeLog()" while loading, before any setting is read (with
  level 3, "failed call to cuInit" is silenced too). ``TF_CPP_MIN_LOG_LEVEL=0 jupyter lab``
  turns all of this off and shows everything again;
- ignores the "IProgress not found" warning that ``import tqdm.auto`` gives in a Jupyter kernel
  without ipywidgets.

:func:`same_cpu_kernels` (called by the notebook runner and the tests) makes PyTorch use its
AVX2 kernels on any x86-64 processor, so a seeded fit gives the same numbers with or without AVX-512.

Library progress bars are off unless a model is built with ``verbose=True`` (``show_progress=True``
for the text encoder); :func:`progress` draws them without needing ipywidgets.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings
from collections.abc import Iterable
from typing import Any, TypeVar

__version__ = "0.1.0"

_QUIET_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "3",          # TensorFlow C++: errors such as cuInit on a CPU machine too
    "ABSL_MIN_LOG_LEVEL": "3",            # absl's own C++ logging, used by TensorFlow and XLA
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


class _SilentLoader(importlib.abc.Loader):
    """Runs a module's import with the process's file descriptor 2 (C-level stderr) sent to
    /dev/null. TensorFlow's shared libraries log "Could not find cuda drivers", the oneDNN notice
    and absl's "log messages before absl::InitializeLog()" while loading, before any logging
    setting is read, so only this silences them. Python exceptions still propagate."""

    def __init__(self, loader: importlib.abc.Loader, finder: importlib.abc.MetaPathFinder) -> None:
        self.loader, self.finder = loader, finder

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        sys.stderr.flush()
        saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            self.loader.exec_module(module)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)
            if self.finder in sys.meta_path:          # TensorFlow is imported: done
                sys.meta_path.remove(self.finder)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the normal machinery and wraps its loader in _SilentLoader.

    It stays in ``sys.meta_path`` until TensorFlow is actually imported: libraries probe for it
    with ``importlib.util.find_spec("tensorflow")`` (transformers, keras) long before importing it.
    """

    searching = False

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "tensorflow" or self.searching:
            return None
        self.searching = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.searching = False
        if spec is not None and spec.loader is not None:
            spec.loader = _SilentLoader(spec.loader, self)
        return spec


def same_cpu_kernels() -> None:
    """Sets ``ATEN_CPU_CAPABILITY=avx2`` on an x86-64 machine unless the environment sets it.

    PyTorch picks its CPU kernels by what the processor offers, and its AVX-512 kernels round
    differently from its AVX2 ones, so a seeded PyTorch fit (GPT-2 over items) trained to other
    numbers on an AVX-512 machine. With the AVX2 kernels everywhere, the same seed gives the same
    numbers on any x86-64 processor. PyTorch reads the variable when it first runs a CPU kernel:
    call this before. The notebook runner and the test suite call it; ``make`` sets it too.
    """
    import platform

    if platform.machine().lower() in ("x86_64", "amd64"):
        os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")


def quiet() -> None:
    """Quiet TensorFlow's and transformers' start-up logs in this process and the processes it
    starts (module doc); call it before they are imported. Idempotent. Quiet unless the user
    chose a TensorFlow log level; ``RECLIB_QUIET_TF=1`` marks a level that reclib itself set, so a
    child process (a notebook kernel started by the runner) quiets its own TensorFlow import too."""
    quiet_tensorflow = "TF_CPP_MIN_LOG_LEVEL" not in os.environ or os.environ.get("RECLIB_QUIET_TF") == "1"
    if quiet_tensorflow:
        os.environ["RECLIB_QUIET_TF"] = "1"
    for name, value in _QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    # `import tqdm.auto` (by any library) in a Jupyter kernel without ipywidgets warns once; the text
    # bar it falls back to works, and reclib's own bars (``progress``) never need the widget
    warnings.filterwarnings("ignore", message="IProgress not found", module="tqdm")
    if (quiet_tensorflow and "tensorflow" not in sys.modules
            and not any(isinstance(finder, _QuietTensorFlowImport) for finder in sys.meta_path)):
        sys.meta_path.insert(0, _QuietTensorFlowImport())

T = TypeVar("T")


def progress(iterable: Iterable[T], verbose: bool, **options: Any) -> Any:
    """A tqdm bar over ``iterable``, shown only when ``verbose`` (a disabled bar otherwise,
    whose ``set_postfix`` does nothing); iterate over it as over ``iterable``.

    In Jupyter the widget bar is used only when ipywidgets is installed; otherwise the text bar
    (one line, refreshed in place), so a notebook never prints "IProgress not found".
    ``options`` go to tqdm (``desc``, ``unit``, ``total``, ...).
    """
    from importlib.util import find_spec

    if verbose and find_spec("ipywidgets") is not None:
        from tqdm.auto import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm(iterable, disable=not verbose, **options)

"""Fitted models kept on disk, keyed by what went into the fit, so a second notebook that needs
the same model loads it instead of training it again.

``fit_cached(SASRecRecommender(random_state=42), history)`` fits the model, saves it in the
model format (:mod:`reclib.model_format`: arrays and plain metadata, never a pickle) and returns
it; the next call with the same inputs loads that file. The key is a SHA-256 over

* the model's class and constructor parameters;
* the content of every fit argument (frames, arrays, ``ItemFeatures``: their values, dtypes,
  column names and row order);
* the Keras backend and the installed versions of the libraries a fit runs on;
* the source of the ``reclib`` package itself, so a changed line of the library is a new key, not
  a stale model.

A fit is deterministic for a given seed, data, backend and machine (the kit's rule), so a loaded
model scores exactly as a fresh fit would. ``fit_seconds_`` (the wall time of the fit that
made the file) travels with the model. Files are written atomically, so two processes fitting the
same key at once both end with a whole file; a damaged file is refitted over, never half-read;
a file that cannot be written is a warning, and the fitted model is returned all the same. Old
files are never removed: delete the folder to free its space.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import sys
import time
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from reclib.base import Recommender
from reclib.model_format import ModelFileError
from reclib.model_state import StateWriter, class_name

__all__ = ["CACHE_VARIABLE", "cache_key", "default_fit_cache_dir", "fit_cached"]

#: set to a folder to move the cache there, or to ``off`` to fit every time
CACHE_VARIABLE = "RECLIB_FIT_CACHE"
#: the libraries whose versions enter the key (a missing one counts as "absent")
_LIBRARIES = ("numpy", "scipy", "pandas", "scikit-learn", "numba", "keras", "tensorflow", "jax", "jaxlib",
              "torch", "transformers")

ModelT = TypeVar("ModelT", bound=Recommender)


def default_fit_cache_dir() -> Path | None:
    """``$RECLIB_FIT_CACHE`` if set (``off``: no cache, ``None``); else ``fits/`` in the data
    cache folder (:func:`reclib.data.sources.default_cache_dir`)."""
    from reclib.data.sources import default_cache_dir

    env = os.environ.get(CACHE_VARIABLE)
    if env:
        return None if env.strip().lower() == "off" else Path(env).expanduser()
    return default_cache_dir() / "fits"


def _digest_value(value: Any, where: str) -> str:
    """SHA-256 of ``value`` as the model format would write it: its JSON tree, then every array's
    dtype, shape and bytes in the order the tree names them."""
    writer = StateWriter()
    tree = writer.encode(value, where)
    digest = hashlib.sha256(json.dumps(tree, sort_keys=True).encode())
    for key, array in writer.arrays.items():
        array = np.ascontiguousarray(array)
        digest.update(f"{key}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    for name in sorted(writer.files):
        digest.update(name.encode() + writer.files[name])
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _library_fingerprint() -> str:
    """SHA-256 of every ``.py`` file of the installed ``reclib`` (paths and bytes, in path order)."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    found = {}
    for name in _LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = "absent"
    return found


def _backend() -> str:
    """The Keras backend (``none`` when Keras is not loaded: a model without Keras layers, whose
    key then differs from the same fit's in a process that loaded Keras, a needless miss) and
    the GPU a ``device="auto"`` model would train on."""
    keras = sys.modules.get("keras")
    torch = sys.modules.get("torch")
    gpu = torch.cuda.get_device_name(0) if torch is not None and torch.cuda.is_available() else "none"
    return f"{keras.config.backend() if keras is not None else 'none'}, gpu {gpu}"


def cache_key(model: Recommender, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The hex SHA-256 naming the fit of unfitted ``model`` on ``model.fit(*args, **kwargs)``
    (module doc); ``TypeError`` naming an argument whose content cannot be keyed (a function)."""
    if not isinstance(model, Recommender):
        raise TypeError(f"fit_cached expects a Recommender, got {type(model).__name__}")
    parts = {"class": class_name(type(model)), "backend": _backend(), "versions": _versions(),
             "reclib": _library_fingerprint()}
    for name, value in [("params", model.get_params()), *((f"argument {i}", a) for i, a in enumerate(args)),
                        *((f"argument {name!r}", v) for name, v in sorted(kwargs.items()))]:
        if callable(value) and not isinstance(value, Recommender):
            raise TypeError(f"fit_cached: {name} is a {type(value).__name__}, whose effect on the fit "
                            "cannot be keyed; call fit directly")
        try:
            parts[name] = _digest_value(value, name)
        except TypeError as error:
            raise TypeError(f"fit_cached: cannot key {name}: {error}") from None
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def fit_cached(model: ModelT, *args: Any, cache_dir: str | os.PathLike[str] | None = None,
               **kwargs: Any) -> ModelT:
    """``model.fit(*args, **kwargs)``, or the same fit loaded from ``cache_dir`` (module doc).

    ``cache_dir``: the folder of cached fits (default :func:`default_fit_cache_dir`). Returns the
    fitted model with ``fit_seconds_`` set: ``model`` itself after a fit, a loaded copy after a
    hit (``model`` then stays unfitted). Arguments are keyed before any work, so one that cannot
    be keyed (a ``validate`` function) is a ``TypeError`` before the fit starts.
    """
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_fit_cache_dir()
    key = cache_key(model, args, kwargs)             # checks model and arguments before any work
    if folder is None:
        return _timed_fit(model, args, kwargs)
    path = folder / f"{type(model).__name__}-{key[:32]}.reclib"
    if path.is_file():
        try:
            return type(model).load(path)
        except ModelFileError:
            pass                                    # damaged: fit again and write a whole file over it
    fitted = _timed_fit(model, args, kwargs)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fitted.save(path)
    except (OSError, TypeError) as error:           # an unwritable folder, an attribute the format refuses
        warnings.warn(f"fit_cached: the fitted {type(model).__name__} is returned but not cached in "
                      f"{folder}: {error}", stacklevel=2)
    return fitted


def _timed_fit(model: ModelT, args: tuple[Any, ...], kwargs: dict[str, Any]) -> ModelT:
    start = time.perf_counter()
    fitted = model.fit(*args, **kwargs)
    fitted.fit_seconds_ = time.perf_counter() - start
    return fitted

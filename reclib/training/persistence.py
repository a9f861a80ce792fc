"""Seeding and saving: one call each, so runs repeat and models survive a restart."""

from __future__ import annotations

import os
from pathlib import Path

import keras

from reclib.checks import check_non_negative_int
from reclib.io import atomic_write

__all__ = ["load_model", "save_model", "set_seed"]


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and the Keras backend (``keras.utils.set_random_seed``); an int >= 0."""
    check_non_negative_int(seed=seed)
    keras.utils.set_random_seed(seed)


def save_model(model: keras.Model, path: str | os.PathLike[str]) -> Path:
    """Save ``model`` in the ``.keras`` format, atomically (temp file + rename)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"{path}: the file name must end in .keras")
    with atomic_write(path) as tmp:
        staged = tmp.with_suffix(".keras")
        model.save(staged)
        os.replace(staged, tmp)
    return path


def load_model(path: str | os.PathLike[str]) -> keras.Model:
    """Load a ``.keras`` file with ``safe_mode=True`` (no arbitrary code from the file runs)."""
    return keras.saving.load_model(path, safe_mode=True)

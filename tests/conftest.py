"""Shared fixtures: the MovieLens-100K frames (from the cache `make data` fills) and tiny frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import reclib
from reclib.data import load_movielens

reclib.same_cpu_kernels()         # before any test runs a PyTorch kernel: the same numbers on any x86-64 CPU


@pytest.fixture(scope="session", autouse=True)
def fit_cache_in_a_temporary_folder(tmp_path_factory):
    """Fits cached by the tests (the smoke notebooks' ``fit_cached``) go to a temporary folder, not
    to the checkout's ``data/cache/fits``: a test run leaves no model files behind, and starts
    from an empty cache, as CI does."""
    import os

    from reclib.fit_cache import CACHE_VARIABLE

    before = os.environ.get(CACHE_VARIABLE)
    os.environ[CACHE_VARIABLE] = str(tmp_path_factory.getbasetemp() / "fits")
    yield
    if before is None:
        os.environ.pop(CACHE_VARIABLE, None)
    else:
        os.environ[CACHE_VARIABLE] = before


@pytest.fixture(scope="session")
def movielens():
    return load_movielens("100k")


@pytest.fixture()
def tiny_ratings() -> pd.DataFrame:
    """12 ratings of 4 users on 5 items, with timestamps."""
    rows = [(1, 10, 5, 100), (1, 11, 3, 101), (1, 12, 4, 102), (2, 10, 4, 100), (2, 13, 2, 105),
            (2, 14, 5, 106), (3, 11, 1, 103), (3, 12, 5, 104), (3, 13, 3, 107), (4, 10, 2, 108),
            (4, 14, 4, 109), (4, 12, 5, 110)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


@pytest.fixture()
def synthetic_interactions() -> pd.DataFrame:
    """5,000 random interactions of 200 users on 300 items (unique pairs), seeded."""
    rng = np.random.default_rng(0)
    keys = rng.choice(200 * 300, size=5000, replace=False)
    return pd.DataFrame({"user_id": keys // 300, "item_id": keys % 300,
                         "rating": rng.integers(1, 6, size=5000).astype(float),
                         "timestamp": rng.integers(0, 10**6, size=5000)})


@pytest.fixture()
def top10_overlap():
    """``overlap(a, b)``: the mean share of each row's top 10 columns (stable order; top n - 1 when
    there are fewer) that two (users, items) score matrices have in common, in [0, 1]."""
    def overlap(a: np.ndarray, b: np.ndarray) -> float:
        k = min(10, a.shape[1] - 1)
        top = [set(np.argsort(-row, kind="stable")[:k]) for row in (*a, *b)]
        return float(np.mean([len(x & y) / k for x, y in zip(top[:len(a)], top[len(a):])]))
    return overlap


@pytest.fixture(scope="session")
def smoke_notebooks(tmp_path_factory) -> Path:
    """The folder the smoke runs of ``tests/test_notebooks.py`` write their executed notebooks to;
    the book tests (marked ``book``, run last) build the book from it."""
    folder = tmp_path_factory.getbasetemp() / "smoke-notebooks"
    folder.mkdir(exist_ok=True)
    return folder


def pytest_collection_modifyitems(config, items):
    """Tests marked ``book`` run last (they read the smoke runs' notebooks); tests marked ``gpu``
    run only where an NVIDIA GPU is visible (``nvidia-smi`` on the PATH)."""
    import shutil

    items.sort(key=lambda item: item.get_closest_marker("book") is not None)   # stable sort
    if shutil.which("nvidia-smi"):
        return
    no_gpu = pytest.mark.skip(reason="no GPU on this machine")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(no_gpu)

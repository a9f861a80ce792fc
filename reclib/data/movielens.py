"""MovieLens-100K: 100,000 ratings (1-5) by 943 users of 1,682 films, with user and item side data.

:func:`load_movielens` tries its sources in order and returns the same typed frames whichever
one served them:

1. ``cache``: parquet files under ``<cache_dir>/ml-100k`` with a manifest holding their content
   hash; a missing, partial or mismatching cache is rebuilt, never loaded.
2. ``grouplens``: the official ``ml-100k.zip`` (MD5 verified, extracted safely). A short network
   timeout makes an offline machine fall through at once.
3. ``recbole``: the wheel of ``recbole==1.2.1`` from the package registry, which ships the same
   data in ``recbole/dataset_example/ml-100k/`` (read with ``zipfile``; recbole is not installed).

Frames (one row per rating / user / item, sorted by id):

- ``ratings``: ``user_id`` int64, ``item_id`` int64, ``rating`` float64 in [1, 5], ``timestamp`` int64 (Unix s)
- ``users``: ``user_id``, ``age`` int64, ``gender`` ("M"/"F"), ``occupation``, ``zip_code`` (str)
- ``items``: ``item_id``, ``title`` (str, year removed), ``year`` (Int64, <NA> when unknown),
  ``genres`` (list of str, in the GroupLens genre order)
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from reclib.data.sources import default_cache_dir, fetch_wheel, read_wheel_member, safe_extract
from reclib.io import atomic_write, atomic_write_bytes

__all__ = ["GENRES", "ML100K_MD5", "ML100K_URL", "MovieLens", "content_hash", "load_movielens"]

log = logging.getLogger(__name__)

ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
ML100K_MD5 = "0e33842e24a9c977be4e0107933c0723"
RECBOLE_VERSION = "1.2.1"
_RECBOLE_DIR = "recbole/dataset_example/ml-100k/"
GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
          "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
          "Romance", "Sci-Fi", "Thriller", "War", "Western")
SOURCES = ("cache", "grouplens", "recbole")
_TITLE_YEAR = re.compile(r"^(?P<title>.*?)\s*\((?P<year>\d{4})\)\s*(?:\(V\))?\s*$")
_FRAMES = ("ratings", "users", "items")
CACHE_VERSION = 2  # bump when parsing changes, so caches written by older code are rebuilt


@dataclass(frozen=True)
class MovieLens:
    """The three MovieLens frames and the name of the source that served them."""

    ratings: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    source: str

    def __repr__(self) -> str:
        return (f"MovieLens(source={self.source!r}, ratings={len(self.ratings):,}, "
                f"users={len(self.users):,}, items={len(self.items):,})")


def load_movielens(size: str = "100k", cache_dir: str | os.PathLike[str] | None = None,
                   sources: Sequence[str] = SOURCES, timeout: float = 5.0) -> MovieLens:
    """Load MovieLens ``size`` ("100k") from the first source that works (see module doc).

    Parameters
    ----------
    - size: the MovieLens edition; only ``"100k"`` is supported.
    - cache_dir: cache folder; default :func:`reclib.data.sources.default_cache_dir`
      (``$RECLIB_DATA_DIR``, else a checkout's ``data/cache``, else ``~/.cache/reclib``). A freshly
      downloaded copy is cached there.
    - sources: the sources to try, in order, a subset of ``("cache", "grouplens", "recbole")``.
    - timeout: seconds to wait for the GroupLens server.
    """
    if size != "100k":
        raise ValueError(f"size={size!r} is not supported: reclib ships only MovieLens '100k'")
    unknown = [s for s in sources if s not in SOURCES]
    if unknown or not sources:
        raise ValueError(f"sources={list(sources)!r}: each must be one of {SOURCES}")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / "ml-100k"
    errors = []
    for source in sources:
        try:
            if source == "cache":
                frames = _read_cache(folder)
            elif source == "grouplens":
                frames = _from_grouplens(timeout)
            else:
                frames = _from_recbole(root / "wheels")
        except (OSError, ValueError, RuntimeError, KeyError, zipfile.BadZipFile) as err:
            errors.append(f"{source}: {err}")
            log.info("MovieLens source %s unavailable: %s", source, err)
            continue
        data = MovieLens(*frames, source=source)
        if source != "cache":
            _write_cache(folder, data)
        return data
    raise RuntimeError("could not load MovieLens-100K from any source:\n  " + "\n  ".join(errors))


def content_hash(data: MovieLens) -> str:
    """SHA-256 over a canonical text form of the three frames: equal data, equal hash."""
    digest = hashlib.sha256()
    for name in _FRAMES:
        frame = getattr(data, name).copy()
        if "genres" in frame:
            frame["genres"] = frame["genres"].map("|".join)
        digest.update(name.encode())
        digest.update(frame.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    return digest.hexdigest()


def _canonical(ratings: pd.DataFrame, users: pd.DataFrame,
               items: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Cast the raw frames of either source to the documented dtypes and order."""
    ratings = pd.DataFrame({
        "user_id": ratings["user_id"].astype(np.int64),
        "item_id": ratings["item_id"].astype(np.int64),
        "rating": ratings["rating"].astype(np.float64),
        "timestamp": ratings["timestamp"].astype(np.float64).astype(np.int64),
    }).sort_values(["user_id", "item_id"], kind="stable").reset_index(drop=True)
    users = pd.DataFrame({
        "user_id": users["user_id"].astype(np.int64),
        "age": users["age"].astype(np.int64),
        "gender": users["gender"].astype(str),
        "occupation": users["occupation"].astype(str),
        "zip_code": users["zip_code"].astype(str),
    }).sort_values("user_id").reset_index(drop=True)
    items = pd.DataFrame({
        "item_id": items["item_id"].astype(np.int64),
        "title": items["title"].astype(str),
        "year": pd.array(items["year"], dtype="Int64"),
        "genres": items["genres"].map(list),
    }).sort_values("item_id").reset_index(drop=True)
    return ratings, users, items


def _split_title(raw: str) -> tuple[str, int | None]:
    """``"Toy Story (1995)"`` -> ``("Toy Story", 1995)``; a title without a year keeps it whole."""
    match = _TITLE_YEAR.match(raw.strip())
    if match is None:
        title = raw.strip()
        return ("unknown" if title in ("", "unknown", "unkonwn") else title), None
    return match["title"], int(match["year"])


def _parse_grouplens(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    ratings = pd.read_csv(folder / "u.data", sep="\t", header=None,
                          names=["user_id", "item_id", "rating", "timestamp"])
    users = pd.read_csv(folder / "u.user", sep="|", header=None, dtype={4: str},
                        names=["user_id", "age", "gender", "occupation", "zip_code"])
    raw = pd.read_csv(folder / "u.item", sep="|", header=None, encoding="latin-1",
                      names=["item_id", "title", "release_date", "video_date", "url", *GENRES])
    parsed = raw["title"].fillna("").map(_split_title)
    flags = raw[list(GENRES)].to_numpy(dtype=bool)
    items = pd.DataFrame({
        "item_id": raw["item_id"],
        "title": parsed.map(lambda p: p[0]),
        "year": parsed.map(lambda p: p[1]),
        "genres": [[GENRES[j] for j in np.flatnonzero(row)] for row in flags],
    })
    return _canonical(ratings, users, items)


def _from_grouplens(timeout: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    try:
        with urllib.request.urlopen(ML100K_URL, timeout=timeout) as response:
            payload = response.read()
    except (urllib.error.URLError, TimeoutError) as err:
        raise OSError(f"GroupLens unreachable ({err})") from err
    md5 = hashlib.md5(payload).hexdigest()
    if md5 != ML100K_MD5:
        raise ValueError(f"ml-100k.zip has MD5 {md5}, expected {ML100K_MD5}; refusing it")
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(io.BytesIO(payload)) as archive:
        safe_extract(archive, tmp)
        return _parse_grouplens(Path(tmp) / "ml-100k")


def _parse_recbole(inter: bytes, user: bytes,
                   item: bytes) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    def table(blob: bytes) -> pd.DataFrame:
        frame = pd.read_csv(io.BytesIO(blob), sep="\t", dtype=str, keep_default_na=False)
        return frame.rename(columns=lambda c: c.split(":")[0])

    ratings, users, raw = table(inter), table(user), table(item)
    # recbole keeps the last parenthesis of the GroupLens title as release_year (item 1412 has
    # "V", for video) and spells item 267's missing title and year "unkonwn"
    missing_year = raw["release_year"].isin(["", "unknown", "unkonwn"])
    full_title = raw["movie_title"].where(missing_year, raw["movie_title"] + " (" + raw["release_year"] + ")")
    parsed = full_title.map(_split_title)
    items = pd.DataFrame({
        "item_id": raw["item_id"],
        "title": parsed.map(lambda p: p[0]),
        "year": parsed.map(lambda p: p[1]),
        "genres": raw["class"].str.split(),
    })
    return _canonical(ratings, users, items)


def _from_recbole(wheel_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    wheel = fetch_wheel("recbole", RECBOLE_VERSION, wheel_dir)
    blobs = [read_wheel_member(wheel, f"{_RECBOLE_DIR}ml-100k.{ext}")
             for ext in ("inter", "user", "item")]
    return _parse_recbole(*blobs)


def _read_cache(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    manifest = folder / "manifest.json"
    if not manifest.exists():
        raise OSError(f"no cache at {folder}")
    meta = json.loads(manifest.read_text())
    if meta.get("version") != CACHE_VERSION:
        raise ValueError(f"cache at {folder} has format {meta.get('version')}, not {CACHE_VERSION}")
    expected = meta["sha256"]
    frames = tuple(pd.read_parquet(folder / f"{name}.parquet") for name in _FRAMES)
    ratings, users, items = _canonical(*frames)
    found = content_hash(MovieLens(ratings, users, items, "cache"))
    if found != expected:
        raise ValueError(f"cache at {folder} does not match its manifest; rebuilding")
    return ratings, users, items


def _write_cache(folder: Path, data: MovieLens) -> None:
    for name in _FRAMES:
        with atomic_write(folder / f"{name}.parquet") as tmp:
            getattr(data, name).to_parquet(tmp, index=False)
    manifest = {"version": CACHE_VERSION, "sha256": content_hash(data), "source": data.source,
                "rows": {name: len(getattr(data, name)) for name in _FRAMES}}
    atomic_write_bytes(folder / "manifest.json", json.dumps(manifest, indent=2).encode())

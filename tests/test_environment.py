"""The locked environment: requirements.lock pins every dependency of pyproject.toml exactly, with
versions its ranges allow, and torch's CPU build; environment.yml installs the same lock."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def _lock() -> dict[str, Version]:
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", line)
        if match:
            pins[canonicalize_name(match[1].split("[")[0])] = Version(match[2])
    return pins


def _wanted() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    locked = [r for name in ("deep", "text", "serving", "notebooks", "book", "test") for r in extras[name]]
    return [Requirement(r) for r in project["dependencies"] + locked]


def test_all_extra_is_every_locked_extra():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["all"] == ["reclib[deep,text,serving,notebooks,book]"]


def test_lock_pins_every_dependency_within_its_range():
    pins = _lock()
    for req in _wanted():
        name = canonicalize_name(req.name)
        assert name in pins, f"requirements.lock has no pin for {req.name}: run `make lock`"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"{req.name}=={pins[name]} in requirements.lock is outside {req.specifier}: run `make lock`"


def test_lock_has_only_exact_pins_and_cpu_torch():
    lines = [ln for ln in (ROOT / "requirements.lock").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    assert all("==" in ln for ln in lines), [ln for ln in lines if "==" not in ln]
    pins = _lock()
    assert pins["torch"] == Version("2.13.0")
    assert not [name for name in pins if name.startswith("nvidia-")], "a CUDA torch slipped in"


def test_environment_yml_installs_the_lock():
    text = (ROOT / "environment.yml").read_text()
    assert "python=3.11" in text and "- -r requirements.lock" in text and "- -e ." in text

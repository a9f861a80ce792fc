"""The package's one-way data flow, checked on the source: no stage imports one to its right.

data -> features -> cf / training -> models -> evaluation -> serving -> interactive (models train
through reclib.training; training never imports a model). The shared roots (base, checks, io,
model_format, model_state, fit_cache) import no stage except the frame helpers and the tie rule of
reclib.data that base needs and the cache folder of reclib.data.sources that fit_cache keeps its files under.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "reclib"
RANK = {"data": 0, "features": 1, "cf": 2, "training": 2, "models": 3, "evaluation": 4, "serving": 5,
        "interactive": 6}
ROOTS = {"base", "checks", "io", "model_format", "model_state", "fit_cache"}
ROOT_MAY_IMPORT = {"reclib.base", "reclib.checks", "reclib.io", "reclib.model_format", "reclib.model_state", "reclib.data.encoding", "reclib.data.ties",
                   "reclib.data.validation"}
ROOT_ALSO_MAY_IMPORT = {"fit_cache": {"reclib.data.sources"}}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("reclib."):
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("reclib.")}
    return names


@pytest.mark.parametrize("stage", sorted(p.name for p in PACKAGE.iterdir() if p.name in RANK))
def test_no_stage_imports_one_to_its_right(stage):
    wrong = []
    for path in sorted((PACKAGE / stage).rglob("*.py")):
        for module in _imports(path):
            target = module.split(".")[1]
            if target in RANK and target != stage and RANK[target] >= RANK[stage]:
                wrong.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not wrong, wrong


@pytest.mark.parametrize("root", sorted(ROOTS))
def test_shared_roots_import_no_stage(root):
    imported = _imports(PACKAGE / f"{root}.py")
    allowed = ROOT_MAY_IMPORT | ROOT_ALSO_MAY_IMPORT.get(root, set())
    assert imported <= allowed, imported - allowed

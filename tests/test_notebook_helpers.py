import json
import tomllib
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from reclib import notebook as nbh
from reclib.run_notebooks import find_notebooks, smoke_parameters, write_summary

ROOT = Path(__file__).resolve().parents[1]


def test_record_displays_the_mime_bundle(monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: shown.append(obj))
    assert nbh.record("ndcg@10", np.float32(0.5)) == 0.5
    assert shown[0][nbh.MIME_TYPE] == {"name": "ndcg@10", "value": 0.5}
    with pytest.raises(ValueError, match="non-finite"):
        nbh.record("x", float("nan"))
    with pytest.raises(ValueError, match="name"):
        nbh.record("", 1)
    with pytest.raises(ValueError, match="list"):
        nbh.record("x", [1])


def test_read_records_from_a_notebook(tmp_path):
    def out(name, value):
        return new_output("display_data", data={nbh.MIME_TYPE: {"name": name, "value": value},
                                                 "text/plain": "x"})
    nb = new_notebook(cells=[new_code_cell("a", outputs=[out("a", 1), out("b", 0.5)]),
                             new_code_cell("b", outputs=[out("a", 2)])])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert nbh.read_records(path) == {"a": 2, "b": 0.5}


def test_summary_files(tmp_path):
    write_summary({"00_x": {"metrics": {"ndcg": 0.25}, "parameters": {"k": 5}, "seconds": 1.0,
                            "output": "o"}}, tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["00_x"]["metrics"]["ndcg"] == 0.25
    assert "| ndcg | 0.2500 |" in (tmp_path / "summary.md").read_text()


def test_notebooks_are_committed_clean_with_parameters():
    notebooks = find_notebooks()
    numbers = [int(p.stem[:2]) for p in notebooks]
    # numbered in reading order as in the design (00-10); a stage not written yet leaves a gap
    assert numbers == sorted(set(numbers)) and numbers[0] == 0 and numbers[-1] <= 10
    smoke = smoke_parameters()
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), path.name
        tagged = [c for c in code if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name} needs exactly one cell tagged 'parameters'"
        assert path.stem in smoke, f"{path.name} has no smoke parameters in notebooks/smoke.json"
        for name in smoke[path.stem]:
            assert f"{name} =" in tagged[0].source, f"{path.name}: smoke parameter {name!r} unknown"


def _names(requirements):
    return {r.split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in requirements}


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["test"])
    lines = (ROOT / "environment.yml").read_text().splitlines()
    pip = [ln.strip()[2:] for ln in lines if ln.startswith("      - ")]
    assert "python=3.11" in (ROOT / "environment.yml").read_text()
    listed = {p for p in pip if p != "-e ." and not p.startswith("torch==")}
    assert listed == {w for w in wanted if not w.startswith("torch")}
    assert "torch==2.13.0" in pip and _names(pip) - {"-e ."} == _names(wanted)

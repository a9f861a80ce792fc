import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from reclib import notebook as nbh
from reclib.run_notebooks import (NOTEBOOK_DIR, _plan, find_notebooks, notebook_parameters,
                                  smoke_parameters, write_summary)

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
    with pytest.raises(TypeError, match="record 'x'.*NoneType"):
        nbh.record("x", None)
    with pytest.raises(ValueError, match="'auc'.*inf"):
        nbh.record("auc", np.float64("inf"))
    assert nbh.record("flag", np.bool_(True)) is True


def test_record_table_records_every_cell_quietly(monkeypatch):
    import pandas as pd
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: shown.append(obj))
    table = pd.DataFrame({"ndcg": [0.5, 0.25], "recall": [0.1, 0.2]}, index=["EASE (w=1)", "BPR"])
    assert nbh.record_table(table, "P1", ["ndcg", "recall"], 10, label=lambda n: n.split(" (")[0]) == 4
    assert [o[nbh.MIME_TYPE]["name"] for o in shown] == ["P1.EASE.ndcg@10", "P1.EASE.recall@10",
                                                          "P1.BPR.ndcg@10", "P1.BPR.recall@10"]
    assert shown[2][nbh.MIME_TYPE]["value"] == 0.25 and all(o["text/plain"] == "" for o in shown)
    with pytest.raises(ValueError, match="'map' is missing"):
        nbh.record_table(table, "P1", ["map"])
    shown.clear()
    with pytest.raises(ValueError, match="non-finite"):
        nbh.record_table(table.assign(ndcg=[0.5, float("nan")]), "P1", ["ndcg"])
    assert shown == []


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


def test_smoke_parameters_pass_the_runner_checks():
    """Every entry of notebooks/smoke.json names a parameter of its notebook with the right type
    (the check ``python -m reclib.run_notebooks --smoke`` makes before starting a kernel)."""
    plan = _plan([], [], True, Path("build/smoke"), "python3", NOTEBOOK_DIR)
    smoke = smoke_parameters()
    assert [path.stem for path, _ in plan] == [path.stem for path in find_notebooks()]
    for path, params in plan:
        assert params == smoke[path.stem], path.stem
    # papermill's inspect_notebook skips this line (its comment holds ">="); ast does not
    declared = notebook_parameters(NOTEBOOK_DIR / "01_data_preparation.ipynb")
    assert declared["implicit_threshold"][0] == 4

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from reclib import notebook as nbh
from reclib.notebook_params import check_parameters, declared_range
from reclib.run_notebooks import (NOTEBOOK_DIR, _plan, find_notebooks, noise, noise_table,
                                  notebook_parameters, smoke_parameters, write_summary)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def shown(monkeypatch):
    """The bundles ``record`` displays, with a fresh record registry."""
    out = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: out.append(obj))
    monkeypatch.setattr(nbh, "_RECORDED", {})
    return out


def test_record_displays_the_mime_bundle_and_no_text(shown):
    assert nbh.record("ndcg@10", np.float32(0.5)) is None     # no stray value at a cell's end
    assert shown[0] == {nbh.MIME_TYPE: {"name": "ndcg@10", "value": 0.5}, "text/plain": ""}
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
    nbh.record("flag", np.bool_(True))
    assert shown[-1][nbh.MIME_TYPE]["value"] is True and len(shown) == 2


def test_record_table_records_every_cell_quietly(shown):
    import pandas as pd
    table = pd.DataFrame({"ndcg": [0.5, 0.25], "recall": [0.1, 0.2]}, index=["EASE (w=1)", "BPR"])
    assert nbh.record_table(table, "P1", ["ndcg", "recall"], 10, label=lambda n: n.split(" (")[0]) is None
    assert [o[nbh.MIME_TYPE]["name"] for o in shown] == ["P1.EASE.ndcg@10", "P1.EASE.recall@10",
                                                          "P1.BPR.ndcg@10", "P1.BPR.recall@10"]
    assert shown[2][nbh.MIME_TYPE]["value"] == 0.25 and all(o["text/plain"] == "" for o in shown)
    with pytest.raises(ValueError, match="'map' is missing"):
        nbh.record_table(table, "P1", ["map"])
    shown.clear()
    with pytest.raises(ValueError, match="non-finite"):
        nbh.record_table(table.assign(ndcg=[0.5, float("nan")]), "P1", ["ndcg"])
    assert shown == [] and len(nbh._RECORDED) == 4


def test_show_records_is_one_table_of_everything_recorded(shown):
    import pandas as pd
    nbh.record("n_users", 943)
    nbh.record("auc", 0.78125)
    nbh.record_table(pd.DataFrame({"ndcg": [0.5]}, index=["EASE"]), "P1", ["ndcg"], 10)
    nbh.record("n_users", 300)                       # recorded again: the later value, moved last
    table = nbh.show_records()
    assert table.index.name == "recorded metric"
    assert table["value"].to_dict() == {"auc": "0.7812", "P1.EASE.ndcg@10": "0.5000",
                                        "n_users": "300"}
    assert list(table.index) == ["auc", "P1.EASE.ndcg@10", "n_users"]


def test_read_records_from_a_notebook(tmp_path):
    def out(name, value):
        return new_output("display_data", data={nbh.MIME_TYPE: {"name": name, "value": value},
                                                 "text/plain": "x"})
    nb = new_notebook(cells=[new_code_cell("a", outputs=[out("a", 1), out("b", 0.5)]),
                             new_code_cell("b", outputs=[out("a", 2)])])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert nbh.read_records(path) == {"a": 2, "b": 0.5}


def test_record_parameter_is_read_back_apart_from_the_metrics(shown, tmp_path):
    assert nbh.record_parameter("example_user", np.int64(6)) is None
    assert shown == [{nbh.PARAMETER_MIME_TYPE: {"name": "example_user", "value": 6},
                      "text/plain": ""}]
    assert nbh._RECORDED == {} and nbh.show_records().empty      # not a metric
    with pytest.raises(ValueError, match="parameter name, got 'not a name'"):
        nbh.record_parameter("not a name", 1)
    with pytest.raises(ValueError, match="'k'.*nan"):
        nbh.record_parameter("k", float("nan"))
    nb = new_notebook(cells=[new_code_cell("a", outputs=[
        new_output("display_data", data=shown[0]),
        new_output("display_data", data={nbh.MIME_TYPE: {"name": "ndcg", "value": 0.5}})])])
    nbformat.write(nb, tmp_path / "nb.ipynb")
    assert nbh.read_parameters(tmp_path / "nb.ipynb") == {"example_user": 6}
    assert nbh.read_records(tmp_path / "nb.ipynb") == {"ndcg": 0.5}


def test_numeric_notebook_parameters_declare_ranges_their_values_meet():
    """Every int / float parameter (or list of them) of every notebook declares a range in its
    comment, and its default and smoke value lie in it (so ``-p k -5`` fails before a kernel)."""
    smoke = smoke_parameters()
    for path in find_notebooks():
        declared = notebook_parameters(path)
        for name, (default, comment) in declared.items():
            items = default if isinstance(default, list) else [default]
            numeric = items and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                    for v in items)
            if numeric:
                assert declared_range(comment), f"{path.stem}: {name} declares no range"
        check_parameters(path, {n: d for n, (d, c) in declared.items() if declared_range(c)})
        check_parameters(path, smoke[path.stem], origin="smoke.json parameter")


def test_summary_files(tmp_path):
    results = {"00_x": {"metrics": {"ndcg": 0.25}, "parameters": {"k": 5}, "seconds": 1.0,
                        "output": "o", "stderr_outputs": 2, "warnings": 1},
               "01_y": {"metrics": {"a": 1, "b": 2}, "parameters": {}, "seconds": 2.5, "output": "o",
                        "stderr_outputs": 0, "warnings": 0}}
    write_summary(results, tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["00_x"]["warnings"] == 1
    markdown = (tmp_path / "summary.md").read_text()
    assert "| ndcg | 0.2500 |" in markdown
    assert "| 00_x | 1.0 | 1 | 2 | 1 |" in markdown and "| all | 3.5 | 3 | 2 | 1 |" in markdown
    assert noise_table(results) in markdown


def test_noise_counts_stderr_outputs_and_warning_lines():
    def stream(name, text):
        return new_output("stream", name=name, text=text)
    nb = new_notebook(cells=[
        new_code_cell("a", outputs=[stream("stderr", "x.py:3: RuntimeWarning: Mean of empty slice\n  m()\n"),
                                    stream("stdout", "valid_rmse=nan\n")]),
        new_code_cell("b", outputs=[stream("stderr", "W0000 00:00 absl] a\nWARNING: All log messages\n"),
                                    stream("stderr", "encoding: 100%|####| 3/3\n"),
                                    new_output("display_data", data={"text/plain": "UserWarning"})]),
        new_code_cell("c", outputs=[stream("stdout", "no warnings here, 0 Warnings\n")])])
    assert noise(nb) == {"stderr_outputs": 3, "warnings": 3}


def test_notebooks_are_committed_clean_with_parameters():
    notebooks = find_notebooks()
    numbers = [int(p.stem[:2]) for p in notebooks]
    # numbered in reading order as in the design (00-11, then the closing chapter 12); a second part
    # ("02b_...") follows its first part ("02_...")
    assert sorted(set(numbers)) == list(range(13)) and numbers == sorted(numbers)
    parts = [p.stem.split("_")[0] for p in notebooks]
    assert all(part[:2] in parts for part in parts) and all(len(part) == 2 or part[2:] == "b" for part in parts)
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


def test_progress_bars_are_off_unless_verbose(capsys):
    import reclib
    bar = reclib.progress(range(3), False, desc="quiet")
    bar.set_postfix(loss=1.0)                      # a disabled bar still takes postfixes
    assert list(bar) == [0, 1, 2] and capsys.readouterr().err == ""
    assert list(reclib.progress(range(2), True, desc="shown", mininterval=0)) == [0, 1]
    assert "shown" in capsys.readouterr().err


def test_reclib_quiet_first_silences_tensorflow_start_up_logs():
    import os
    import subprocess
    import sys
    quiet_variables = ("TF_CPP_MIN_LOG_LEVEL", "ABSL_MIN_LOG_LEVEL", "TRANSFORMERS_VERBOSITY",
                       "HF_HUB_DISABLE_PROGRESS_BARS", "RECLIB_QUIET_TF")
    env = {k: v for k, v in os.environ.items() if k not in quiet_variables}
    code = "import reclib; reclib.quiet(); import tensorflow as tf; print(float(tf.constant(1.0) + 1))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "2.0", result.stderr
    assert result.stderr == "", result.stderr   # no cuda drivers / cuInit / oneDNN / absl lines


def test_papermill_parses_every_parameters_cell(caplog):
    """papermill reads each line of a parameters cell; a line it cannot parse (e.g. a comment with
    ``>=`` in it) prints a warning on every run and hides the parameter from its inspection."""
    from papermill.translators import PythonTranslator

    for path in find_notebooks([], NOTEBOOK_DIR):
        notebook = nbformat.read(path, as_version=4)
        cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
        caplog.clear()
        names = [p.name for p in PythonTranslator.inspect(cell)]
        assert not [r.getMessage() for r in caplog.records if "Unable to parse" in r.getMessage()], path.name
        assert names == list(notebook_parameters(path)), path.name

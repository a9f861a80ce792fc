"""Bad input to ``python -m reclib.run_notebooks`` is refused before any kernel starts.

The notebooks are tiny ones written with nbformat into ``tmp_path`` (``--notebook-dir``). Each bad
case asserts exit status 2 and a one-line message on stderr naming the culprit. Two tests execute a
tiny notebook with papermill: a failed run keeps an existing summary, a good one writes it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from reclib import notebook_params
from reclib import run_notebooks as rn

PARAMETERS_A = """\
k = 3                 # in [1, inf); list length
rate = 0.5            # in (0, inf)
name = "mean"         # "mean" or "rating"
flag = False
sizes = [8, 16]       # in [1, 64]
regs = [0.1, 1.0]
limit = None          # None: everything
cap = 100             # a number, or None for no cap
path = str(1)         # not a literal: any value
threshold = 4         # a rating >= this counts (papermill's inspect_notebook skips this line)
"""
PARAMETERS_B = "k = 5\nseed = 42\n"


def _notebook(folder: Path, stem: str, parameters: str | None, body: str = "") -> Path:
    cells = []
    if parameters is not None:
        cell = new_code_cell(parameters)
        cell.metadata["tags"] = ["parameters"]
        cells.append(cell)
    cells.append(new_code_cell(body or "from reclib.notebook import record\nrecord('k', k)"))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = folder / f"{stem}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    _notebook(notebooks, "00_alpha", PARAMETERS_A)
    _notebook(notebooks, "01_beta", PARAMETERS_B)
    _notebook(notebooks, "02_plain", None)
    (notebooks / "smoke.json").write_text(json.dumps({"00_alpha": {"k": 2}, "01_beta": {"seed": 1},
                                                      "02_plain": {}}))
    return notebooks


def _main(folder: Path, *argv: str) -> list[str]:
    return ["--notebook-dir", str(folder), "--output-dir", str(folder.parent / "out"),
            "--summary-dir", str(folder.parent / "build"), *argv]


# (id, command-line arguments, stderr pattern); every case exits 2 before any kernel starts
BAD_ARGS = [
    ("unknown-param", ["00", "-p", "no_such_param", "5"],
     r"-p 'no_such_param' is not a parameter of 00_alpha; valid names: k, rate, name, flag"),
    ("unknown-param-two-notebooks", ["00", "01", "-p", "no_such_param", "5"],
     r"'no_such_param' is not a parameter of any selected notebook; valid names: 00_alpha: k, .*"
     r"01_beta: k, seed"),
    ("param-of-other-notebook", ["01", "-p", "rate", "0.1"],
     r"'rate' is not a parameter of 01_beta"),
    ("notebook-without-parameters", ["02", "-p", "k", "1"], r"'k' is not a parameter of 02_plain"),
    ("int-gets-str", ["00", "-p", "k", "abc"],
     r"'k' of 00_alpha expects int \(default 3\), got 'abc' \(str\)"),
    ("int-gets-float", ["00", "-p", "k", "2.5"],
     r"'k' of 00_alpha expects int.*got 2\.5 \(float\)"),
    ("int-gets-bool", ["00", "-p", "k", "True"], r"'k' of 00_alpha expects int.*got True \(bool\)"),
    ("int-gets-list", ["00", "-p", "k", "[1, 2]"], r"'k' of 00_alpha expects int.*\(list\)"),
    ("int-gets-none", ["00", "-p", "k", "None"], r"'k' of 00_alpha expects int.*got None"),
    ("float-gets-str", ["00", "-p", "rate", "fast"],
     r"'rate' of 00_alpha expects float.*'fast' \(str\)"),
    ("float-gets-bool", ["00", "-p", "rate", "False"],
     r"'rate' of 00_alpha expects float.*\(bool\)"),
    ("str-gets-int", ["00", "-p", "name", "5"], r"'name' of 00_alpha expects str.*got 5 \(int\)"),
    ("bool-gets-int", ["00", "-p", "flag", "1"], r"'flag' of 00_alpha expects bool.*got 1 \(int\)"),
    ("bool-gets-str", ["00", "-p", "flag", "yes"],
     r"'flag' of 00_alpha expects bool.*'yes' \(str\)"),
    ("list-gets-scalar", ["00", "-p", "sizes", "8"],
     r"'sizes' of 00_alpha expects list.*got 8 \(int\)"),
    ("list-item-type", ["00", "-p", "sizes", "[8, 'a']"],
     r"'sizes' of 00_alpha expects a list of int.*item 1 is 'a' \(str\)"),
    ("float-list-item-str", ["00", "-p", "regs", "[0.1, None]"],
     r"'regs' of 00_alpha expects a list of float.*item 1 is None"),
    ("twice", ["00", "-p", "k", "1", "-p", "k", "2"], r"-p 'k' is given more than once"),
    # ranges declared in the parameters' comments ("in [1, inf)")
    ("int-below-range", ["00", "-p", "k", "-5"], r"-p 'k' of 00_alpha must lie in \[1, inf\), got -5"),
    ("int-zero", ["00", "-p", "k", "0"], r"'k' of 00_alpha must lie in \[1, inf\), got 0$"),
    ("float-at-open-end", ["00", "-p", "rate", "0"],
     r"'rate' of 00_alpha must lie in \(0, inf\), got 0\.0"),
    ("float-negative", ["00", "-p", "rate", "-0.5"], r"'rate' of 00_alpha must lie in \(0, inf\)"),
    ("list-item-above", ["00", "-p", "sizes", "[8, 128]"],
     r"'sizes' of 00_alpha must lie in \[1, 64\], got \[8, 128\]: item 1 is 128"),
    ("list-item-below", ["00", "-p", "sizes", "[0]"], r"'sizes' of 00_alpha.*item 0 is 0"),
    ("no-such-notebook", ["99"],
     r"no notebook named '99'; have \['00_alpha', '01_beta', '02_plain'\]"),
    ("no-such-kernel", ["00", "--kernel", "no_such_kernel"], r"--kernel 'no_such_kernel': no such"),
]


@pytest.mark.parametrize(("argv", "pattern"), [case[1:] for case in BAD_ARGS],
                         ids=[case[0] for case in BAD_ARGS])
def test_bad_arguments_exit_2_with_one_line(folder, capsys, argv, pattern):
    assert rn.main(_main(folder, *argv)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("python -m reclib.run_notebooks: error: ")
    assert re.search(pattern, err), err
    assert not (folder.parent / "out").exists() and not (folder.parent / "build").exists()


# (id, smoke.json content, stderr pattern) with --smoke
BAD_SMOKE = [
    ("unknown-name", {"00_alpha": {"bogus": 1}, "01_beta": {}, "02_plain": {}},
     r"smoke.json parameter 'bogus' is not a parameter of 00_alpha; valid names: k, rate"),
    ("wrong-type", {"00_alpha": {"k": "small"}, "01_beta": {}, "02_plain": {}},
     r"smoke.json parameter 'k' of 00_alpha expects int \(default 3\), got 'small' \(str\)"),
    ("float-for-int", {"00_alpha": {}, "01_beta": {"seed": 1.5}, "02_plain": {}},
     r"smoke.json parameter 'seed' of 01_beta expects int.*1\.5"),
    ("out-of-range", {"00_alpha": {"k": 0}, "01_beta": {}, "02_plain": {}},
     r"smoke.json parameter 'k' of 00_alpha must lie in \[1, inf\), got 0"),
    ("missing-entry", {"00_alpha": {}, "01_beta": {}},
     r"--smoke: .*smoke.json has no entry for 02_plain"),
    ("not-an-object", {"00_alpha": [1]}, r"smoke.json must map each notebook stem to an object"),
    ("invalid-json", "{not json", r"smoke.json is not valid JSON"),
]


@pytest.mark.parametrize(("content", "pattern"), [case[1:] for case in BAD_SMOKE],
                         ids=[case[0] for case in BAD_SMOKE])
def test_bad_smoke_file_exits_2(folder, capsys, content, pattern):
    text = content if isinstance(content, str) else json.dumps(content)
    (folder / "smoke.json").write_text(text)
    assert rn.main(_main(folder, "--smoke")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(pattern, err), err


def test_output_dir_may_not_overwrite_the_notebooks(folder, capsys):
    argv = ["--notebook-dir", str(folder), "--output-dir", str(folder), "00"]
    assert rn.main(argv) == 2
    assert "--output-dir" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--output-dir", "--summary-dir"])
def test_unwritable_output_folder_is_found_before_any_kernel(folder, capsys, flag):
    blocker = folder.parent / "a file"
    blocker.write_text("not a folder")
    argv = _main(folder, "00") + [flag, str(blocker / "sub")]
    assert rn.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.search(rf"{flag} .*a file/sub.: cannot create or write this folder", err), err
    assert not (folder.parent / "out" / "00_alpha.ipynb").exists()    # no notebook ran


def test_declared_ranges_are_read_from_comments():
    assert notebook_params.declared_range("in [1, inf); list length") == (
        "[1, inf)", 1.0, float("inf"), True, False)
    assert notebook_params.declared_range("share in (0, 1]") == ("(0, 1]", 0.0, 1.0, False, True)
    assert notebook_params.declared_range("in [-1e3, 2_000] or None")[1:3] == (-1000.0, 2000.0)
    assert notebook_params.declared_range("a rating >= this counts") is None
    assert notebook_params.declared_range("rows in the H200 run (see [1])") is None


def test_broken_parameters_cell_is_named(folder, capsys):
    _notebook(folder, "03_broken", "k = = 3")
    assert rn.main(_main(folder, "03")) == 2
    assert "03_broken: the parameters cell is not valid Python" in capsys.readouterr().err


def test_run_notebook_checks_parameters_itself(folder, tmp_path):
    with pytest.raises(rn.RunnerInputError, match=r"parameter 'kk' is not a parameter of 00_alpha"):
        rn.run_notebook(folder / "00_alpha.ipynb", tmp_path / "out", {"kk": 1})
    with pytest.raises(rn.RunnerInputError, match=r"'k' of 00_alpha expects int"):
        rn.run_notebook(folder / "00_alpha.ipynb", tmp_path / "out", {"k": "1"})
    assert not (tmp_path / "out").exists()


def test_command_line_exit_status_and_no_traceback(folder):
    command = [sys.executable, "-m", "reclib.run_notebooks", *_main(folder, "00", "-p", "k", "abc")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1
    assert "'k' of 00_alpha expects int" in result.stderr


# -- what is accepted ----------------------------------------------------------------------------
def test_valid_values_are_accepted_and_converted(folder):
    pairs = [["rate", "1"], ["regs", "[1, 2.5]"], ["limit", "7"], ["cap", "None"], ["path", "[1]"],
             ["name", "rating"], ["threshold", "3"], ["flag", "True"], ["sizes", "[]"]]
    plan = rn._plan(["00"], pairs, False, folder.parent / "out", "python3", folder)
    (path, params), = plan
    assert path.stem == "00_alpha"
    assert params == {"rate": 1.0, "regs": [1.0, 2.5], "limit": 7, "cap": None, "path": [1],
                      "name": "rating", "threshold": 3, "flag": True, "sizes": []}
    assert isinstance(params["rate"], float) and isinstance(params["regs"][0], float)


def test_a_parameter_goes_only_to_the_notebooks_that_have_it(folder):
    plan = rn._plan([], [["rate", "0.2"], ["k", "4"], ["seed", "7"]], True, folder.parent / "out",
                    "python3", folder)
    assert {p.stem: params for p, params in plan} == {
        "00_alpha": {"k": 4, "rate": 0.2}, "01_beta": {"seed": 7, "k": 4}, "02_plain": {}}


def test_parameters_cell_is_read_with_ast(folder):
    names = rn.notebook_parameters(folder / "00_alpha.ipynb")
    assert list(names) == ["k", "rate", "name", "flag", "sizes", "regs", "limit", "cap", "path",
                           "threshold"]
    assert names["path"][0] is rn.ANY and names["cap"] == (100, "a number, or None for no cap")
    assert rn.notebook_parameters(folder / "02_plain.ipynb") == {}


# -- executing tiny notebooks: the summary is written only by a successful run --------------------
def test_failed_run_keeps_the_existing_summary(folder, capsys):
    _notebook(folder, "03_fails", "k = 3", "raise RuntimeError('boom in the notebook')")
    build = folder.parent / "build"
    build.mkdir()
    (build / "summary.json").write_text('{"old": 1}')
    (build / "summary.md").write_text("# old summary")
    assert rn.main(_main(folder, "03")) == 1
    assert (build / "summary.json").read_text() == '{"old": 1}'
    assert (build / "summary.md").read_text() == "# old summary"
    err = capsys.readouterr().err
    assert "03_fails.ipynb failed in cell" in err and "boom in the notebook" in err
    assert "left as they were" in err and "summary-failed.md" in err
    failed = json.loads((build / "summary-failed.json").read_text())
    assert "boom in the notebook" in failed["failure"] and failed["notebooks"] == {}


def test_successful_run_writes_the_summary(folder, capsys):
    build = folder.parent / "build"
    build.mkdir()
    (build / "summary-failed.md").write_text("stale")
    assert rn.main(_main(folder, "00", "-p", "k", "7", "-p", "rate", "2")) == 0
    summary = json.loads((build / "summary.json").read_text())
    assert summary["00_alpha"]["metrics"] == {"k": 7}
    assert summary["00_alpha"]["parameters"] == {"k": 7, "rate": 2.0}
    assert not (build / "summary-failed.md").exists()
    assert "summary:" in capsys.readouterr().out


def test_summary_records_the_values_the_notebook_used(folder):
    """A value the notebook replaces (a user not in a subsample, say) was recorded as if used."""
    _notebook(folder, "03_replaces", "k = 3  # in [1, inf)",
              "from reclib.notebook import record, record_parameter\n"
              "used = k if k <= 10 else 10\nrecord_parameter('k', used)\nrecord('k_used', used)")
    build = folder.parent / "build"
    assert rn.main(_main(folder, "03", "-p", "k", "50")) == 0
    result = json.loads((build / "summary.json").read_text())["03_replaces"]
    assert result["parameters"] == {"k": 10} and result["replaced"] == {"k": 50}
    assert result["metrics"] == {"k_used": 10}
    assert "parameters used: `{\"k\": 10}`; k 50 was replaced by 10" in (build / "summary.md").read_text()


def test_find_notebooks_reads_part_letters_in_order(tmp_path):
    for stem in ("08b_second", "08_first", "09_next", "notes"):
        nbformat.write(new_notebook(), tmp_path / f"{stem}.ipynb")
    assert [p.stem for p in rn.find_notebooks(folder=tmp_path)] == ["08_first", "08b_second", "09_next"]
    assert [p.stem for p in rn.find_notebooks(["08"], folder=tmp_path)] == ["08_first"]
    assert [p.stem for p in rn.find_notebooks(["08b"], folder=tmp_path)] == ["08b_second"]
    with pytest.raises(rn.RunnerInputError, match="'07'"):
        rn.find_notebooks(["07"], folder=tmp_path)

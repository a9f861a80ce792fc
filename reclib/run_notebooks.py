"""Execute reclib's notebooks with papermill and collect the metrics they record.

Usage::

    python -m reclib.run_notebooks                    # every notebook, default parameters
    python -m reclib.run_notebooks --smoke 00 01      # small parameters, two notebooks
    python -m reclib.run_notebooks 02 -p epochs 5     # override a parameter

Executed copies go to ``--output-dir`` (default ``build/notebooks``). When every notebook
succeeds, their metrics, parameters, run times and output noise (how many stderr outputs and
warning lines each executed notebook holds) go to ``build/summary.json`` and
``build/summary.md``, and a table of run times and noise is printed at the end. A failing cell stops the run with the notebook, the cell and its error, and
exit status 1; the existing ``summary.*`` are then left untouched and what finished goes to
``summary-failed.json`` / ``summary-failed.md`` instead (a later successful run removes those).

Everything is checked before any kernel starts: the notebooks, the kernel, that ``--output-dir``
and ``--summary-dir`` can be created and written, and the parameters (``-p NAME VALUE``, VALUE a
Python literal, else a string, and every entry of ``notebooks/smoke.json``) against the cell
tagged ``parameters`` of each selected notebook: names, types and the ranges declared in the
parameters' comments (:mod:`reclib.notebook_params`). With several notebooks selected, a ``-p``
name must belong to at least one of them and is passed only to the notebooks that have it. Bad
input exits with status 2 and a one-line message on stderr.

The summary records, for each notebook, the parameters it was given, updated with the values it
reports having used (:func:`reclib.notebook.record_parameter`); a given value the notebook
replaced is listed under ``replaced`` (``{name: requested value}``).
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import reclib
from reclib.figures import CHECK_VARIABLE
from reclib.io import atomic_write_bytes, check_writable_folder
from reclib.notebook import read_parameters, read_records
from reclib.notebook_params import ANY, RunnerInputError, check_parameters, notebook_parameters

__all__ = ["ANY", "NOTEBOOK_DIR", "NotebookFailed", "RunnerInputError", "check_parameters",
           "find_notebooks", "main", "noise", "noise_table", "notebook_parameters", "run_notebook",
           "smoke_parameters", "write_summary"]

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
#: a notebook's file name: a two-digit number, an optional part letter ("08b" follows "08"), "_", a name
NOTEBOOK_GLOB = "[0-9][0-9]*_*.ipynb"
SUMMARY, FAILED_SUMMARY = "summary", "summary-failed"
# a warning line: "SomethingWarning: ...", a logging "WARNING ..." line, or an absl/glog "W0123 ..." line
WARNING_LINE = re.compile(r"\b[A-Z]\w*Warning\b|^\s*WARNING\b|^W\d{4} ")


class NotebookFailed(RuntimeError):
    """A notebook stopped at a failing cell."""


def find_notebooks(names: list[str] | None = None, folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """Notebooks in ``folder`` in reading order; ``names`` selects by stem or number prefix.

    Raises :class:`RunnerInputError` for a name that matches no notebook.
    """
    found = sorted(p for p in Path(folder).glob(NOTEBOOK_GLOB))
    if not names:
        return found
    chosen: list[Path] = []
    for name in names:
        match = [p for p in found if p.stem == name or p.stem.startswith(f"{name}_")
                 or p.name == name]
        if not match:
            raise RunnerInputError(f"no notebook named {name!r}; have {[p.stem for p in found]}")
        chosen.extend(m for m in match if m not in chosen)
    return chosen


def smoke_parameters(folder: Path = NOTEBOOK_DIR) -> dict[str, dict[str, Any]]:
    """The small parameters of each notebook for smoke runs, from ``notebooks/smoke.json``
    (``{notebook stem: {parameter: value}}``); ``{}`` if the file does not exist."""
    path = Path(folder) / "smoke.json"
    if not path.exists():
        return {}
    try:
        smoke = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise RunnerInputError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(smoke, dict) or not all(isinstance(v, dict) for v in smoke.values()):
        raise RunnerInputError(f"{path} must map each notebook stem to an object of parameters")
    return smoke


def _check_writable(flag: str, folder: Path) -> None:
    """Create ``folder`` if needed and write a temporary file in it, else raise
    :class:`RunnerInputError` naming ``flag`` and the folder."""
    try:
        check_writable_folder(flag, folder)
    except ValueError as err:
        raise RunnerInputError(str(err)) from None


def _check_output_dir(output_dir: Path, path: Path) -> None:
    if Path(output_dir).resolve() == Path(path).resolve().parent:
        raise RunnerInputError(f"--output-dir {output_dir} is the folder of {path.name}: the "
                               f"executed copy would overwrite the notebook")


def noise(notebook: str | os.PathLike[str] | Any) -> dict[str, int]:
    """How noisy an executed notebook is: ``{"stderr_outputs", "warnings"}``.

    ``stderr_outputs`` counts the cell outputs written to stderr (progress bars, logs, warnings);
    ``warnings`` counts the lines of stream outputs (stdout and stderr) that look like a warning (:data:`WARNING_LINE`: ``...Warning:``, ``WARNING ...``, ``W0123 ...``).
    """
    import nbformat

    nb = notebook if isinstance(notebook, nbformat.NotebookNode) else nbformat.read(
        os.fspath(notebook), as_version=4)
    stderr = warnings = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") != "stream":
                continue
            stderr += output.get("name") == "stderr"
            text = output.get("text", "")
            text = "".join(text) if isinstance(text, list) else text
            warnings += sum(bool(WARNING_LINE.search(line)) for line in text.splitlines())
    return {"stderr_outputs": stderr, "warnings": warnings}


def run_notebook(path: Path, output_dir: Path, parameters: dict[str, Any] | None = None,
                 kernel_name: str = "python3", progress_bar: bool = True) -> dict[str, Any]:
    """Execute one notebook; return ``{"metrics", "parameters", "seconds", "output",
    "stderr_outputs", "warnings"}`` (the last two from :func:`noise`), plus ``"replaced"``
    (``{name: requested value}``) when the notebook used other values than it was given.

    ``parameters`` are checked first (:func:`check_parameters`; :class:`RunnerInputError`);
    the returned ``parameters`` are those given, updated with the values the notebook recorded
    with :func:`reclib.notebook.record_parameter` (the ones it actually used).
    Raises :class:`NotebookFailed` naming the cell and the error if a cell fails.
    """
    import papermill as pm

    path, output_dir = Path(path), Path(output_dir)
    parameters = check_parameters(path, dict(parameters or {}))
    _check_output_dir(output_dir, path)
    output_dir.mkdir(parents=True, exist_ok=True)
    output = output_dir / path.name
    # figures must reach the notebook as images, whatever backend the calling shell chose
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    # PyTorch's OpenMP threads sleep while they wait instead of spinning: on a few shared cores a
    # spinning thread takes the time its partner needs (a GPT-2 step 1.6 s -> 0.6 s); no number changes
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    reclib.same_cpu_kernels()         # PyTorch's AVX2 kernels on any x86-64 CPU: the same numbers everywhere
    # a figure that would not read well in the book (no title, unlabelled axes, legend over data,
    # tiny text) fails its cell instead of being drawn (reclib.figures)
    os.environ.setdefault(CHECK_VARIABLE, "1")
    reclib.quiet()         # the kernel inherits the quiet log levels; the notebook quiets its own imports
    start = time.perf_counter()
    try:
        pm.execute_notebook(str(path), str(output), parameters=parameters,
                            kernel_name=kernel_name, cwd=str(path.parent),
                            progress_bar=progress_bar, log_output=False,
                            # the kernel's own log: its start-up lines ("running over TCP without
                            # encryption") and, at ERROR, "KeyboardInterrupt caught in kernel", which
                            # jupyter_client's shutdown provokes (it interrupts the kernel first, and a
                            # handler that is running logs it); cell errors still reach the notebook
                            extra_arguments=["--IPKernelApp.log_level=CRITICAL"])
    except pm.PapermillExecutionError as err:
        raise NotebookFailed(f"{path.name} failed in cell {err.exec_count} "
                             f"(index {err.cell_index}): {err.ename}: {err.evalue}\n"
                             f"executed copy with the traceback: {output}") from err
    seconds = round(time.perf_counter() - start, 1)
    used = read_parameters(output)
    replaced = {name: parameters[name] for name, value in used.items()
                if name in parameters and parameters[name] != value}
    return {"metrics": read_records(output), "parameters": {**parameters, **used},
            "seconds": seconds, "output": str(output), **noise(output),
            **({"replaced": replaced} if replaced else {})}


def write_summary(results: dict[str, dict[str, Any]], folder: Path, name: str = SUMMARY,
                  failure: str | None = None) -> None:
    """Write ``{name}.json`` and ``{name}.md`` (one table per notebook) atomically.

    With ``failure`` (the error that stopped a run) the JSON is ``{"failure", "notebooks"}`` and
    the Markdown opens with the error; :func:`main` then writes to ``summary-failed.*``.
    """
    folder = Path(folder)
    payload: dict[str, Any] = (results if failure is None
                               else {"failure": failure, "notebooks": results})
    atomic_write_bytes(folder / f"{name}.json", json.dumps(payload, indent=2).encode())
    lines = ["# reclib notebook run", ""]
    if failure is not None:
        lines += ["**The run failed**; the notebooks below finished before it stopped:", "",
                  "```", failure, "```", ""] + ([] if results else ["(none)", ""])
    if results:
        lines += [noise_table(results), ""]
    for stem, result in results.items():
        replaced = "".join(f"; {name} {value!r} was replaced by "
                           f"{result['parameters'][name]!r}"
                           for name, value in result.get("replaced", {}).items())
        lines += [f"## {stem}", "", f"{result['seconds']} s; parameters used: "
                  f"`{json.dumps(result['parameters'])}`{replaced}", "", "| metric | value |",
                  "|---|---|"]
        for metric, value in result["metrics"].items():
            shown = f"{value:.4f}" if isinstance(value, float) else value
            lines.append(f"| {metric} | {shown} |")
        lines.append("")
    atomic_write_bytes(folder / f"{name}.md", "\n".join(lines).encode())


def noise_table(results: dict[str, dict[str, Any]]) -> str:
    """A Markdown table: per notebook its run time, metrics, stderr outputs and warning lines."""
    lines = ["| notebook | seconds | metrics | stderr outputs | warning lines |", "|---|---|---|---|---|"]
    for stem, result in results.items():
        lines.append(f"| {stem} | {result['seconds']} | {len(result['metrics'])} | "
                     f"{result.get('stderr_outputs', '?')} | {result.get('warnings', '?')} |")
    total = sum(float(r["seconds"]) for r in results.values())
    lines.append(f"| all | {total:.1f} | {sum(len(r['metrics']) for r in results.values())} | "
                 f"{sum(r.get('stderr_outputs', 0) for r in results.values())} | "
                 f"{sum(r.get('warnings', 0) for r in results.values())} |")
    return "\n".join(lines)


def _parse_value(text: str) -> Any:
    """A ``-p`` value: a Python literal (``5``, ``0.1``, ``[8, 16]``, ``None``), else the text."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def _plan(names: list[str], pairs: list[list[str]], smoke_run: bool, output_dir: Path,
          kernel: str, folder: Path = NOTEBOOK_DIR,
          summary_dir: Path | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """Each selected notebook with its checked parameters; every check before any kernel starts.
    The output folders are created and test-written last, once everything else passed."""
    notebooks = find_notebooks(names, folder)
    if not notebooks:
        raise RunnerInputError(f"no notebook (NN_name.ipynb, or NNb_name.ipynb for a second part) in {folder}")
    seen: set[str] = set()
    for name, _ in pairs:
        if name in seen:
            raise RunnerInputError(f"-p {name!r} is given more than once")
        seen.add(name)
    overrides = {name: _parse_value(value) for name, value in pairs}
    declared = {path: notebook_parameters(path) for path in notebooks}
    for name in overrides:
        if not any(name in params for params in declared.values()):
            valid = "; ".join(f"{path.stem}: {', '.join(params) or '(none)'}"
                              for path, params in declared.items())
            if len(notebooks) == 1:
                valid = ", ".join(declared[notebooks[0]]) or "(none: no cell tagged parameters)"
            where = "any selected notebook" if len(notebooks) > 1 else notebooks[0].stem
            raise RunnerInputError(f"-p {name!r} is not a parameter of {where}; "
                                   f"valid names: {valid}")
    smoke = smoke_parameters(folder) if smoke_run else {}
    plan = []
    for path in notebooks:
        if smoke_run and path.stem not in smoke:
            raise RunnerInputError(f"--smoke: {Path(folder) / 'smoke.json'} has no entry for "
                                   f"{path.stem}")
        small = check_parameters(path, smoke.get(path.stem, {}), origin="smoke.json parameter")
        given = check_parameters(path, {n: v for n, v in overrides.items() if n in declared[path]},
                                 origin="-p")
        _check_output_dir(output_dir, path)
        plan.append((path, {**small, **given}))
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel)
    except NoSuchKernel:
        raise RunnerInputError(f"--kernel {kernel!r}: no such Jupyter kernel; have "
                               f"{sorted(KernelSpecManager().find_kernel_specs())}") from None
    _check_writable("--output-dir", output_dir)
    if summary_dir is not None:
        _check_writable("--summary-dir", summary_dir)
    return plan


def main(argv: list[str] | None = None) -> int:
    """Command line (see the module doc). Returns 0 when every notebook ran, 1 when one failed,
    2 for bad input (reported in one line on stderr before any kernel starts)."""
    parser = argparse.ArgumentParser(prog="python -m reclib.run_notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="notebook stems or number prefixes (default all)")
    parser.add_argument("--smoke", action="store_true", help="use notebooks/smoke.json parameters")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"),
                        help="override a parameter (Python literal, else a string); with several "
                             "notebooks, passed to those that have it")
    parser.add_argument("--output-dir", type=Path, default=Path("build/notebooks"))
    parser.add_argument("--summary-dir", type=Path, default=Path("build"))
    parser.add_argument("--kernel", default="python3")
    parser.add_argument("--notebook-dir", type=Path, default=NOTEBOOK_DIR,
                        help="folder of the notebooks and smoke.json (default: reclib's notebooks)")
    args = parser.parse_args(argv)

    try:
        plan = _plan(args.names, args.parameter, args.smoke, args.output_dir, args.kernel,
                     args.notebook_dir, args.summary_dir)
    except RunnerInputError as err:
        print(f"{parser.prog}: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    results: dict[str, dict[str, Any]] = {}
    failure = None
    for number, (path, params) in enumerate(plan, 1):
        print(f"[{number}/{len(plan)}] running {path.name} {json.dumps(params) if params else ''}",
              flush=True)
        try:
            results[path.stem] = run_notebook(path, args.output_dir, params, args.kernel,
                                              progress_bar=False)
        except NotebookFailed as err:
            failure = str(err)
        except Exception as err:  # a dead kernel, a papermill error: still keep the old summary
            traceback.print_exc()
            failure = f"{path.name} stopped: {type(err).__name__}: {err}"
        if failure is not None:
            break
        done = results[path.stem]
        print(f"  {path.stem}: {done['seconds']} s, {len(done['metrics'])} metrics, "
              f"{done['stderr_outputs']} stderr outputs, {done['warnings']} warning lines", flush=True)
    if results:
        print(noise_table(results))
    folder = args.summary_dir
    if failure is None:
        write_summary(results, folder)
        for suffix in (".json", ".md"):
            (folder / f"{FAILED_SUMMARY}{suffix}").unlink(missing_ok=True)
        print(f"summary: {folder / f'{SUMMARY}.md'}")
        return 0
    write_summary(results, folder, FAILED_SUMMARY, failure)
    print(f"\nERROR: {failure}", file=sys.stderr)
    print(f"the run failed: {folder / SUMMARY}.json and .md are left as they were; the notebooks "
          f"that finished are in {folder / FAILED_SUMMARY}.md", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())

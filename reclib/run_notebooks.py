"""Execute reclib's notebooks with papermill and collect the metrics they record.

Usage::

    python -m reclib.run_notebooks                    # every notebook, default parameters
    python -m reclib.run_notebooks --smoke 00 01      # small parameters, two notebooks
    python -m reclib.run_notebooks 02 -p epochs 5     # override a parameter

Executed copies go to ``--output-dir`` (default ``build/notebooks``); the metrics, parameters and
run times of every notebook go to ``build/summary.json`` and ``build/summary.md``. Smoke
parameters are read from ``notebooks/smoke.json``. A failing cell stops the run with the
notebook, the cell and its error, and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from reclib.io import atomic_write_bytes
from reclib.notebook import read_records

__all__ = ["NOTEBOOK_DIR", "find_notebooks", "main", "run_notebook", "smoke_parameters",
           "write_summary"]

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"


class NotebookFailed(RuntimeError):
    """A notebook stopped at a failing cell."""


def find_notebooks(names: list[str] | None = None, folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """Notebooks in ``folder`` in reading order; ``names`` selects by stem or number prefix."""
    found = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return found
    chosen = []
    for name in names:
        match = [p for p in found if p.stem == name or p.stem.startswith(f"{name}_")
                 or p.name == name]
        if not match:
            raise SystemExit(f"no notebook named {name!r}; have {[p.stem for p in found]}")
        chosen.extend(m for m in match if m not in chosen)
    return chosen


def smoke_parameters(folder: Path = NOTEBOOK_DIR) -> dict[str, dict[str, Any]]:
    """The small parameters of each notebook for smoke runs, from ``notebooks/smoke.json``."""
    path = folder / "smoke.json"
    return json.loads(path.read_text()) if path.exists() else {}


def run_notebook(path: Path, output_dir: Path, parameters: dict[str, Any] | None = None,
                 kernel_name: str = "python3", progress_bar: bool = True) -> dict[str, Any]:
    """Execute one notebook; return ``{"metrics", "parameters", "seconds", "output"}``.

    Raises :class:`NotebookFailed` naming the cell and the error if a cell fails.
    """
    import papermill as pm

    output_dir.mkdir(parents=True, exist_ok=True)
    output = output_dir / path.name
    parameters = dict(parameters or {})
    # figures must reach the notebook as images, whatever backend the calling shell chose
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    start = time.perf_counter()
    try:
        pm.execute_notebook(str(path), str(output), parameters=parameters,
                            kernel_name=kernel_name, cwd=str(path.parent),
                            progress_bar=progress_bar, log_output=False)
    except pm.PapermillExecutionError as err:
        raise NotebookFailed(f"{path.name} failed in cell {err.exec_count} "
                             f"(index {err.cell_index}): {err.ename}: {err.evalue}\n"
                             f"executed copy with the traceback: {output}") from err
    return {"metrics": read_records(output), "parameters": parameters,
            "seconds": round(time.perf_counter() - start, 1), "output": str(output)}


def write_summary(results: dict[str, dict[str, Any]], folder: Path) -> None:
    """Write ``summary.json`` and ``summary.md`` (one table per notebook) atomically."""
    atomic_write_bytes(folder / "summary.json", json.dumps(results, indent=2).encode())
    lines = ["# reclib notebook run", ""]
    for name, result in results.items():
        lines += [f"## {name}", "", f"{result['seconds']} s; parameters: "
                  f"`{json.dumps(result['parameters'])}`", "", "| metric | value |", "|---|---|"]
        for metric, value in result["metrics"].items():
            shown = f"{value:.4f}" if isinstance(value, float) else value
            lines.append(f"| {metric} | {shown} |")
        lines.append("")
    atomic_write_bytes(folder / "summary.md", "\n".join(lines).encode())


def _parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reclib.run_notebooks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="notebook stems or number prefixes (default all)")
    parser.add_argument("--smoke", action="store_true", help="use notebooks/smoke.json parameters")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="override a parameter (Python literal)")
    parser.add_argument("--output-dir", type=Path, default=Path("build/notebooks"))
    parser.add_argument("--summary-dir", type=Path, default=Path("build"))
    parser.add_argument("--kernel", default="python3")
    args = parser.parse_args(argv)

    notebooks = find_notebooks(args.names)
    smoke = smoke_parameters() if args.smoke else {}
    overrides = {name: _parse_value(value) for name, value in args.parameter}
    results: dict[str, dict[str, Any]] = {}
    status = 0
    for path in tqdm(notebooks, desc="notebooks", unit="nb"):
        params = {**smoke.get(path.stem, {}), **overrides}
        tqdm.write(f"running {path.name} {json.dumps(params) if params else ''}")
        try:
            results[path.stem] = run_notebook(path, args.output_dir, params, args.kernel)
        except NotebookFailed as err:
            print(f"\nERROR: {err}", file=sys.stderr)
            status = 1
            break
        tqdm.write(f"  {path.stem}: {results[path.stem]['seconds']} s, "
                   f"{len(results[path.stem]['metrics'])} metrics")
    write_summary(results, args.summary_dir)
    print(f"summary: {args.summary_dir / 'summary.md'}")
    return status


if __name__ == "__main__":
    sys.exit(main())

"""Check a notebook the way a learner runs it: JupyterLab in headless Chromium, "Run All".

Usage::

    python -m book.lab                         # 00_quickstart at its smoke parameters
    python -m book.lab --notebook 02 --screenshot build/book-check/jupyterlab-02.png

:func:`run_in_lab` copies the notebook, with the parameters injected as papermill would (a cell
tagged ``injected-parameters`` after the ``parameters`` cell), into a temporary folder; starts
``jupyter lab`` on 127.0.0.1 with a random token and that folder as its root; opens the notebook
in the system Chromium (:func:`book.check.chromium_page`); runs every cell through JupyterLab's own
command (``notebook:run-all-cells``); waits until the kernel is idle and every code cell has run;
and reads back every cell's outputs from JupyterLab's notebook model. The figure check of
:mod:`reclib.figures` is on in that kernel, as in the notebook runner.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from book.check import chromium_page
from reclib.figures import CHECK_VARIABLE
from reclib.run_notebooks import find_notebooks, smoke_parameters

ROOT = Path(__file__).resolve().parents[1]
# runs in JupyterLab's page: each code cell's execution count and outputs (nbformat JSON)
CELLS = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = panel.content.model.cells, out = [];
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type === 'code') out.push({count: cell.executionCount, outputs: cell.outputs.toJSON()});
  }
  return {kernel: panel.sessionContext.session?.kernel?.status ?? 'none', cells: out};
}"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_server(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with status {process.returncode}: "
                               f"{log.read_text(errors='replace')[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not answer {url} within {timeout:.0f} s")


def prepare(notebook: Path, parameters: dict, folder: Path) -> Path:
    """Copy ``notebook`` into ``folder`` with ``parameters`` injected as papermill injects them."""
    from papermill.parameterize import parameterize_notebook

    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])        # what papermill sets before it parameterises
    nb.metadata.setdefault("papermill", {})
    nb = parameterize_notebook(nb, parameters)
    target = folder / notebook.name
    nbformat.write(nb, target)
    return target


def run_in_lab(notebook: Path, parameters: dict, screenshot: Path, timeout: float = 300.0) -> dict:
    """Run ``notebook`` in JupyterLab in Chromium; return ``{"kernel", "cells"}`` as JupyterLab
    holds them after "Run All" (``cells``: per code cell ``count`` and nbformat ``outputs``).

    Saves a screenshot of the notebook's end to ``screenshot``. Cells still unrun after
    ``timeout`` seconds give ``"timed_out": True`` (with the outputs so far) rather than an error.
    """
    token, port = secrets.token_hex(16), _free_port()
    with tempfile.TemporaryDirectory(prefix="reclib-lab-") as tmp:
        root = Path(tmp) / "notebooks"
        root.mkdir()
        prepare(Path(notebook), parameters, root)
        settings = Path(tmp) / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)       # no "get Jupyter news?" question over the notebook
        (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        env = {**os.environ, CHECK_VARIABLE: "1", "JUPYTER_RUNTIME_DIR": f"{tmp}/runtime",
               "JUPYTER_CONFIG_DIR": f"{tmp}/config", "JUPYTERLAB_SETTINGS_DIR": f"{tmp}/settings"}
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
                   f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                   f"--LabApp.workspaces_dir={tmp}/workspaces", "--LabApp.expose_app_in_browser=True",
                   "--LabApp.extension_manager=readonly",        # no extension search on PyPI
                   "--ServerApp.port_retries=0",                 # this port or fail, never another one
                   "--ServerApp.log_level=ERROR", *(["--allow-root"] if os.geteuid() == 0 else [])]
        log = Path(tmp) / "lab.log"
        with open(log, "wb") as log_file:
            process = subprocess.Popen(command, env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=log_file)
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_for_server(f"{base}/api/status?token={token}", process, log, timeout=60)
            with chromium_page() as context:
                page = context.new_page()
                page.goto(f"{base}/lab/tree/{Path(notebook).name}?token={token}")
                page.wait_for_function("() => window.jupyterapp?.shell?.currentWidget?.sessionContext"
                                       "?.session?.kernel?.status === 'idle'", timeout=120_000)
                # started, not awaited: the command's promise lasts as long as the cells run
                page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
                try:      # done: every cell ran, or one stopped at an error (the rest stay unrun)
                    page.wait_for_function(f"""() => {{ const r = ({CELLS})();
                        return r.kernel === 'idle' && r.cells.every(c => c.count !== null ||
                            r.cells.some(d => d.outputs.some(o => o.output_type === 'error'))); }}""",
                                           timeout=timeout * 1000, polling=1000)
                    timed_out = False
                except PlaywrightTimeout:
                    timed_out = True
                result = {**page.evaluate(CELLS), "timed_out": timed_out}
                page.locator(".jp-Cell").last.scroll_into_view_if_needed()
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshot))
                result["last_output_has_table"] = page.locator(
                    ".jp-CodeCell").last.locator(".jp-OutputArea table").count() > 0
            return result
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def lab_problems(result: dict) -> list[str]:
    """What went wrong in a :func:`run_in_lab` result: errors, stderr, a missing records table."""
    lines = ["the cells had not all run when the time ran out"] if result.get("timed_out") else []
    for number, cell in enumerate(result["cells"], start=1):
        for output in cell["outputs"]:
            if output["output_type"] == "error":
                lines.append(f"code cell {number}: {output['ename']}: {output['evalue']}")
            elif output["output_type"] == "stream" and output.get("name") == "stderr":
                lines.append(f"code cell {number} wrote to stderr: {''.join(output['text'])[:200]!r}")
    if not result.get("last_output_has_table"):
        lines.append("the last code cell shows no table")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m book.lab", description=__doc__.split("\n")[0])
    parser.add_argument("--notebook", default="00", help="notebook number or name (default 00)")
    parser.add_argument("--screenshot", type=Path, default=ROOT / "build" / "book-check" / "jupyterlab.png")
    args = parser.parse_args(argv)
    path = find_notebooks([args.notebook])[0]        # "02": notebook 02 only, "02b": its second part
    result = run_in_lab(path, smoke_parameters()[path.stem], args.screenshot)
    found = lab_problems(result)
    print("\n".join(found) if found else f"{path.name}: {len(result['cells'])} code cells ran in "
          f"JupyterLab without error; screenshot {args.screenshot}")
    print(json.dumps({"kernel": result["kernel"]}))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())

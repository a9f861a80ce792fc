"""Build the book: the executed notebooks, the README and the API reference as a static website.

Usage::

    python -m book.build                                   # from build/notebooks (make notebooks)
    python -m book.build --notebooks build/smoke --output build/book-smoke

The tool is Sphinx with MyST-NB and the Sphinx Book Theme (settings in ``book/conf.py``): it is
installed from PyPI like the rest of the kit, renders the outputs stored in the executed notebooks
without running them, generates the API reference from ``reclib``'s docstrings (autosummary), and
ships its search index and MathJax inside the site, so the book works offline from
``build/book/index.html`` or ``python -m http.server -d build/book``.

What is staged before Sphinx runs:

- ``index.md``: README.md, its links to files that are not pages of the book turned into plain
  text, with the notebooks and the API reference as the sidebar's table of contents;
- ``notebooks/NN_name.ipynb``: each executed notebook, with one Markdown cell added at its end,
  "Recorded metrics", a table of every value it recorded (:func:`reclib.notebook.read_records`);
- ``api.rst``: the autosummary of ``reclib``, one page per module.

The site is built in a work folder beside ``--output`` and moved into place only when Sphinx
succeeds without a warning, so a failed build never leaves half a book.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from pathlib import Path

import nbformat

from reclib.notebook import read_records
from reclib.run_notebooks import find_notebooks

ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / "book"
README = ROOT / "README.md"
METRICS_HEADING = "Recorded metrics"
# a Markdown link [text](target) whose target is not a web address or an anchor
LOCAL_LINK = re.compile(r"\[([^\]]+)\]\((?!https?://|mailto:|#)([^)\s]+)\)")

API_PAGE = """API reference
=============

Every public class and function of ``reclib`` (each module's ``__all__``), with its signature and
docstring, described on the page of the package that exports it. The subpackages follow the
notebooks: ``reclib.data`` (01), ``reclib.cf`` (02), ``reclib.features`` (03, 04),
``reclib.models`` and ``reclib.training`` (05-08), ``reclib.evaluation`` (09),
``reclib.interactive`` and ``reclib.serving`` (10).

.. autosummary::
   :toctree: api
   :recursive:

   reclib

Modules with public names of their own
--------------------------------------

Names that a module exports but its package does not (import them from the module).

.. autosummary::
   :toctree: api

{modules}
"""


def modules_beyond_packages(package: str = "reclib") -> list[str]:
    """The modules below ``package``'s subpackages with an ``__all__`` name that no package above
    them exports: the API page lists them, since autosummary's recursion only follows ``__all__``.
    """
    import importlib
    import pkgutil

    import reclib

    reclib.quiet()                        # importing every module loads TensorFlow: no start-up logs
    root = importlib.import_module(package)
    found = []
    for info in pkgutil.walk_packages(root.__path__, f"{package}."):
        parts = info.name.split(".")
        if len(parts) < 3 or any(part.startswith("_") for part in parts):
            continue                      # top-level modules: autosummary's recursion covers them
        module = importlib.import_module(info.name)
        above = set().union(*(getattr(importlib.import_module(".".join(parts[:i])), "__all__", ())
                              for i in range(1, len(parts))))
        if set(getattr(module, "__all__", ())) - above:
            found.append(info.name)
    return sorted(found)


class BookInputError(ValueError):
    """The executed notebooks are missing or were never run."""


def _format(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|")


def metrics_markdown(records: dict[str, object]) -> str:
    """The "Recorded metrics" section: a two-column Markdown table of ``records`` in order."""
    if not records:
        return f"## {METRICS_HEADING}\n\nThis notebook records no metrics."
    rows = "\n".join(f"| `{name}` | {_format(value)} |" for name, value in records.items())
    return (f"## {METRICS_HEADING}\n\nEvery value this run recorded with `reclib.notebook.record`, "
            f"as `make notebooks` writes them to `build/summary.json` (floats to 4 significant "
            f"digits).\n\n| metric | value |\n|---|---|\n{rows}")


def front_page(readme: str, pages: list[str]) -> str:
    """README.md as the book's front page: links to staged ``pages`` kept, other local links
    turned into their text, and the table of contents appended."""
    def link(match: re.Match[str]) -> str:
        text, target = match.groups()
        return match.group(0) if target.split("#")[0].removesuffix(".ipynb") in pages else text

    contents = "\n".join(page for page in pages if page.startswith("notebooks/"))
    return (LOCAL_LINK.sub(link, readme)
            + f"\n\n```{{toctree}}\n:caption: Notebooks\n:hidden:\n\n{contents}\n```\n"
            + "\n```{toctree}\n:caption: Reference\n:hidden:\n\napi\n```\n")


def stage(notebooks_dir: Path, source: Path) -> list[str]:
    """Write the book's sources into ``source`` (emptied first); return the staged page names.

    Raises :class:`BookInputError` naming each notebook of ``notebooks/`` that ``notebooks_dir``
    lacks, holds unexecuted, or holds stopped at an error.
    """
    names = [path.name for path in find_notebooks()]
    missing = [name for name in names if not (notebooks_dir / name).is_file()]
    if missing:
        raise BookInputError(f"{notebooks_dir} lacks the executed notebooks {missing}: run "
                             f"`make notebooks` (or `make smoke` and --notebooks build/smoke) first")
    executed = {name: nbformat.read(notebooks_dir / name, as_version=4) for name in names}
    unexecuted = [name for name, nb in executed.items() if "papermill" not in nb.metadata]
    if unexecuted:
        raise BookInputError(f"{unexecuted} in {notebooks_dir} were not executed by the notebook "
                             f"runner (no papermill metadata): the book shows stored outputs only")
    failed = [name for name, nb in executed.items() if any(
        output.get("output_type") == "error" for cell in nb.cells for output in cell.get("outputs", []))]
    if failed:
        raise BookInputError(f"{failed} in {notebooks_dir} stopped at an error: rerun them first")
    if source.exists():
        shutil.rmtree(source)
    (source / "notebooks").mkdir(parents=True)
    pages = []
    for name, nb in executed.items():
        nb.cells.append(nbformat.v4.new_markdown_cell(metrics_markdown(read_records(nb)),
                                                      id="reclib-recorded-metrics"))
        nbformat.write(nb, source / "notebooks" / name)
        pages.append(f"notebooks/{Path(name).stem}")
    modules = "\n".join(f"   {name}" for name in modules_beyond_packages())
    (source / "api.rst").write_text(API_PAGE.format(modules=modules), encoding="utf-8")
    (source / "index.md").write_text(front_page(README.read_text(encoding="utf-8"), pages + ["api"]),
                                     encoding="utf-8")
    return ["index", *pages, "api"]


def build(notebooks_dir: Path, output: Path) -> Path:
    """Stage and build the book into ``output``; return the path of its ``index.html``.

    Everything is built in a work folder beside ``output`` (``.<name>.build-<pid>``: the staged
    sources, Sphinx's caches, MyST-NB's extracted images), which is removed afterwards; only the
    finished site is moved into place. Any Sphinx warning (a docstring that does not parse, a
    broken cross-reference, a module that does not import) fails the build: ``RuntimeError``
    with the warnings.
    """
    from sphinx.cmd.build import build_main

    notebooks_dir, output = Path(notebooks_dir), Path(output)
    work = output.with_name(f".{output.name}.build-{os.getpid()}")
    shutil.rmtree(work, ignore_errors=True)
    try:
        source, site, warnings = work / "src", work / "site", work / "warnings.txt"
        stage(notebooks_dir, source)
        args = ["-b", "html", "-q", "-W", "--keep-going", "-c", str(CONFIG_DIR),
                "-d", str(work / "doctrees"), "-w", str(warnings), str(source), str(site)]
        if build_main(args) != 0:
            found = warnings.read_text(errors="replace") if warnings.exists() else ""
            raise RuntimeError(f"Sphinx failed on the book (warnings are errors):\n{found[-4000:]}")
        old = output.with_name(f".{output.name}.old-{os.getpid()}")
        if output.exists():
            output.rename(old)
        site.rename(output)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return output / "index.html"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m book.build", description=__doc__.split("\n")[0])
    parser.add_argument("--notebooks", type=Path, default=ROOT / "build" / "notebooks",
                        help="folder of executed notebooks (default build/notebooks)")
    parser.add_argument("--output", type=Path, default=ROOT / "build" / "book",
                        help="folder the website is written to (default build/book)")
    args = parser.parse_args(argv)
    try:
        index = build(args.notebooks, args.output)
    except BookInputError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    print(f"book written: open {index} or run `python -m http.server -d {args.output}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The book (``book/``): its staging, then, marked ``book`` and run last, the site built from the
smoke runs' notebooks checked in headless Chromium, and notebook 00 run in JupyterLab.

The browser tests need the system's Chromium (``.ci/run`` installs Debian's package); where it is
missing they skip, unless ``RECLIB_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nbformat
import pytest

from book.build import BookInputError, front_page, metrics_markdown, stage
from book.check import find_chromium
from reclib.run_notebooks import NOTEBOOK_DIR, find_notebooks, smoke_parameters

ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "build" / "book-check"


def test_metrics_markdown_is_a_table_of_every_record():
    text = metrics_markdown({"P1.EASE.ndcg@10": 0.480812, "n_users": 943, "note": "a|b"})
    assert text.splitlines()[0] == "## Recorded metrics"
    assert "| `P1.EASE.ndcg@10` | 0.4808 |" in text and "| `n_users` | 943 |" in text
    assert "| `note` | a\\|b |" in text
    assert "records no metrics" in metrics_markdown({})


def test_front_page_keeps_links_to_pages_and_unlinks_the_rest():
    readme = "See [00](notebooks/00_quickstart.ipynb), [code](reclib/base.py), [uv](https://x.org), [top](#a)."
    page = front_page(readme, ["notebooks/00_quickstart", "api"])
    assert "[00](notebooks/00_quickstart.ipynb)" in page and "[uv](https://x.org)" in page
    assert "[top](#a)" in page and "[code]" not in page and ", code," in page
    assert ":caption: Notebooks" in page and "notebooks/00_quickstart\n" in page


def _executed_copies(folder: Path, error_in: str | None = None) -> None:
    for path in find_notebooks():
        nb = nbformat.read(path, as_version=4)
        nb.metadata["papermill"] = {}
        if path.stem == error_in:
            nb.cells[-1] = nbformat.v4.new_code_cell("1/0", outputs=[nbformat.v4.new_output(
                "error", ename="ZeroDivisionError", evalue="division by zero", traceback=[])])
        nbformat.write(nb, folder / path.name)


def test_stage_refuses_missing_unexecuted_and_failed_notebooks(tmp_path):
    with pytest.raises(BookInputError, match="lacks the executed notebooks.*00_quickstart"):
        stage(tmp_path, tmp_path / "src")
    for path in find_notebooks():
        shutil.copy(path, tmp_path / path.name)
    with pytest.raises(BookInputError, match="not executed"):
        stage(tmp_path, tmp_path / "src")
    _executed_copies(tmp_path, error_in="03_content_features")
    with pytest.raises(BookInputError, match="03_content_features.*stopped at an error"):
        stage(tmp_path, tmp_path / "src")


def test_stage_writes_the_pages_with_a_metrics_section(tmp_path):
    _executed_copies(tmp_path)
    pages = stage(tmp_path, tmp_path / "src")
    assert pages[0] == "index" and pages[-1] == "api" and len(pages) == len(find_notebooks()) + 2
    staged = nbformat.read(tmp_path / "src" / "notebooks" / "00_quickstart.ipynb", as_version=4)
    assert staged.cells[-1].source.startswith("## Recorded metrics")
    assert "reclib" in (tmp_path / "src" / "api.rst").read_text()


def _documented_names(site: Path) -> set[str]:
    """The public classes and functions (``__all__``) of reclib's modules that the site's
    inventory does not describe under any module that exports the same object."""
    import importlib
    import inspect
    import pkgutil

    import reclib
    from sphinx.util.inventory import InventoryFile

    with open(site / "objects.inv", "rb") as stream:
        inventory = InventoryFile.load(stream, "", lambda *parts: parts[-1])
    entries = getattr(inventory, "data", inventory)
    homes: dict[str, list[str]] = {}              # name -> modules whose page describes it
    for kind in ("py:class", "py:function", "py:data", "py:exception"):
        for full in entries.get(kind, {}):
            module, _, name = full.rpartition(".")
            homes.setdefault(name, []).append(module)
    missing = set()
    for info in pkgutil.walk_packages(reclib.__path__, "reclib."):
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue                            # constants and aliases: documented in prose
            if not any(getattr(importlib.import_module(home), name, None) is obj
                       for home in homes.get(name, [])):
                missing.add(f"{info.name}.{name}")
    return missing


def test_readme_links_every_notebook_page():
    readme = (ROOT / "README.md").read_text()
    assert all(f"[{path.stem}](notebooks/{path.name})" in readme for path in find_notebooks())


def _browser_or_skip() -> None:
    if find_chromium() is None:
        if os.environ.get("RECLIB_REQUIRE_BROWSER") == "1":
            pytest.fail("RECLIB_REQUIRE_BROWSER=1 but no Chromium: apt-get install chromium")
        pytest.skip("no Chromium on this machine (Debian: apt-get install chromium)")


@pytest.fixture(scope="module")
def smoke_book(smoke_notebooks, tmp_path_factory):
    """``(notebooks folder, site)``: the book built from this session's smoke runs, or from the
    folder ``$RECLIB_BOOK_NOTEBOOKS`` names (e.g. build/smoke after ``make smoke``)."""
    from book.build import build

    _browser_or_skip()
    folder = Path(os.environ.get("RECLIB_BOOK_NOTEBOOKS") or smoke_notebooks)
    if not all((folder / path.name).is_file() for path in find_notebooks()):
        pytest.skip(f"{folder} lacks smoke-run notebooks: run the whole suite (make test), or "
                    "make smoke and RECLIB_BOOK_NOTEBOOKS=build/smoke")
    site = tmp_path_factory.mktemp("book") / "site"
    build(folder, site)
    return folder, site


@pytest.mark.book
@pytest.mark.slow
def test_book_reads_well_in_chromium(smoke_book):
    from book.check import check_site, problems

    folder, site = smoke_book
    report = check_site(site, SHOTS)
    assert problems(report) == []
    pages = report["pages"]
    notebook_pages = [name for name in pages if name.startswith("notebooks/")]
    assert len(notebook_pages) == len(find_notebooks())
    assert all(pages[name]["metrics_table"] for name in notebook_pages)
    for path in find_notebooks():                 # every stored figure is shown, none lost
        stored = sum("image/png" in output.get("data", {})
                     for cell in nbformat.read(folder / path.name, as_version=4).cells
                     for output in cell.get("outputs", []))
        assert pages[f"notebooks/{path.stem}.html"]["figures"] == stored, path.stem
    assert "api.html" in pages and any(name.startswith("api/reclib.models") for name in pages)
    assert report["search_hits"] > 0
    assert {"genindex.html", "py-modindex.html", "search.html"} <= set(pages)
    assert len(list(SHOTS.glob("*.png"))) == len(pages)             # emptied first, one a page
    assert _documented_names(site) == set()


@pytest.mark.book
@pytest.mark.slow
def test_quickstart_runs_in_jupyterlab():
    from book.lab import lab_problems, run_in_lab

    _browser_or_skip()
    path = NOTEBOOK_DIR / "00_quickstart.ipynb"
    result = run_in_lab(path, smoke_parameters()[path.stem], SHOTS / "jupyterlab-00_quickstart.png")
    assert lab_problems(result) == []
    assert result["kernel"] == "idle" and len(result["cells"]) >= 10
    assert all(cell["count"] is not None for cell in result["cells"])

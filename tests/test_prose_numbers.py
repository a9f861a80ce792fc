"""Numbers typed into the notebooks' prose (book.prose): none in new text, and fewer over time.

A number in a markdown cell should be printed by code beside it, so the prose cannot disagree with
the run. CEILING is each notebook's count when this test was last tightened; a notebook may go
below it (then lower the ceiling) but never above. Definitions are written as math and published
figures are cited in code (``book.prose``), so the ceilings are zero.
"""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from book.prose import typed_numbers
from reclib.run_notebooks import find_notebooks

CEILING = {"00_quickstart": 0, "01_data_preparation": 0, "02_collaborative_filtering": 0,
           "02b_implicit_feedback": 0, "03_content_features": 0, "04_bert_features": 0, "05_deep_models": 0,
           "06_sequential_models": 0, "07_feature_interaction": 0, "08_gpu_training": 0,
           "08b_fine_tuning_text_encoder": 0,
           "09_evaluation": 0, "10_interactive": 0, "11_language_models": 0, "12_what_to_use_when": 0}


def test_every_notebook_has_a_ceiling():
    assert sorted(CEILING) == [p.stem for p in find_notebooks()]


@pytest.mark.parametrize("path", find_notebooks(), ids=lambda p: p.stem)
def test_no_notebook_types_more_numbers_than_its_ceiling(path):
    found = typed_numbers(path)
    assert len(found) <= CEILING[path.stem], "numbers typed in prose:\n" + "\n".join(found)


def test_typed_numbers_are_found_outside_math_code_and_settings(tmp_path):
    nb = new_notebook(cells=[
        new_markdown_cell("NDCG is 0.38 against 0.25, 43 % of ratings, in 15 seconds, 3x faster."),
        new_markdown_cell("Settings are not results: K=10, 10 epochs, P3, MovieLens-100K, 3 × 3, [a](x/0.5.md)."),
        new_markdown_cell("Math and code are not prose: $0.5 \\cdot x$, $$\\beta = 0.7$$, `reg=0.05`.\n"
                          "```\nscore = 0.9\n```\n<!-- 0.1 -->"),
        new_code_cell("print(0.123)")])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    found = typed_numbers(path)
    assert len(found) == 5, found               # the five in the first cell, nothing else
    assert all(any(n in f for n in ("0.38", "0.25", "43 %", "15 seconds", "3x")) for f in found)

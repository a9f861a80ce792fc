"""Numbers typed into the notebooks' prose (book.prose): none in new text, and fewer over time.

A number in a markdown cell should be printed by code beside it, so the prose cannot disagree with
the run. CEILING is each notebook's count when this test was last tightened; a notebook may go
below it (then lower the ceiling) but never above. The counts left are mostly protocol definitions,
published reference figures and the older notebooks' prose still to be rewritten.
"""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from book.prose import typed_numbers
from reclib.run_notebooks import find_notebooks

CEILING = {"00_quickstart": 0, "01_data_preparation": 3, "02_collaborative_filtering": 3,
           "02b_implicit_feedback": 3,
           "03_content_features": 4, "04_bert_features": 2, "05_deep_models": 2,
           "06_sequential_models": 2, "07_feature_interaction": 2, "08_gpu_training": 2,
           "08b_fine_tuning_text_encoder": 6,
           "09_evaluation": 13, "10_interactive": 3, "11_language_models": 4, "12_what_to_use_when": 0}


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

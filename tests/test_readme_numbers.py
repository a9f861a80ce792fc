"""experiments/readme_numbers.py: README result tables regenerated from a summary, rows of
notebooks that did not run kept, a renamed record reported."""

from __future__ import annotations

import json

import pytest

from experiments import readme_numbers as rm

NB02, NB02B = "02_collaborative_filtering", "02b_implicit_feedback"


def _summary(**metrics: float) -> dict:
    base = {f"P2.{name}.{m}": 1.0 for name in ("BaselinePredictor", "KNNBaseline (user)",
                                                "KNNBaseline (item)", "BiasedMF (ALS)", "BiasedMF (SGD)")
            for m in ("rmse", "mae")}
    ranking = {f"P1.{name}.{m}@10": 0.5 for name in ("MostPopular", "BaselinePredictor", "ItemKNN",
                                                      "BPR", "EASE", "ImplicitALS")
               for m in ("ndcg", "recall", "precision", "map", "coverage")}
    base.update({name: value for name, value in metrics.items() if name.startswith("P2.")})
    ranking.update({name: value for name, value in metrics.items() if name.startswith("P1.")})
    run = {"parameters": {}, "output": "x", "stderr_outputs": 0, "warnings": 0}
    return {NB02: {"metrics": base, "seconds": 61.26, **run}, NB02B: {"metrics": ranking, "seconds": 30.4, **run}}


def test_the_real_readme_regenerates_and_keeps_rows_of_notebooks_that_did_not_run():
    readme = (rm.ROOT / "README.md").read_text()
    after = rm.update(readme, _summary(**{"P2.BaselinePredictor.rmse": 0.94512}))
    assert "| BaselinePredictor | 0.945 | 1.000 |" in after
    assert "| `02_collaborative_filtering` | 61 | 0 | 0 | 10 |" in after
    assert "| `02b_implicit_feedback` | 30 | 0 | 0 | 30 |" in after
    # P4 comes from notebook 07, which did not run: its block is unchanged
    block = lambda text: text.split("<!-- results:P4 -->")[1].split("<!-- /results:P4 -->")[0]
    assert block(after) == block(readme)
    assert rm.update(after, _summary(**{"P2.BaselinePredictor.rmse": 0.94512})) == after


def test_a_missing_record_of_a_notebook_that_ran_is_named(tmp_path, capsys):
    summary = _summary()
    del summary[NB02B]["metrics"]["P1.EASE.map@10"]
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "README.md").write_text((rm.ROOT / "README.md").read_text())
    assert rm.main(["--summary", str(tmp_path / "summary.json"), "--readme", str(tmp_path / "README.md")]) == 2
    assert "recorded no 'P1.EASE.map@10'" in capsys.readouterr().err


def test_check_mode_reports_an_out_of_date_readme(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps(_summary()))
    readme = tmp_path / "README.md"
    readme.write_text((rm.ROOT / "README.md").read_text())
    argv = ["--summary", str(tmp_path / "summary.json"), "--readme", str(readme)]
    assert rm.main(argv + ["--check"]) == 1
    assert rm.main(argv) == 0 and rm.main(argv + ["--check"]) == 0


def test_a_readme_without_markers_is_an_error():
    with pytest.raises(KeyError, match="no <!-- results:NAME --> block"):
        rm.update("# no tables here\n", _summary())

"""Regenerate README.md's result tables from ``build/summary.json`` (``make readme``).

Usage::

    python -m experiments.readme_numbers                      # after make notebooks
    python -m experiments.readme_numbers --check              # exit 1 if README.md is out of date

Each table lives in README.md between ``<!-- results:NAME -->`` and ``<!-- /results:NAME -->``
and is rewritten whole from :data:`TABLES`: a row whose notebook is in the summary gets its
values from there (3 decimals); a row whose notebook is not (a partial run such as
``python -m reclib.run_notebooks 02``, or a row measured outside the notebooks, ``notebook=None``)
keeps its current line, so a partial run never blanks a table. A metric missing from a notebook
that did run is an error naming it: a renamed record must be renamed here too. The ``runs`` table
lists each notebook's run time and its output noise (stderr outputs, warning lines) from the
summary, keeping the rows of notebooks that did not run.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NB02, NB02B = "02_collaborative_filtering", "02b_implicit_feedback"
NB03, NB04 = "03_content_features", "04_bert_features"
NB05, NB06, NB07 = "05_deep_models", "06_sequential_models", "07_feature_interaction"
NB11, NB12 = "11_language_models", "12_what_to_use_when"


@dataclass(frozen=True)
class Row:
    """One table row: ``label`` (first cell), the ``notebook`` whose records fill it (``None``:
    kept as written), and one record name per value column (``None``: an empty cell)."""

    label: str
    notebook: str | None
    metrics: tuple[str | None, ...] = ()


def _p1(label: str, name: str, notebook: str = NB02B, full: bool = True) -> Row:
    metrics = ("ndcg", "recall", "precision", "map", "coverage") if full else ("ndcg", "recall")
    values = tuple(f"P1.{name}.{m}@10" for m in metrics)
    return Row(label, notebook, values + (None,) * (5 - len(values)))


TABLES: dict[str, tuple[tuple[str, ...], tuple[Row, ...]]] = {
    "P1": (("P1 top-N, K=10 (notebook 02b)", "NDCG", "Recall", "Precision", "MAP", "coverage"), (
        _p1("MostPopular", "MostPopular"),
        _p1("BaselinePredictor (ranks by item bias)", "BaselinePredictor"),
        _p1("ItemKNN (cosine, 20 neighbours)", "ItemKNN"),
        _p1("BPR (64 factors, per-sample SGD)", "BPR"),
        _p1("EASE (λ = 500)", "EASE"),
        _p1("ImplicitALS (64 factors, α = 3, λ = 30, conjugate gradient)", "ImplicitALS"),
        _p1("GMF, Keras (notebook 05)", "GMF", NB05, full=False),
        _p1("two-tower, ids + history only, notebook 05's text settings", "two-tower, ids only",
            NB05, full=False),
        Row("`TwoTowerRecommender()` defaults, ids only (`make tune` grid)", None),
        _p1("two-tower + BERT text and genres (notebook 05)", "two-tower + text", NB05, full=False),
        _p1("NeuMF, Keras (notebook 05)", "NeuMF", NB05, full=False),
    )),
    "split": (("NDCG@10, random vs per-user temporal split (notebook 12)", "random split (P1)",
               "each user's latest 25 % held out"), tuple(
        Row(name, NB12, (f"P1.{name}.ndcg@10", f"temporal.{name}.ndcg@10"))
        for name in ("MostPopular", "ItemKNN", "EASE", "ImplicitALS"))),
    "P2": (("P2 rating prediction (notebook 02)", "RMSE", "MAE"), tuple(
        Row(label, NB02, (f"P2.{name}.rmse", f"P2.{name}.mae")) for label, name in [
            ("BaselinePredictor", "BaselinePredictor"),
            ("KNNBaseline, user-based", "KNNBaseline (user)"),
            ("KNNBaseline, item-based (Pearson-baseline)", "KNNBaseline (item)"),
            ("BiasedMF by ALS (factors and λ: the notebook's validation sweep)", "BiasedMF (ALS)"),
            ("BiasedMF by SGD (200 factors)", "BiasedMF (SGD)")])),
    "P5": (("P5 cold-start films, K=10 (notebooks 03-04)", "Recall", "NDCG"), tuple(
        Row(label, notebook, (f"P5.{name}.recall@10", f"P5.{name}.ndcg@10"))
        for label, notebook, name in [
            ("random features", NB03, "random"),
            ("genre profile", NB03, "genres"),
            ("BERT profile (all-MiniLM-L6-v2)", NB04, "BERT profile"),
            ("TF-IDF profile", NB04, "TF-IDF profile"),
            ("BERT → implicit-ALS factors (ridge map)", NB04, "BERT -> CF factors"),
            ("two-tower item tower with text (notebook 05)", NB05, "two-tower + text"),
            ("oracle popularity (uses test counts: a leaky reference)", NB03,
             "oracle popularity")])),
    "P3": (("P3 next item, full ranking (notebook 06)", "HR@10", "NDCG@10", "MRR@10"), tuple(
        Row(label, NB06, (f"P3.{name}.hr@10", f"P3.{name}.ndcg@10", f"P3.{name}.mrr@10" if mrr else None))
        for label, name, mrr in [
            ("most popular", "most popular", True),
            ("items similar to the last item (cosine)", "items similar to the last item", True),
            ("GRU, Keras (128-d)", "GRU", True),
            ("SASRec, Keras (2 blocks, 128-d)", "SASRec", True),
            ("HSTU, Keras (2 blocks, 64-d, normalised, temperature 0.05)", "HSTU", True),
            ("GPT-2 over item ids, transformers (2 blocks, 64-d; 24 epochs, notebook 06's budget)",
             "GPT-2 over items (transformers)", True)])
        + (Row("SASRec, item embeddings initialised from BERT titles (notebook 12)", NB12,
               ("P3.SASRec + BERT init.hr@10", "P3.SASRec + BERT init.ndcg@10", None)),
           Row("generative retrieval over semantic IDs (notebook 11)", NB11,
               tuple(f"P3.generative retrieval (semantic IDs).{m}@10" for m in ("hr", "ndcg", "mrr"))),)),
    "new_items": (("next item among the 168 newest films, no retraining (notebook 11)", "HR@10"), tuple(
        Row(label, NB11, (f"new.{name}.hr@10",)) for label, name in [
            ("random order", "random"),
            ("popularity among the new films up to the event", "popularity among new films so far"),
            ("title similarity to the last film", "title similarity to the last film"),
            ("generative retrieval over semantic IDs", "generative retrieval (semantic IDs)")])),
    "rerank": (("P3 next item, EASE's top 50 (notebook 11)", "NDCG@10"), tuple(
        Row(label, NB11, (f"rerank.EASE.{name}",)) for label, name in [
            ("a random order of the shortlist", "random order of the shortlist"),
            ("EASE's own order", "retriever's order"),
            ("reranked by the head over MiniLM title states", "reranked")])),
    "P4": (("P4 click-through, test AUC (notebook 07)", "base features", "+ BERT title"), tuple(
        Row(label, NB07, (f"P4.{kind}.base.auc", f"P4.{kind}.text.auc")) for label, kind in [
            ("logistic regression", "lr"), ("FM", "fm"), ("AutoInt", "autoint"),
            ("DCN-V2", "dcnv2"), ("DeepFM", "deepfm")])),
}
RUNS_HEADER = ("notebook", "run time (s)", "stderr outputs", "warning lines", "metrics")


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _line(cells: list[str] | tuple[str, ...]) -> str:
    return "| " + " | ".join(cells) + " |"


def _existing_rows(block: str) -> dict[str, str]:
    """``{label: line}`` for the body rows of the Markdown table in ``block``."""
    lines = [line for line in block.splitlines() if line.startswith("|")]
    return {_cells(line)[0]: line for line in lines[2:]}


def _value(summary: dict[str, Any], notebook: str, metric: str | None) -> str:
    if metric is None:
        return ""
    metrics = summary[notebook]["metrics"]
    if metric not in metrics:
        raise KeyError(f"{notebook} recorded no {metric!r} (it has {len(metrics)} records, e.g. "
                       f"{sorted(metrics)[:5]}); update experiments/readme_numbers.py")
    value = metrics[metric]
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def render_table(name: str, summary: dict[str, Any], existing: dict[str, str]) -> str:
    """The Markdown of table ``name`` (see the module doc for which rows come from where)."""
    header, rows = TABLES[name]
    lines = [_line(header), "|" + "---|" * len(header)]
    for row in rows:
        if row.notebook is not None and row.notebook in summary:
            lines.append(_line([row.label] + [_value(summary, row.notebook, m) for m in row.metrics]))
        elif row.label in existing:
            lines.append(existing[row.label])
        else:
            raise KeyError(f"table {name}: row {row.label!r} is neither in the summary "
                           f"({row.notebook} did not run) nor in README.md")
    return "\n".join(lines)


def render_runs(summary: dict[str, Any], existing: dict[str, str]) -> str:
    """Per notebook: run time, stderr outputs and warning lines of the run, and its record count."""
    rows = {label: line for label, line in existing.items() if label != "all"}
    for stem, result in summary.items():
        rows[f"`{stem}`"] = _line([f"`{stem}`", f"{float(result['seconds']):.0f}",
                                   str(result.get("stderr_outputs", "?")),
                                   str(result.get("warnings", "?")), str(len(result["metrics"]))])
    return "\n".join([_line(RUNS_HEADER), "|" + "---|" * len(RUNS_HEADER)]
                     + [rows[label] for label in sorted(rows)])


def update(readme: str, summary: dict[str, Any]) -> str:
    """``readme`` with every ``<!-- results:NAME -->`` block regenerated from ``summary``."""
    pattern = re.compile(r"(<!-- results:(\w+) -->\n)(.*?)(<!-- /results:\2 -->)", re.S)
    found = {match.group(2) for match in pattern.finditer(readme)}
    missing = sorted((set(TABLES) | {"runs"}) - found)
    if missing:
        raise KeyError(f"README.md has no <!-- results:NAME --> block for {missing}")

    def replace(match: re.Match[str]) -> str:
        name, existing = match.group(2), _existing_rows(match.group(3))
        body = render_runs(summary, existing) if name == "runs" else render_table(name, summary, existing)
        return f"{match.group(1)}{body}\n{match.group(4)}"
    return pattern.sub(replace, readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.readme_numbers",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--summary", type=Path, default=ROOT / "build" / "summary.json")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if out of date")
    args = parser.parse_args(argv)
    if not args.summary.exists():
        print(f"{args.summary} does not exist: run `make notebooks` first", file=sys.stderr)
        return 2
    summary = json.loads(args.summary.read_text())
    if "failure" in summary:
        print(f"{args.summary} is from a failed run; not used", file=sys.stderr)
        return 2
    before = args.readme.read_text()
    try:
        after = update(before, summary)
    except KeyError as err:
        print(f"error: {err.args[0]}", file=sys.stderr)
        return 2
    ran = ", ".join(sorted(summary)) or "none"
    if after == before:
        print(f"README.md is up to date with {args.summary} (notebooks: {ran})")
        return 0
    if args.check:
        print(f"README.md differs from {args.summary}: run `make readme`", file=sys.stderr)
        return 1
    args.readme.write_text(after)
    print(f"README.md result tables regenerated from {args.summary} (notebooks: {ran})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

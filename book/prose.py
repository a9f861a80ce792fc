r"""Numbers typed into the notebooks' prose: the count the course drives to zero.

A number a reader sees in a markdown cell should come from a cell's output, printed by code, so it
cannot disagree with the run beside it. This module finds the numbers that were typed instead:
decimals (``0.38``), percentages (``75 %``), durations (``15 seconds``) and ratios (``3x``; not a
shape such as ``3 x 3``), in the
text of markdown cells outside math (``$...$``), code spans and fenced code, link targets and HTML
comments. Integers alone (``10 epochs``, ``K=10``) are settings, not results, and are not counted.
Constants of a method are written as math, which marks them as definitions rather than results: a
confidence level (``$95\%$``), a protocol's share (``$20\%$ of the films``), a significance
threshold, an exercise's inputs. Published figures of other libraries are cited in a code cell,
typed once beside the source and set next to this kit's numbers. Parameter values are code
(``learning_rate=0.005``). So every number the prose counts is a result, and there should be none.

    python -m book.prose [NOTEBOOK ...]      # each notebook's count, then the total; -v lists them
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from reclib.run_notebooks import find_notebooks

__all__ = ["typed_numbers"]

_HIDDEN = [re.compile(p, re.S) for p in (r"```.*?```", r"<!--.*?-->", r"\$\$.*?\$\$", r"\$[^$\n]*\$",
                                          r"`[^`\n]*`", r"\]\([^)\s]*\)")]
_NUMBER = re.compile(r"(?<![\w.@/])(?:\d+\.\d+|\d+(?:\.\d+)?\s?(?:%|(?:x\b|×)(?!\s?\d)|s\b|ms\b|seconds\b|minutes?\b))")


def typed_numbers(notebook: str | Path) -> list[str]:
    """Each typed number in the markdown cells of ``notebook``, with 30 characters either side."""
    found = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "markdown":
            continue
        text = cell.source
        for pattern in _HIDDEN:
            text = pattern.sub(" ", text)
        found += [text[max(0, m.start() - 30):m.end() + 30].replace("\n", " ") for m in _NUMBER.finditer(text)]
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m book.prose", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("-v", "--verbose", action="store_true", help="list every typed number")
    args = parser.parse_args(argv)
    paths = args.notebooks or find_notebooks()
    total = 0
    for path in paths:
        found = typed_numbers(path)
        total += len(found)
        print(f"{path.stem:32s} {len(found):4d}")
        if args.verbose:
            print("".join(f"    ...{excerpt}...\n" for excerpt in found), end="")
    print(f"{'all':32s} {total:4d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The parameters of a notebook, read from its cell tagged ``parameters``, and their checks.

The runner (:mod:`reclib.run_notebooks`) checks every ``-p NAME VALUE`` and every entry of
``notebooks/smoke.json`` here before any kernel starts:

- the name must be a parameter of the notebook (a top-level ``name = value`` of the cell);
- the value must have the type of the default: an int may be given for a float (it is passed as
  a float, also inside lists); str, bool, int, float and list do not mix otherwise; a list's
  items must match the default's items. A default of ``None`` or a non-literal accepts any
  value; ``None`` is accepted where the default is ``None`` or the comment mentions ``None``;
- where the parameter's comment declares a range, the value (each item of a list) must lie in
  it. A range is written in interval notation after ``in``, anywhere in the comment, with
  ``inf`` for no bound: ``k = 10  # in [1, inf): list length``, ``dropout = 0.1  # in [0, 1)``,
  ``n_users = None  # in [2, 943] or None``. ``None`` skips the range check.
"""

from __future__ import annotations

import ast
import io
import math
import os
import re
import tokenize
from pathlib import Path
from typing import Any

__all__ = ["ANY", "RunnerInputError", "check_parameters", "declared_range", "notebook_parameters"]

_BOUND = r"([-+]?(?:inf|\d[\d_]*(?:\.[\d_]*)?(?:e[-+]?\d+)?))"
#: a range declaration in a parameter's comment: ``in [low, high]`` with ( ) for open ends
RANGE = re.compile(rf"\bin ([\[(])\s*{_BOUND}\s*,\s*{_BOUND}\s*([\])])")


class RunnerInputError(ValueError):
    """Bad input to the runner (notebook, parameter name or value, smoke file, kernel); the
    command line reports it in one line, before any kernel starts."""


class _Any:
    """The default of a parameter whose type cannot be inferred: any value is accepted."""

    def __repr__(self) -> str:
        return "<not a literal>"


ANY = _Any()


def notebook_parameters(path: Path) -> dict[str, tuple[Any, str]]:
    """The parameters of notebook ``path``: ``{name: (default, comment)}`` in cell order.

    Read with :mod:`ast` from the code cell tagged ``parameters`` (``{}`` if there is none):
    every top-level ``name = value``; the default is the value as a Python literal, or
    :data:`ANY` when it is not one; the comment is the ``#`` comment on the line(s) of the
    assignment. (``papermill.inspect_notebook`` is not used: it silently skips assignments whose
    comment holds ``>=``.)
    """
    import nbformat

    try:
        nb = nbformat.read(os.fspath(path), as_version=4)
    except (OSError, ValueError) as err:
        raise RunnerInputError(f"cannot read notebook {path}: {err}") from None
    cells = [c for c in nb.cells
             if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if not cells:
        return {}
    source = cells[0].source
    try:
        tree = ast.parse(source)
        comments = {tok.start[0]: tok.string.lstrip("# ") for tok in
                    tokenize.generate_tokens(io.StringIO(source).readline)
                    if tok.type == tokenize.COMMENT}
    except (SyntaxError, tokenize.TokenError) as err:
        raise RunnerInputError(f"{Path(path).stem}: the parameters cell is not valid Python: "
                               f"{err}") from None
    found: dict[str, tuple[Any, str]] = {}
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) and node.value else [])
        for target in targets:
            if isinstance(target, ast.Name):
                try:
                    default = ast.literal_eval(node.value)  # type: ignore[arg-type]
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    default = ANY
                lines = range(node.lineno, (node.end_lineno or node.lineno) + 1)
                comment = " ".join(comments[line] for line in lines if line in comments)
                found[target.id] = (default, comment)
    return found


def _kind(value: Any) -> str:
    return "bool" if isinstance(value, bool) else type(value).__name__


def _conform(value: Any, default: Any, comment: str, where: str) -> Any:
    """``value`` if it has the type of ``default`` (an int becomes a float where a float is
    expected, also inside lists), else :class:`RunnerInputError` naming ``where``."""
    if default is ANY or default is None or (value is None and "None" in comment):
        return value
    expected = f"{where} expects {_kind(default)} (default {default!r})"
    if isinstance(default, float) and _kind(value) in ("int", "float"):
        return float(value)
    if _kind(value) != _kind(default):
        raise RunnerInputError(f"{expected}, got {value!r} ({_kind(value)})")
    kinds = {_kind(item) for item in default} if isinstance(default, list) else set()
    if (kinds and kinds <= {"int", "float"}) or len(kinds) == 1:
        item_kind = "float" if "float" in kinds else kinds.pop()
        converted = []
        for i, item in enumerate(value):
            if item_kind == "float" and _kind(item) == "int":
                item = float(item)
            if _kind(item) != item_kind:
                raise RunnerInputError(f"{where} expects a list of {item_kind} (default "
                                       f"{default!r}), got {value!r}: item {i} is {item!r} "
                                       f"({_kind(item)})")
            converted.append(item)
        return converted
    return value


def check_parameters(path: Path, parameters: dict[str, Any],
                     origin: str = "parameter") -> dict[str, Any]:
    """Check ``parameters`` against notebook ``path``'s parameters cell; return them with ints
    turned into floats where a float is expected. ``origin`` names the source in messages.

    Raises :class:`RunnerInputError` for an unknown name (listing the valid ones), a value
    whose type does not match the default's, or one outside the range the comment declares.
    """
    declared = notebook_parameters(path)
    stem = Path(path).stem
    checked = {}
    for name, value in parameters.items():
        if name not in declared:
            raise RunnerInputError(f"{origin} {name!r} is not a parameter of {stem}; valid names: "
                                   f"{', '.join(declared) or '(none: no cell tagged parameters)'}")
        default, comment = declared[name]
        where = f"{origin} {name!r} of {stem}"
        checked[name] = _conform(value, default, comment, where)
        _check_range(checked[name], comment, where)
    return checked


def declared_range(comment: str) -> tuple[str, float, float, bool, bool] | None:
    """The range a parameter's ``comment`` declares: ``(text, low, high, low_closed,
    high_closed)``, or ``None`` when it declares none (see the module doc)."""
    match = RANGE.search(comment)
    if match is None:
        return None
    left, low, high, right = match.groups()
    low_value, high_value = (float(bound.replace("_", "")) for bound in (low, high))
    return match.group(0)[3:], low_value, high_value, left == "[", right == "]"


def _check_range(value: Any, comment: str, where: str) -> None:
    """Raise :class:`RunnerInputError` if ``value`` (or an item of a list) lies outside the
    range ``comment`` declares; ``None``, bools and strings are not checked."""
    spec = declared_range(comment)
    if spec is None or value is None:
        return
    text, low, high, low_closed, high_closed = spec
    items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
    for i, item in items:
        if isinstance(item, bool) or not isinstance(item, (int, float)):
            continue
        inside = (low <= item if low_closed else low < item) and \
            (item <= high if high_closed else item < high)
        if not inside or (isinstance(item, float) and math.isnan(item)):
            culprit = f"got {value!r}" if i is None else f"got {value!r}: item {i} is {item!r}"
            raise RunnerInputError(f"{where} must lie in {text}, {culprit}")

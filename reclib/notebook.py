"""Record metrics from inside a notebook and read them back from the executed file.

``record("ndcg@10", 0.41)`` displays an output with reclib's own MIME type,
``application/vnd.reclib.metric+json``, carrying ``{"name": ..., "value": ...}`` (plus a
``text/plain`` line for people). After the notebook runs (papermill, nbclient, JupyterLab),
:func:`read_records` collects every such output with :mod:`nbformat`. It replaces scrapbook,
which is unmaintained and breaks on pandas 2.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Sequence
from typing import Any

import nbformat
import numpy as np
import pandas as pd

from reclib.checks import ParameterTypeError

__all__ = ["MIME_TYPE", "read_records", "record", "record_table"]

MIME_TYPE = "application/vnd.reclib.metric+json"
Scalar = int | float | str | bool


def _plain(name: str, value: Any) -> Scalar:
    """A JSON scalar from ``value`` (NumPy scalars included); reject NaN, inf and containers."""
    if isinstance(value, (bool, np.bool_, str)):
        return value if isinstance(value, str) else bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"cannot record a non-finite value for {name!r}: {value!r}")
        return value
    raise ParameterTypeError(f"record {name!r} takes a number, string or bool, got "
                             f"{type(value).__name__}: {value!r:.80}")


def record(name: str, value: Any) -> Scalar:
    """Display metric ``name`` = ``value`` as a reclib record and return the stored value.

    ``name`` is a non-empty string; ``value`` a finite number, a string or a bool (NumPy scalars
    are converted); NaN, ±inf, ``None`` and containers raise before anything is displayed.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a record needs a non-empty string name, got {name!r}")
    from IPython.display import display

    stored = _plain(name, value)
    shown = f"{stored:.4f}" if isinstance(stored, float) else str(stored)
    display({MIME_TYPE: {"name": name, "value": stored}, "text/plain": f"{name} = {shown}"},
            raw=True)
    return stored


def record_table(table: pd.DataFrame, prefix: str, metrics: Sequence[str], k: int | None = None,
                 label: Callable[[str], str] = str) -> int:
    """Record ``table.loc[row, metric]`` as ``"{prefix}.{label(row)}.{metric}@{k}"`` (``@{k}``
    only when ``k`` is given) for every row and each of ``metrics``; returns how many.

    The results table itself is what the reader sees, so the records are displayed without their
    text lines. Every value is checked as in :func:`record` before any is displayed.
    """
    if not isinstance(table, pd.DataFrame):
        raise ParameterTypeError(f"record_table takes a DataFrame, got {type(table).__name__}")
    missing = [m for m in metrics if m not in table.columns]
    if missing:
        raise ValueError(f"record_table: column {missing[0]!r} is missing; the table has {list(table.columns)}")
    suffix = "" if k is None else f"@{k}"
    names = {(row, m): f"{prefix}.{label(row)}.{m}{suffix}" for row in table.index for m in metrics}
    values = {key: _plain(name, table.loc[key]) for key, name in names.items()}
    from IPython.display import display

    for key, name in names.items():
        display({MIME_TYPE: {"name": name, "value": values[key]}, "text/plain": ""}, raw=True)
    return len(names)


def read_records(notebook: str | os.PathLike[str] | nbformat.NotebookNode) -> dict[str, Scalar]:
    """Every metric recorded in an executed notebook, in order (a later record of a name wins)."""
    nb = notebook if isinstance(notebook, nbformat.NotebookNode) else nbformat.read(
        os.fspath(notebook), as_version=4)
    records: dict[str, Scalar] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(MIME_TYPE)
            if payload is not None:
                records[payload["name"]] = payload["value"]
    return records

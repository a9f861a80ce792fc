"""Record metrics from inside a notebook and read them back from the executed file.

``record("ndcg@10", 0.41)`` displays an output with reclib's own MIME type,
``application/vnd.reclib.metric+json``, carrying ``{"name": ..., "value": ...}`` and an empty
``text/plain`` part, so nothing shows in the notebook; :func:`show_records`, called in a
notebook's last cell, displays one table of everything recorded so far. After the notebook runs
(papermill, nbclient, JupyterLab), :func:`read_records` collects every record with
:mod:`nbformat`. It replaces scrapbook, which is unmaintained and breaks on pandas 2.

``record_parameter("example_user", 6)`` records, the same way under its own MIME type
(:data:`PARAMETER_MIME_TYPE`, so it is never counted as a metric), the value a notebook actually
used for a parameter when that is not the value it was given (a user not in a subsampled split,
say); :func:`read_parameters` reads them back and the runner's summary shows them instead of the
requested values.
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

__all__ = ["MIME_TYPE", "PARAMETER_MIME_TYPE", "read_parameters", "read_records", "record",
           "record_parameter", "record_table", "show_records"]

MIME_TYPE = "application/vnd.reclib.metric+json"
PARAMETER_MIME_TYPE = "application/vnd.reclib.parameter+json"
Scalar = int | float | str | bool
_RECORDED: dict[str, Scalar] = {}   # this kernel's records, in order, for show_records


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


def _display(records: dict[str, Scalar]) -> None:
    """Display each record as a MIME bundle with an empty text part and remember it."""
    from IPython.display import display

    for name, value in records.items():
        display({MIME_TYPE: {"name": name, "value": value}, "text/plain": ""}, raw=True)
        _RECORDED.pop(name, None)   # a name recorded again moves to the end, as in read_records
        _RECORDED[name] = value


def record(name: str, value: Any) -> None:
    """Record metric ``name`` = ``value``: a machine-readable output that shows nothing (see
    :func:`show_records` for the table a reader sees).

    ``name`` is a non-empty string; ``value`` a finite number, a string or a bool (NumPy scalars
    are converted); NaN, ±inf, ``None`` and containers raise before anything is displayed.
    Returns ``None``, so a ``record`` on a cell's last line leaves no stray value behind.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a record needs a non-empty string name, got {name!r}")
    _display({name: _plain(name, value)})


def record_table(table: pd.DataFrame, prefix: str, metrics: Sequence[str], k: int | None = None,
                 label: Callable[[str], str] = str) -> None:
    """Record ``table.loc[row, metric]`` as ``"{prefix}.{label(row)}.{metric}@{k}"`` (``@{k}``
    only when ``k`` is given) for every row and each of ``metrics``.

    Every value is checked as in :func:`record` before any is displayed; returns ``None``.
    """
    if not isinstance(table, pd.DataFrame):
        raise ParameterTypeError(f"record_table takes a DataFrame, got {type(table).__name__}")
    missing = [m for m in metrics if m not in table.columns]
    if missing:
        raise ValueError(f"record_table: column {missing[0]!r} is missing; the table has {list(table.columns)}")
    suffix = "" if k is None else f"@{k}"
    names = {(row, m): f"{prefix}.{label(row)}.{m}{suffix}" for row in table.index for m in metrics}
    _display({name: _plain(name, table.loc[key]) for key, name in names.items()})


def show_records() -> pd.DataFrame:
    """One table of every metric recorded in this kernel so far (a later record of a name wins),
    indexed by name with a ``value`` column of text (floats to 4 decimals, as the summary shows
    them); call it in a notebook's last cell."""
    shown = {name: f"{value:.4f}" if isinstance(value, float) else str(value)
             for name, value in _RECORDED.items()}
    frame = pd.DataFrame({"value": pd.Series(shown, dtype=object)})
    frame.index.name = "recorded metric"
    return frame


def record_parameter(name: str, value: Any) -> None:
    """Record that the notebook used ``value`` for its parameter ``name`` (checked as in
    :func:`record`); shows nothing and is not a metric (:func:`show_records` leaves it out)."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"record_parameter needs a parameter name, got {name!r}")
    from IPython.display import display

    display({PARAMETER_MIME_TYPE: {"name": name, "value": _plain(name, value)}, "text/plain": ""},
            raw=True)


def _read(notebook: str | os.PathLike[str] | nbformat.NotebookNode,
          mime_type: str) -> dict[str, Scalar]:
    nb = notebook if isinstance(notebook, nbformat.NotebookNode) else nbformat.read(
        os.fspath(notebook), as_version=4)
    records: dict[str, Scalar] = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            payload = output.get("data", {}).get(mime_type)
            if payload is not None:
                records[payload["name"]] = payload["value"]
    return records


def read_records(notebook: str | os.PathLike[str] | nbformat.NotebookNode) -> dict[str, Scalar]:
    """Every metric recorded in an executed notebook, in order (a later record of a name wins)."""
    return _read(notebook, MIME_TYPE)


def read_parameters(notebook: str | os.PathLike[str] | nbformat.NotebookNode) -> dict[str, Scalar]:
    """The parameter values an executed notebook recorded with :func:`record_parameter`."""
    return _read(notebook, PARAMETER_MIME_TYPE)

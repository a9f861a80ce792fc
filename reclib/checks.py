"""Argument checks shared by every stage of reclib: each raises before any work starts and names
the parameter (or column) and the value it rejected.

Numbers are checked for type first (a string, ``None`` or a bool is not a number), then for
finiteness (NaN and ±inf are rejected unless a check says otherwise), then for range::

    >>> check_positive(reg=0.1)
    >>> check_positive(reg=float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: reg must be a finite number in (0, inf), got nan

The module depends on NumPy and pandas only, so it can be copied on its own.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

__all__ = ["GROWTH_LIMIT", "ParameterTypeError", "check_bool", "check_choice", "check_distinct_rows", "check_divergence", "diverged", "check_finite_array", "check_fraction", "check_in_range", "check_indices", "check_monitor", "monitored_value",
           "check_non_negative", "check_non_negative_int", "check_positive", "check_positive_int",
           "check_probability", "check_validate_function", "require_columns"]


class ParameterTypeError(TypeError, ValueError):
    """A value of the wrong type; both a ``TypeError`` and a ``ValueError`` (as in scikit-learn),
    so callers catching either see it."""


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: object) -> bool:
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_)))


def check_in_range(name: str, value: object, low: float | None = None, high: float | None = None,
                   low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    """Return ``value`` as a float if it is a finite real number in the given range, else raise.

    :class:`ParameterTypeError` for a value that is not a real number (strings, ``None``, bools),
    ``ValueError`` for NaN, ±inf or a value outside ``[low, high]`` (ends open unless
    ``*_inclusive``).
    """
    left = "(-inf" if low is None else f"{'[' if low_inclusive else '('}{low:g}"
    right = "inf)" if high is None else f"{high:g}{']' if high_inclusive else ')'}"
    bounds = f"{left}, {right}"
    if not _is_real(value):
        raise ParameterTypeError(f"{name} must be a real number in {bounds}, got {value!r} "
                        f"({type(value).__name__})")
    number = float(value)  # type: ignore[arg-type]
    too_low = low is not None and (number < low or (not low_inclusive and number == low))
    too_high = high is not None and (number > high or (not high_inclusive and number == high))
    if not math.isfinite(number) or too_low or too_high:
        raise ValueError(f"{name} must be a finite number in {bounds}, got {value!r}")
    return number


def check_positive(**values: object) -> None:
    """Each value must be a finite real number > 0."""
    for name, value in values.items():
        check_in_range(name, value, low=0.0, low_inclusive=False)


def check_non_negative(**values: object) -> None:
    """Each value must be a finite real number >= 0."""
    for name, value in values.items():
        check_in_range(name, value, low=0.0)


def check_fraction(**values: object) -> None:
    """Each value must lie strictly between 0 and 1 (a split share)."""
    for name, value in values.items():
        check_in_range(name, value, 0.0, 1.0, low_inclusive=False, high_inclusive=False)


def check_probability(**values: object) -> None:
    """Each value must lie in [0, 1]."""
    for name, value in values.items():
        check_in_range(name, value, 0.0, 1.0)


def check_bool(**values: object) -> None:
    """Each value must be ``True`` or ``False`` (a switch: ``0``, ``1`` and ``"yes"`` are rejected)."""
    for name, value in values.items():
        if not isinstance(value, (bool, np.bool_)):
            raise ParameterTypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")


def check_positive_int(**values: object) -> None:
    """Each value must be an integer >= 1 (``True`` and ``2.0`` are rejected)."""
    for name, value in values.items():
        if not _is_int(value):
            raise ParameterTypeError(f"{name} must be a positive integer, got {value!r} ({type(value).__name__})")
        if value < 1:  # type: ignore[operator]
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def check_non_negative_int(**values: object) -> None:
    """Each value must be an integer >= 0."""
    for name, value in values.items():
        if not _is_int(value):
            raise ParameterTypeError(f"{name} must be a non-negative integer, got {value!r} "
                            f"({type(value).__name__})")
        if value < 0:  # type: ignore[operator]
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def check_choice(name: str, value: object, choices: Iterable[object]) -> None:
    """``value`` must be one of ``choices``."""
    options = list(choices)
    if value not in options:
        raise ValueError(f"{name}={value!r}: expected one of {options}")


def check_verbose(verbose: object) -> None:
    """``verbose`` of every model and long-running function: 0 (silent) or 1 or 2 (show progress;
    the Keras models pass it to ``Model.fit``, where 1 is a progress bar and 2 one line per epoch,
    and also take "auto"; elsewhere 1 and 2 both show a progress bar). ``False``/``True`` are 0/1."""
    check_choice("verbose", verbose, (0, 1, 2))


def check_finite_array(name: str, values: object) -> np.ndarray:
    """Return ``values`` as a float64 array; raise if it is not numeric or holds NaN or ±inf."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ParameterTypeError(f"{name} must be numeric: {err}") from None
    bad = ~np.isfinite(array)
    if bad.any():
        first = np.unravel_index(int(np.argmax(bad)), array.shape) if array.ndim else ()
        raise ValueError(f"{name} holds {int(bad.sum())} non-finite value(s) (NaN or inf), "
                         f"first at index {tuple(int(i) for i in first)}: {array[first]!r}")
    return array


def check_indices(name: str, values: object, n: int, ndim: int | None = None) -> np.ndarray:
    """Return ``values`` as an int64 array of indices in ``[0, n)``, else raise naming ``name``.

    The one check for every function that takes user or item *indices* (rows or columns of a
    matrix): a float array is accepted only where every value is a whole number (``2.0``, not
    ``2.5``), so nothing is truncated; a negative index is refused rather than read from the end;
    ``ndim`` (optional) is the required number of dimensions. The message names the first
    offending value and its position.
    """
    array = np.asarray(values)
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array of indices, got shape {array.shape}")
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        fractional = ~np.isfinite(array) | (array != np.round(array))
        if fractional.any():
            first = np.unravel_index(int(np.argmax(fractional)), array.shape)
            raise ValueError(f"{name} must hold integer indices, got {array[first].item()!r} at position "
                             f"{tuple(int(i) for i in first)}")
    elif array.dtype.kind not in "iu":
        raise ParameterTypeError(f"{name} must be integer indices in [0, {n}), got dtype "
                                 f"{array.dtype} (raw ids? encode them to indices first)")
    outside = (array < 0) | (array >= n)
    if outside.any():
        first = np.unravel_index(int(np.argmax(outside)), array.shape)
        raise ValueError(f"{name} must be indices in [0, {n}), got {array[first].item()!r} at position "
                         f"{tuple(int(i) for i in first)} ({int(outside.sum())} out of range)")
    return array.astype(np.int64)


def check_distinct_rows(name: str, values: np.ndarray) -> None:
    """Raise ``ValueError`` if a row of the 2-D ``values`` repeats an entry (a slate showing one item
    twice), naming the first such row and value."""
    ordered = np.sort(values, axis=1)
    repeated = ordered[:, 1:] == ordered[:, :-1]
    if repeated.any():
        row, col = np.unravel_index(int(np.argmax(repeated)), repeated.shape)
        raise ValueError(f"{name} row {int(row)} holds item {ordered[row, col].item()!r} more than once")


def check_monitor(monitor: object) -> None:
    """``monitor``, the validation metric early stopping follows, must be a non-empty name."""
    if not isinstance(monitor, str) or not monitor:
        raise ParameterTypeError(f"monitor must be a metric name (a non-empty string), got {monitor!r}")


def monitored_value(metrics: dict[str, float], monitor: str, epoch: int) -> float:
    """The ``monitor`` value of one epoch's (1-based) validation ``metrics``, the number early
    stopping follows; ``ValueError`` when it is missing or not finite."""
    if monitor not in metrics:
        raise ValueError(f"validate() returned {sorted(metrics)}, without monitor={monitor!r}")
    value = float(metrics[monitor])
    if not math.isfinite(value):
        raise ValueError(f"validate() returned {monitor}={value} after epoch {epoch}: the monitored "
                         "metric must be finite")
    return value


def require_columns(df: pd.DataFrame, *columns: str) -> None:
    """Raise ``ValueError`` naming the first of ``columns`` missing from ``df``."""
    if not isinstance(df, pd.DataFrame):
        raise ParameterTypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"column {missing[0]!r} is missing; the frame has {list(df.columns)}")


# -- diverging fits ---------------------------------------------------------------------------
# The training loops (BiasedMF, BPR, ImplicitALS, the Keras recommenders) call check_divergence
# once per epoch or sweep with the loss and the parameter arrays: one vectorised isfinite, never a
# per-sample test. A fit has diverged, raising FloatingPointError, when the loss or a parameter
# holds NaN or inf, or when the loss exceeds GROWTH_LIMIT times max(its starting value, 1): a sane
# step stays far below that, while a step that is too large multiplies the loss by orders of
# magnitude per epoch long before it overflows.

#: a loss above this multiple of its starting value counts as diverged
GROWTH_LIMIT = 1e4


def diverged(model: str, step_name: str, step: int, n_steps: int | None, what: str,
             culprits: dict[str, object], advice: str) -> FloatingPointError:
    """The error for a fit that went wrong at ``step`` (1-based) of ``n_steps`` (if known).

    ``what`` says what went wrong (``"the training loss became nan"``), ``culprits`` maps the
    hyper-parameters that cause it to their values, ``advice`` says what to change.
    """
    named = ", ".join(f"{name}={value!r}" for name, value in culprits.items())
    of = "" if n_steps is None else f" of {n_steps}"
    return FloatingPointError(f"{model} diverged at {step_name} {step}{of} with {named}: {what}; "
                              f"{advice}")


def check_divergence(model: str, step_name: str, step: int, n_steps: int, loss: float,
                     start_loss: float, culprits: dict[str, object], advice: str,
                     **params: np.ndarray) -> None:
    """Raise :func:`diverged` if ``loss`` or any array in ``params`` is non-finite, or if ``loss``
    grew past :data:`GROWTH_LIMIT` times ``max(start_loss, 1)`` (module doc); ``params`` are named in
    the message (``user_factors=...``)."""
    if not math.isfinite(loss):
        raise diverged(model, step_name, step, n_steps, f"the training loss became {loss}",
                       culprits, advice)
    for name, values in params.items():
        bad = ~np.isfinite(values)
        if bad.any():
            raise diverged(model, step_name, step, n_steps,
                           f"{int(bad.sum())} of {bad.size} values of {name} became NaN or inf",
                           culprits, advice)
    if loss > GROWTH_LIMIT * max(start_loss, 1.0):
        raise diverged(model, step_name, step, n_steps,
                       f"the training loss grew from {start_loss:.4g} to {loss:.4g} (more than "
                       f"{GROWTH_LIMIT:g} times its starting value)", culprits, advice)


def check_validate_function(validate: object) -> None:
    """``validate`` must be ``None`` or a function ``model -> {metric: value}``."""
    if validate is not None and not callable(validate):
        raise ParameterTypeError(f"validate must be a function model -> dict of metrics, or None; "
                                 f"got {type(validate).__name__}")

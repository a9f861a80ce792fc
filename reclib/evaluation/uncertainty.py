r"""Uncertainty of evaluation results: bootstrap intervals over users, paired tests, Holm.

A metric reported for a model is the mean of per-user values (``result.per_user`` of a protocol's
:class:`~reclib.evaluation.EvaluationResult`). Another sample of users would give another mean;
the *percentile bootstrap* estimates how much: draw ``n`` users with replacement from the ``n``
evaluated ones, take the mean, repeat ``n_boot`` times, and report the ``(1 - confidence) / 2``
and ``(1 + confidence) / 2`` quantiles of those means::

    bootstrap_interval(result.per_user)            # metric -> mean, low, high
    paired_difference(a.per_user["ndcg"], b.per_user["ndcg"])  # mean_diff, low, high, p_value
    holm([0.01, 0.04, 0.03])                       # adjusted p-values: [0.03, 0.06, 0.06]

The resampling is vectorised: each replicate is a row of resample *counts* ``w`` (how often each
user was drawn; ``w.sum() == n``) and the replicate means are ``W @ X / n`` for a block of
replicates at a time, so memory stays about ``_BLOCK_CELLS`` numbers whatever ``n_boot`` is.
The same ``random_state`` gives the same counts, so two models bootstrapped with one seed see the same
user samples. Two models are compared on the *paired* per-user differences (the users are the
same), which is much tighter than comparing two separate intervals.

Pairing: the helpers that take two inputs row by row (:func:`paired_difference`,
:func:`bootstrap_ratio`, :func:`bootstrap_auc`, :func:`paired_auc_difference`) pair two pandas
inputs (Series or one-column DataFrames) by their index, the user (or row) ids, in the order of the first; differing id sets
raise ``ValueError``. Anything else (NumPy arrays, lists, or one pandas input beside an array)
is paired by position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from reclib.checks import (ParameterTypeError, check_fraction, check_non_negative_int,
                           check_positive_int)

__all__ = ["bootstrap_auc", "bootstrap_interval", "bootstrap_ratio", "holm", "paired_auc_difference",
           "paired_difference"]

#: resample counts held in memory at once (replicates x rows)
_BLOCK_CELLS = 2_000_000


def _frame(name: str, values: object) -> pd.DataFrame:
    """``values`` (1-D array, Series or DataFrame of numbers) as a float DataFrame with at least
    two rows; NaN or inf raise naming the column."""
    if isinstance(values, pd.DataFrame):
        frame = values
    elif isinstance(values, pd.Series):
        frame = values.to_frame("value" if values.name is None else values.name)
    else:
        array = np.asarray(values)
        if array.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one value per user) or a DataFrame (users x "
                             f"metrics), got shape {array.shape}")
        frame = pd.DataFrame({"value": array})
    if frame.shape[1] == 0 or len(frame) < 2:
        raise ValueError(f"{name} must hold at least two rows (users) and one column, "
                         f"got shape {frame.shape}")
    for column in frame.columns:
        if frame[column].dtype.kind not in "biuf":
            raise ParameterTypeError(f"{name} column {column!r} must be numeric, "
                                     f"got dtype {frame[column].dtype}")
        data = frame[column].to_numpy(np.float64)
        bad = ~np.isfinite(data)
        if bad.any():
            raise ValueError(f"{name} column {column!r} holds {int(bad.sum())} NaN or inf "
                             f"value(s), first at row {frame.index[bad][0]!r}; drop or fill "
                             f"those users before bootstrapping")
    return frame.astype(np.float64)


def _column(name: str, values: object) -> np.ndarray:
    """``values`` as a float array of one column (see :func:`_frame`); a DataFrame with several
    columns raises naming them rather than one being picked silently."""
    frame = _frame(name, values)
    if frame.shape[1] != 1:
        raise ValueError(f"{name} must hold one column of values, got a DataFrame with "
                         f"columns {list(frame.columns)}; pass one column, e.g. "
                         f"{name}[{frame.columns[0]!r}]")
    return frame.iloc[:, 0].to_numpy()


def _paired(names: tuple[str, str], a: object, b: object,
            rows: str = "users") -> tuple[np.ndarray, np.ndarray]:
    """Two inputs of one value per user (``rows``) as equal-length float arrays, row ``i`` of
    both for the same user.

    Two pandas inputs (Series or one-column DataFrames) are paired by index, in ``a``'s order:
    each index must be unique (unless both are identical) and both must hold the same ids, else
    ``ValueError`` says how many ids are only in one of them and the first. Anything else is
    paired by position and must have equal length.
    """
    name_a, name_b = names
    if isinstance(a, (pd.Series, pd.DataFrame)) and isinstance(b, (pd.Series, pd.DataFrame)) \
            and not a.index.equals(b.index):
        for name, values in ((name_a, a), (name_b, b)):
            repeated = values.index[values.index.duplicated()]
            if len(repeated):
                raise ValueError(f"{name} must hold one value per {rows[:-1]} (index id); "
                                 f"{len(repeated)} id(s) repeat, first "
                                 f"{repeated[:1].tolist()[0]!r}")
        only_a = a.index.difference(b.index, sort=False)
        only_b = b.index.difference(a.index, sort=False)
        if len(only_a) or len(only_b):
            first = [f"first {ids[:1].tolist()[0]!r}" if len(ids) else "none"
                     for ids in (only_a, only_b)]
            raise ValueError(f"{name_a} and {name_b} must cover the same {rows} (paired by "
                             f"index): {len(only_a)} only in {name_a} ({first[0]}), "
                             f"{len(only_b)} only in {name_b} ({first[1]})")
        b = b.reindex(a.index)
    a_values, b_values = _column(name_a, a), _column(name_b, b)
    if a_values.shape != b_values.shape:
        raise ValueError(f"{name_a} and {name_b} must hold one value per {rows[:-1]} for the same "
                         f"{rows} (paired by position), got lengths {len(a_values)} and "
                         f"{len(b_values)}")
    return a_values, b_values


def _check(n_boot: object, confidence: object, random_state: object) -> None:
    check_positive_int(n_boot=n_boot)
    check_fraction(confidence=confidence)
    check_non_negative_int(random_state=random_state)


def _resample_counts(n_rows: int, n_boot: int, random_state: int,
                     width: int | None = None) -> Iterator[np.ndarray]:
    """Blocks of bootstrap resample counts, (block, n_rows) float arrays whose rows each sum to
    ``n_rows`` (multinomial with equal probabilities), ``n_boot`` rows in all; deterministic in
    ``random_state``. ``width``: the columns each replicate will be spread to downstream (rows of
    the groups drawn), which sets the block size instead of ``n_rows``."""
    rng = np.random.default_rng(random_state)
    block = max(1, _BLOCK_CELLS // max(n_rows, width or 0))
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        draws = rng.integers(0, n_rows, size=(size, n_rows))
        offsets = (np.arange(size) * n_rows)[:, None]
        counts = np.bincount((draws + offsets).ravel(), minlength=size * n_rows)
        yield counts.reshape(size, n_rows).astype(np.float64)


def _group_codes(groups: object, labels: object, n_rows: int) -> np.ndarray:
    """Each row's group as a code in ``0 .. n_groups - 1`` (groups sorted), for a bootstrap that
    resamples whole groups. A pandas ``groups`` beside pandas ``labels`` is aligned by index."""
    if isinstance(groups, pd.Series) and isinstance(labels, (pd.Series, pd.DataFrame)) \
            and not groups.index.equals(labels.index):
        if len(groups) != len(labels) or not groups.index.isin(labels.index).all():
            raise ValueError("groups and labels must cover the same rows (paired by index)")
        groups = groups.reindex(labels.index)
    values = np.asarray(groups)
    if values.shape != (n_rows,):
        raise ValueError(f"groups must hold one group id per row ({n_rows} rows), got shape {values.shape}")
    missing = pd.isna(values)
    if missing.any():
        raise ValueError(f"groups holds {int(missing.sum())} missing id(s), first at row "
                         f"{int(np.flatnonzero(missing)[0])}")
    codes, uniques = pd.factorize(values, sort=True)
    if len(uniques) < 2:
        raise ValueError(f"groups must name at least two groups to resample, got {len(uniques)}")
    return codes


def _row_counts(n_rows: int, codes: np.ndarray | None, n_boot: int,
                random_state: int) -> Iterator[np.ndarray]:
    """Resample counts per row, (block, n_rows): of the rows themselves (``codes`` None), or of
    whole groups, each row weighted by how often its group was drawn."""
    if codes is None:
        yield from _resample_counts(n_rows, n_boot, random_state)
        return
    for counts in _resample_counts(int(codes.max()) + 1, n_boot, random_state, width=n_rows):
        yield counts[:, codes]


def _quantiles(replicates: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail], axis=0)
    return low, high


def bootstrap_interval(values: object, n_boot: int = 1000, confidence: float = 0.95,
                       random_state: int = 42) -> pd.DataFrame:
    """Percentile-bootstrap confidence intervals of column means, resampling rows (users).

    Parameters
    ----------
    - values: per-user (or per-row) values: a 1-D array or Series (one metric), or a DataFrame
      (rows = users, columns = metrics, e.g. ``result.per_user``); numbers only, at least two
      rows. NaN or inf raise ``ValueError`` naming the column.
    - n_boot: number of bootstrap replicates, a positive int.
    - confidence: coverage of the interval, in (0, 1).
    - random_state: non-negative int; the same seed resamples the same users.

    Returns a DataFrame with one row per metric (index: the column names; ``"value"`` for an
    array, the Series name for a named Series) and columns ``mean`` (the mean of the values
    themselves, not of the replicates), ``low`` and ``high`` (the quantiles of the replicate
    means).
    """
    _check(n_boot, confidence, random_state)
    frame = _frame("values", values)
    data = frame.to_numpy()
    n = len(data)
    replicates = np.concatenate([counts @ data / n for counts in _resample_counts(n, n_boot, random_state)])
    low, high = _quantiles(replicates, confidence)
    return pd.DataFrame({"mean": data.mean(axis=0), "low": low, "high": high},
                        index=pd.Index(frame.columns, name="metric"))


def bootstrap_ratio(numerator: object, denominator: object, n_boot: int = 1000,
                    confidence: float = 0.95, random_state: int = 42, sqrt: bool = False) -> pd.Series:
    """Interval of a ratio of sums over users, ``sum(numerator) / sum(denominator)``, resampling
    users: the form of metrics that are not means of per-user values, e.g. P2's RMSE
    (``sqrt(sum squared_error / sum n)``, with ``sqrt=True``) and MAE, or P4's log loss.

    ``numerator``, ``denominator``: one finite value per user each, paired as in the module doc
    (two Series by user id, arrays by position); the denominator non-negative with a positive
    sum. Returns a Series ``value, low, high``.
    """
    _check(n_boot, confidence, random_state)
    num, den = _paired(("numerator", "denominator"), numerator, denominator)
    if (den < 0).any() or den.sum() <= 0:
        raise ValueError("denominator must be non-negative with a positive sum (e.g. counts)")
    replicates = []
    for counts in _resample_counts(len(num), n_boot, random_state):
        total = counts @ den
        # a replicate that drew only zero-denominator users has no ratio; it is skipped
        with np.errstate(invalid="ignore", divide="ignore"):
            replicates.append(np.where(total > 0, (counts @ num) / total, np.nan))
    ratios = np.concatenate(replicates)
    ratios = ratios[np.isfinite(ratios)]
    value = num.sum() / den.sum()
    if sqrt:
        ratios, value = np.sqrt(ratios), np.sqrt(value)
    low, high = _quantiles(ratios, confidence)
    return pd.Series({"value": float(value), "low": float(low), "high": float(high)})


def _weighted_auc(labels: np.ndarray, scores: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The function ``weights (b, n) -> (b,)`` AUCs of ``scores`` against 0/1 ``labels`` with each
    row's weights as example counts: the weighted Mann-Whitney statistic (ties count 1/2, as in
    :func:`~reclib.evaluation.auc`), over the distinct scores, a block of replicates at once; NaN
    where a row weighs one class only."""
    _, group = np.unique(scores, return_inverse=True)     # distinct scores, ascending
    n_groups = int(group.max()) + 1

    def auc_of(weights: np.ndarray) -> np.ndarray:
        b = len(weights)
        keys = (group[None, :] + (np.arange(b) * n_groups)[:, None]).ravel()

        def per_group(mask: np.ndarray) -> np.ndarray:   # summed weight per (replicate, score)
            return np.bincount(keys, (weights * mask).ravel(), minlength=b * n_groups).reshape(b, n_groups)

        pos, neg = per_group(labels == 1.0), per_group(labels == 0.0)
        below = np.cumsum(neg, axis=1) - neg
        with np.errstate(invalid="ignore", divide="ignore"):
            return (pos * (below + 0.5 * neg)).sum(axis=1) / (pos.sum(axis=1) * neg.sum(axis=1))

    return auc_of


def _both_classes(replicates: np.ndarray) -> np.ndarray:
    """The finite AUC replicates (those that drew both classes); an error when there is none."""
    finite = replicates[np.isfinite(replicates)]
    if not len(finite):
        raise ValueError("every bootstrap replicate drew rows of one class only: too few rows of the rarer class")
    return finite


def _check_labels(labels: np.ndarray) -> None:
    if not np.isin(labels, (0.0, 1.0)).all() or labels.min() == labels.max():
        raise ValueError("labels must be 0/1 with both classes present")


def bootstrap_auc(labels: object, scores: object, n_boot: int = 1000, confidence: float = 0.95,
                  random_state: int = 42, groups: object = None) -> pd.Series:
    """Interval of the ROC AUC, resampling rows (examples): AUC is not a mean of per-row values.

    With ``groups`` (one id per row, e.g. the user of each rating) whole groups are resampled
    instead: a drawn user brings all of their rows. Rows of one user are correlated (the same
    taste, the same rating habits), so resampling rows treats them as independent and gives
    intervals that are too narrow; resampling users is the honest unit when the test rows are
    many per user.

    Each replicate's AUC is the weighted Mann-Whitney statistic with the resample counts as
    weights (ties count 1/2, as in :func:`~reclib.evaluation.auc`), computed for a block of
    replicates at once over the distinct scores. ``labels`` 0/1 and ``scores`` finite, one per
    row, paired as in the module doc (two Series by row index, arrays by position), both classes
    present. Returns a Series ``value, low, high`` (``value``: the AUC of the data itself).
    Replicates that drew a single class are skipped.
    """
    _check(n_boot, confidence, random_state)
    y, s = _paired(("labels", "scores"), labels, scores, rows="rows")
    _check_labels(y)
    codes = None if groups is None else _group_codes(groups, labels, len(y))
    auc_of = _weighted_auc(y, s)
    value = float(auc_of(np.ones((1, len(y))))[0])
    replicates = np.concatenate([auc_of(counts) for counts in _row_counts(len(y), codes, n_boot, random_state)])
    low, high = _quantiles(_both_classes(replicates), confidence)
    return pd.Series({"value": value, "low": float(low), "high": float(high)})


def paired_auc_difference(labels: object, scores_a: object, scores_b: object, n_boot: int = 1000,
                          confidence: float = 0.95, random_state: int = 42,
                          groups: object = None) -> dict[str, float]:
    """AUC(a) - AUC(b) of two models scored on the same rows, with a paired bootstrap interval:
    each replicate resamples the rows once and computes both AUCs on that sample (as
    :func:`bootstrap_auc`), so the rows' shared difficulty cancels. ``labels`` 0/1 (both classes),
    ``scores_a`` and ``scores_b`` finite, one per row, each paired with ``labels`` as in the module
    doc; ``groups`` as in :func:`bootstrap_auc` (resample users, not rows). Returns
    ``{"mean_diff", "low", "high"}`` (``mean_diff``: the difference on the data itself;
    replicates that drew one class only are skipped)."""
    _check(n_boot, confidence, random_state)
    y, a = _paired(("labels", "scores_a"), labels, scores_a, rows="rows")
    _, b = _paired(("labels", "scores_b"), labels, scores_b, rows="rows")     # both in labels' row order
    _check_labels(y)
    codes = None if groups is None else _group_codes(groups, labels, len(y))
    auc_a, auc_b = _weighted_auc(y, a), _weighted_auc(y, b)
    ones = np.ones((1, len(y)))
    value = float(auc_a(ones)[0] - auc_b(ones)[0])
    replicates = np.concatenate([auc_a(counts) - auc_b(counts)
                                 for counts in _row_counts(len(y), codes, n_boot, random_state)])
    low, high = _quantiles(_both_classes(replicates), confidence)
    return {"mean_diff": value, "low": float(low), "high": float(high)}


def paired_difference(a: object, b: object, n_boot: int = 1000, confidence: float = 0.95,
                      random_state: int = 42) -> dict[str, float]:
    """Compare two models on the same users: the mean of ``a - b`` with a paired bootstrap
    interval, and the two-sided Wilcoxon signed-rank p-value (:func:`scipy.stats.wilcoxon`,
    zero differences dropped; 1.0 when every difference is zero).

    ``a``, ``b``: per-user values of one metric. Two Series (or one-column DataFrames, e.g.
    ``result.per_user[["ndcg"]]``) are paired by index (user id), whatever their order; differing
    user sets raise ``ValueError`` naming how many users are only in each and the first of them.
    Plain arrays are paired by position (same user order, equal length).
    Returns ``{"mean_diff", "low", "high", "p_value"}``; an interval excluding 0 (or a small
    p-value) means the difference is unlikely to come from the choice of users alone.
    """
    _check(n_boot, confidence, random_state)
    a_values, b_values = _paired(("a", "b"), a, b)
    diff = a_values - b_values
    interval = bootstrap_interval(diff, n_boot, confidence, random_state).iloc[0]
    p_value = 1.0 if not diff.any() else float(wilcoxon(diff).pvalue)
    return {"mean_diff": float(diff.mean()), "low": float(interval["low"]),
            "high": float(interval["high"]), "p_value": p_value}


def holm(p_values: object) -> np.ndarray:
    r"""Holm-Bonferroni adjusted p-values, in the input order.

    With the ``m`` p-values sorted ascending, :math:`p_{(1)} \le \dots \le p_{(m)}`, the adjusted
    value is :math:`\tilde p_{(i)} = \min(1, \max_{j \le i} (m - j + 1)\, p_{(j)})`. Rejecting
    every hypothesis with :math:`\tilde p \le \alpha` keeps the chance of any false rejection
    (family-wise error) at most :math:`\alpha`. ``p_values``: 1-D, in [0, 1], non-empty.
    """
    p = np.asarray(p_values, dtype=np.float64) if not isinstance(p_values, str) else None
    if p is None or p.ndim != 1 or p.size == 0:
        raise ValueError(f"p_values must be a non-empty 1-D array of numbers, got {p_values!r:.80}")
    bad = ~np.isfinite(p) | (p < 0) | (p > 1)
    if bad.any():
        raise ValueError(f"p_values must lie in [0, 1]; {int(bad.sum())} do not, "
                         f"e.g. {p[bad][:5].tolist()}")
    order = np.argsort(p, kind="stable")
    m = p.size
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out

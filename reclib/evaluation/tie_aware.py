r"""Ranking metrics averaged over every order of tied scores, in closed form.

A model that gives several items the same score has not ordered them; any fixed tie rule (item
index, :func:`reclib.data.ties.tie_keys`) picks one order and the metric then depends on that
pick. :func:`tie_averaged_metrics` reports instead the **expectation over all orders of the tied
items, each equally likely** (McSherry & Najork, "Computing information retrieval performance
measures efficiently in the presence of tied scores", ECIR 2008), without enumerating orders.

Per user, let item :math:`i` have :math:`a_i` items scored strictly above it and :math:`g_i` items
(itself included) scored equal to it. Under a uniformly random order of the ties, :math:`i` takes
each of the positions :math:`a_i, \dots, a_i + g_i - 1` (0-based) with probability :math:`1/g_i`, so

- :math:`P(i \text{ in the top } k) = \mathrm{clip}(k - a_i, 0, g_i) / g_i`, which gives expected
  precision (the sum over relevant items, over :math:`k`) and recall (over :math:`n_{rel}`);
- the expected discounted gain of :math:`i` is :math:`(D(\min(a_i + g_i, k)) - D(\min(a_i, k))) / g_i`
  with :math:`D(m) = \sum_{p < m} 1/\log_2(p + 2)`, which gives expected NDCG (over the ideal DCG
  of :math:`\min(n_{rel}, k)` hits);
- hit rate and reciprocal rank depend on the *first* relevant item only. It lies in the highest
  scored tie group holding a relevant item: start :math:`a`, size :math:`g`, :math:`r` relevant
  items. The first of them is at offset :math:`j` in the group with probability
  :math:`\binom{g - 1 - j}{r - 1} / \binom{g}{r}`, so hit rate is
  :math:`\sum_{j < k - a} P(j)` and reciprocal rank :math:`\sum_{j < k - a} P(j) / (a + j + 1)`.

Without ties every probability is 0 or 1 and the values equal those of the fixed ranking
(:func:`~reclib.evaluation.evaluate_scores`). Items scored ``-inf`` are never recommended: they
contribute nothing, as in :func:`~reclib.base.top_k`'s callers. MAP is not averaged here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import gammaln
from scipy.stats import rankdata

from reclib.checks import ParameterTypeError, check_positive_int

__all__ = ["tie_averaged_metrics"]

METRICS = ("precision", "recall", "ndcg", "hit_rate", "mrr")


def _log_binomial(n: np.ndarray, r: np.ndarray) -> np.ndarray:
    """log C(n, r) for 0 <= r <= n (elementwise)."""
    return gammaln(n + 1.0) - gammaln(r + 1.0) - gammaln(n - r + 1.0)


def _first_hit(above: np.ndarray, tied: np.ndarray, relevant: np.ndarray, reachable: np.ndarray,
               k: int) -> tuple[np.ndarray, np.ndarray]:
    """Expected hit rate and reciprocal rank at ``k`` per row, from the first relevant tie group."""
    start = np.where(relevant & reachable, above, np.inf).min(axis=1)           # a of that group
    has = np.isfinite(start)
    start = np.where(has, start, 0.0)
    in_group = relevant & reachable & (above == start[:, None])
    r = in_group.sum(axis=1).astype(np.float64)                                 # relevant in group
    g = np.where(in_group, tied, 0).max(axis=1).astype(np.float64)              # group size
    hit_rate, reciprocal = np.zeros(len(start)), np.zeros(len(start))
    for j in range(k):                                   # offsets in the group; k is small
        valid = has & (j <= g - r) & (start + j < k)
        log_p = _log_binomial(np.maximum(g - 1 - j, 0), np.maximum(r - 1, 0)) - _log_binomial(g, r)
        p = np.where(valid, np.exp(np.where(valid, log_p, 0.0)), 0.0)
        hit_rate += p
        reciprocal += p / (start + j + 1)
    return hit_rate, reciprocal


def tie_averaged_metrics(scores: object, relevant: object, k: int = 10,
                         n_relevant: object | None = None) -> pd.DataFrame:
    """Per-user precision, recall, NDCG, hit rate and MRR at ``k``, each the expectation over all
    orders of tied scores (module docstring), for the users with at least one relevant item.

    Parameters
    ----------
    - scores: (n_users, n_items) array, finite or ``-inf`` (never recommended: mask training
      items this way); NaN and ``+inf`` raise ``ValueError`` naming the rows.
    - relevant: (n_users, n_items) sparse matrix or array; nonzero entries are the relevant items.
    - k: list length, a positive int.
    - n_relevant: (n_users,) sizes of the relevant sets, when they count items the score columns
      cannot reach; default the row counts of ``relevant``, and never below them.

    Returns a frame indexed by user row (the rows with ``n_relevant > 0``), one column per metric.
    """
    check_positive_int(k=k)
    try:
        values = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ParameterTypeError(f"scores must be a numeric (n_users, n_items) array: {err}") from None
    if values.ndim != 2 or 0 in values.shape:
        raise ValueError(f"scores must be a non-empty (n_users, n_items) array, got shape {values.shape}")
    bad = np.isnan(values).any(axis=1) | np.isposinf(values).any(axis=1)
    if bad.any():
        raise ValueError(f"scores hold NaN or +inf in {int(bad.sum())} row(s), first rows "
                         f"{np.flatnonzero(bad)[:5].tolist()}")
    relevant = sp.csr_matrix(relevant).astype(bool).toarray()
    if relevant.shape != values.shape:
        raise ValueError(f"relevant {relevant.shape} and scores {values.shape} must have the same shape")
    counts = relevant.sum(axis=1)
    n_rel = counts if n_relevant is None else np.asarray(n_relevant)
    if n_rel.shape != counts.shape or not np.issubdtype(n_rel.dtype, np.integer) or (n_rel < counts).any():
        raise ValueError(f"n_relevant must hold {len(counts)} integers, each at least its row's "
                         f"number of relevant items")
    rows = np.flatnonzero(n_rel > 0)
    values, relevant, n_rel = values[rows], relevant[rows], n_rel[rows].astype(np.float64)

    above = rankdata(-values, method="min", axis=1) - 1.0        # items scored strictly higher
    tied = rankdata(-values, method="max", axis=1) - above       # items scored equal, itself included
    reachable = np.isfinite(values)
    take = relevant & reachable
    in_top = np.where(take, np.clip(k - above, 0, tied) / tied, 0.0)
    cumulative = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    low, high = np.minimum(above, k).astype(int), np.minimum(above + tied, k).astype(int)
    gain = np.where(take, (cumulative[high] - cumulative[low]) / tied, 0.0)
    hit_rate, reciprocal = _first_hit(above, tied, relevant, reachable, k)
    ideal = cumulative[np.minimum(n_rel, k).astype(int)]
    return pd.DataFrame({"precision": in_top.sum(axis=1) / k, "recall": in_top.sum(axis=1) / n_rel,
                         "ndcg": gain.sum(axis=1) / ideal, "hit_rate": hit_rate, "mrr": reciprocal},
                        index=pd.Index(rows, name="user"))

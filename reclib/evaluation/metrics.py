r"""Metrics: rating error, ranking quality at K, classification, and beyond accuracy.

Ranking metrics take a boolean ``hits`` array of shape (n_users, K) — ``hits[u, r]`` is true when
the item at rank ``r`` (0-based) of user ``u``'s list is relevant — and ``n_relevant`` (n_users,),
the size of each user's relevant set. With :math:`h_{ur}` the hits and :math:`R_u` the relevant set:

- Precision@K :math:`= \frac1K\sum_r h_{ur}`; Recall@K :math:`= \frac{1}{|R_u|}\sum_r h_{ur}`
- NDCG@K (binary gains, log2 discount) :math:`= \sum_r \frac{h_{ur}}{\log_2(r+2)} \big/
  \sum_{r<\min(|R_u|,K)} \frac{1}{\log_2(r+2)}`
- MAP@K :math:`= \frac{1}{\min(|R_u|,K)}\sum_r h_{ur}\,\mathrm{Precision@}(r+1)`
- HitRate@K :math:`= [\sum_r h_{ur} > 0]`; MRR@K :math:`= 1/(\text{rank of the first hit})`, 0 if none.

Each returns the per-user values; average them for the usual figure.

Every metric checks its input first and raises naming the argument: ``hits`` must be booleans or
0/1 of shape (n_users, K) with K >= 1; ``n_relevant`` non-negative integers, one per user, and no
user may have more hits than relevant items; labels (``auc``, ``log_loss``) are 0/1; scores,
errors, probabilities and item statistics are finite (NaN and ±inf raise); item indices must lie
in the catalogue. Wrong types raise :class:`~reclib.checks.ParameterTypeError` (a ``TypeError``
and a ``ValueError``), wrong values ``ValueError``.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from reclib.checks import ParameterTypeError, check_finite_array, check_in_range, check_positive_int

__all__ = ["auc", "catalogue_coverage", "hit_rate_at_k", "intra_list_diversity", "log_loss",
           "mae", "map_at_k", "mrr_at_k", "ndcg_at_k", "novelty", "popularity_bias",
           "precision_at_k", "recall_at_k", "rmse"]

_SHOWN = 5  # offending values / rows quoted in an error message


# -- input checks (each raises naming the argument before any metric is computed) -------------
def _as_array(name: str, values: object) -> np.ndarray:
    """``values`` as an array; ragged or non-array input raises naming ``name``."""
    try:
        return np.asarray(values)
    except (TypeError, ValueError) as err:
        raise ParameterTypeError(f"{name} must be an array: {err}") from None


def _pair(y_true: object, y_pred: object,
          pred_name: str = "y_pred") -> tuple[np.ndarray, np.ndarray]:
    """Two finite, equal-length, non-empty 1-D float arrays."""
    a, b = check_finite_array("y_true", y_true), check_finite_array(pred_name, y_pred)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"y_true and {pred_name} must be equal-length non-empty 1-D arrays, "
                         f"got shapes {a.shape} and {b.shape}")
    return a, b


def _check_binary_labels(labels: np.ndarray) -> None:
    bad = (labels != 0) & (labels != 1)
    if bad.any():
        raise ValueError(f"y_true must hold 0/1 labels; {int(bad.sum())} of {labels.size} do not, "
                         f"e.g. {np.unique(labels[bad])[:_SHOWN].tolist()}")


def _hits(hits: object) -> np.ndarray:
    """A boolean (n_users, K) array with n_users >= 1 and K >= 1 from booleans or 0/1 numbers."""
    array = _as_array("hits", hits)
    if array.dtype != np.bool_:
        if array.dtype.kind not in "iuf":
            raise ParameterTypeError(f"hits must be a boolean or 0/1 array, "
                                     f"got dtype {array.dtype}")
        values = check_finite_array("hits", array)
        bad = (values != 0) & (values != 1)
        if bad.any():
            raise ValueError(f"hits must hold booleans or 0/1; {int(bad.sum())} value(s) do not, "
                             f"e.g. {np.unique(values[bad])[:_SHOWN].tolist()}")
        array = values.astype(bool)
    if array.ndim != 2 or 0 in array.shape:
        raise ValueError(f"hits must have shape (n_users, K) with n_users >= 1 and K >= 1, "
                         f"got {array.shape}")
    return array


def _counts(name: str, values: object, n_rows: int) -> np.ndarray:
    """Non-negative whole numbers of shape (n_rows,) as int64 (integral floats accepted)."""
    array = _as_array(name, values)
    if array.dtype.kind not in "iuf":
        raise ParameterTypeError(f"{name} must hold non-negative integers, got dtype {array.dtype}")
    numbers = check_finite_array(name, array)
    if numbers.shape != (n_rows,):
        raise ValueError(f"{name} must have shape ({n_rows},), one count per user, "
                         f"got {numbers.shape}")
    bad = (numbers < 0) | (numbers != np.floor(numbers))
    if bad.any():
        rows = np.flatnonzero(bad)[:_SHOWN]
        raise ValueError(f"{name} must hold non-negative integers; {int(bad.sum())} do not, "
                         f"e.g. rows {rows.tolist()}: {numbers[rows].tolist()}")
    return numbers.astype(np.int64)


def _ranking_inputs(hits: object, n_relevant: object) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``hits`` (bool) and ``n_relevant`` (int64); no user may have more hits than
    relevant items (that input cannot come from a real ranking)."""
    h = _hits(hits)
    n = _counts("n_relevant", n_relevant, h.shape[0])
    found = h.sum(axis=1)
    over = found > n
    if over.any():
        rows = np.flatnonzero(over)[:_SHOWN]
        raise ValueError(f"hits exceed n_relevant for {int(over.sum())} user row(s): rows "
                         f"{rows.tolist()} have {found[rows].tolist()} hits but n_relevant "
                         f"{n[rows].tolist()}; a user cannot hit more items than are relevant")
    return h, n


def _item_indices(name: str, values: object, n_items: int, ndim: int | None = None,
                  allow_padding: bool = False) -> np.ndarray:
    """Integer item indices in ``[0, n_items)`` (``-1`` also allowed with ``allow_padding``)."""
    array = _as_array(name, values)
    if array.dtype.kind not in "iu":
        raise ParameterTypeError(f"{name} must hold integer item indices, got dtype {array.dtype}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: no recommended item to measure")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {array.shape}")
    low = -1 if allow_padding else 0
    bad = (array < low) | (array >= n_items)
    if bad.any():
        raise ValueError(f"{name} holds {int(bad.sum())} item index(es) outside "
                         f"[{low}, {n_items}), "
                         f"e.g. {np.unique(array[bad])[:_SHOWN].tolist()}")
    return array


def _item_values(name: str, values: object, low: float = 0.0,
                 high: float | None = None) -> np.ndarray:
    """A finite, non-empty 1-D float array with values in ``[low, high]``."""
    array = check_finite_array(name, values)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array (n_items,), "
                         f"got shape {array.shape}")
    bad = (array < low) | (array > (np.inf if high is None else high))
    if bad.any():
        bounds = f"[{low:g}, {'inf)' if high is None else f'{high:g}]'}"
        raise ValueError(f"{name} must lie in {bounds}; {int(bad.sum())} value(s) do not, e.g. "
                         f"items {np.flatnonzero(bad)[:_SHOWN].tolist()}: "
                         f"{array[bad][:_SHOWN].tolist()}")
    return array


# -- rating error and classification -----------------------------------------------------------
def rmse(y_true: object, y_pred: object) -> float:
    """Root mean squared error of two finite 1-D arrays of equal length."""
    a, b = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def mae(y_true: object, y_pred: object) -> float:
    """Mean absolute error of two finite 1-D arrays of equal length."""
    a, b = _pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b)))


def auc(y_true: object, y_score: object) -> float:
    """Area under the ROC curve: P(score of a random positive > score of a random negative),
    ties counted 1/2 (the Mann-Whitney U statistic over mid-ranks).

    ``y_true`` holds 0/1 labels (both present), ``y_score`` finite scores of the same length.
    """
    labels, scores = _pair(y_true, y_score, "y_score")
    _check_binary_labels(labels)
    pos = labels > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("auc needs both positive and negative labels in y_true")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(y_true: object, y_prob: object, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy (nats) of 0/1 labels ``y_true`` and probabilities ``y_prob`` in
    [0, 1]; probabilities are clipped to ``[eps, 1 - eps]``, ``eps`` in (0, 0.5)."""
    check_in_range("eps", eps, 0.0, 0.5, low_inclusive=False, high_inclusive=False)
    labels, probs = _pair(y_true, y_prob, "y_prob")
    _check_binary_labels(labels)
    bad = (probs < 0) | (probs > 1)
    if bad.any():
        raise ValueError(f"y_prob must be probabilities in [0, 1]; {int(bad.sum())} value(s) are "
                         f"not, e.g. {np.unique(probs[bad])[:_SHOWN].tolist()}")
    probs = np.clip(probs, eps, 1 - eps)
    return float(-np.mean(labels * np.log(probs) + (1 - labels) * np.log1p(-probs)))


# -- ranking quality at K ----------------------------------------------------------------------
def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def precision_at_k(hits: object) -> np.ndarray:
    """Per-user precision at K (K = ``hits.shape[1]``); ``hits`` (n_users, K) booleans or 0/1."""
    h = _hits(hits)
    return h.sum(axis=1) / h.shape[1]


def recall_at_k(hits: object, n_relevant: object) -> np.ndarray:
    """Per-user recall at K; users with no relevant items get NaN.

    ``n_relevant`` (n_users,) non-negative integers, at least each user's number of hits.
    """
    h, n = _ranking_inputs(hits, n_relevant)
    n = n.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, h.sum(axis=1) / n, np.nan)


def ndcg_at_k(hits: object, n_relevant: object) -> np.ndarray:
    """Per-user binary NDCG at K with log2 discounts; NaN for users with no relevant items."""
    h, n = _ranking_inputs(hits, n_relevant)
    disc = _discounts(h.shape[1])
    ideal = np.concatenate([[0.0], np.cumsum(disc)])[np.minimum(n, h.shape[1])]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (h * disc).sum(axis=1) / ideal, np.nan)


def map_at_k(hits: object, n_relevant: object) -> np.ndarray:
    """Per-user average precision at K, normalised by ``min(|relevant|, K)``; NaN without relevant
    items."""
    h, n = _ranking_inputs(hits, n_relevant)
    precision_at_r = np.cumsum(h, axis=1) / np.arange(1, h.shape[1] + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (precision_at_r * h).sum(axis=1) / np.minimum(n, h.shape[1]), np.nan)


def hit_rate_at_k(hits: object) -> np.ndarray:
    """Per-user 1.0 if any of the top K is relevant, else 0.0."""
    return _hits(hits).any(axis=1).astype(np.float64)


def mrr_at_k(hits: object) -> np.ndarray:
    """Per-user reciprocal rank of the first relevant item in the top K (0 if none)."""
    h = _hits(hits)
    first = h.argmax(axis=1)
    return np.where(h.any(axis=1), 1.0 / (first + 1), 0.0)


# -- beyond accuracy ---------------------------------------------------------------------------
def catalogue_coverage(recommended: object, n_items: int) -> float:
    """Share of the catalogue (``n_items``, a positive int) recommended to at least one user.

    ``recommended``: integer item indices in ``[0, n_items)`` of any shape; ``-1`` marks an
    empty slot of a short list and is not counted.
    """
    check_positive_int(n_items=n_items)
    items = _item_indices("recommended", recommended, n_items, allow_padding=True)
    return float(np.unique(items[items >= 0]).size / n_items)


def novelty(recommended: object, item_popularity: object) -> float:
    r"""Mean self-information :math:`-\log_2 p_i` of the recommended items, in bits, where
    :math:`p_i` is the share of users who interacted with item ``i`` in training
    (``item_popularity``, shape (n_items,), finite values in [0, 1]; zeros count as the rarest
    seen). ``recommended``: integer item indices in ``[0, n_items)``, any shape."""
    pop = _item_values("item_popularity", item_popularity, 0.0, 1.0)
    recs = _item_indices("recommended", recommended, len(pop))
    floor = pop[pop > 0].min() if (pop > 0).any() else 1.0
    info = -np.log2(np.maximum(pop, floor))
    return float(info[recs].mean())


def intra_list_diversity(recommended: object, item_vectors: object) -> float:
    """Mean pairwise cosine distance (1 - cosine) between the items of each list, averaged over
    lists. ``recommended`` (n_users, K) item indices in ``[0, n_items)`` with K >= 2,
    ``item_vectors`` (n_items, d) finite features (a zero vector is at distance 1 from all)."""
    vecs = check_finite_array("item_vectors", item_vectors)
    if vecs.ndim != 2 or 0 in vecs.shape:
        raise ValueError(f"item_vectors must be a non-empty (n_items, d) array, "
                         f"got shape {vecs.shape}")
    recs = _item_indices("recommended", recommended, len(vecs), ndim=2)
    if recs.shape[1] < 2:
        raise ValueError(f"recommended must be (n_users, K) with K >= 2, got {recs.shape}")
    unit = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    lists = unit[recs]
    sims = np.einsum("ukd,uld->ukl", lists, lists)
    k = recs.shape[1]
    off_diagonal = (sims.sum(axis=(1, 2)) - np.trace(sims, axis1=1, axis2=2)) / (k * (k - 1))
    return float(np.mean(1.0 - off_diagonal))


def popularity_bias(recommended: object, item_counts: object) -> float:
    """Average recommendation popularity (ARP): mean training count of the recommended items
    divided by the mean count over the catalogue (1.0 = as popular as a random item).

    ``item_counts`` (n_items,) finite, non-negative, not all zero; ``recommended`` integer item
    indices in ``[0, n_items)``, any shape.
    """
    counts = _item_values("item_counts", item_counts, 0.0)
    if not (counts > 0).any():
        raise ValueError("item_counts are all zero: the average popularity is undefined")
    recs = _item_indices("recommended", recommended, len(counts))
    return float(counts[recs].mean() / counts.mean())

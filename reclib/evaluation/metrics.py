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
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

__all__ = ["auc", "catalogue_coverage", "hit_rate_at_k", "intra_list_diversity", "log_loss",
           "mae", "map_at_k", "mrr_at_k", "ndcg_at_k", "novelty", "popularity_bias",
           "precision_at_k", "recall_at_k", "rmse"]


def _pair(y_true: object, y_pred: object) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"y_true and y_pred must be equal-length non-empty 1-D arrays, "
                         f"got shapes {a.shape} and {b.shape}")
    return a, b


def rmse(y_true: object, y_pred: object) -> float:
    """Root mean squared error."""
    a, b = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((a - b) ** 2)))


def mae(y_true: object, y_pred: object) -> float:
    """Mean absolute error."""
    a, b = _pair(y_true, y_pred)
    return float(np.mean(np.abs(a - b)))


def auc(y_true: object, y_score: object) -> float:
    """Area under the ROC curve: P(score of a random positive > score of a random negative),
    ties counted 1/2 (the Mann-Whitney U statistic over mid-ranks)."""
    labels, scores = _pair(y_true, y_score)
    pos = labels > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("auc needs both positive and negative labels in y_true")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(y_true: object, y_prob: object, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy; probabilities are clipped to ``[eps, 1 - eps]``."""
    labels, probs = _pair(y_true, y_prob)
    if ((probs < 0) | (probs > 1)).any():
        raise ValueError("y_prob must be probabilities in [0, 1]")
    probs = np.clip(probs, eps, 1 - eps)
    return float(-np.mean(labels * np.log(probs) + (1 - labels) * np.log1p(-probs)))


def _hits(hits: object) -> np.ndarray:
    array = np.asarray(hits, dtype=bool)
    if array.ndim != 2:
        raise ValueError(f"hits must have shape (n_users, K), got {array.shape}")
    return array


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2))


def precision_at_k(hits: object) -> np.ndarray:
    """Per-user precision at K (K = ``hits.shape[1]``)."""
    h = _hits(hits)
    return h.sum(axis=1) / h.shape[1]


def recall_at_k(hits: object, n_relevant: object) -> np.ndarray:
    """Per-user recall at K; users with no relevant items get NaN."""
    h, n = _hits(hits), np.asarray(n_relevant, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, h.sum(axis=1) / n, np.nan)


def ndcg_at_k(hits: object, n_relevant: object) -> np.ndarray:
    """Per-user binary NDCG at K with log2 discounts; NaN for users with no relevant items."""
    h, n = _hits(hits), np.asarray(n_relevant, dtype=np.int64)
    disc = _discounts(h.shape[1])
    ideal = np.concatenate([[0.0], np.cumsum(disc)])[np.minimum(n, h.shape[1])]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (h * disc).sum(axis=1) / ideal, np.nan)


def map_at_k(hits: object, n_relevant: object) -> np.ndarray:
    """Per-user average precision at K, normalised by min(|relevant|, K)."""
    h, n = _hits(hits), np.asarray(n_relevant, dtype=np.int64)
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


def catalogue_coverage(recommended: object, n_items: int) -> float:
    """Share of the catalogue (``n_items``) recommended to at least one user."""
    items = np.asarray(recommended)
    return float(np.unique(items[items >= 0]).size / n_items)


def novelty(recommended: object, item_popularity: object) -> float:
    r"""Mean self-information :math:`-\log_2 p_i` of the recommended items, in bits, where
    :math:`p_i` is the share of users who interacted with item ``i`` in training
    (``item_popularity``, shape (n_items,), values in (0, 1]; zeros count as the rarest seen)."""
    pop = np.asarray(item_popularity, dtype=np.float64)
    floor = pop[pop > 0].min() if (pop > 0).any() else 1.0
    info = -np.log2(np.maximum(pop, floor))
    return float(info[np.asarray(recommended)].mean())


def intra_list_diversity(recommended: object, item_vectors: object) -> float:
    """Mean pairwise cosine distance (1 - cosine) between the items of each list, averaged over
    lists. ``recommended`` (n_users, K) item indices, ``item_vectors`` (n_items, d)."""
    recs = np.asarray(recommended)
    if recs.ndim != 2 or recs.shape[1] < 2:
        raise ValueError(f"recommended must be (n_users, K) with K >= 2, got {recs.shape}")
    vecs = np.asarray(item_vectors, dtype=np.float64)
    unit = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    lists = unit[recs]
    sims = np.einsum("ukd,uld->ukl", lists, lists)
    k = recs.shape[1]
    off_diagonal = (sims.sum(axis=(1, 2)) - np.trace(sims, axis1=1, axis2=2)) / (k * (k - 1))
    return float(np.mean(1.0 - off_diagonal))


def popularity_bias(recommended: object, item_counts: object) -> float:
    """Average recommendation popularity (ARP): mean training count of the recommended items
    divided by the mean count over the catalogue (1.0 = as popular as a random item)."""
    counts = np.asarray(item_counts, dtype=np.float64)
    return float(counts[np.asarray(recommended)].mean() / counts.mean())

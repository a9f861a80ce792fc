r""""Because you liked X": per-item contributions to a score, and the words nearest a text interest.

Item-based models score item :math:`i` for a user with history :math:`H` as a sum over the history,
so each history item :math:`j` has a contribution and the contributions add up to the score:

- EASE: :math:`s_i = \sum_{j \in H} B_{ji}`, contribution :math:`B_{ji}`;
- item-kNN: :math:`s_i = \sum_{j \in H} S_{ji}`, contribution :math:`S_{ji}`;
- implicit ALS, through its item-item form (Hu, Koren & Volinsky 2008, section 5): the folded-in
  user vector is :math:`x = W \sum_{j \in H} c_j y_j` with :math:`W = (Y^\top Y + \sum_{j\in H}
  (c_j - 1) y_j y_j^\top + \lambda I)^{-1}`, so :math:`s_i = y_i^\top x = \sum_{j \in H} c_j\, y_i^\top
  W y_j`, contribution :math:`c_j\, y_i^\top W y_j` (:math:`c_j = 1 + \alpha`). :math:`W` depends on
  the whole history, so removing an item also changes the others' contributions.

For text models the explanation is what lies nearest the user's interest vector: items
(:func:`nearest_texts` on item vectors) or words (on the embeddings of a vocabulary).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from reclib.base import Recommender, top_k
from reclib.checks import check_finite_array, check_positive_int
from reclib.data.ties import tie_keys

__all__ = ["contributions", "explain", "nearest_texts"]


def contributions(model: Recommender, history: Sequence[object], items: Sequence[object]) -> np.ndarray:
    """Contribution of every history item to the score of each of ``items`` (raw ids):
    an array (len(items), len(history)) whose rows sum to ``model.score_histories([history])``
    at those items (module doc). ``model`` is a fitted model that explains its scores (it has a
    ``contributions(history_indices, item_indices)`` method: EASE, ItemKNN, LastItemKNN,
    ImplicitALS)."""
    if not callable(getattr(model, "contributions", None)):
        raise ValueError(f"{type(model).__name__} cannot split its scores into per-item contributions "
                         "(models that can: EASE, ItemKNN, LastItemKNN, ImplicitALS)")
    model._check_fitted()
    h = model.item_encoder_.transform(np.asarray(list(history)))
    return model.contributions(h, model.item_encoder_.transform(np.asarray(list(items))))


def explain(model: Recommender, history: Sequence[object], k: int = 5, top: int = 2) -> pd.DataFrame:
    """The user's top-``k`` recommendations from ``history`` (raw ids; history items excluded), each
    with its ``top`` largest contributions: a frame (rank, item_id, score, because, contribution,
    share), ``share`` = contribution / score (0 where the score is 0).
    """
    check_positive_int(k=k, top=top)
    history = list(history)
    scores = np.array(model.score_histories([history]), dtype=np.float64)
    best, best_scores = top_k(scores, k, model.history_matrix([history]), tie_keys(model.item_ids_))
    items = model.item_ids_[best[0]]
    parts = contributions(model, history, items)
    order = np.argsort(-parts, axis=1, kind="stable")[:, :top]
    rows = [{"rank": r + 1, "item_id": items[r], "score": best_scores[0, r],
             "because": history[j], "contribution": parts[r, j],
             "share": parts[r, j] / best_scores[0, r] if best_scores[0, r] else 0.0}
            for r in range(len(items)) for j in order[r]]
    return pd.DataFrame(rows)


def nearest_texts(vector: np.ndarray, vectors: np.ndarray, texts: Sequence[str], k: int = 5) -> pd.DataFrame:
    """The ``k`` texts whose unit ``vectors`` (n, d) have the largest cosine with ``vector`` (d,):
    a frame (text, cosine), best first (ties to the lower position)."""
    check_positive_int(k=k)
    v = check_finite_array("vector", vector).reshape(1, -1)
    m = check_finite_array("vectors", vectors)
    if m.ndim != 2 or m.shape[1] != v.shape[1] or len(m) != len(texts):
        raise ValueError(f"vectors must be (len(texts), {v.shape[1]}), got {m.shape}")
    v = v / max(float(np.linalg.norm(v)), 1e-12)
    best, cos = top_k(v @ m.T, k)
    return pd.DataFrame({"text": np.asarray(texts, dtype=object)[best[0]], "cosine": cos[0]})

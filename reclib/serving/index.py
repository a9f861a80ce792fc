"""Exact top-K retrieval over item vectors by inner product (cosine after normalising)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from reclib.base import top_k, user_batches
from reclib.checks import check_finite_array, check_positive_int

__all__ = ["ExactIndex"]


class ExactIndex:
    """Items ``item_ids`` with vectors ``item_vectors`` (n_items, d), searched exactly.

    ``search(queries (n, d), k)`` returns a frame (query, item_id, score, rank): the ``k`` items
    of largest ``q · v`` per query, ties to the lower item position (``reclib.base.top_k``).
    Cost: one (batch, d) x (d, n_items) product per batch of queries.
    """

    def __init__(self, item_vectors: np.ndarray, item_ids: Sequence[object] | None = None,
                 normalize: bool = False, batch_size: int = 1024) -> None:
        vectors = check_finite_array("item_vectors", item_vectors)
        if vectors.ndim != 2 or len(vectors) == 0:
            raise ValueError(f"item_vectors must be a non-empty (n_items, d) array, got {vectors.shape}")
        check_positive_int(batch_size=batch_size)
        ids = np.arange(len(vectors)) if item_ids is None else np.asarray(item_ids)
        if len(ids) != len(vectors) or len(pd.unique(ids)) != len(ids):
            raise ValueError(f"item_ids must be {len(vectors)} unique ids, one per row of item_vectors")
        if normalize:
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        self.item_vectors, self.item_ids = vectors, ids
        self.normalize, self.batch_size = normalize, batch_size

    def search(self, queries: np.ndarray, k: int = 10) -> pd.DataFrame:
        """Top-``k`` items per query row: a frame (query, item_id, score, rank)."""
        check_positive_int(k=k)
        q = check_finite_array("queries", queries)
        if q.ndim == 1:
            q = q[None, :]
        if q.ndim != 2 or q.shape[1] != self.item_vectors.shape[1]:
            raise ValueError(f"queries must have shape (n, {self.item_vectors.shape[1]}), got {q.shape}")
        if self.normalize:
            q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        parts = []
        for batch in user_batches(len(q), self.batch_size):
            items, scores = top_k(q[batch] @ self.item_vectors.T, k)
            parts.append((np.repeat(np.arange(batch.start, batch.stop), items.shape[1]),
                          items.ravel(), scores.ravel()))
        query, items, scores = (np.concatenate(p) for p in zip(*parts))
        rank = np.tile(np.arange(1, min(k, len(self.item_ids)) + 1), len(q))
        return pd.DataFrame({"query": query, "item_id": self.item_ids[items], "score": scores,
                             "rank": rank})

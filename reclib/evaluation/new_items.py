"""Next item when the item is new (:func:`reclib.data.splits.new_item_split`): rank only the new
items for each test event, from the user's history, against two baselines that need no training
on new items.

- :func:`user_histories`: each test user's items before the test event, oldest first (what a
  model's ``score_histories`` reads);
- :func:`popularity_before`: how many events each new item had **before** each test event (in
  the whole log: what a live system has seen by then, nothing later), the popularity baseline;
- :func:`last_item_similarity`: cosine similarity of every item's vector to the history's last
  item, the content baseline;
- :func:`evaluate_new_items`: hit rate, NDCG, MRR @k of a score matrix over the catalogue, ranking
  only the new items (the other columns are ignored).

A model that learned item ids (SASRec) has nothing learned for a new item: its row was never a
target. A generative retriever over semantic IDs spells new items from codes it has used for
older items, and a content baseline reads their text.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclib.checks import check_finite_array, require_columns
from reclib.data.ties import tie_keys
from reclib.evaluation.ranking import EvaluationResult, evaluate_scores

__all__ = ["evaluate_new_items", "last_item_similarity", "popularity_before", "user_histories"]


def user_histories(events: pd.DataFrame, users: Sequence[object], user_col: str = "user_id",
                   item_col: str = "item_id", timestamp_col: str = "timestamp") -> list[list[object]]:
    """One list per entry of ``users``: the user's items in ``events`` by time (ties by item id),
    oldest first; a user without events gets an empty list."""
    require_columns(events, user_col, item_col, timestamp_col)
    ordered = events.sort_values([user_col, timestamp_col, item_col], kind="stable")
    lists = ordered.groupby(user_col, sort=False)[item_col].agg(list)
    return [list(h) for h in lists.reindex(pd.Index(users)).map(lambda h: h if isinstance(h, list) else [])]


def popularity_before(events: pd.DataFrame, items: Sequence[object], times: object, item_col: str = "item_id",
                      timestamp_col: str = "timestamp") -> np.ndarray:
    """(len(times), len(items)) float: the number of rows of ``events`` on each item with a
    timestamp strictly before each time."""
    require_columns(events, item_col, timestamp_col)
    times = check_finite_array("times", times).ravel().astype(np.float64)
    column = pd.Index(items).get_indexer(events[item_col])
    on_items = column >= 0
    event_times = check_finite_array(timestamp_col, events[timestamp_col].to_numpy()[on_items]).astype(np.float64)
    known = np.concatenate([event_times, times])
    origin = known.min() if len(known) else 0.0
    span = (known.max() - origin + 1.0) if len(known) else 1.0
    # one sorted key per event, item-major: an item's events before t are those whose keys lie
    # between the item's first key and item * span + (t - origin), open at t
    keys = np.sort(column[on_items] * span + (event_times - origin))
    first = np.searchsorted(keys, np.arange(len(items)) * span, side="left")
    query = np.arange(len(items))[None, :] * span + (times[:, None] - origin)
    return (np.searchsorted(keys, query, side="left") - first[None, :]).astype(np.float64)


def last_item_similarity(vectors: object, last_items: object) -> np.ndarray:
    """(len(last_items), n_items) cosine similarity of every row of ``vectors`` (n_items, d) to
    the row of each history's last item (indices into ``vectors``)."""
    x = check_finite_array("vectors", vectors)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = x / np.where(norms > 0, norms, 1.0)
    return unit[np.asarray(last_items, np.int64)] @ unit.T


def evaluate_new_items(scores: object, test_items: Sequence[object], item_ids: Sequence[object],
                       new_items: Sequence[object], k: int = 10, user_ids: object = None) -> EvaluationResult:
    """Rank only ``new_items`` for each row of ``scores`` (n_events, n_items, columns in
    ``item_ids`` order; finite on the new items) and score the one relevant item per row,
    ``test_items`` (each a new item). Returns the :class:`EvaluationResult` of
    :func:`~reclib.evaluation.ranking.evaluate_scores` (per row: hit_rate, ndcg, mrr, ...)."""
    scores = np.asarray(scores, np.float64)
    catalogue = pd.Index(item_ids)
    candidates = catalogue.get_indexer(new_items)
    targets = catalogue.get_indexer(test_items)
    if (candidates < 0).any():
        raise ValueError(f"new_items: {np.asarray(new_items)[candidates < 0][:5].tolist()} are not in item_ids")
    if (targets < 0).any() or not np.isin(targets, candidates).all():
        raise ValueError("test_items must all be new items of item_ids")
    if scores.shape != (len(targets), len(catalogue)):
        raise ValueError(f"scores must have shape ({len(targets)}, {len(catalogue)}), got {scores.shape}")
    rows = np.arange(len(targets))
    test = sp.csr_matrix((np.ones(len(rows)), (rows, targets)), shape=scores.shape)
    empty = sp.csr_matrix(scores.shape)
    return evaluate_scores(scores, empty, test, k=k, candidates=np.sort(candidates),
                           user_ids=None if user_ids is None else np.asarray(user_ids),
                           tie_keys=tie_keys(catalogue))

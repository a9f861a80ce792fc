"""Batched top-K evaluation: score users a batch at a time, mask their training items, rank.

:func:`evaluate_scores` works on encoded indices and a score matrix (or a function producing score
rows for a batch of users), so memory stays O(batch_size * n_items) whatever the number of users.
:func:`evaluate_ranking` wraps it for any recommender following the model interface and returns a
tidy frame (metric, k, value).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclib.base import interaction_matrix, top_k, user_batches
from reclib.evaluation import metrics as M

__all__ = ["RankingResult", "evaluate_ranking", "evaluate_scores", "lookup_hits"]

ScoreSource = np.ndarray | Callable[[np.ndarray], np.ndarray]


def lookup_hits(top_items: np.ndarray, relevant: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """``hits[r, j]``: is item ``top_items[r, j]`` stored in row ``rows[r]`` of ``relevant``?

    A vectorised membership test on the sorted keys ``row * n_items + item``.
    """
    relevant = sp.csr_matrix(relevant)
    relevant.sort_indices()
    n_items = relevant.shape[1]
    row_of = np.repeat(np.arange(relevant.shape[0], dtype=np.int64), np.diff(relevant.indptr))
    keys = row_of * n_items + relevant.indices
    query = np.asarray(rows, np.int64)[:, None] * n_items + top_items
    pos = np.searchsorted(keys, query)
    return (pos < len(keys)) & (keys[np.minimum(pos, len(keys) - 1)] == query)


class RankingResult(dict):
    """Metric name -> value, plus the top-K lists (``top_items``, encoded) and per-user values."""

    top_items: np.ndarray
    per_user: pd.DataFrame


def evaluate_scores(scores: ScoreSource, train: sp.csr_matrix, test: sp.csr_matrix, k: int = 10,
                    users: np.ndarray | None = None, n_relevant: np.ndarray | None = None,
                    item_vectors: np.ndarray | None = None, candidates: np.ndarray | None = None,
                    batch_size: int = 1024) -> RankingResult:
    """Rank all items not in each user's train set and compute the metrics at ``k``.

    Parameters
    ----------
    scores: (n_users, n_items) array, or a function ``f(user_indices) -> (b, n_items)``.
    train, test: (n_users, n_items) sparse matrices; stored entries are training items (masked)
        and relevant test items.
    users: the user indices to evaluate; default every user with a test item.
    n_relevant: size of each evaluated user's relevant set, if it counts items the score columns
        cannot reach (items unseen in training); default the row counts of ``test``.
    item_vectors: (n_items, d) features for intra-list diversity (skipped when ``None``).
    candidates: item indices that may be ranked (default all); the rest are never recommended,
        and coverage is measured over the candidates (protocol P5 ranks only the cold items).

    Returns a :class:`RankingResult` with precision, recall, ndcg, map, hit_rate, mrr (means over
    users), coverage, novelty (bits), popularity_bias (ARP) and, with vectors, diversity.
    """
    train, test = sp.csr_matrix(train), sp.csr_matrix(test)
    if train.shape != test.shape:
        raise ValueError(f"train {train.shape} and test {test.shape} must have the same shape")
    n_users, n_items = train.shape
    test_counts = np.diff(test.indptr)
    users = np.flatnonzero(test_counts) if users is None else np.asarray(users, dtype=np.int64)
    if users.size == 0:
        raise ValueError("no user to evaluate: the test matrix is empty")
    n_rel = test_counts[users] if n_relevant is None else np.asarray(n_relevant)
    score_rows = scores if callable(scores) else (lambda idx: scores[idx])
    blocked = None
    if candidates is not None:
        blocked = np.ones(n_items, dtype=bool)
        blocked[np.asarray(candidates, dtype=np.int64)] = False
    top = np.empty((len(users), min(k, n_items)), dtype=np.int64)
    for batch in user_batches(len(users), batch_size):
        idx = users[batch]
        rows = np.array(score_rows(idx), dtype=np.float64)
        if rows.shape != (len(idx), n_items):
            raise ValueError(f"scores for {len(idx)} users have shape {rows.shape}, "
                             f"expected {(len(idx), n_items)}")
        if blocked is not None:
            rows[:, blocked] = -np.inf
        top[batch] = top_k(rows, k, train[idx])[0]
    hits = lookup_hits(top, test, users)
    per_user = pd.DataFrame({
        "precision": M.precision_at_k(hits), "recall": M.recall_at_k(hits, n_rel),
        "ndcg": M.ndcg_at_k(hits, n_rel), "map": M.map_at_k(hits, n_rel),
        "hit_rate": M.hit_rate_at_k(hits), "mrr": M.mrr_at_k(hits)}, index=users)
    counts = np.diff(sp.csc_matrix(train).indptr).astype(np.float64)
    result = RankingResult(per_user.mean().to_dict())
    n_catalogue = n_items if candidates is None else len(np.unique(candidates))
    result["coverage"] = M.catalogue_coverage(top, n_catalogue)
    result["novelty"] = M.novelty(top, counts / max(n_users, 1))
    result["popularity_bias"] = M.popularity_bias(top, counts)
    if item_vectors is not None:
        result["diversity"] = M.intra_list_diversity(top, item_vectors)
    result.top_items, result.per_user = top, per_user
    return result


def evaluate_ranking(model: object, train: pd.DataFrame, test: pd.DataFrame, k: int = 10,
                     item_vectors: np.ndarray | None = None, candidates: object = None,
                     batch_size: int = 1024, user_col: str = "user_id",
                     item_col: str = "item_id") -> pd.DataFrame:
    """Evaluate a fitted recommender on a top-K protocol; returns a tidy frame (metric, k, value).

    Ranks, for every test user known to the model, all of ``model.item_ids_`` except the user's
    items in ``train``. Test items the model never saw still count in the user's relevant set (they
    lower recall; no model can rank them). ``item_vectors`` rows follow ``model.item_ids_``.
    Test users unknown to the model raise ``ValueError`` unless the model handles them.
    ``candidates`` (raw item ids) restricts the ranking to those items, e.g. the held-out items of
    the cold-start protocol P5; each must be known to the model.
    """
    for frame, name in ((train, "train"), (test, "test")):
        missing = [c for c in (user_col, item_col) if c not in frame.columns]
        if missing:
            raise ValueError(f"{name} frame: column {missing[0]!r} is missing")
    test_users = np.asarray(pd.unique(test[user_col]))
    user_index = model.user_index(test_users)
    known_items = np.asarray(model.item_ids_)
    item_of = pd.Index(known_items)
    shape = (len(test_users), len(known_items))
    eval_user = pd.Index(test_users)

    def matrix(frame: pd.DataFrame) -> sp.csr_matrix:
        frame = frame[frame[user_col].isin(eval_user)]
        items = item_of.get_indexer(frame[item_col].to_numpy())
        rows = eval_user.get_indexer(frame[user_col].to_numpy())
        ok = items >= 0
        return interaction_matrix(rows[ok], items[ok], shape)

    train_m, test_m = matrix(train), matrix(test)
    n_relevant = test.groupby(user_col)[item_col].nunique().reindex(test_users).to_numpy()
    candidate_index = None
    if candidates is not None:
        candidate_index = model.item_encoder_.transform(np.asarray(candidates))
    result = evaluate_scores(lambda rows: model._score(user_index[rows]), train_m, test_m, k,
                             users=np.arange(len(test_users)), n_relevant=n_relevant,
                             item_vectors=item_vectors, candidates=candidate_index,
                             batch_size=batch_size)
    return pd.DataFrame({"metric": list(result), "k": k, "value": list(result.values())})

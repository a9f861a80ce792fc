"""Batched top-K evaluation: score users a batch at a time, mask their training items, rank.

:func:`evaluate_scores` works on encoded indices and a score matrix (or a function producing score
rows for a batch of users), so memory stays O(batch_size * n_items) whatever the number of users.
:func:`ranking_result` wraps it for any recommender following the model interface (it calls only
the public ``model.score(user_ids)``, a batch of raw user ids at a time); a protocol's
``evaluate`` wraps that. All three return one type, :class:`EvaluationResult`: the tidy frame
(metric, k, value), the per-user values and the top-K lists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclib.base import interaction_matrix, top_k, user_batches
from reclib.checks import (ParameterTypeError, check_finite_array, check_positive_int,
                           require_columns)
from reclib.data import ties
from reclib.evaluation import metrics as M

__all__ = ["EvaluationResult", "evaluate_scores", "lookup_hits", "ranking_result"]

ScoreSource = np.ndarray | Callable[[np.ndarray], np.ndarray]


def lookup_hits(top_items: np.ndarray, relevant: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """``hits[r, j]``: is item ``top_items[r, j]`` stored in row ``rows[r]`` of ``relevant``?

    A vectorised membership test on the sorted keys ``row * n_items + item``; an empty
    ``relevant`` gives no hit.
    """
    relevant = sp.csr_matrix(relevant)
    if relevant.nnz == 0:
        return np.zeros(np.shape(top_items), dtype=bool)
    relevant.sort_indices()
    n_items = relevant.shape[1]
    row_of = np.repeat(np.arange(relevant.shape[0], dtype=np.int64), np.diff(relevant.indptr))
    keys = row_of * n_items + relevant.indices
    query = np.asarray(rows, np.int64)[:, None] * n_items + top_items
    pos = np.searchsorted(keys, query)
    return (pos < len(keys)) & (keys[np.minimum(pos, len(keys) - 1)] == query)


@dataclass(frozen=True, repr=False)
class EvaluationResult:
    """What every evaluation returns (:func:`evaluate_scores`, :func:`ranking_result`, a protocol's
    ``evaluate``): the tidy table plus the values behind it.

    Attributes
    ----------
    frame: the tidy frame (``metric``, ``k``, ``value``), one row per metric; ``k`` is the list
        length for ranking evaluations and ``None`` for pointwise ones (RMSE, AUC, ...).
    per_user: one row per evaluated user (index: raw user ids, or user indices from
        :func:`evaluate_scores`), one column per metric. For
        ranking evaluations the columns are the per-user ranking metrics (precision, recall,
        ndcg, map, hit_rate, mrr) and their column means (NaN skipped) are the reported values;
        pointwise evaluations document their own (additive) columns.
    top_items: ranking evaluations only: (n_users, k) items, best first (columns: ranks 1..k):
        raw item ids indexed by raw user ids from :func:`ranking_result`, item indices indexed by
        user indices from :func:`evaluate_scores`; ``None`` otherwise.
    examples: pointwise evaluations whose metric is not additive over users (AUC): one row per
        test example (``label``, ``probability`` clipped as for the log loss, ``log_loss``),
        indexed like the test frame; ``None`` otherwise.
    """

    frame: pd.DataFrame
    per_user: pd.DataFrame
    top_items: pd.DataFrame | None = None
    examples: pd.DataFrame | None = None

    @property
    def values(self) -> pd.Series:
        """The metric values as a Series indexed by metric name."""
        return self.frame.set_index("metric")["value"]

    def __getitem__(self, metric: str) -> float:
        """The value of one metric, e.g. ``result["ndcg"]``; unknown names raise ``KeyError``."""
        values = self.values
        if metric not in values.index:
            raise KeyError(f"no metric {metric!r} in this result; it has {list(values.index)}")
        return float(values[metric])

    def __repr__(self) -> str:
        shown = ", ".join(f"{m}={v:.4g}" for m, v in self.values.items())
        return f"EvaluationResult({shown}; per_user {self.per_user.shape})"


def _sparse(name: str, matrix: object) -> sp.csr_matrix:
    """``matrix`` as a 2-D CSR matrix whose stored values are finite."""
    try:
        csr = sp.csr_matrix(matrix)
    except (TypeError, ValueError) as err:
        raise ParameterTypeError(f"{name} must be a 2-D sparse matrix or array: {err}") from None
    if csr.ndim != 2 or 0 in csr.shape:
        raise ValueError(f"{name} must be a non-empty (n_users, n_items) matrix, "
                         f"got shape {csr.shape}")
    if not np.isfinite(csr.data).all():
        raise ValueError(f"{name} stores {int((~np.isfinite(csr.data)).sum())} non-finite value(s)")
    return csr


def _indices(name: str, values: object, size: int, what: str) -> np.ndarray:
    """A non-empty 1-D int64 array of indices in ``[0, size)``."""
    array = np.asarray(values)
    if array.dtype.kind not in "iu":
        raise ParameterTypeError(f"{name} must hold integer {what} indices, "
                                 f"got dtype {array.dtype}")
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    bad = (array < 0) | (array >= size)
    if bad.any():
        raise ValueError(f"{name} holds {int(bad.sum())} {what} index(es) outside [0, {size}), "
                         f"e.g. {np.unique(array[bad])[:5].tolist()}")
    return array.astype(np.int64)


def _check_score_rows(rows: np.ndarray, allowed: np.ndarray | None, users: np.ndarray,
                      source: str) -> None:
    """Raise if, over the rankable columns (``allowed``, default all), a score row holds NaN or
    +inf or has no finite score; ``-inf`` alone means "never recommend" and is kept."""
    if np.isfinite(rows).all():
        return
    rankable = rows if allowed is None else rows[:, allowed]
    nan, pos_inf = np.isnan(rankable).any(axis=1), np.isposinf(rankable).any(axis=1)
    empty = ~np.isfinite(rankable).any(axis=1) & ~nan & ~pos_inf
    for bad, what in ((nan, "NaN"), (pos_inf, "+inf"),
                      (empty, "no finite score (only -inf) over the rankable items")):
        if bad.any():
            raise ValueError(f"{source} hold {what} for {int(bad.sum())} of {len(rows)} users in "
                             f"this batch, e.g. users {users[bad][:5].tolist()}; scores must be "
                             f"finite or -inf (never recommend) with a finite one per user "
                             f"(did the fit diverge?)")


def evaluate_scores(scores: ScoreSource, train: sp.csr_matrix, test: sp.csr_matrix, k: int = 10,
                    users: np.ndarray | None = None, n_relevant: np.ndarray | None = None,
                    item_vectors: np.ndarray | None = None, candidates: np.ndarray | None = None,
                    batch_size: int = 1024, *, source: str | None = None,
                    user_ids: np.ndarray | None = None,
                    tie_keys: np.ndarray | None = None) -> EvaluationResult:
    """Rank all items not in each user's train set and compute the metrics at ``k``.

    Parameters
    ----------
    - scores: (n_users, n_items) numeric array, or a function ``f(user_indices) -> (b, n_items)``.
      Scores must be finite or ``-inf`` ("never recommend"), with at least one finite score
      per user among the rankable items; NaN or +inf raise ``ValueError`` naming the users.
    - train, test: (n_users, n_items) sparse matrices (same shape, finite stored values); stored
      entries are training items (masked) and relevant test items.
    - k: list length, a positive int; with ``candidates`` at most their number.
    - users: distinct user indices in ``[0, n_users)`` to evaluate; default every user with a test
      item.
    - n_relevant: size of each evaluated user's relevant set (non-negative ints, one per user), if
      it counts items the score columns cannot reach (items unseen in training); default the
      row counts of ``test``. It may not be smaller than a user's number of hits.
    - item_vectors: (n_items, d) finite features for intra-list diversity (skipped when ``None``).
    - candidates: item indices in ``[0, n_items)`` that may be ranked (default all); the rest are
      never recommended, and coverage is measured over the candidates (protocol P5 ranks only
      the cold items).
    - batch_size: users scored at a time, a positive int.
    - source, user_ids: how error messages name the scores (default "scores" or the function's
      name) and the users (``user_ids[u]`` names user index ``u``; default the indices).
    - tie_keys: (n_items,) keys ordering equal scores, lower first (see :func:`~reclib.base.top_k`);
      default the item index. :func:`ranking_result` passes the kit's tie rule,
      :func:`reclib.data.ties.tie_keys` of the model's item ids.

    Scores are checked over the rankable items only (the candidates when given): NaN, +inf, or a
    row with no finite score raise ``ValueError`` naming the users, before that batch is ranked.

    Every argument is checked before the first batch is scored. Returns an
    :class:`EvaluationResult` whose values are precision, recall, ndcg, map, hit_rate, mrr (means
    over users), coverage, novelty (bits), popularity_bias (ARP; NaN if ``train`` is empty) and,
    with vectors, diversity; ``per_user`` and ``top_items`` are indexed by user index.
    """
    check_positive_int(k=k, batch_size=batch_size)
    train, test = _sparse("train", train), _sparse("test", test)
    if train.shape != test.shape:
        raise ValueError(f"train {train.shape} and test {test.shape} must have the same shape")
    n_users, n_items = train.shape
    if source is None:
        source = (f"scores from {getattr(scores, '__qualname__', type(scores).__name__)}"
                  if callable(scores) else "scores")
    if not callable(scores):
        scores = np.asarray(scores)
        if scores.dtype.kind not in "biuf":
            raise ParameterTypeError(f"scores must be a numeric array, got dtype {scores.dtype}")
        if scores.shape != (n_users, n_items):
            raise ValueError(f"scores must have shape (n_users, n_items) = {(n_users, n_items)} "
                             f"like train and test, got {scores.shape}")
    test_counts = np.diff(test.indptr)
    if users is None:
        users = np.flatnonzero(test_counts)
        if users.size == 0:
            raise ValueError("no user to evaluate: the test matrix is empty")
    else:
        users = _indices("users", users, n_users, "user")
        if np.unique(users).size != users.size:
            repeated = users.size - np.unique(users).size
            raise ValueError(f"users holds {repeated} repeated index(es); each user is "
                             f"evaluated once")
    n_rel = (test_counts[users] if n_relevant is None
             else M._counts("n_relevant", n_relevant, len(users)))
    if item_vectors is not None:
        item_vectors = check_finite_array("item_vectors", item_vectors)
        if item_vectors.ndim != 2 or item_vectors.shape[0] != n_items or item_vectors.shape[1] == 0:
            raise ValueError(f"item_vectors must have shape (n_items={n_items}, d >= 1), "
                             f"got {item_vectors.shape}")
    blocked = allowed = None
    if candidates is not None:
        allowed = np.unique(_indices("candidates", candidates, n_items, "item"))
        if k > allowed.size:
            raise ValueError(f"k={k} exceeds the {allowed.size} candidate items: the lists would "
                             f"be padded with items outside the candidates")
        blocked = np.ones(n_items, dtype=bool)
        blocked[allowed] = False
    if user_ids is None:
        names = users
    else:
        names = np.asarray(user_ids)
        if names.shape != (n_users,):
            raise ValueError(f"user_ids must hold one id per user ({n_users},), got {names.shape}")
        names = names[users]
    if tie_keys is not None:
        tie_keys = np.asarray(tie_keys)
        if tie_keys.shape != (n_items,):
            raise ValueError(f"tie_keys must hold one key per item ({n_items},), got {tie_keys.shape}")
    score_rows = scores if callable(scores) else (lambda idx: scores[idx])
    top = np.empty((len(users), min(k, n_items)), dtype=np.int64)
    for batch in user_batches(len(users), batch_size):
        idx = users[batch]
        rows = np.array(score_rows(idx), dtype=np.float64)
        if rows.shape != (len(idx), n_items):
            raise ValueError(f"{source} for {len(idx)} users have shape {rows.shape}, "
                             f"expected {(len(idx), n_items)}")
        _check_score_rows(rows, allowed, names[batch], source)
        if blocked is not None:
            rows[:, blocked] = -np.inf
        top[batch] = top_k(rows, k, train[idx], tie_keys)[0]
    hits = lookup_hits(top, test, users)
    per_user = pd.DataFrame({
        "precision": M.precision_at_k(hits), "recall": M.recall_at_k(hits, n_rel),
        "ndcg": M.ndcg_at_k(hits, n_rel), "map": M.map_at_k(hits, n_rel),
        "hit_rate": M.hit_rate_at_k(hits), "mrr": M.mrr_at_k(hits)}, index=users)
    counts = np.diff(sp.csc_matrix(train).indptr).astype(np.float64)
    values = per_user.mean().to_dict()
    if allowed is None:
        values["coverage"] = M.catalogue_coverage(top, n_items)
    else:  # over the candidates; a masked non-candidate padding a short list is not counted
        position = np.minimum(np.searchsorted(allowed, top), allowed.size - 1)
        values["coverage"] = M.catalogue_coverage(
            np.where(allowed[position] == top, position, -1), allowed.size)
    values["novelty"] = M.novelty(top, counts / n_users)
    # ARP is undefined (NaN) when train stores no interaction at all
    values["popularity_bias"] = M.popularity_bias(top, counts) if counts.any() else np.nan
    if item_vectors is not None:
        values["diversity"] = M.intra_list_diversity(top, item_vectors)
    frame = pd.DataFrame({"metric": list(values), "k": k, "value": list(values.values())})
    top_items = pd.DataFrame(top, index=users, columns=pd.RangeIndex(1, top.shape[1] + 1, name="rank"))
    return EvaluationResult(frame, per_user, top_items)


def ranking_result(model: object, train: pd.DataFrame, test: pd.DataFrame, k: int = 10,
                   item_vectors: np.ndarray | None = None, candidates: object = None,
                   batch_size: int = 1024, user_col: str = "user_id",
                   item_col: str = "item_id") -> EvaluationResult:
    """Evaluate a fitted recommender on a top-K protocol; returns an :class:`EvaluationResult`.

    ``model`` needs the public interface only: ``user_index`` (to check the test users up front),
    ``item_ids_``, ``item_encoder_`` (for ``candidates``) and ``score(user_ids)``, called with
    ``batch_size`` raw user ids at a time. ``per_user`` is indexed by the raw test user ids (in
    order of first appearance in ``test``); ``top_items`` holds raw item ids.

    Ranks, for every test user known to the model, all of ``model.item_ids_`` except the user's
    items in ``train``; equal scores are ordered by the kit's tie rule (:mod:`reclib.data.ties`).
    Test items the model never saw still count in the user's relevant set (they lower recall; no
    model can rank them). ``item_vectors`` rows follow ``model.item_ids_``.
    Test users unknown to the model raise ``ValueError`` unless the model handles them.
    ``candidates`` (raw item ids) restricts the ranking to those items, e.g. the held-out items of
    the cold-start protocol P5; each must be known to the model.

    Checked first: both frames have ``user_col`` and ``item_col`` without missing ids, ``test``
    is not empty, ``k`` and ``batch_size`` are positive ints, ``candidates`` is non-empty; then
    :func:`evaluate_scores` checks the rest and names the model when its scores are NaN or +inf.
    """
    check_positive_int(k=k, batch_size=batch_size)
    for frame, name in ((train, "train"), (test, "test")):
        try:
            require_columns(frame, user_col, item_col)
        except ValueError as err:  # ParameterTypeError included
            raise type(err)(f"{name} frame: {err}") from None
        for col in (user_col, item_col):
            null = frame[col].isna().to_numpy()
            if null.any():
                raise ValueError(f"{name} frame: column {col!r} has {int(null.sum())} missing "
                                 f"id(s), first at rows {frame.index[null][:5].tolist()}")
    if len(test) == 0:
        raise ValueError("test frame is empty: no user to evaluate")
    test_users = np.asarray(pd.unique(test[user_col]))
    model.user_index(test_users)  # unknown test users raise here, naming them
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
        raw = np.asarray(candidates)
        if raw.ndim != 1 or raw.size == 0:
            raise ValueError(f"candidates must be a non-empty 1-D list of item ids, "
                             f"got shape {raw.shape}")
        try:
            candidate_index = model.item_encoder_.transform(raw)
        except ValueError as err:
            raise ValueError(f"candidates: {err}") from None
    result = evaluate_scores(lambda rows: model.score(test_users[rows]), train_m, test_m, k,
                             users=np.arange(len(test_users)), n_relevant=n_relevant,
                             item_vectors=item_vectors, candidates=candidate_index,
                             batch_size=batch_size, source=f"{type(model).__name__} scores",
                             user_ids=test_users, tie_keys=ties.tie_keys(known_items))
    users = pd.Index(test_users, name=user_col)
    per_user = result.per_user.set_axis(users[result.per_user.index])
    top_items = pd.DataFrame(known_items[result.top_items.to_numpy()], index=users,
                             columns=result.top_items.columns)
    return EvaluationResult(result.frame, per_user, top_items)

"""The two-stage frame every shortlist reranker shares (:class:`ShortlistRecommender`): a
retriever's top ``n_candidates`` unseen items, lifted above every other item and reordered by a
second model, and the measures of a reranking: :func:`shortlist_ndcg` within a list and
:func:`random_order_ndcg`, the level of a reranker that learned nothing.

``score`` and ``score_histories`` return the retriever's scores with the shortlist lifted above
the rest, in the reranker's order (ties between lifted scores by ``reclib.base.top_k``'s rule):
``recommend(k <= n_candidates)`` returns the reranked top; below the shortlist the retriever's
order stands. The rerankers: :class:`~reclib.models.reranker.ShortlistReranker` (trained, over
cached language-model states) and :class:`~reclib.models.lm_reranker.CausalLMReranker` (a
pretrained causal language model, zero-shot).
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclib.base import Recommender, clone, top_k
from reclib.checks import ParameterTypeError, check_positive_int
from reclib.data.ties import tie_keys
from reclib.features.content import ItemFeatures, check_item_features

__all__ = ["ShortlistRecommender", "random_order_ndcg", "shortlist_ndcg"]


def random_order_ndcg(n_candidates: int, k: int = 10) -> float:
    """Expected NDCG@k of a shortlist of ``n_candidates`` holding the one relevant item, put in a
    random order: the item is at each rank with probability 1 / n, and ranks 1..k count
    1 / log2(rank + 1). 20 candidates: 0.227. (Times the share of lists holding the item, the level
    a reranker must beat to have learned anything at all.)"""
    check_positive_int(n_candidates=n_candidates, k=k)
    return float(sum(1.0 / np.log2(rank + 1) for rank in range(1, min(k, n_candidates) + 1)) / n_candidates)


def shortlist_ndcg(scores: np.ndarray, targets: np.ndarray, k: int = 10) -> np.ndarray:
    """NDCG@k of each list: (b,) values from scores (b, n) and either the one relevant item's
    position (b,) in each list or a (b, n) 0/1 relevance of every entry (several relevant items;
    the ideal list holds min(relevant, k) of them on top). A candidate's rank counts those scored
    above it and the tied ones earlier in the list (ties go to the earlier position; serving breaks
    ties between lifted scores by the kit's tie rule, :mod:`reclib.data.ties`)."""
    targets = np.asarray(targets)
    if targets.ndim == 2:
        order = np.argsort(-scores, axis=1, kind="stable")[:, :k]        # stable: earlier position first
        discount = 1.0 / np.log2(np.arange(2, order.shape[1] + 2))
        dcg = (np.take_along_axis(targets, order, axis=1) * discount).sum(axis=1)
        n_relevant = np.minimum(targets.sum(axis=1), k).astype(np.int64)
        ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])[n_relevant]
        return np.where(ideal > 0, dcg / np.maximum(ideal, 1e-12), 0.0)
    target_scores = scores[np.arange(len(scores)), targets][:, None]
    earlier = np.arange(scores.shape[1])[None, :] < targets[:, None]
    rank = 1 + (scores > target_scores).sum(axis=1) + ((scores == target_scores) & earlier).sum(axis=1)
    return np.where(rank <= k, 1.0 / np.log2(rank + 1), 0.0)


class ShortlistRecommender(Recommender):
    """What every shortlist reranker shares: a retriever fitted on all of ``interactions``
    (``retriever_``), each user's last ``n_recent`` items and request time, and scores that lift the
    retriever's top ``n_candidates`` unseen items above the rest in the order a subclass's
    ``_shortlist_scores(shortlist (b, n), retriever scores (b, n), recent (b, r), request (b,)) ->
    (b, n)`` gives (module doc, "Scores").

    retriever: an unfitted recommender that can score explicit histories (``score_histories``),
    a hyper-parameter cloned with this model (the sequence models of notebook 06, EASE, ...).
    share_features: give ``item_features`` to the retriever's ``fit`` too, where it takes them.
    ``item_features`` at ``fit`` must hold the tables of ``needs``; ``interactions`` a timestamp.
    """

    #: the :class:`~reclib.features.content.ItemFeatures` tables ``fit`` needs
    needs: tuple[str, ...] = ()

    def __init__(self, retriever: Recommender, n_candidates: int, n_recent: int, share_features: bool,
                 timestamp_col: str = "timestamp", **columns: str) -> None:
        super().__init__(**columns)
        if not isinstance(retriever, Recommender) or not type(retriever).can_score_histories():
            raise ParameterTypeError(f"retriever must be a reclib Recommender that scores histories "
                                     f"(score_histories), got {type(retriever).__name__}")
        check_positive_int(n_candidates=n_candidates, n_recent=n_recent)
        if share_features not in (True, False):
            raise ParameterTypeError(f"share_features must be True or False, got {share_features!r}")
        self.retriever, self.n_candidates, self.n_recent = retriever, n_candidates, n_recent
        self.share_features, self.timestamp_col = share_features, timestamp_col

    def fit(self, interactions: pd.DataFrame, *, item_features: ItemFeatures | None = None) -> ShortlistRecommender:
        """Fit on ``interactions`` (with timestamps) and ``item_features`` (class doc)."""
        self.item_features_ = check_item_features(item_features, interactions, self.item_col, need=self.needs,
                                                  model=type(self).__name__)
        if self.timestamp_col not in interactions:
            raise ValueError(f"{type(self).__name__}.fit needs the {self.timestamp_col!r} column (the order of "
                             f"each user's events)")
        return super().fit(interactions)

    def _item_catalogue(self, interactions: pd.DataFrame) -> np.ndarray:
        return self.item_features_.item_ids

    def _fit_retriever(self, interactions: pd.DataFrame) -> Recommender:
        model = clone(self.retriever)
        if self.share_features and "item_features" in inspect.signature(model.fit).parameters:
            return model.fit(interactions, item_features=self.item_features_)
        return model.fit(interactions)

    def _store_users(self, events: pd.DataFrame) -> None:
        """``recent_`` (n_users, n_recent) and ``request_time_`` (n_users,) from the fitted events
        (in (user, time) order), and ``latest_time_``, the request time of ``score_histories``."""
        users = self.user_encoder_.transform(events[self.user_col])
        times = events[self.timestamp_col].to_numpy(np.float64)
        self.recent_ = _last_items(users, self.item_encoder_.transform(events[self.item_col]), len(self.user_ids_),
                                   self.n_recent)
        self.request_time_ = np.full(len(self.user_ids_), -np.inf)
        np.maximum.at(self.request_time_, users, times)         # each user's last event
        self.latest_time_ = times.max()

    def _shortlist_scores(self, shortlist: np.ndarray, shortlist_scores: np.ndarray, recent: np.ndarray,
                          request: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _rerank(self, scores: np.ndarray, recent: np.ndarray, seen: sp.csr_matrix, request: np.ndarray) -> np.ndarray:
        """``scores`` (b, n_items) of the retriever with each row's top ``n_candidates`` unseen items
        lifted above the rest and ordered by ``_shortlist_scores`` (module doc, "Scores")."""
        shortlist, shortlist_scores = top_k(scores.copy(), self.n_candidates, seen, tie_keys(self.item_ids_))
        head = np.asarray(self._shortlist_scores(shortlist, shortlist_scores, recent, request), dtype=np.float64)
        if not np.isfinite(head).all():
            raise FloatingPointError(f"{type(self).__name__}: the reranker scored a shortlist NaN or inf")
        valid = np.isfinite(shortlist_scores)
        lowest = np.where(valid, head, np.inf).min(axis=1, keepdims=True)
        lifted = scores.max(axis=1, keepdims=True) + 1.0 + (head - lowest)
        out = scores.copy()
        rows = np.broadcast_to(np.arange(len(scores))[:, None], shortlist.shape)
        out[rows[valid], shortlist[valid]] = lifted[valid]
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        scores = _in_catalogue(self.retriever_, self.retriever_.score(self.user_ids_[users]), self.item_ids_)
        return self._rerank(scores, self.recent_[users], self.train_matrix_[users], self.request_time_[users])

    def score_histories(self, histories: Sequence[Sequence[object]]) -> np.ndarray:
        """Scores (n_histories, n_items) for explicit histories (raw item ids, oldest first),
        reranked as ``score`` is (request time: the fit's latest event); an item unknown to the
        model raises ``ValueError`` naming it."""
        seen = self.history_matrix(histories)
        lengths = [len(h) for h in histories]
        items = self.item_encoder_.transform(np.asarray([i for h in histories for i in h]))
        recent = _last_items(np.repeat(np.arange(len(histories)), lengths), items, len(histories), self.n_recent)
        scores = _in_catalogue(self.retriever_, self.retriever_.score_histories(histories), self.item_ids_)
        return self._rerank(scores, recent, seen, np.full(len(histories), self.latest_time_))


def _last_items(rows: np.ndarray, items: np.ndarray, n_rows: int, r: int) -> np.ndarray:
    """(n_rows, r) the last r ``items`` of each row, most recent first, ``-1`` where a row has fewer;
    ``rows`` (ascending) and ``items`` are events in time order within each row."""
    out = np.full((n_rows, r), -1, dtype=np.int64)
    if len(rows):
        from_end = pd.Series(rows).groupby(rows).cumcount(ascending=False).to_numpy()
        last = from_end < r
        out[rows[last], from_end[last]] = items[last]
    return out


def _in_catalogue(model: Recommender, scores: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
    """``model``'s scores (b, model.item_ids_) laid out over ``item_ids``; an item the model does
    not know scores below each row's lowest."""
    columns = model.item_encoder_.transform(item_ids, unknown="ignore")
    scores = np.asarray(scores, dtype=np.float64)
    out = np.repeat(scores.min(axis=1, keepdims=True) - 1.0, len(item_ids), axis=1)
    out[:, columns >= 0] = scores[:, columns[columns >= 0]]
    return out

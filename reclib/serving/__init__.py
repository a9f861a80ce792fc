"""Serving (notebooks 06 and 10): answer a user's request from precomputed state, without a refit.

:class:`HistoryStore` is the one place for user state after ``fit`` (each user's events, an
amortised O(1) append per event), kept by the server, the bandit policies and replay;
:class:`RealTimeRecommender` turns a model that can score an explicit history
(``Recommender.score_histories``) into fresh top-K lists after every event; :class:`ExactIndex`
finds the top-K items for query vectors by exact inner product (the reference an approximate
index is measured against); :class:`ApproximateIndex` answers the same queries from a faiss HNSW
graph, and :func:`neighbor_recall` compares the two.
"""

from reclib.serving.index import (ApproximateIndex, ExactIndex, clustered_vectors, latency_ms,
                                  neighbor_recall)
from reclib.serving.history import HistoryStore
from reclib.serving.realtime import RealTimeRecommender, update_latency

__all__ = ["ApproximateIndex", "ExactIndex", "HistoryStore", "RealTimeRecommender", "neighbor_recall",
           "update_latency"]

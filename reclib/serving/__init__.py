"""Serving (notebooks 06 and 10): answer a user's request from precomputed state, without a refit.

:class:`UserStateStore` keeps each user's recent events (an O(1) append per event);
:class:`RealTimeRecommender` turns a model that can score an explicit history
(``Recommender.score_histories``) into fresh top-K lists after every event; :class:`ExactIndex`
finds the top-K items for query vectors by exact inner product (the reference an approximate
index is measured against); :class:`ApproximateIndex` answers the same queries from a faiss HNSW
graph, and :func:`neighbor_recall` compares the two.
"""

from reclib.serving.index import (ApproximateIndex, ExactIndex, clustered_vectors, latency_ms,
                                  neighbor_recall)
from reclib.serving.realtime import RealTimeRecommender, UserStateStore, update_latency

__all__ = ["ApproximateIndex", "ExactIndex", "RealTimeRecommender", "UserStateStore", "neighbor_recall",
           "update_latency"]

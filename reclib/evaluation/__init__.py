"""Evaluation (every notebook from 00 on): metrics, batched top-K evaluation and the protocols
P1-P5 that fix each split, its validation carve-out, candidates and metrics."""

from reclib.base import top_k
from reclib.evaluation.metrics import (auc, catalogue_coverage, hit_rate_at_k,
                                       intra_list_diversity, log_loss, mae, map_at_k, mrr_at_k,
                                       ndcg_at_k, novelty, popularity_bias, precision_at_k,
                                       recall_at_k, rmse)
from reclib.evaluation.protocols import P1, P2, P3, P4, P5, PROTOCOLS, Protocol
from reclib.evaluation.ranking import (EvaluationResult, RankingResult, evaluate_ranking,
                                       evaluate_scores, lookup_hits, ranking_result)

__all__ = ["P1", "P2", "P3", "P4", "P5", "PROTOCOLS", "EvaluationResult", "Protocol",
           "RankingResult", "auc", "catalogue_coverage", "evaluate_ranking", "evaluate_scores",
           "hit_rate_at_k", "intra_list_diversity", "log_loss", "lookup_hits", "mae", "map_at_k",
           "mrr_at_k", "ndcg_at_k", "novelty", "popularity_bias", "precision_at_k",
           "ranking_result", "recall_at_k", "rmse", "top_k"]

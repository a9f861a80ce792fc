"""Stage 9, evaluation (notebook 09): metrics and batched top-K evaluation."""

from reclib.base import top_k
from reclib.evaluation.metrics import (auc, catalogue_coverage, hit_rate_at_k,
                                       intra_list_diversity, log_loss, mae, map_at_k, mrr_at_k,
                                       ndcg_at_k, novelty, popularity_bias, precision_at_k,
                                       recall_at_k, rmse)
from reclib.evaluation.ranking import (RankingResult, evaluate_ranking, evaluate_scores,
                                       lookup_hits)

__all__ = ["RankingResult", "auc", "catalogue_coverage", "evaluate_ranking", "evaluate_scores",
           "hit_rate_at_k", "intra_list_diversity", "log_loss", "lookup_hits", "mae", "map_at_k",
           "mrr_at_k", "ndcg_at_k", "novelty", "popularity_bias", "precision_at_k",
           "recall_at_k", "rmse", "top_k"]

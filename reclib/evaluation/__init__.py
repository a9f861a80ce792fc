"""Evaluation (every notebook from 00 on): metrics, batched top-K evaluation and the protocols
P1-P5 that fix each split, its validation carve-out, candidates and metrics; bootstrap intervals
and paired tests (:mod:`~reclib.evaluation.uncertainty`), beyond-accuracy metrics
(:mod:`~reclib.evaluation.beyond`), and metrics averaged over every order of tied scores
(:mod:`~reclib.evaluation.tie_aware`)."""

from reclib.base import top_k
from reclib.evaluation.beyond import (gini_index, item_bucket_table, per_user_diversity,
                                      per_user_novelty, popularity_percentile, sampled_ranking,
                                      serendipity, user_bucket_table)
from reclib.evaluation.leaderboard import Leaderboard, LeaderboardFailed, leaderboard
from reclib.evaluation.metrics import (auc, catalogue_coverage, hit_rate_at_k,
                                       intra_list_diversity, log_loss, mae, map_at_k, mrr_at_k,
                                       ndcg_at_k, novelty, popularity_bias, precision_at_k,
                                       recall_at_k, rmse)
from reclib.evaluation.protocols import P1, P2, P3, P4, P5, PROTOCOLS, Protocol, Split
from reclib.evaluation.ranking import EvaluationResult, evaluate_scores, lookup_hits, ranking_result
from reclib.evaluation.tie_aware import tie_averaged_metrics
from reclib.evaluation.uncertainty import (bootstrap_auc, bootstrap_interval, bootstrap_ratio,
                                           holm, paired_auc_difference, paired_difference)

__all__ = ["P1", "P2", "P3", "P4", "P5", "PROTOCOLS", "EvaluationResult", "Leaderboard", "LeaderboardFailed", "Protocol", "Split",
           "auc", "bootstrap_auc", "bootstrap_interval", "bootstrap_ratio", "catalogue_coverage",
           "evaluate_scores", "gini_index", "hit_rate_at_k", "holm",
           "intra_list_diversity", "item_bucket_table", "leaderboard", "log_loss", "lookup_hits", "mae",
           "map_at_k", "mrr_at_k", "ndcg_at_k", "novelty", "paired_auc_difference", "paired_difference",
           "per_user_diversity", "per_user_novelty", "popularity_bias", "popularity_percentile",
           "precision_at_k", "ranking_result", "recall_at_k", "rmse", "sampled_ranking",
           "serendipity", "tie_averaged_metrics", "top_k",
           "user_bucket_table"]

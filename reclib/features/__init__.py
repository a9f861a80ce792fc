"""Stages 3-4, content and text features (notebooks 03, 04).

Classic content (genres, TF-IDF, user profiles, a content-based recommender), BERT-family sentence
embeddings with ``transformers`` and a safe embedding cache, user interest vectors, recommendation
from free text and a CF + text hybrid; semantic IDs (residual quantisation of item vectors, the
codes generative retrieval spells); feature declarations for the interaction models of
notebook 07 (``Categorical``, ``MultiCategorical``, ``Numeric``, ``Vector``, ``FeatureSpace``).
"""

from reclib.features.cache import EmbeddingCache, text_key
from reclib.features.content import (ContentRecommender, ItemFeatures, check_item_features, genre_matrix, item_text, l2_normalize,
                                     tfidf_matrix, user_profiles)
from reclib.features.interest import (FeatureToFactorRecommender, HybridRecommender, recommend_for_text, softmax_scores,
                                      standardize_rows)
from reclib.features.semantic_ids import ResidualQuantizer, codebook_usage, prefix_purity, semantic_ids
from reclib.features.specs import (Categorical, FeatureSpace, FeatureSpec, MultiCategorical, Numeric,
                                   Vector)
from reclib.features.text import DEFAULT_MODEL, TextEncoder, pool, resolve_model

__all__ = ["DEFAULT_MODEL", "Categorical", "ContentRecommender", "ItemFeatures", "check_item_features", "EmbeddingCache", "FeatureSpace", "FeatureSpec",
           "FeatureToFactorRecommender", "HybridRecommender", "MultiCategorical", "Numeric", "Vector",
           "ResidualQuantizer", "TextEncoder", "codebook_usage", "prefix_purity", "semantic_ids", "genre_matrix", "item_text", "l2_normalize", "pool", "recommend_for_text",
           "resolve_model", "softmax_scores", "standardize_rows", "text_key", "tfidf_matrix",
           "user_profiles"]

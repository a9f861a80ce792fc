"""Stages 5-7, deep models in Keras 3 (notebooks 04-07): written with ``keras.ops`` and Keras layers
only, so every model runs on the TensorFlow (default), JAX or PyTorch backend."""

from reclib.features.specs import Categorical, FeatureSpace, MultiCategorical, Numeric, Vector
from reclib.models.code_trie import CodeTrie
from reclib.models.feature_inputs import field_embedding, keras_input, keras_inputs, space_embeddings
from reclib.models.generative_retrieval import GenerativeRetrievalRecommender, GenerativeSASRec
from reclib.models.item_lm import ItemGPT2Recommender
from reclib.models.lm_reranker import CausalLMReranker, save_tiny_causal_lm
from reclib.models.interaction import build_ctr_model, field_vectors
from reclib.models.layers import (CrossLayer, FieldAttention, FMInteraction, MaskedMeanPooling, StackFields,
                                 fm_interaction)
from reclib.models.mlp import fit_binary_classifier, mlp_classifier
from reclib.models.ncf import NeuMF, PairwiseScorer
from reclib.models.recommenders import NCF, KerasRecommender, TwoTowerRecommender
from reclib.models.reranker import ShortlistReranker, ShortlistScorer
from reclib.models.shortlist import ShortlistRecommender, random_order_ndcg, shortlist_ndcg
from reclib.models.retrieval import TwoTower
from reclib.models.sequence_encoders import RecurrentEncoder, SASRec, recurrent_step
from reclib.models.hstu import HSTU, HSTUBlock, hstu_block_numpy
from reclib.models.sequential import HSTURecommender, RecurrentRecommender, SASRecRecommender, SequentialRecommender
from reclib.models.tasks import NextItemTask, PairwiseTask, PointwiseTask, RetrievalTask, ShortlistTask
from reclib.models.text_tower import TextTowerRecommender

__all__ = ["NCF", "CausalLMReranker", "Categorical", "CodeTrie", "CrossLayer", "FMInteraction", "FeatureSpace", "FieldAttention", "GenerativeRetrievalRecommender", "GenerativeSASRec", "HSTU", "HSTUBlock", "HSTURecommender", "hstu_block_numpy",
           "ItemGPT2Recommender", "KerasRecommender", "MaskedMeanPooling", "MultiCategorical", "NeuMF", "NextItemTask", "Numeric",
           "PairwiseScorer", "PairwiseTask", "PointwiseTask", "RecurrentEncoder", "RecurrentRecommender",
           "RetrievalTask", "SASRec", "SASRecRecommender", "SequentialRecommender", "ShortlistRecommender", "ShortlistReranker", "ShortlistScorer",
           "ShortlistTask", "StackFields", "TextTowerRecommender", "TwoTower", "TwoTowerRecommender", "Vector", "build_ctr_model", "field_embedding", "field_vectors",
           "fit_binary_classifier", "keras_input", "keras_inputs", "space_embeddings", "fm_interaction", "mlp_classifier", "random_order_ndcg", "recurrent_step",
           "save_tiny_causal_lm", "shortlist_ndcg"]

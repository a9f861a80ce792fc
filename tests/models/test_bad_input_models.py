"""Bad input to the model constructors, training loops and feature helpers: each is rejected
before any work starts, with an error naming the culprit; a fit that diverges stops with a
``FloatingPointError`` naming the epoch (or iteration) and the learning rate / regularisation.

Wrong types raise :class:`~reclib.checks.ParameterTypeError` (a ``TypeError`` and a
``ValueError``), everything else ``ValueError``; the Keras models run on the TensorFlow backend.
"""

from __future__ import annotations

import functools
import re

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from reclib.cf import (BPR, EASE, BaselinePredictor, BiasedMF, ImplicitALS, ItemKNN, NeighborhoodCF,
                       als_half_step, bpr_loss_and_grads, corated_similarity, cosine_item_similarity,
                       ease_weights, fit_biases, implicit_als_half_step, implicit_als_loss,
                       mf_loss_and_grads)
from reclib.cf.bpr import bpr_sgd_step
from reclib.cf.mf import mf_sgd_step
from reclib.checks import ParameterTypeError
from reclib.features import (ContentRecommender, FeatureToFactorRecommender, HybridRecommender,
                             genre_matrix, item_text, l2_normalize, recommend_for_text, softmax_scores,
                             standardize_rows, tfidf_matrix, user_profiles)
from reclib.features.content import ItemFeatures
from reclib.models import (NCF, Categorical, CrossLayer, FeatureSpace, NeuMF, Numeric, PairwiseScorer,
                           TwoTower, TwoTowerRecommender, build_ctr_model, fit_binary_classifier,
                           mlp_classifier)
from reclib.models.tasks import RetrievalTask
from reclib.training import (InBatchDataset, NegativeSamplingDataset, RankingEarlyStopping,
                             StopOnNonFiniteLoss, set_seed)

NAN, INF = float("nan"), float("inf")
TYPE = ParameterTypeError

# -- the classes of bad value, per kind of argument: (value, expected exception) --------------
POSITIVE = [(NAN, ValueError), (INF, ValueError), (-INF, ValueError), (0, ValueError),
            (-1.0, ValueError), ("1", TYPE), (None, TYPE), (True, TYPE)]
NON_NEGATIVE = [(NAN, ValueError), (INF, ValueError), (-INF, ValueError), (-1e-3, ValueError),
                ("0", TYPE), (None, TYPE), (True, TYPE)]
POSITIVE_INT = [(0, ValueError), (-2, ValueError), (2.0, TYPE), (NAN, TYPE), ("2", TYPE), (None, TYPE),
                (True, TYPE)]
NON_NEGATIVE_INT = [(-1, ValueError), (1.0, TYPE), ("1", TYPE), (None, TYPE), (True, TYPE)]
CHOICE = [("bogus", ValueError), (None, ValueError), (3, ValueError)]
FLAG = [("yes", ValueError), (None, ValueError), (2, ValueError)]
VERBOSE = [("yes", ValueError), (None, ValueError), (3, ValueError), (-1, ValueError)]   # 0, 1, 2 (check_verbose)
KERAS_VERBOSE = [("loud", ValueError), (3, ValueError), (-1, ValueError), (None, ValueError)]
DROPOUT = [(-0.1, ValueError), (1.0, ValueError), (NAN, ValueError), (INF, ValueError), ("0.1", TYPE),
           (None, TYPE)]
PROBABILITY = [(-0.1, ValueError), (1.5, ValueError), (NAN, ValueError), (INF, ValueError),
               ("0.5", TYPE), (None, TYPE)]
SIZES = [("64", TYPE), (64, TYPE), (None, TYPE), ((64.0,), TYPE), ((0,), ValueError), ((-8,), ValueError),
         ((True,), TYPE), ((8, "4"), TYPE)]


def call(fn, **base):
    """``fn`` with ``base`` keyword arguments, overridden by those of the call."""
    return lambda **kwargs: fn(**{**base, **kwargs})


def cases(label: str, make, *groups) -> list:
    """One case per (argument, bad value): ``groups`` are (bad values, argument names)."""
    return [pytest.param(make, {name: value}, error, name, id=f"{label}-{name}={value!r}")
            for bad, names in groups for name in names for value, error in bad]


def case(label: str, make, culprit: str, error=ValueError, **kwargs):
    """One hand-written case; ``culprit`` is the name the message must hold."""
    return pytest.param(make, kwargs, error, culprit, id=f"{label}-{culprit}-{'-'.join(kwargs)}")


def fit_with_features(model, item_features):
    """``model.fit(PROFILE_FRAME, item_features=item_features)``: the side data goes to fit."""
    return model.fit(PROFILE_FRAME, item_features=item_features)


# -- small valid inputs the cases start from ---------------------------------------------------
R = np.array([[5, 3, 0, 1], [4, 0, 0, 1], [1, 1, 0, 5], [0, 1, 5, 4]], dtype=float)
RATINGS = sp.csr_matrix(R)
U, I = np.nonzero(R)
RNG = np.random.default_rng(0)
P, Q, BU, BI = RNG.normal(size=(4, 2)), RNG.normal(size=(4, 2)), np.zeros(4), np.zeros(4)
WITH_NAN = np.array([[1.0, NAN], [0.0, 1.0], [1.0, 1.0]])
WITH_INF = np.array([[1.0, 0.0], [INF, 1.0], [1.0, 1.0]])
PROFILE_FRAME = pd.DataFrame({"user_id": [7, 7, 8], "item_id": [1, 2, 3], "rating": [5.0, 3.0, 4.0],
                              "timestamp": [10, 0, 0]})
ITEMS = pd.DataFrame({"title": ["Alpha", "Beta"], "year": [1995.0, None], "genres": [["Comedy"], ["Drama"]]})


class FakeEncoder:
    def __init__(self, vectors=None):
        self.vectors = vectors

    def encode(self, texts):
        return np.ones((len(texts), 2)) if self.vectors is None else self.vectors


@functools.cache
def fitted_space() -> FeatureSpace:
    frame = pd.DataFrame({"color": ["red", "blue", "red", "green"], "x": [0.1, 0.5, -1.0, 2.0]})
    return FeatureSpace([Categorical("color"), Numeric("x")]).fit(frame)


def compiled_classifier():
    return mlp_classifier(3, (4,))


X3 = np.random.default_rng(1).normal(size=(10, 3))
Y3 = (X3[:, 0] > 0).astype(float)

# -- constructors of the recommenders (collaborative filtering) ---------------------------------
CF_CASES = [
    *cases("BaselinePredictor", BaselinePredictor, (NON_NEGATIVE, ["reg_user", "reg_item"]),
           (POSITIVE_INT, ["epochs"])),
    *cases("ItemKNN", ItemKNN, ([v for v in POSITIVE_INT if v[0] is not None], ["n_neighbors"]),
           (NON_NEGATIVE, ["shrinkage"])),
    *cases("NeighborhoodCF", NeighborhoodCF, (CHOICE, ["kind", "similarity"]),
           (POSITIVE_INT, ["k", "min_support", "batch_size"]),
           (NON_NEGATIVE, ["shrinkage", "reg_user", "reg_item"])),
    *cases("BiasedMF", BiasedMF, (POSITIVE_INT, ["n_factors", "epochs", "batch_size"]),
           (NON_NEGATIVE, ["reg", "init_std"]), (POSITIVE, ["learning_rate"]), (CHOICE, ["solver"]),
           (NON_NEGATIVE_INT, ["random_state"]), (VERBOSE, ["verbose"])),
    *cases("ImplicitALS", ImplicitALS, (POSITIVE_INT, ["n_factors", "epochs"]),
           (POSITIVE, ["reg", "alpha", "init_std"]), (NON_NEGATIVE, ["reg_exponent"]),
           (NON_NEGATIVE_INT, ["random_state"]), (VERBOSE, ["verbose"])),
    *cases("BPR", BPR, (POSITIVE_INT, ["n_factors", "epochs", "batch_size"]),
           (NON_NEGATIVE, ["reg"]), (POSITIVE, ["learning_rate", "init_std"]),
           (NON_NEGATIVE_INT, ["random_state"]), (VERBOSE, ["verbose"])),
    *cases("EASE", EASE, (POSITIVE, ["reg"])),
]

# -- the CF building blocks: public functions that take arrays and numbers ----------------------
CF_FUNCTION_CASES = [
    *cases("fit_biases", call(fit_biases, users=U, items=I, ratings=R[U, I], n_users=4, n_items=4),
           (NON_NEGATIVE, ["reg_user", "reg_item"]), (POSITIVE_INT, ["n_iter", "n_users"])),
    case("fit_biases", call(fit_biases, users=U, items=I, n_users=4, n_items=4), "ratings",
         ratings=np.where(np.arange(len(U)) == 2, NAN, R[U, I])),
    case("fit_biases", call(fit_biases, users=U, ratings=R[U, I], n_users=4, n_items=4), "items",
         items=I + 1),
    case("fit_biases", call(fit_biases, users=U, ratings=R[U, I], n_users=4, n_items=4), "items",
         items=I.astype(float)),
    case("fit_biases", call(fit_biases, users=U, items=I, n_users=4, n_items=4), "ratings",
         ratings=R[U, I][:-1]),
    *cases("ease_weights", call(ease_weights, matrix=RATINGS), (POSITIVE, ["reg"])),
    case("ease_weights", call(ease_weights, reg=1.0), "matrix", matrix=sp.csr_matrix(WITH_NAN)),
    *cases("cosine_item_similarity", call(cosine_item_similarity, matrix=RATINGS),
           (NON_NEGATIVE, ["shrinkage"]), (POSITIVE_INT, ["block_size"])),
    case("cosine_item_similarity", call(cosine_item_similarity), "n_neighbors", TYPE,
         matrix=RATINGS, n_neighbors=1.5),
    case("cosine_item_similarity", call(cosine_item_similarity), "matrix", matrix=sp.csr_matrix(WITH_INF)),
    *cases("corated_similarity", call(corated_similarity, ratings=RATINGS, similarity="cosine"),
           (CHOICE, ["similarity"]), (NON_NEGATIVE, ["shrinkage"]), (POSITIVE_INT, ["min_support"])),
    case("corated_similarity", call(corated_similarity), "ratings", ratings=sp.csr_matrix(WITH_NAN)),
    case("corated_similarity", call(corated_similarity, ratings=RATINGS), "baseline",
         baseline=sp.csr_matrix(np.where(R > 0, NAN, 0.0))),
    *cases("als_half_step", call(als_half_step, ratings=RATINGS, other=Q, other_bias=BI, mu=3.0),
           (NON_NEGATIVE, ["reg"])),
    case("als_half_step", call(als_half_step, ratings=RATINGS, other=Q, other_bias=BI, reg=0.1), "mu",
         mu=NAN),
    case("als_half_step", call(als_half_step, ratings=RATINGS, other_bias=BI, mu=3.0, reg=0.1), "other",
         other=np.where(Q > 0, INF, Q)),
    case("als_half_step", call(als_half_step, ratings=RATINGS, other=Q, mu=3.0, reg=0.1), "other_bias",
         other_bias=np.zeros(3)),
    *cases("implicit_als_half_step", call(implicit_als_half_step, strength=RATINGS, other=Q, alpha=1.0, reg=0.1),
           (POSITIVE, ["alpha", "reg"]), (NON_NEGATIVE, ["reg_exponent"])),
    case("implicit_als_half_step", call(implicit_als_half_step, strength=RATINGS, alpha=1.0, reg=0.1),
         "other", other=np.full((4, 2), NAN)),
    case("implicit_als_half_step", call(implicit_als_half_step, other=Q, alpha=1.0, reg=0.1),
         "strength", strength=sp.csr_matrix(np.where(R > 0, INF, 0.0))),
    *cases("implicit_als_loss", call(implicit_als_loss, strength=RATINGS, X=P, Y=Q, alpha=1.0, reg=0.1),
           (POSITIVE, ["alpha", "reg"])),
    *cases("mf_loss_and_grads", call(mf_loss_and_grads, P=P, Q=Q, b_u=BU, b_i=BI, mu=3.0, users=U,
                                     items=I, ratings=R[U, I], reg=0.1), (NON_NEGATIVE, ["reg"])),
    *cases("mf_sgd_step", call(mf_sgd_step, P=P.copy(), Q=Q.copy(), b_u=BU.copy(), b_i=BI.copy(), mu=3.0,
                               users=U, items=I, ratings=R[U, I], reg=0.1, lr=0.01), (POSITIVE, ["lr"])),
    *cases("bpr_loss_and_grads", call(bpr_loss_and_grads, P=P, Q=Q, b=BI, users=U[:3], pos=I[:3],
                                      neg=np.array([2, 2, 2]), reg=0.1), (NON_NEGATIVE, ["reg"])),
    *cases("bpr_sgd_step", call(bpr_sgd_step, P=P.copy(), Q=Q.copy(), b=BI.copy(), users=U[:3],
                                pos=I[:3], neg=np.array([2, 2, 2]), reg=0.1, lr=0.01),
           (POSITIVE, ["lr"])),
]

# -- the Keras models, their recommenders and training helpers ----------------------------------
KERAS_CASES = [
    *cases("NeuMF", call(NeuMF, n_users=5, n_items=6), (POSITIVE_INT, ["n_users", "n_items", "gmf_dim"]),
           (CHOICE, ["variant"]), (SIZES, ["mlp_dims"]), (NON_NEGATIVE, ["l2"]), (DROPOUT, ["dropout"])),
    case("NeuMF", call(NeuMF, n_users=5, n_items=6), "even", mlp_dims=(7, 4)),
    case("NeuMF", call(NeuMF, n_users=5, n_items=6), "mlp_dims", mlp_dims=()),
    case("PairwiseScorer", PairwiseScorer, "scorer", TYPE, scorer="neumf"),
    *cases("TwoTower", call(TwoTower, n_users=5, n_items=6),
           (POSITIVE_INT, ["n_users", "n_items", "embedding_dim"]), (SIZES, ["tower_dims"]),
           (NON_NEGATIVE_INT, ["n_genres", "text_dim"]),
           (FLAG, ["use_history", "log_q_correction", "use_user_id"]), (DROPOUT, ["id_dropout"]),
           (POSITIVE, ["temperature"]), (NON_NEGATIVE, ["l2"])),
    case("TwoTower", call(TwoTower, n_users=5, n_items=6, use_history=False), "use_user_id",
         use_user_id=False),
    *cases("RetrievalTask", RetrievalTask, (POSITIVE, ["temperature"])),
    *cases("NCF", NCF, (CHOICE, ["variant", "loss"]), (POSITIVE_INT, ["gmf_dim", "n_negatives", "epochs",
                                                                      "batch_size"]),
           (SIZES, ["mlp_dims"]), (NON_NEGATIVE, ["l2"]), (DROPOUT, ["dropout"]),
           (POSITIVE, ["learning_rate"]), (NON_NEGATIVE_INT, ["patience", "random_state"]),
           (KERAS_VERBOSE, ["verbose"])),
    case("NCF", NCF, "mlp_dims", mlp_dims=(15, 8)),
    case("NCF", NCF, "monitor", TYPE, monitor=None),
    case("NCF", NCF, "monitor", TYPE, monitor=""),
    *cases("TwoTowerRecommender", TwoTowerRecommender,
           (POSITIVE_INT, ["embedding_dim", "history_length", "epochs", "batch_size"]),
           (SIZES, ["tower_dims"]), (FLAG, ["use_history", "log_q_correction", "use_user_id"]),
           (DROPOUT, ["id_dropout"]), (POSITIVE, ["temperature", "learning_rate"]),
           (NON_NEGATIVE, ["l2"]), (NON_NEGATIVE_INT, ["patience", "random_state"]),
           (KERAS_VERBOSE, ["verbose"])),
    case("TwoTowerRecommender", call(TwoTowerRecommender, use_history=False),
         "use_user_id", use_user_id=False),
    case("TwoTowerRecommender.fit", call(fit_with_features, model=TwoTowerRecommender(epochs=1)),
         "item_features.vectors", TYPE,
         item_features=ItemFeatures([1, 2, 3], vectors=sp.csr_matrix(np.eye(3)))),
    case("TwoTowerRecommender.fit", call(fit_with_features, model=TwoTowerRecommender(epochs=1)),
         "item_features", TYPE, item_features=np.eye(3)),
    case("TwoTowerRecommender.fit", call(fit_with_features, model=TwoTowerRecommender(epochs=1)),
         "item_features.item_ids", item_features=ItemFeatures([1, 2], vectors=np.eye(2))),
    *cases("CrossLayer", CrossLayer, (NON_NEGATIVE_INT, ["rank"]), (NON_NEGATIVE, ["l2"])),
    *cases("mlp_classifier", call(mlp_classifier, input_dim=4), (POSITIVE_INT, ["input_dim"]),
           (SIZES, ["hidden_units"]), (DROPOUT, ["dropout"]), (POSITIVE, ["learning_rate"])),
    case("mlp_classifier", call(mlp_classifier, input_dim=4), "name", TYPE, name=None),
    *cases("build_ctr_model", lambda **kw: build_ctr_model(**{"kind": "dcnv2", "space": fitted_space(), **kw}),
           (CHOICE, ["kind", "cross_structure"]), (POSITIVE_INT, ["embedding_dim", "attention_heads"]),
           (SIZES, ["hidden_units"]), (DROPOUT, ["dropout"]), (NON_NEGATIVE, ["l2"]),
           (NON_NEGATIVE_INT, ["cross_layers", "cross_rank", "attention_layers"]),
           (POSITIVE, ["learning_rate"])),
    case("build_ctr_model", call(build_ctr_model, kind="fm"), "space", TYPE, space={"color": 1}),
    *cases("fit_binary_classifier",
           lambda **kw: fit_binary_classifier(**{"model": compiled_classifier(), "x_train": X3, "y_train": Y3,
                                                 "x_valid": X3, "y_valid": Y3, **kw}),
           (POSITIVE_INT, ["epochs", "batch_size"]), (NON_NEGATIVE_INT, ["patience", "random_state"]),
           (KERAS_VERBOSE, ["verbose"])),
    case("fit_binary_classifier", call(fit_binary_classifier, x_train=X3, y_train=Y3, x_valid=X3,
                                       y_valid=Y3), "model", TYPE, model=None),
    case("fit_binary_classifier", lambda **kw: fit_binary_classifier(compiled_classifier(), **kw), "x_train",
         x_train=np.where(X3 > 1, NAN, X3), y_train=Y3, x_valid=X3, y_valid=Y3),
    case("fit_binary_classifier", lambda **kw: fit_binary_classifier(compiled_classifier(), **kw), "x_valid",
         x_train=X3, y_train=Y3, x_valid={"features": np.where(X3 > 1, INF, X3)}, y_valid=Y3),
    case("fit_binary_classifier", lambda **kw: fit_binary_classifier(compiled_classifier(), **kw), "y_train",
         x_train=X3, y_train=Y3 * 2, x_valid=X3, y_valid=Y3),
    case("fit_binary_classifier", lambda **kw: fit_binary_classifier(compiled_classifier(), **kw), "y_valid",
         x_train=X3, y_train=Y3, x_valid=X3, y_valid=Y3[:5]),
    case("fit_binary_classifier", lambda **kw: fit_binary_classifier(compiled_classifier(), **kw), "y_train",
         x_train=X3, y_train=np.where(Y3 > 0, NAN, 0.0), x_valid=X3, y_valid=Y3),
    case("fit_binary_classifier", lambda **kw: fit_binary_classifier(compiled_classifier(), **kw), "x_train",
         TYPE, x_train=np.full((10, 3), "a"), y_train=Y3, x_valid=X3, y_valid=Y3),
    *cases("RankingEarlyStopping", call(RankingEarlyStopping, validate=lambda: {"ndcg": 0.1}),
           (NON_NEGATIVE_INT, ["patience"]), (FLAG, ["restore_best_weights"])),
    case("RankingEarlyStopping", RankingEarlyStopping, "validate", TYPE, validate={"ndcg": 0.1}),
    case("RankingEarlyStopping", call(RankingEarlyStopping, validate=lambda: {}), "monitor", TYPE, monitor=3),
    *cases("StopOnNonFiniteLoss", StopOnNonFiniteLoss,           # None is allowed for both
           ([v for v in NON_NEGATIVE_INT if v[0] is not None], ["n_epochs"]),
           ([v for v in POSITIVE if v[0] is not None], ["learning_rate"])),
    *cases("NegativeSamplingDataset", call(NegativeSamplingDataset, users=np.arange(3), items=np.arange(3),
                                           n_items=5),
           (POSITIVE_INT, ["n_items", "n_negatives", "batch_size"]), (CHOICE, ["mode"]),
           (NON_NEGATIVE_INT, ["random_state"])),
    case("NegativeSamplingDataset", call(NegativeSamplingDataset, users=np.arange(3), n_items=5), "items",
         items=np.array([0, 1, 5])),
    case("NegativeSamplingDataset", call(NegativeSamplingDataset, items=np.arange(3), n_items=5), "users",
         TYPE, users=np.array([0.0, 1.0, 2.0])),
    case("NegativeSamplingDataset", call(NegativeSamplingDataset, items=np.arange(3), n_items=5), "users",
         users=np.array([0, -1, 2])),
    case("NegativeSamplingDataset", call(NegativeSamplingDataset, items=np.arange(3), n_items=5), "users",
         users=np.arange(2)),
    *cases("InBatchDataset", call(InBatchDataset, features={"row": np.arange(8)}),
           (POSITIVE_INT, ["batch_size"]), (NON_NEGATIVE_INT, ["random_state"])),
    case("InBatchDataset", call(InBatchDataset, batch_size=2), "log_q",
         features={"row": np.arange(4), "log_q": np.array([0.0, NAN, 0.0, 0.0])}),
    case("InBatchDataset", call(InBatchDataset, features={"row": np.arange(3)}, batch_size=2), "text",
         lookups={"text": (WITH_INF, "row")}),
    case("InBatchDataset", InBatchDataset, "features", TYPE, features=[np.arange(4)]),
    *cases("set_seed", set_seed, (NON_NEGATIVE_INT, ["seed"])),
]

# -- content and text features ----------------------------------------------------------------
FEATURE_CASES = [
    *cases("ContentRecommender", ContentRecommender,
           (CHOICE, ["weighting"]), (POSITIVE, ["half_life_days"])),
    case("ItemFeatures", call(ItemFeatures, item_ids=[1, 2, 3]), "item_features.vectors",
         vectors=WITH_NAN),
    case("ItemFeatures", call(ItemFeatures, item_ids=[1, 2, 3]), "item_features.vectors",
         vectors=sp.csr_matrix(WITH_INF)),
    case("ItemFeatures", call(ItemFeatures, item_ids=[1, 2, 3]), "item_features.vectors",
         vectors=np.ones(3)),
    case("ItemFeatures", call(ItemFeatures, item_ids=[1, 2, 3]), "item_features.vectors", TYPE,
         vectors=[[1.0], [2.0], [3.0]]),
    case("ItemFeatures", call(ItemFeatures, item_ids=[1, 2, 3]), "item_features.categories",
         categories=WITH_INF),
    case("ItemFeatures", call(ItemFeatures, item_ids=[1, 2, 3]), "item_features.categories",
         categories=np.zeros(3)),
    case("ItemFeatures", call(ItemFeatures, item_ids=[1, 2, 3]), "item_features.texts", TYPE,
         texts="one string"),
    case("ItemFeatures", call(ItemFeatures, item_ids=[1, 2, 3]), "item_features.texts",
         texts=["a", None, "c"]),
    case("ItemFeatures", call(ItemFeatures, item_ids=[1, 2, 3, 4, 5]), "item_features.vectors",
         vectors=np.zeros((3, 4))),
    case("ItemFeatures", call(ItemFeatures, vectors=np.eye(3)), "item_features.item_ids",
         item_ids=[1, 2, 2]),
    case("ItemFeatures", call(ItemFeatures, vectors=np.eye(3)), "item_features.item_ids",
         item_ids=[1, None, 3]),
    case("ItemFeatures", ItemFeatures, "item_features.item_ids", item_ids=[]),
    case("ItemFeatures", call(ItemFeatures, vectors=np.eye(3)), "item_features.vectors",
         item_ids=[1, 2]),
    case("ContentRecommender.fit", call(fit_with_features, model=ContentRecommender()), "item_features",
         item_features=None),
    case("ContentRecommender.fit", call(fit_with_features, model=ContentRecommender()),
         "item_features.vectors", item_features=ItemFeatures([1, 2, 3])),
    case("ContentRecommender.fit", call(fit_with_features, model=ContentRecommender()),
         "item_features.item_ids", item_features=ItemFeatures([1, 2], vectors=np.eye(2))),
    *cases("user_profiles", call(user_profiles, interactions=PROFILE_FRAME, item_vectors=np.eye(3),
                                 item_ids=[1, 2, 3]),
           (CHOICE, ["weighting"]), (POSITIVE, ["half_life_days"])),
    case("user_profiles", call(user_profiles, interactions=PROFILE_FRAME, item_ids=[1, 2, 3]),
         "item_vectors", item_vectors=WITH_NAN),
    case("user_profiles", call(user_profiles, item_vectors=np.eye(3), item_ids=[1, 2, 3], weighting="rating"),
         "'rating'", interactions=PROFILE_FRAME.assign(rating=[5.0, NAN, 4.0])),
    case("user_profiles", call(user_profiles, item_vectors=np.eye(3), item_ids=[1, 2, 3], weighting="recency"),
         "'timestamp'", interactions=PROFILE_FRAME.assign(timestamp=[0.0, INF, 1.0])),
    case("user_profiles", call(user_profiles, item_vectors=np.eye(3), item_ids=[1, 2, 3]), "'user_id'",
         interactions=PROFILE_FRAME.assign(user_id=[7, None, 8])),
    case("user_profiles", call(user_profiles, item_vectors=np.eye(3), item_ids=[1, 2, 3]), "'item_id'",
         interactions=PROFILE_FRAME.drop(columns="item_id")),
    case("l2_normalize", l2_normalize, "vectors", vectors=WITH_NAN),
    case("l2_normalize", l2_normalize, "vectors", vectors=WITH_INF),
    case("l2_normalize", l2_normalize, "vectors", vectors=sp.csr_matrix(WITH_NAN)),
    case("l2_normalize", l2_normalize, "vectors", vectors=np.ones(3)),
    case("genre_matrix", genre_matrix, "'genres'", genres=pd.Series([["Comedy"], "Drama"])),
    case("genre_matrix", genre_matrix, "'genres'", genres=pd.Series([["Comedy"], None])),
    case("genre_matrix", genre_matrix, "'genres'", genres=pd.Series([["Comedy"], NAN])),
    case("genre_matrix", genre_matrix, "'genres'", genres=pd.Series([["Comedy"], [3]])),
    case("genre_matrix", call(genre_matrix, genres=pd.Series([["Comedy"]])), "vocabulary",
         vocabulary=["Comedy", "Comedy"]),
    case("genre_matrix", call(genre_matrix, genres=pd.Series([["Comedy"]])), "vocabulary", TYPE,
         vocabulary="Comedy"),
    case("item_text", item_text, "'title'", items=ITEMS.assign(title=["Alpha", None])),
    case("item_text", item_text, "'year'", items=ITEMS.assign(year=[1995.5, None])),
    case("item_text", item_text, "'year'", items=ITEMS.assign(year=[INF, 1995.0])),
    case("item_text", item_text, "'genres'", items=ITEMS.assign(genres=[["Comedy"], NAN])),
    case("item_text", item_text, "'genres'", items=ITEMS.assign(genres=[["Comedy"], "Drama"])),
    case("tfidf_matrix", tfidf_matrix, "texts", texts=[]),
    case("tfidf_matrix", tfidf_matrix, "texts", TYPE, texts="red apple"),
    case("tfidf_matrix", tfidf_matrix, "texts", TYPE, texts=["red apple", None]),
    case("tfidf_matrix", tfidf_matrix, "texts", TYPE, texts=["red apple", NAN]),
    *cases("softmax_scores", call(softmax_scores, scores=np.ones((1, 3))), (POSITIVE, ["temperature"])),
    case("softmax_scores", softmax_scores, "scores", scores=np.array([[1.0, NAN, 3.0]])),
    case("softmax_scores", softmax_scores, "scores", scores=np.array([[1.0, INF, 3.0]])),
    case("softmax_scores", softmax_scores, "scores", scores=np.ones((2, 0))),
    case("standardize_rows", standardize_rows, "scores", scores=np.array([[1.0, NAN]])),
    case("standardize_rows", standardize_rows, "scores", scores=np.array([[-INF, 1.0]])),
    case("standardize_rows", standardize_rows, "scores", scores=np.ones(3)),
    *cases("recommend_for_text", call(recommend_for_text, queries=["a"], encoder=FakeEncoder(),
                                      item_vectors=np.eye(2), item_ids=["x", "y"]),
           (POSITIVE_INT, ["k"]), (POSITIVE, ["temperature"])),
    case("recommend_for_text", call(recommend_for_text, encoder=FakeEncoder(), item_vectors=np.eye(2),
                                    item_ids=["x", "y"]), "queries", queries=[]),
    case("recommend_for_text", call(recommend_for_text, encoder=FakeEncoder(), item_vectors=np.eye(2),
                                    item_ids=["x", "y"]), "queries", TYPE, queries="a"),
    case("recommend_for_text", call(recommend_for_text, encoder=FakeEncoder(), item_vectors=np.eye(2),
                                    item_ids=["x", "y"]), "queries", queries=["a", None]),
    case("recommend_for_text", call(recommend_for_text, queries=["a"], encoder=FakeEncoder(),
                                    item_ids=["x", "y"]), "item_vectors", item_vectors=WITH_NAN[:2]),
    case("recommend_for_text", call(recommend_for_text, queries=["a"], encoder=FakeEncoder(),
                                    item_vectors=np.eye(2)), "item_ids", item_ids=["x"]),
    case("recommend_for_text", call(recommend_for_text, queries=["a"], item_vectors=np.eye(2),
                                    item_ids=["x", "y"]), "encoder", TYPE, encoder="minilm"),
    case("recommend_for_text", call(recommend_for_text, queries=["a"], item_vectors=np.eye(2),
                                    item_ids=["x", "y"]), "encoder", TYPE, encoder=None),
    case("recommend_for_text", call(recommend_for_text, queries=["a"], item_vectors=np.eye(2),
                                    item_ids=["x", "y"]), "encoder.encode",
         encoder=FakeEncoder(np.array([[NAN, 1.0]]))),
    case("recommend_for_text", call(recommend_for_text, queries=["a"], item_vectors=np.eye(2),
                                    item_ids=["x", "y"]), "query vectors",
         encoder=FakeEncoder(np.ones((1, 3)))),
    *cases("HybridRecommender", call(HybridRecommender, cf_model=EASE(),
                                     text_model=ContentRecommender()),
           (PROBABILITY, ["text_weight"])),
    case("HybridRecommender", call(HybridRecommender, text_model=ContentRecommender()),
         "cf_model", TYPE, cf_model="ease"),
    *cases("FeatureToFactorRecommender", call(FeatureToFactorRecommender, factor_model=ImplicitALS()),
           (NON_NEGATIVE, ["reg"]), (FLAG, ["map_warm_items"])),
    case("FeatureToFactorRecommender.fit",
         call(fit_with_features, model=FeatureToFactorRecommender(ImplicitALS())), "item_features.vectors", TYPE,
         item_features=ItemFeatures([1, 2, 3], vectors=sp.csr_matrix(np.eye(3)))),
    case("FeatureToFactorRecommender.fit",
         call(fit_with_features, model=FeatureToFactorRecommender(ImplicitALS())), "item_features", TYPE,
         item_features=[[1.0], [2.0], [3.0]]),
    case("FeatureToFactorRecommender", FeatureToFactorRecommender, "factor_model", TYPE, factor_model=None),
    case("HybridRecommender.fit", call(fit_with_features, model=HybridRecommender(EASE(), ContentRecommender())),
         "item_features.item_ids", item_features=ItemFeatures([1, 3], vectors=np.eye(2))),
]

ALL_CASES = CF_CASES + CF_FUNCTION_CASES + KERAS_CASES + FEATURE_CASES


@pytest.mark.parametrize("make, kwargs, error, culprit", ALL_CASES)
def test_bad_argument_is_rejected_and_named(make, kwargs, error, culprit):
    with pytest.raises(error, match=re.escape(culprit)):
        make(**kwargs)


def test_type_errors_are_also_value_errors():
    with pytest.raises(TypeError, match="reg"):
        BiasedMF(reg="0.1")
    with pytest.raises(ValueError, match="reg"):
        BiasedMF(reg="0.1")


# -- bad input at fit time --------------------------------------------------------------------
def test_biased_mf_validate_is_a_function_run_after_every_epoch(tiny_ratings):
    with pytest.raises(ParameterTypeError, match="validate"):
        BiasedMF(n_factors=2, epochs=1, verbose=False).fit(tiny_ratings, validate=tiny_ratings)
    calls = []
    model = BiasedMF(n_factors=2, epochs=3, verbose=False).fit(
        tiny_ratings, validate=lambda m: calls.append(m.predict([1], [10])[0]) or {"rmse": float(len(calls))})
    assert model.history_["val_rmse"].tolist() == [1.0, 2.0, 3.0] and len(set(calls)) == 3   # changing model


def test_keras_fit_rejects_a_validate_that_is_not_a_function(tiny_ratings):
    with pytest.raises(ParameterTypeError, match="validate"):
        NCF(epochs=1).fit(tiny_ratings, validate="ndcg")


# -- diverging fits ---------------------------------------------------------------------------
@pytest.mark.parametrize("make, step, culprits", [
    (lambda: BiasedMF(learning_rate=50, n_factors=2, epochs=2, verbose=False), "epoch 1 of 2", ["learning_rate=50", "reg="]),
    (lambda: BiasedMF(learning_rate=50, n_factors=2, epochs=2, batch_size=1, verbose=False), "epoch 1 of 2",
     ["learning_rate=50", "the training loss grew from"]),
    (lambda: BiasedMF(init_std=1e200, n_factors=2, epochs=2, verbose=False), "epoch 1", ["init_std=1e+200"]),
    (lambda: BiasedMF(solver="als", reg=0, n_factors=8, epochs=2, verbose=False), "epoch 1", ["reg=0"]),
    (lambda: BPR(learning_rate=1e4, n_factors=2, epochs=2, verbose=False), "epoch", ["learning_rate=10000.0", "reg="]),
    (lambda: ImplicitALS(alpha=1e300, n_factors=4, epochs=2, verbose=False), "iteration 1 of 2",
     ["alpha=1e+300", "reg="]),
])
def test_diverging_cf_fit_stops_and_names_the_cause(tiny_ratings, make, step, culprits):
    with pytest.raises(FloatingPointError, match="diverged") as err:
        make().fit(tiny_ratings)
    message = str(err.value)
    assert step in message and all(c in message for c in culprits), message


def test_diverging_sgd_on_more_data_becomes_nan_and_is_caught(synthetic_interactions):
    with pytest.raises(FloatingPointError, match=r"epoch 1 of 3 with learning_rate=50.*became nan"):
        BiasedMF(learning_rate=50, n_factors=4, epochs=3, verbose=False).fit(synthetic_interactions)
    with pytest.raises(FloatingPointError, match=r"BPR diverged at epoch 1 of 3 with learning_rate=10000.0"):
        BPR(learning_rate=1e4, n_factors=4, epochs=3, verbose=False).fit(synthetic_interactions)


def test_ncf_divergence_is_caught_before_validation(synthetic_interactions):
    calls = []

    def validate(model):
        calls.append(1)
        return {"ndcg": 0.1}

    with pytest.raises(FloatingPointError, match=r"NCF diverged at epoch 1 of 2 with learning_rate=10000000000.0"):
        NCF(gmf_dim=4, mlp_dims=(8, 4), epochs=2, learning_rate=1e10).fit(synthetic_interactions, validate)
    assert calls == []                    # the broken model was never scored


def test_two_tower_divergence_names_the_learning_rate(synthetic_interactions):
    with pytest.raises(FloatingPointError, match=r"TwoTowerRecommender diverged .*learning_rate=1e\+20"):
        TwoTowerRecommender(embedding_dim=4, tower_dims=(8,), epochs=2, batch_size=512,
                            learning_rate=1e20).fit(synthetic_interactions)


def test_ncf_whose_loss_explodes_without_overflowing_stops(synthetic_interactions):
    # the loss reaches about 4e14 in epoch 1 and then falls: finite, so only the growth check sees it
    with pytest.raises(FloatingPointError, match=r"NCF diverged at epoch 1 of 2 with learning_rate=100000.0: "
                                                 r"the training loss grew from 0.69\d* to \d"):
        NCF(gmf_dim=4, mlp_dims=(8, 4), epochs=2, learning_rate=1e5).fit(synthetic_interactions)


def test_item_gpt2_whose_loss_explodes_stops_naming_the_learning_rate():
    pytest.importorskip("transformers")
    from reclib.models import ItemGPT2Recommender

    rng = np.random.default_rng(0)
    events = pd.DataFrame({"user_id": np.repeat(np.arange(30), 10), "item_id": rng.integers(0, 12, 300),
                           "timestamp": np.tile(np.arange(10), 30)})
    model = ItemGPT2Recommender(max_length=8, embedding_dim=8, n_layers=1, epochs=3, device="cpu",
                                learning_rate=1e5)
    with pytest.raises(FloatingPointError, match=r"ItemGPT2Recommender diverged at epoch 2 of 3 with "
                                                 r"learning_rate=100000.0: the training loss grew from"):
        model.fit(events)


def test_text_tower_whose_loss_becomes_nan_names_both_learning_rates():
    pytest.importorskip("transformers")
    from reclib.models.text_tower import TextTowerRecommender

    texts = pd.Series({10: "Toy Story (1995). Animation, Comedy.", 11: "GoldenEye (1995). Action, Thriller.",
                       12: "Four Rooms (1995). Thriller.", 13: "Get Shorty (1995). Action, Comedy, Drama."})
    train = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3, 4, 4], "item_id": [10, 11, 12, 13, 10, 12, 11, 13]})
    model = TextTowerRecommender(trainable_layers=1, embedding_dim=8, epochs=2, batch_size=4, max_length=16,
                                 encoder_learning_rate=1e5, random_state=3, device="cpu")
    with pytest.raises(FloatingPointError, match=r"TextTowerRecommender diverged at epoch \d of 2 with "
                                                 r"learning_rate=0.01, encoder_learning_rate=100000.0: the "
                                                 r"training loss became nan; lower learning_rate or "
                                                 r"encoder_learning_rate"):
        model.fit(train, item_features=ItemFeatures(texts.index.to_numpy(), texts=texts.to_numpy()))


def test_fit_binary_classifier_divergence_names_the_learning_rate():
    x = np.random.default_rng(0).normal(size=(200, 5))
    y = (x[:, 0] > 0).astype(float)
    with pytest.raises(FloatingPointError, match=r"epoch 1 of 2 with learning_rate=1e\+30"):
        fit_binary_classifier(mlp_classifier(5, (8,), learning_rate=1e30), x, y, x, y, epochs=2)


def test_ranking_early_stopping_rejects_a_nan_metric():
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    stopper = RankingEarlyStopping(lambda: {"ndcg": float("nan")})
    with pytest.raises(ValueError, match=r"ndcg=nan after epoch 1"):
        model.fit(np.ones((8, 2)), np.ones(8), epochs=2, callbacks=[stopper], verbose=0)


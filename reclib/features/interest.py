r"""Recommendation from text: user interest vectors, free-text queries, a probability view, a hybrid.

With unit item vectors :math:`v_i` (BERT embeddings of item text) and a unit user vector
:math:`x_u` — the mean of the user's item vectors (:func:`~reclib.features.content.user_profiles`)
or the embedding of what the user *wrote* ("I like watching movies and travelling") — the score is
the cosine :math:`s_{ui} = x_u^\top v_i`. A softmax with temperature :math:`\tau` turns the scores
into a distribution over items, :math:`P(i\mid u) = e^{s_{ui}/\tau} / \sum_j e^{s_{uj}/\tau}`: small
:math:`\tau` concentrates it on the best match, large :math:`\tau` flattens it. (It is a ranking
distribution, not a calibrated click probability.)

:class:`HybridRecommender` blends a collaborative model with a text model: each model's scores are
standardised per user (mean 0, standard deviation 1 over the catalogue) and mixed,
:math:`(1-w)\,z^{cf}_{ui} + w\,z^{text}_{ui}`; items the CF model never saw get
:math:`z^{cf} = 0`, so they compete on text alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclib.base import FitContext, Recommender, top_k
from reclib.checks import (ParameterTypeError, check_bool, check_finite_array, check_non_negative,
                           check_positive, check_positive_int, check_probability)
from reclib.features.content import ItemFeatures, check_item_features, check_item_ids, check_item_vectors

__all__ = ["FeatureToFactorRecommender", "HybridRecommender", "recommend_for_text", "softmax_scores",
           "standardize_rows"]


def softmax_scores(scores: np.ndarray, temperature: float = 0.05) -> np.ndarray:
    """Row-wise softmax of ``scores / temperature`` (numerically stable); rows sum to 1.

    ``scores``: finite numbers, at least 1-D (the softmax runs over the last axis);
    ``temperature``: a finite number > 0.
    """
    check_positive(temperature=temperature)
    z = check_finite_array("scores", scores)
    if z.ndim == 0 or z.shape[-1] == 0:
        raise ValueError(f"scores must hold at least one item per row, got shape {z.shape}")
    z = z / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def standardize_rows(scores: np.ndarray) -> np.ndarray:
    """Each row shifted to mean 0 and scaled to standard deviation 1 (constant rows become 0).

    ``scores``: a 2-D array (n_rows, n_items) of finite numbers, n_items >= 1.
    """
    scores = check_finite_array("scores", scores)
    if scores.ndim != 2 or scores.shape[1] == 0:
        raise ValueError(f"scores must be 2-D (n_rows, n_items) with n_items >= 1, got shape {scores.shape}")
    centred = scores - scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return np.divide(centred, std, out=np.zeros_like(centred), where=std > 1e-12)


def recommend_for_text(queries: Sequence[str], encoder: object, item_vectors: np.ndarray,
                       item_ids: Sequence[object], k: int = 10,
                       temperature: float = 0.05) -> pd.DataFrame:
    """Top-``k`` items for each free-text query: a frame (query, item_id, score, probability, rank).

    ``encoder.encode(list_of_texts)`` must return unit vectors like ``item_vectors`` (n_items, d).
    ``probability`` is the softmax over the whole catalogue at ``temperature``. Checked first:
    ``queries`` non-empty strings, ``item_vectors`` 2-D and finite with one row per unique
    ``item_ids`` entry, ``k`` >= 1, ``temperature`` > 0; then the encoder's vectors (finite, one
    row per query, as many dimensions as the items).
    """
    if isinstance(queries, str):
        raise ParameterTypeError("queries must be a list of texts, not one string")
    queries = list(queries)
    if not queries:
        raise ValueError("queries is empty: give at least one text")
    bad = [j for j, query in enumerate(queries) if not isinstance(query, str) or not query.strip()]
    if bad:
        raise ValueError(f"queries must be non-empty strings; {len(bad)} are not, first at position "
                         f"{bad[0]}: {queries[bad[0]]!r}")
    if isinstance(encoder, (str, bytes)) or not callable(getattr(encoder, "encode", None)):
        raise ParameterTypeError(f"encoder must have an encode(texts) method, got {type(encoder).__name__}")
    check_item_vectors("item_vectors", item_vectors, len(check_item_ids("item_ids", item_ids)))
    check_positive_int(k=k)
    check_positive(temperature=temperature)
    vectors = check_finite_array("encoder.encode(queries)", encoder.encode(queries))
    items = np.asarray(item_vectors, dtype=np.float64)
    if vectors.ndim != 2 or len(vectors) != len(queries) or vectors.shape[1] != items.shape[1]:
        raise ValueError(f"query vectors have shape {vectors.shape}, expected ({len(queries)}, "
                         f"{items.shape[1]}) (one per query, as many dimensions as item_vectors)")
    scores = vectors @ items.T
    probs = softmax_scores(scores, temperature)
    best, best_scores = top_k(scores.copy(), k)
    ids = np.asarray(item_ids)
    return pd.DataFrame({
        "query": np.repeat(queries, best.shape[1]),
        "item_id": ids[best.ravel()],
        "score": best_scores.ravel(),
        "probability": np.take_along_axis(probs, best, axis=1).ravel(),
        "rank": np.tile(np.arange(1, best.shape[1] + 1), len(queries)),
    })


class HybridRecommender(Recommender):
    """Blend a collaborative model and a text model (module doc).

    Parameters
    ----------
    - cf_model, text_model: unfitted recommenders following the model interface (hyper-parameters,
      like the steps of a scikit-learn ``Pipeline``; they are cloned with the hybrid).
    - text_weight: :math:`w` in [0, 1]; 0 is the CF model alone, 1 the text model alone.

    Data at ``fit(interactions, item_features=ItemFeatures(item_ids, vectors=...))``: both
    models are fitted on ``interactions``; ``item_features`` goes to the text model only, and its
    catalogue (which may hold cold items) is the hybrid's.
    """

    def __init__(self, cf_model: Recommender, text_model: Recommender, text_weight: float = 0.3,
                 **columns: str) -> None:
        super().__init__(**columns)
        for name, model in (("cf_model", cf_model), ("text_model", text_model)):
            if not isinstance(model, Recommender):
                raise ParameterTypeError(f"{name} must be a reclib Recommender, got {type(model).__name__}")
        check_probability(text_weight=text_weight)
        self.cf_model, self.text_model, self.text_weight = cf_model, text_model, text_weight

    def fit(self, interactions: pd.DataFrame, *,
            item_features: ItemFeatures | None = None) -> HybridRecommender:
        """Fit both models on ``interactions`` (``item_features`` to the text model; class doc)."""
        self.item_features_ = check_item_features(item_features, interactions, self.item_col,
                                                  model=type(self).__name__)
        return super().fit(interactions)

    def _item_catalogue(self, interactions: pd.DataFrame) -> np.ndarray:
        if self.item_features_ is None:
            return super()._item_catalogue(interactions)
        return self.item_features_.item_ids

    def _fit(self, context: FitContext) -> None:
        interactions = context.interactions
        self.cf_model.fit(interactions)
        if self.item_features_ is None:
            self.text_model.fit(interactions)
        else:
            self.text_model.fit(interactions, item_features=self.item_features_)
        # column j of our scores is item_ids_[j]; where does each model keep that item?
        self._cf_columns = self.cf_model.item_encoder_.transform(self.item_ids_, unknown="ignore")
        self._text_columns = self.text_model.item_encoder_.transform(self.item_ids_)

    def _score(self, users: np.ndarray) -> np.ndarray:
        raw_ids = self.user_ids_[users]
        text = standardize_rows(self.text_model.score(raw_ids)[:, self._text_columns])
        known = self._cf_columns >= 0
        cf = np.zeros_like(text)
        cf[:, known] = standardize_rows(self.cf_model.score(raw_ids)[:, self._cf_columns[known]])
        return (1.0 - self.text_weight) * cf + self.text_weight * text


class FeatureToFactorRecommender(Recommender):
    r"""Cold-start items through a learned map from item features into a CF model's factor space.

    A factor model (e.g. :class:`~reclib.cf.ImplicitALS`) learns user factors :math:`x_u` and item
    factors :math:`y_i`, but only for items seen in training. With item features :math:`f_i` (BERT
    vectors), fit a ridge map :math:`W` on the warm items,
    :math:`\min_W \sum_{i\ \text{warm}} \lVert y_i - W^\top f_i\rVert^2 + \lambda \lVert W\rVert_F^2`,
    and give every item without factors :math:`\hat y_i = W^\top f_i` (Gantner et al. 2010,
    "attribute-to-feature mapping"). Scores are :math:`x_u^\top y_i` over the whole catalogue.

    Parameters
    ----------
    - factor_model: an unfitted recommender exposing ``user_factors_`` and ``item_factors_`` (a
      hyper-parameter: it is cloned with this model).
    - reg: :math:`\lambda` of the ridge map.
    - map_warm_items: also replace warm items' factors by their mapped ones (for a fair comparison
      of pure content), instead of keeping the learned factors.

    Data at ``fit(interactions, item_features=ItemFeatures(item_ids, vectors=...))``: the
    vectors must be dense; the catalogue is ``item_features.item_ids`` (cold items included).
    Checked first: ``factor_model`` a recommender, ``reg`` >= 0, ``map_warm_items`` a bool.
    """

    def __init__(self, factor_model: Recommender, reg: float = 10.0, map_warm_items: bool = False,
                 **columns: str) -> None:
        super().__init__(**columns)
        if not isinstance(factor_model, Recommender):
            raise ParameterTypeError(f"factor_model must be a reclib Recommender, got "
                                     f"{type(factor_model).__name__}")
        check_non_negative(reg=reg)
        check_bool(map_warm_items=map_warm_items)
        self.factor_model, self.reg, self.map_warm_items = factor_model, reg, map_warm_items

    def fit(self, interactions: pd.DataFrame, *,
            item_features: ItemFeatures | None = None) -> FeatureToFactorRecommender:
        """Fit the factor model and the ridge map over ``item_features``' catalogue (class doc)."""
        features = check_item_features(item_features, interactions, self.item_col, ("vectors",),
                                       type(self).__name__)
        if sp.issparse(features.vectors):
            raise ParameterTypeError("item_features.vectors must be a dense array for "
                                     "FeatureToFactorRecommender (the ridge map is dense)")
        self.item_features_ = features
        return super().fit(interactions)

    def _item_catalogue(self, interactions: pd.DataFrame) -> np.ndarray:
        return self.item_features_.item_ids

    def _fit(self, context: FitContext) -> None:
        interactions = context.interactions
        model = self.factor_model.fit(interactions)
        if not hasattr(model, "item_factors_"):
            raise ValueError(f"{type(model).__name__} has no item_factors_: use a factor model")
        features = self.item_features_
        feats = np.asarray(features.vectors, dtype=np.float64)[features.rows(self.item_ids_)]
        warm = model.item_encoder_.transform(self.item_ids_, unknown="ignore")
        is_warm = warm >= 0
        F, Y = feats[is_warm], model.item_factors_[warm[is_warm]]
        self.map_ = np.linalg.solve(F.T @ F + self.reg * np.eye(F.shape[1]), F.T @ Y)
        factors = feats @ self.map_
        if not self.map_warm_items:
            factors[is_warm] = Y
        self.item_factors_ = factors
        self.user_factors_ = model.user_factors_[model.user_encoder_.transform(self.user_ids_)]

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T

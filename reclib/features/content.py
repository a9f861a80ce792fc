r"""Classic content features: genre multi-hot, TF-IDF over item text, user profiles.

An item is described by a vector :math:`v_i` (genres, TF-IDF of its text, or a BERT embedding);
a user by a profile :math:`x_u`, a weighted mean of the vectors of the items they consumed:

.. math:: x_u = \frac{\sum_{i \in I_u} w_{ui} v_i}{\sum_{i\in I_u} w_{ui}}, \qquad
   w_{ui} \in \{1,\ r_{ui} - \bar r_u + c,\ 2^{-(t_{\max} - t_{ui}) / h}\}

(plain mean, rating-weighted, recency-weighted with half-life :math:`h`). A content-based
recommender scores :math:`\cos(x_u, v_i)` for *every* item with features, including items nobody
has interacted with yet: this is what makes content the cure for item cold start.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from reclib.base import Recommender
from reclib.data.validation import require_columns

__all__ = ["ContentRecommender", "genre_matrix", "item_text", "l2_normalize", "tfidf_matrix",
           "user_profiles"]

Weighting = Literal["mean", "rating", "recency"]


def genre_matrix(genres: pd.Series, vocabulary: Sequence[str] | None = None) -> np.ndarray:
    """Multi-hot (n_items, n_genres) float matrix from a Series of genre lists.

    ``vocabulary`` fixes the column order (default: sorted genres seen); unknown genres are an error.
    """
    vocab = list(vocabulary) if vocabulary is not None else sorted({g for gs in genres for g in gs})
    position = {g: j for j, g in enumerate(vocab)}
    unknown = sorted({g for gs in genres for g in gs} - set(position))
    if unknown:
        raise ValueError(f"column 'genres': values {unknown} are not in the vocabulary {vocab}")
    rows = np.repeat(np.arange(len(genres)), [len(gs) for gs in genres])
    cols = [position[g] for gs in genres for g in gs]
    out = np.zeros((len(genres), len(vocab)))
    out[rows, cols] = 1.0
    return out


def item_text(items: pd.DataFrame, title_col: str = "title", year_col: str | None = "year",
              genres_col: str | None = "genres") -> pd.Series:
    """One descriptive sentence per item, e.g. ``"Toy Story (1995). Animation, Children's, Comedy."``."""
    require_columns(items, *(c for c in (title_col, year_col, genres_col) if c is not None))
    titles = items[title_col].astype(str).tolist()
    years = items[year_col].tolist() if year_col is not None else [None] * len(items)
    genres = items[genres_col].tolist() if genres_col is not None else [None] * len(items)
    text = [title + ("" if year is None or pd.isna(year) else f" ({int(year)})")
            + ("" if genre is None else ". " + ", ".join(genre) + ".")
            for title, year, genre in zip(titles, years, genres)]
    return pd.Series(np.asarray(text, dtype=object), index=items.index, name="text")


def tfidf_matrix(texts: Sequence[str], **vectorizer_kwargs: object) -> tuple[sp.csr_matrix, TfidfVectorizer]:
    """TF-IDF vectors of ``texts`` (rows L2-normalised) and the fitted scikit-learn vectorizer.

    Defaults: unigrams and bigrams, English stop words removed, sublinear term frequency.
    """
    params = {"ngram_range": (1, 2), "stop_words": "english", "sublinear_tf": True, "min_df": 1}
    params.update(vectorizer_kwargs)
    vectorizer = TfidfVectorizer(**params)
    return vectorizer.fit_transform(list(texts)).tocsr(), vectorizer


def l2_normalize(vectors: np.ndarray | sp.spmatrix) -> np.ndarray | sp.csr_matrix:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    if sp.issparse(vectors):
        norms = np.sqrt(np.asarray(vectors.multiply(vectors).sum(axis=1)).ravel())
        return sp.csr_matrix(sp.diags(1.0 / np.maximum(norms, 1e-12)) @ vectors)
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def _weights(interactions: pd.DataFrame, weighting: Weighting, user_col: str, rating_col: str,
             timestamp_col: str, half_life_days: float) -> np.ndarray:
    if weighting == "mean":
        return np.ones(len(interactions))
    if weighting == "rating":
        if rating_col not in interactions:
            raise ValueError(f"weighting='rating' needs column {rating_col!r}")
        r = interactions[rating_col].to_numpy(np.float64)
        centred = r - interactions.groupby(user_col)[rating_col].transform("mean").to_numpy()
        return np.maximum(centred + 1.0, 0.0)   # above-average ratings count more, poor ones ~0
    if weighting == "recency":
        if timestamp_col not in interactions:
            raise ValueError(f"weighting='recency' needs column {timestamp_col!r}")
        t = interactions[timestamp_col].to_numpy(np.float64)
        latest = interactions.groupby(user_col)[timestamp_col].transform("max").to_numpy(np.float64)
        return np.exp2(-(latest - t) / (half_life_days * 86_400.0))
    raise ValueError(f"weighting={weighting!r}: expected 'mean', 'rating' or 'recency'")


def user_profiles(interactions: pd.DataFrame, item_vectors: np.ndarray | sp.spmatrix,
                  item_ids: Sequence[object], weighting: Weighting = "mean",
                  user_col: str = "user_id", item_col: str = "item_id", rating_col: str = "rating",
                  timestamp_col: str = "timestamp",
                  half_life_days: float = 30.0) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean item vector of each user (module doc).

    Returns ``(user_ids, profiles)`` with profiles (n_users, d). Items must all appear in
    ``item_ids`` (the rows of ``item_vectors``); unknown items raise ``ValueError`` naming them.
    """
    index = pd.Index(item_ids)
    rows = index.get_indexer(interactions[item_col].to_numpy())
    if (rows < 0).any():
        missing = interactions[item_col].to_numpy()[rows < 0][:5].tolist()
        raise ValueError(f"column {item_col!r}: items {missing} have no feature vector")
    users, user_rows = np.unique(interactions[user_col].to_numpy(), return_inverse=True)
    w = _weights(interactions, weighting, user_col, rating_col, timestamp_col, half_life_days)
    weights = sp.csr_matrix((w, (user_rows, rows)), shape=(len(users), len(index)))
    totals = np.asarray(weights.sum(axis=1)).ravel()
    profiles = weights @ item_vectors
    profiles = np.asarray(profiles.todense() if sp.issparse(profiles) else profiles)
    return users, profiles / np.maximum(totals, 1e-12)[:, None]


class ContentRecommender(Recommender):
    r"""Content-based top-N: score :math:`\cos(x_u, v_i)` between user profile and item vector.

    Parameters
    ----------
    item_vectors: (n_items, d) dense or sparse features, one row per entry of ``item_ids``.
    item_ids: the raw ids of those rows: the catalogue, which may include items absent from the
        training interactions (they are scored like any other: cold start).
    weighting, half_life_days: how a profile weighs the user's items (:func:`user_profiles`).

    Users unseen at fit raise ``ValueError`` (they have no profile; see notebook 04 for users
    described by free text instead).
    """

    def __init__(self, item_vectors: np.ndarray | sp.spmatrix, item_ids: Sequence[object],
                 weighting: Weighting = "mean", half_life_days: float = 30.0, **columns: str) -> None:
        super().__init__(**columns)
        if item_vectors.shape[0] != len(item_ids):
            raise ValueError(f"item_vectors has {item_vectors.shape[0]} rows but item_ids has "
                             f"{len(item_ids)} entries")
        if weighting not in ("mean", "rating", "recency"):
            raise ValueError(f"weighting={weighting!r}: expected 'mean', 'rating' or 'recency'")
        if half_life_days <= 0:
            raise ValueError(f"half_life_days must be positive, got {half_life_days!r}")
        self.item_vectors, self.item_ids = item_vectors, np.asarray(item_ids)
        self.weighting, self.half_life_days = weighting, half_life_days
        self.uses_rating = weighting == "rating"

    def _item_catalogue(self, interactions: pd.DataFrame) -> np.ndarray:
        return self.item_ids

    def _fit(self, matrix: sp.csr_matrix, interactions: pd.DataFrame) -> None:
        order = self.item_encoder_.transform(self.item_ids)
        vectors = self.item_vectors[np.argsort(order)]          # rows follow item_ids_
        self.item_matrix_ = l2_normalize(vectors)
        users, profiles = user_profiles(interactions, vectors, self.item_ids_, self.weighting,
                                        self.user_col, self.item_col, self.rating_col,
                                        half_life_days=self.half_life_days)
        self.profiles_ = l2_normalize(profiles[np.argsort(self.user_encoder_.transform(users))])

    def _score(self, users: np.ndarray) -> np.ndarray:
        scores = self.item_matrix_ @ self.profiles_[users].T
        return np.asarray(scores).T

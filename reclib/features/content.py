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
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from reclib.base import FitContext, Recommender
from reclib.checks import (ParameterTypeError, check_choice, check_finite_array, check_positive,
                           require_columns)

__all__ = ["ContentRecommender", "ItemFeatures", "check_item_features", "genre_matrix", "item_text", "l2_normalize", "tfidf_matrix",
           "user_profiles"]

Weighting = Literal["mean", "rating", "recency"]
WEIGHTINGS = ("mean", "rating", "recency")
_LIST_LIKE = (list, tuple, set, frozenset, np.ndarray)


def _check_genre_lists(name: str, genres: object, allow_none: bool = False) -> None:
    """Each entry a list (tuple, set, array) of strings; ``None`` too if ``allow_none``.

    A bare string is rejected: it would be read as a list of characters.
    """
    for row, value in enumerate(genres):
        if value is None and allow_none:
            continue
        if not isinstance(value, _LIST_LIKE) or not all(isinstance(g, str) for g in value):
            raise ValueError(f"column {name!r}: every entry must be a list of genre names"
                             f"{' or None' if allow_none else ''}; row {row} holds {value!r}")


def check_item_vectors(name: str, vectors: object, n_rows: int | None = None) -> None:
    """A 2-D dense array or sparse matrix of finite numbers, with ``n_rows`` rows if given."""
    if sp.issparse(vectors):
        check_finite_array(f"{name} (stored values)", vectors.data)
        shape = vectors.shape
    else:
        shape = check_finite_array(name, vectors).shape
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D (n_items, d), got shape {shape}")
    if n_rows is not None and shape[0] != n_rows:
        raise ValueError(f"{name} has {shape[0]} rows but item_ids has {n_rows} entries")


def check_item_ids(name: str, ids: object) -> np.ndarray:
    """``ids`` as a 1-D array: non-empty, unique, without nulls."""
    array = np.asarray(ids)
    if array.ndim != 1 or len(array) == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of ids, got shape {array.shape}")
    series = pd.Series(array)
    bad = series.isna() | series.duplicated(keep=False)
    if bad.any():
        raise ValueError(f"{name} must be unique and not null; {int(bad.sum())} entries are not, "
                         f"e.g. {series[bad].head().tolist()}")
    return array


def _check_texts(texts: object, item_ids: np.ndarray) -> np.ndarray:
    """``texts`` as a (n_items,) NumPy string array of non-blank strings, else raise naming the
    first bad entry by its item id."""
    if isinstance(texts, (str, bytes, pd.DataFrame)) or not hasattr(texts, "__len__"):
        raise ParameterTypeError(f"item_features.texts must be a sequence of strings, got {type(texts).__name__}")
    if isinstance(texts, pd.Series):                   # indexed by item id: aligned, never by position
        missing = pd.Index(item_ids).difference(texts.index)
        if len(missing) or texts.index.has_duplicates:
            raise ValueError(f"item_features.texts as a Series must be indexed by unique item ids covering "
                             f"item_ids; {len(missing)} missing, e.g. {missing[:5].tolist()}")
        texts = texts.reindex(item_ids)
    values = np.asarray(texts, dtype=object)
    if values.shape != (len(item_ids),):
        raise ValueError(f"item_features.texts must have one entry per item id ({len(item_ids)}), "
                         f"got shape {values.shape}")
    bad = np.array([not isinstance(t, str) or not t.strip() for t in values])
    if bad.any():
        first = int(np.argmax(bad))
        raise ValueError(f"item_features.texts must hold non-blank strings; item {item_ids[first:first + 1].tolist()[0]!r} has "
                         f"{values[first]!r} ({int(bad.sum())} bad entries)")
    return values.astype(str)


@dataclass(frozen=True, eq=False)
class ItemFeatures:
    """Side information about a catalogue of items, passed to ``fit`` (scikit-learn's rule: data
    goes to ``fit``, hyper-parameters to the constructor); the one container of item side data
    for every model that takes some::

        features = ItemFeatures(item_ids, vectors=text_vectors, categories=genre_multi_hot)
        ContentRecommender().fit(train, item_features=features)
        TextTowerRecommender().fit(train, item_features=ItemFeatures(item_ids, texts=sentences))

    Attributes
    ----------
    item_ids: (n_items,) raw ids, unique and not null: the catalogue. It may hold items absent
        from the training interactions (cold start): a model given these features scores them.
    vectors: optional (n_items, d) dense array or sparse matrix of finite numbers (text
        embeddings, TF-IDF, a genre multi-hot used as a content vector), rows follow ``item_ids``.
    categories: optional (n_items, n_categories) dense multi-hot array of categorical fields
        (e.g. genres: the two-tower's categorical input).
    texts: optional (n_items,) non-blank strings (titles, descriptions: what a language model
        reads), rows following ``item_ids`` (a ``pandas.Series`` is aligned on its index of item
        ids instead), stored as a NumPy string array.

    ``ItemFeatures(item_ids)`` with no table is a bare catalogue (ids only). Everything is
    checked at construction; the object is frozen (the arrays are not copied: do not modify them).
    The CTR models declare their inputs with :class:`~reclib.features.specs.FeatureSpace` instead
    (per-row fields of a click log, not per-item tables).
    """

    item_ids: np.ndarray
    vectors: np.ndarray | sp.spmatrix | None = None
    categories: np.ndarray | None = None
    texts: np.ndarray | None = None

    def __post_init__(self) -> None:
        ids = check_item_ids("item_features.item_ids", self.item_ids)
        object.__setattr__(self, "item_ids", ids)
        for name in ("vectors", "categories"):
            table = getattr(self, name)
            if table is None:
                continue
            if not (isinstance(table, np.ndarray) or sp.issparse(table)):
                raise ParameterTypeError(f"item_features.{name} must be a NumPy array or a SciPy sparse "
                                         f"matrix, got {type(table).__name__}")
            if name == "categories" and sp.issparse(table):
                raise ParameterTypeError("item_features.categories must be a dense array")
            check_item_vectors(f"item_features.{name}", table, len(ids))
        if self.texts is not None:
            object.__setattr__(self, "texts", _check_texts(self.texts, ids))

    def __len__(self) -> int:
        return len(self.item_ids)

    def rows(self, item_ids: np.ndarray) -> np.ndarray:
        """Row of each raw id in ``item_ids`` (all must be in the catalogue)."""
        rows = pd.Index(self.item_ids).get_indexer(np.asarray(item_ids))
        if (rows < 0).any():
            missing = np.asarray(item_ids)[rows < 0]
            raise ValueError(f"item_features lacks {len(missing)} item(s), e.g. {missing[:5].tolist()}")
        return rows


def check_item_features(item_features: object, interactions: pd.DataFrame, item_col: str,
                        need: Sequence[str] = (), model: str = "model") -> ItemFeatures | None:
    """``item_features`` if it is ``None`` (allowed only when ``need`` is empty) or an
    :class:`ItemFeatures` holding the tables named in ``need`` and every item of
    ``interactions[item_col]``; else raise naming ``item_features``."""
    if item_features is None:
        if need:
            raise ValueError(f"{model}.fit needs item_features=ItemFeatures(item_ids, "
                             f"{', '.join(f'{n}=...' for n in need)}), got None")
        return None
    if not isinstance(item_features, ItemFeatures):
        raise ParameterTypeError(f"item_features must be an ItemFeatures (reclib.features.content) or "
                                 f"None, got {type(item_features).__name__}")
    for name in need:
        if getattr(item_features, name) is None:
            raise ValueError(f"{model}.fit needs item_features.{name}; it is None")
    require_columns(interactions, item_col)
    seen = pd.unique(interactions[item_col].to_numpy())
    missing = seen[pd.Index(item_features.item_ids).get_indexer(seen) < 0]
    if len(missing):
        raise ValueError(f"column {item_col!r}: {len(missing)} item(s) of the interactions are not in "
                         f"item_features.item_ids, e.g. {missing[:5].tolist()}")
    return item_features


def genre_matrix(genres: pd.Series, vocabulary: Sequence[str] | None = None) -> np.ndarray:
    """Multi-hot (n_items, n_genres) float matrix from a Series of genre lists.

    ``vocabulary`` fixes the column order (default: sorted genres seen); unknown genres are an error,
    and so is an entry that is not a list of strings (``None``, NaN, a bare string).
    """
    _check_genre_lists("genres", genres)
    if vocabulary is not None:
        if isinstance(vocabulary, str) or not all(isinstance(g, str) for g in vocabulary):
            raise ParameterTypeError(f"vocabulary must be a list of genre names, got {vocabulary!r}")
        if len(set(vocabulary)) != len(list(vocabulary)):
            raise ValueError(f"vocabulary holds duplicates: {list(vocabulary)}")
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
    """One descriptive sentence per item, built from its title, year and genres.

    For example ``"Toy Story (1995). Animation, Children's, Comedy."``. Titles must not be null;
    a year may be missing (null) but otherwise a whole number; genres a list of strings or
    ``None``.
    """
    require_columns(items, *(c for c in (title_col, year_col, genres_col) if c is not None))
    missing = items[title_col].isna()
    if missing.any():
        raise ValueError(f"column {title_col!r}: {int(missing.sum())} null title(s), first rows "
                         f"{items.index[missing][:5].tolist()}")
    if year_col is not None:
        present = items[year_col].dropna()
        numbers = pd.to_numeric(present, errors="coerce").to_numpy(np.float64, na_value=np.nan)
        bad = ~np.isfinite(numbers) | (numbers != np.round(numbers))
        if bad.any():
            raise ValueError(f"column {year_col!r}: {int(bad.sum())} year(s) are not whole numbers, "
                             f"e.g. {present[bad].head().tolist()}")
    if genres_col is not None:
        _check_genre_lists(genres_col, items[genres_col], allow_none=True)
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
    ``texts`` must be a non-empty sequence of strings (a null would be read as the word "nan").
    """
    if isinstance(texts, str):
        raise ParameterTypeError("texts must be a sequence of strings, not one string")
    texts = list(texts)
    if not texts:
        raise ValueError("texts is empty: give at least one document")
    bad = [j for j, text in enumerate(texts) if not isinstance(text, str)]
    if bad:
        raise ParameterTypeError(f"texts must all be strings; {len(bad)} are not, first at "
                                 f"position {bad[0]}: {texts[bad[0]]!r}")
    params = {"ngram_range": (1, 2), "stop_words": "english", "sublinear_tf": True, "min_df": 1}
    params.update(vectorizer_kwargs)
    vectorizer = TfidfVectorizer(**params)
    return vectorizer.fit_transform(list(texts)).tocsr(), vectorizer


def l2_normalize(vectors: np.ndarray | sp.spmatrix) -> np.ndarray | sp.csr_matrix:
    """Rows scaled to unit L2 norm (zero rows stay zero); (n, d) finite values, dense or sparse."""
    check_item_vectors("vectors", vectors)
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
    Checked first: the columns (users and items without nulls, the rating or timestamp finite
    when the weighting uses it), ``item_vectors`` 2-D and finite with one row per unique
    ``item_ids`` entry, ``weighting`` and ``half_life_days`` > 0.
    """
    check_choice("weighting", weighting, WEIGHTINGS)
    check_positive(half_life_days=half_life_days)
    require_columns(interactions, user_col, item_col)
    for col in (user_col, item_col):
        nulls = interactions[col].isna()
        if nulls.any():
            raise ValueError(f"column {col!r}: {int(nulls.sum())} null value(s), first rows "
                             f"{interactions.index[nulls][:5].tolist()}")
    used = {"rating": rating_col, "recency": timestamp_col}.get(weighting)
    if used is not None and used in interactions:
        check_finite_array(f"column {used!r}", interactions[used])
    check_item_vectors("item_vectors", item_vectors, len(check_item_ids("item_ids", item_ids)))
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
    weighting, half_life_days: how a profile weighs the user's items (:func:`user_profiles`).

    Data at ``fit(interactions, item_features=ItemFeatures(item_ids, vectors=...))``: the item
    vectors (dense or sparse, one row per catalogue item) are side data, so they go to ``fit``,
    not to the constructor. The catalogue is ``item_features.item_ids``, which may include items
    absent from the training interactions (they are scored like any other: cold start); every
    item of the interactions must have a vector.

    Users unseen at fit raise ``ValueError`` (they have no profile; see notebook 04 for users
    described by free text instead).
    """

    def __init__(self, weighting: Weighting = "mean", half_life_days: float = 30.0,
                 **columns: str) -> None:
        super().__init__(**columns)
        check_choice("weighting", weighting, WEIGHTINGS)
        check_positive(half_life_days=half_life_days)
        self.weighting, self.half_life_days = weighting, half_life_days

    @property
    def uses_rating(self) -> bool:  # type: ignore[override]
        return self.weighting == "rating"

    def fit(self, interactions: pd.DataFrame, *,
            item_features: ItemFeatures | None = None) -> ContentRecommender:
        """Fit profiles on ``interactions`` over the catalogue of ``item_features`` (class doc)."""
        self.item_features_ = check_item_features(item_features, interactions, self.item_col,
                                                  ("vectors",), type(self).__name__)
        return super().fit(interactions)

    def _item_catalogue(self, interactions: pd.DataFrame) -> np.ndarray:
        return self.item_features_.item_ids

    def _fit(self, context: FitContext) -> None:
        interactions = context.interactions
        vectors = self.item_features_.vectors[self.item_features_.rows(self.item_ids_)]
        self.item_matrix_ = l2_normalize(vectors)                # rows follow item_ids_
        users, profiles = user_profiles(interactions, vectors, self.item_ids_, self.weighting,
                                        self.user_col, self.item_col, self.rating_col,
                                        half_life_days=self.half_life_days)
        self.profiles_ = l2_normalize(profiles[np.argsort(self.user_encoder_.transform(users))])

    def _score(self, users: np.ndarray) -> np.ndarray:
        scores = self.item_matrix_ @ self.profiles_[users].T
        return np.asarray(scores).T

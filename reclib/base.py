"""The one model interface every reclib recommender follows (the batched top-K ranker, ``top_k``,
lives in :mod:`reclib.data.ties` and is re-exported here).

Every recommender (CF, deep, sequential) takes and returns raw ids in pandas frames and hides
its id encoding::

    model.fit(interactions)                 # DataFrame: user_id, item_id[, rating][, timestamp]
    model.score(user_ids) -> ndarray        # (n_users, n_items) over model.item_ids_
    model.recommend(user_ids, k=10, exclude_seen=True) -> DataFrame  # user_id, item_id, score, rank
    model.predict(user_ids, item_ids) -> ndarray                     # one score per pair

A subclass implements ``_fit(context)`` and ``_score(user_index)``; the base class validates input,
encodes ids, keeps the user x item training matrix and does the ranking. Unknown users raise a
``ValueError`` naming them, unless a subclass documents a fallback (see ``handles_unknown_users``).
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclib.data.encoding import IdEncoder
from reclib.data.ties import tie_keys, top_k   # top_k: re-exported, the kit's ranker
from reclib.data.validation import validate_interactions
from reclib.io import atomic_write_bytes

__all__ = ["FitContext", "Recommender", "canonical_order", "clone", "interaction_matrix", "top_k", "user_batches"]


def user_batches(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices covering ``range(n)``, ``batch_size`` at a time."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size!r}")
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def canonical_order(users: np.ndarray, items: np.ndarray,
                    timestamps: np.ndarray | None = None) -> np.ndarray:
    """The permutation that sorts rows by (user, timestamp, item) codes, or (user, item) without
    timestamps; ties keep their input order (a stable sort).

    users, items: non-negative integer codes (n,); timestamps: (n,) or ``None``. Without timestamps
    the two codes are packed into one int64 key and sorted once (about twice as fast as
    ``np.lexsort`` on millions of rows) when the packed key cannot overflow.
    """
    if timestamps is not None:
        return np.lexsort([items, timestamps, users])
    n_items = int(items.max()) + 1 if len(items) else 1
    if len(users) and int(users.max()) < np.iinfo(np.int64).max // n_items:
        return np.argsort(users.astype(np.int64) * n_items + items, kind="stable")
    return np.lexsort([items, users])


def interaction_matrix(users: np.ndarray, items: np.ndarray, shape: tuple[int, int],
                       values: np.ndarray | None = None) -> sp.csr_matrix:
    """A (n_users, n_items) CSR matrix with ``values`` (default 1.0) at (users, items)."""
    data = np.ones(len(users)) if values is None else np.asarray(values, dtype=np.float64)
    matrix = sp.csr_matrix((data, (users, items)), shape=shape, dtype=np.float64)
    matrix.sum_duplicates()
    matrix.sort_indices()
    return matrix


@dataclass(frozen=True)
class FitContext:
    """What ``Recommender._fit`` learns from, built by ``fit``: ``matrix`` (n_users, n_items) CSR
    of the training interactions (``train_matrix_``), ``interactions`` (the frame, in canonical
    row order), and the optional ``validate`` function (model -> {metric: value}, run after
    training epochs) that the ``fit`` of trained models takes."""

    matrix: sp.csr_matrix
    interactions: pd.DataFrame
    validate: Callable[[Recommender], dict[str, float]] | None = None


class Recommender:
    """Base class: raw-id frames in and out, ids encoded inside (see module doc).

    Fitted attributes: ``user_ids_`` and ``item_ids_`` (raw ids; column ``j`` of ``score`` is
    ``item_ids_[j]``), ``train_matrix_`` (CSR users x items; the rating if ``uses_rating`` and the
    frame has one, else 1.0).
    """

    #: whether ``fit`` keeps rating values (explicit models) or 1.0 (implicit models)
    uses_rating: bool = False
    #: whether ``score`` accepts users unseen at fit (documented by the subclass)
    handles_unknown_users: bool = False
    #: whether ``_fit`` reads the rows of ``interactions`` (they are then put in canonical order
    #: first); models that learn from ``train_matrix_`` alone say ``False`` and skip that sort
    reads_rows: bool = True

    def __init__(self, user_col: str = "user_id", item_col: str = "item_id",
                 rating_col: str = "rating") -> None:
        self.user_col, self.item_col, self.rating_col = user_col, item_col, rating_col

    # -- subclass hooks -----------------------------------------------------------------------
    def _fit(self, context: FitContext) -> None:
        """Learn from ``context`` (built by ``fit``; the ids are encoded by then)."""
        raise NotImplementedError

    def _score(self, users: np.ndarray) -> np.ndarray:
        """Scores (len(users), n_items) for user indices (``-1`` for unknown users)."""
        raise NotImplementedError

    def _item_catalogue(self, interactions: pd.DataFrame) -> np.ndarray:
        """The raw item ids the model can score; by default the items seen in ``interactions``.

        Content-based models override it to score every item they have features for, so that
        items never seen in training (cold start) can be ranked.
        """
        return interactions[self.item_col].to_numpy()

    # -- public interface ---------------------------------------------------------------------
    def fit(self, interactions: pd.DataFrame) -> Recommender:
        """Validate ``interactions``, encode ids, build ``train_matrix_`` and fit; returns self."""
        return self._fit_on(interactions)

    def _fit_on(self, interactions: pd.DataFrame,
                validate: Callable[[Recommender], dict[str, float]] | None = None) -> Recommender:
        """``fit``'s work; a ``validate`` function reaches ``_fit`` in its context.

        The frame is checked first (:func:`~reclib.data.validation.validate_interactions`;
        explicit models also refuse two ratings of one pair), then its rows are put in a canonical
        order (user, timestamp if present, item): the input's row order never changes a model.
        """
        rating = self.rating_col if self.uses_rating else None
        timestamp = getattr(self, "timestamp_col", "timestamp")
        validate_interactions(interactions, self.user_col, self.item_col, rating_col=rating,
                              timestamp_col=timestamp, required=(rating,) if rating else ())
        if rating and interactions.duplicated([self.user_col, self.item_col]).any():
            dup = interactions[interactions.duplicated([self.user_col, self.item_col], keep=False)]
            raise ValueError(f"{type(self).__name__} needs one {rating!r} per ({self.user_col}, "
                             f"{self.item_col}) pair; {len(dup)} rows repeat a pair, e.g.\n"
                             f"{dup.head().to_string()}\n(drop_duplicate_interactions keeps the latest)")
        self.user_encoder_ = IdEncoder("user").fit(interactions[self.user_col])
        self.item_encoder_ = IdEncoder("item").fit(self._item_catalogue(interactions))
        self.user_ids_ = self.user_encoder_.classes_
        self.item_ids_ = self.item_encoder_.classes_
        users = self.user_encoder_.transform(interactions[self.user_col])
        items = self.item_encoder_.transform(interactions[self.item_col])
        if self.reads_rows:
            order = canonical_order(users, items, interactions[timestamp].to_numpy()
                                    if timestamp in interactions else None)
            interactions, users, items = interactions.iloc[order], users[order], items[order]
        values = interactions[rating].to_numpy(np.float64) if rating else None
        self.train_matrix_ = interaction_matrix(users, items, (len(self.user_ids_),
                                                               len(self.item_ids_)), values)
        self._fit(FitContext(self.train_matrix_, interactions, validate))
        return self

    def user_index(self, user_ids: object) -> np.ndarray:
        """Indices of raw ``user_ids``; unknown ids raise, or are ``-1`` for models that take them."""
        self._check_fitted()
        unknown = "ignore" if self.handles_unknown_users else "error"
        return self.user_encoder_.transform(np.asarray(user_ids), unknown=unknown)

    def score(self, user_ids: object) -> np.ndarray:
        """Scores over ``item_ids_`` for each user: an array (n_users, n_items), higher is better."""
        return self._score(self.user_index(user_ids))

    def recommend(self, user_ids: object, k: int = 10, exclude_seen: bool = True,
                  batch_size: int = 1024) -> pd.DataFrame:
        """Top-``k`` items per user: a frame (user_col, item_col, score, rank) with rank 1 first;
        equal scores are ordered by the kit's tie rule (:mod:`reclib.data.ties`).

        With ``exclude_seen`` the user's training items are never recommended; a user with fewer
        than ``k`` items left gets fewer rows. Users are scored ``batch_size`` at a time.
        """
        user_ids = np.asarray(user_ids)
        index = self.user_index(user_ids)
        keys = tie_keys(self.item_ids_)
        parts = []
        for batch in user_batches(len(index), batch_size):
            idx = index[batch]
            scores = np.array(self._score(idx), dtype=np.float64)
            self._check_scores(scores, user_ids[batch])
            exclude = self._seen(idx) if exclude_seen else None
            parts.append(self._recommendation_frame(user_ids[batch], *top_k(scores, k, exclude, keys)))
        return pd.concat(parts, ignore_index=True)

    def _recommendation_frame(self, user_ids: np.ndarray, items: np.ndarray,
                              item_scores: np.ndarray) -> pd.DataFrame:
        """The frame of ``recommend`` from item indices and scores (n_users, k), best first;
        entries with a non-finite score (nothing left to recommend) are dropped."""
        keep = np.isfinite(item_scores)
        rows = np.nonzero(keep)
        return pd.DataFrame({self.user_col: user_ids[rows[0]], self.item_col: self.item_ids_[items[keep]],
                             "score": item_scores[keep], "rank": rows[1] + 1})

    def predict(self, user_ids: object, item_ids: object) -> np.ndarray:
        """One score per (user, item) pair; unknown items raise ``ValueError`` naming them."""
        users = self.user_index(user_ids)
        items = self.item_encoder_.transform(np.asarray(item_ids))
        if users.shape != items.shape:
            raise ValueError(f"user_ids and item_ids differ in length: {users.shape} vs {items.shape}")
        unique, inverse = np.unique(users, return_inverse=True)
        out = np.empty(len(users), dtype=np.float64)
        for batch in user_batches(len(unique), 1024):
            rows = np.flatnonzero((inverse >= batch.start) & (inverse < batch.stop))
            scores = self._score(unique[batch])
            out[rows] = scores[inverse[rows] - batch.start, items[rows]]
        return out

    # -- helpers ------------------------------------------------------------------------------
    def _seen(self, idx: np.ndarray) -> sp.csr_matrix:
        """Training items of user indices ``idx`` (empty rows for unknown users, ``-1``)."""
        rows = self.train_matrix_[np.maximum(idx, 0)]
        rows.data = np.ones_like(rows.data)
        seen = sp.csr_matrix(sp.diags((idx >= 0).astype(np.float64)) @ rows)
        seen.eliminate_zeros()
        return seen

    def _check_scores(self, scores: np.ndarray, user_ids: np.ndarray) -> None:
        """Raise ``ValueError`` naming the model and the users if ``scores`` hold NaN."""
        bad = np.isnan(scores).any(axis=1)
        if bad.any():
            raise ValueError(f"{type(self).__name__} produced NaN scores for {int(bad.sum())} of "
                             f"{len(bad)} users, e.g. {user_ids[bad][:5].tolist()}: the fit diverged "
                             f"or the inputs held NaN; check the hyper-parameters and refit")

    def _check_fitted(self) -> None:
        if not hasattr(self, "train_matrix_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(interactions) first")

    # -- scoring from an explicit history (serving without a refit) -----------------------------
    def score_histories(self, histories: Sequence[Sequence[object]]) -> np.ndarray:
        """Scores (n_histories, n_items) over ``item_ids_`` for users described only by the raw item
        ids they interacted with (events that arrived after ``fit``, or a new user's first clicks).

        Models that support it implement ``score_history_matrix``; an item unknown to the model
        raises ``ValueError`` naming it. Models that cannot score a history raise
        ``NotImplementedError``.
        """
        self._check_fitted()
        return self.score_history_matrix(self.history_matrix(histories))

    def history_matrix(self, histories: Sequence[Sequence[object]]) -> sp.csr_matrix:
        """A (n_histories, n_items) CSR matrix with 1.0 for every item of each history."""
        self._check_fitted()
        if isinstance(histories, (str, bytes)) or not isinstance(histories, Sequence):
            raise ValueError("histories must be a sequence of item-id sequences, one per user, "
                             f"got {type(histories).__name__}")
        lengths = np.array([len(h) for h in histories], dtype=np.int64)
        flat = np.asarray([item for h in histories for item in h])
        items = self.item_encoder_.transform(flat) if flat.size else np.empty(0, np.int64)
        rows = np.repeat(np.arange(len(histories)), lengths)
        matrix = interaction_matrix(rows, items, (len(histories), len(self.item_ids_)))
        matrix.data[:] = 1.0
        return matrix

    @classmethod
    def can_score_histories(cls) -> bool:
        """Whether the class implements :meth:`score_histories` (its own, or through
        ``score_history_matrix``): what ``reclib.serving`` needs of a model."""
        return (cls.score_histories is not Recommender.score_histories
                or cls.score_history_matrix is not Recommender.score_history_matrix)

    def score_history_matrix(self, history: sp.csr_matrix) -> np.ndarray:
        """Scores (n_histories, n_items) of histories given as a (n_histories, n_items) 0/1 CSR
        matrix over ``item_ids_`` (:meth:`history_matrix`); what models that can score histories
        implement (the others raise ``NotImplementedError``)."""
        raise NotImplementedError(f"{type(self).__name__} cannot score from an explicit history")

    # -- estimator conventions (scikit-learn's) ---------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        """Constructor parameters: those of ``__init__`` along the class hierarchy, for as long as
        each ``__init__`` passes further keyword arguments (``**columns``) to its parent."""
        names: list[str] = []
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            params = list(inspect.signature(init).parameters.values())[1:]
            names += [p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                      and p.name not in names]
            if not any(p.kind == p.VAR_KEYWORD for p in params):
                break
        return names

    def get_params(self, deep: bool = False) -> dict[str, Any]:
        """The constructor parameters and their current values (``deep`` is accepted for
        scikit-learn compatibility; nested models are returned as objects)."""
        del deep
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Recommender:
        """Change constructor parameters (validated as in the constructor); returns self.

        Fitted attributes are kept until the next ``fit``.
        """
        valid = self._param_names()
        unknown = [name for name in params if name not in valid]
        if unknown:
            raise ValueError(f"{type(self).__name__} has no parameter {unknown[0]!r}; "
                             f"valid parameters: {valid}")
        fresh = type(self)(**{**self.get_params(), **params})      # validates before any change
        for name in valid:
            setattr(self, name, getattr(fresh, name))
        return self

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the fitted model to ``path`` (``.reclib``) atomically and return the path.

        The format (:mod:`reclib.model_format`) holds arrays and plain metadata, never a pickle:
        loading it runs no code from the file and checks every member's SHA-256. An attribute the
        format cannot hold (a lambda, an open file) is a ``TypeError`` naming it, before anything
        is written.
        """
        from reclib import __version__
        from reclib.model_format import write_model

        self._check_fitted()
        path = Path(path)
        if path.suffix != ".reclib":
            raise ValueError(f"{path}: the file name must end in .reclib")
        return atomic_write_bytes(path, write_model(self, path, __version__))

    @classmethod
    def load(cls, path: str | os.PathLike[str], allow_pickle: bool = False) -> Recommender:
        """Read a model written by :meth:`save`; it must be a ``cls``.

        A damaged, truncated or foreign file, one holding another class, or a member whose hash
        does not match raises ``reclib.model_format.ModelFileError`` (a ``ValueError``) naming the
        path, before any object is built. ``allow_pickle=True`` also reads the pickles written
        by reclib 0.1: only for files you trust, since unpickling runs whatever code the file
        names.
        """
        from reclib.model_format import read_model

        return read_model(path, cls, allow_pickle=allow_pickle)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items()
                          if not isinstance(v, np.ndarray))
        return f"{type(self).__name__}({shown})"


def clone(model: Recommender) -> Recommender:
    """A new, unfitted model with the same parameters (nested models are cloned too)."""
    if not isinstance(model, Recommender):
        raise ValueError(f"clone expects a Recommender, got {type(model).__name__}")
    params = {name: clone(value) if isinstance(value, Recommender) else copy.deepcopy(value)
              for name, value in model.get_params().items()}
    return type(model)(**params)

r"""Semantic IDs: every item a short tuple of codes from residual quantisation of its content vector.

Generative retrieval (TIGER, Rajput et al., NeurIPS 2023) names an item not by an arbitrary id but
by a few codes that similar items share, so a sequence model can spell the next item code by code
and a brand-new item gets an ID from its text alone. The codes come from **residual k-means**:

- level 1 clusters the item vectors :math:`x_i` into ``n_codes`` centroids :math:`c^1_k`; the
  item's first code is its nearest centroid, :math:`k^1_i = \arg\min_k \lVert x_i - c^1_k\rVert`;
- level :math:`l` clusters what is left, the residuals
  :math:`r^l_i = x_i - \sum_{m<l} c^m_{k^m_i}`, into its own ``n_codes`` centroids;
- the reconstruction :math:`\hat x_i = \sum_l c^l_{k^l_i}` gets closer with every level, and
  items that share a prefix of codes share the first centroids: they are alike.

Two items can end with the same tuple; :func:`semantic_ids` appends a disambiguation code (the
item's rank, in row order, among the items with its tuple; 0 for an item alone), so every item
has a distinct ID. The vectors may be text embeddings alone (the MiniLM title vectors) or text
concatenated with collaborative factors (``np.hstack([text, weight * factors])``).

Determinism: k-means (scikit-learn's) runs single-threaded (so its sums have one order) from
seeded k-means++ starts, and each level's centroids are renumbered by first appearance in row
order (the first item's centroid gets code 0, the next new one code 1, ...), so the same vectors in the same row order and
the same ``random_state`` give the same codes, whatever the machine's thread count or scikit-learn's
internal cluster numbering. Row order matters through the k-means++ seeding: pass the catalogue
in a fixed order (e.g. sorted item ids).

Quality measures: :func:`codebook_usage` (share of each level's codes in use),
:meth:`ResidualQuantizer.reconstruction_error` (mean squared error of :math:`\hat x` relative to the
mean squared norm of :math:`x`) and :func:`prefix_purity` (how well items sharing a code prefix
share a label, e.g. a genre).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reclib.checks import (ParameterTypeError, check_finite_array, check_indices, check_non_negative_int,
                           check_positive_int)

__all__ = ["ResidualQuantizer", "codebook_usage", "prefix_purity", "semantic_ids"]


def _nearest(residual: np.ndarray, book: np.ndarray) -> np.ndarray:
    """(n,) index of the nearest row of ``book`` (k, d) to each row of ``residual`` (n, d), in
    squared Euclidean distance (ties to the lower index); O(n k) memory."""
    distance = (residual ** 2).sum(axis=1)[:, None] - 2.0 * residual @ book.T + (book ** 2).sum(axis=1)[None, :]
    return np.argmin(distance, axis=1)


def _by_first_appearance(book: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``book``'s rows reordered: first the centroids in order of their first item (row order),
    then any centroid no item is nearest to."""
    _, first = np.unique(labels, return_index=True)
    used = labels[np.sort(first)]
    return book[np.concatenate([used, np.setdiff1d(np.arange(len(book)), used)])]


class ResidualQuantizer:
    """Residual k-means over item vectors (module doc): ``n_levels`` codebooks of ``n_codes``.

    Parameters
    ----------
    n_levels: codes per item (before disambiguation), a positive int.
    n_codes: centroids per level, an int >= 2.
    max_iter: Lloyd iterations per level; random_state: seed of the k-means++ starts (>= 0).

    After ``fit(vectors (n, d))``: ``codebooks_`` (n_levels, n_codes, d) float64, the centroids of
    every level, and ``level_sizes_`` (n_levels,) how many of them were fitted (fewer than
    ``n_codes`` when a level has fewer distinct residuals; the unused rows stay 0 and are never
    chosen).
    """

    def __init__(self, n_levels: int = 3, n_codes: int = 32, max_iter: int = 100,
                 random_state: int = 42) -> None:
        check_positive_int(n_levels=n_levels, n_codes=n_codes, max_iter=max_iter)
        check_non_negative_int(random_state=random_state)
        if n_codes < 2:
            raise ValueError(f"n_codes must be >= 2 (one code cannot tell items apart), got {n_codes}")
        self.n_levels, self.n_codes, self.max_iter, self.random_state = n_levels, n_codes, max_iter, random_state

    def _vectors(self, vectors: object, d: int | None = None) -> np.ndarray:
        x = check_finite_array("vectors", vectors)
        if x.ndim != 2 or len(x) == 0 or (d is not None and x.shape[1] != d):
            want = "(n, d)" if d is None else f"(n, {d})"
            raise ValueError(f"vectors must be a non-empty {want} array, got shape {x.shape}")
        return x

    def fit(self, vectors: object) -> ResidualQuantizer:
        """Learn the codebooks from ``vectors`` (n, d), finite, one row per item."""
        from sklearn.cluster import KMeans
        from threadpoolctl import threadpool_limits

        x = self._vectors(vectors)
        if len(x) < self.n_codes:
            raise ValueError(f"n_codes={self.n_codes} is more than the {len(x)} vectors to cluster")
        residual = x.copy()
        self.codebooks_ = np.zeros((self.n_levels, self.n_codes, x.shape[1]))
        self.level_sizes_ = np.zeros(self.n_levels, dtype=np.int64)   # centroids fitted per level
        with threadpool_limits(1):                     # one summation order (module doc)
            for level in range(self.n_levels):
                k = min(self.n_codes, len(np.unique(residual, axis=0)))
                if k == 1:                             # every residual equal: one exact centroid
                    book = residual[:1].copy()
                else:
                    book = KMeans(k, n_init=1, max_iter=self.max_iter,
                                  random_state=self.random_state + level).fit(residual).cluster_centers_
                book = _by_first_appearance(book, _nearest(residual, book))
                self.codebooks_[level, :k], self.level_sizes_[level] = book, k
                residual = residual - book[_nearest(residual, book)]
        self.n_features_ = x.shape[1]
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "codebooks_"):
            raise RuntimeError("ResidualQuantizer is not fitted: call fit(vectors) first")

    def transform(self, vectors: object) -> np.ndarray:
        """(n, n_levels) int64 codes of ``vectors`` (n, d): at each level the nearest centroid of
        the residual (ties to the lower code). ``fit`` coded the training vectors this same way;
        new items are coded by the fitted codebooks."""
        self._check_fitted()
        residual = self._vectors(vectors, self.n_features_).copy()
        codes = np.zeros((len(residual), self.n_levels), dtype=np.int64)
        for level, (book, k) in enumerate(zip(self.codebooks_, self.level_sizes_)):
            codes[:, level] = _nearest(residual, book[:k])
            residual -= book[codes[:, level]]
        return codes

    def fit_transform(self, vectors: object) -> np.ndarray:
        return self.fit(vectors).transform(vectors)

    def reconstruct(self, codes: object) -> np.ndarray:
        """(n, d) sum of each item's centroids, from codes (n, >= n_levels) (a disambiguation
        column after ``n_levels`` is ignored)."""
        self._check_fitted()
        codes = check_indices("codes", codes, self.n_codes, ndim=2)
        if codes.shape[1] < self.n_levels:
            raise ValueError(f"codes must have at least n_levels={self.n_levels} columns, got {codes.shape}")
        return sum(self.codebooks_[level][codes[:, level]] for level in range(self.n_levels))

    def reconstruction_error(self, vectors: object) -> float:
        r"""Relative error :math:`\sum_i \lVert x_i - \hat x_i\rVert^2 / \sum_i \lVert x_i\rVert^2`
        of ``vectors`` coded and reconstructed (0: exact; 1: no better than predicting 0)."""
        x = self._vectors(vectors)
        return float(((x - self.reconstruct(self.transform(x))) ** 2).sum() / max((x ** 2).sum(), 1e-300))


def semantic_ids(codes: object) -> np.ndarray:
    """(n, n_levels + 1) codes with a disambiguation column: an item's rank (in row order) among
    the items with the same code tuple, 0 for an item whose tuple is its own; every row distinct."""
    codes = np.asarray(codes)
    if codes.ndim != 2 or codes.dtype.kind not in "iu":
        raise ParameterTypeError(f"codes must be a 2-D integer array, got {codes.dtype} of shape {codes.shape}")
    tuples = pd.DataFrame(codes)
    rank = tuples.groupby(list(tuples.columns), sort=False).cumcount().to_numpy(np.int64)
    return np.column_stack([codes.astype(np.int64), rank])


def codebook_usage(codes: object, n_codes: int) -> np.ndarray:
    """(n_levels,) share of each level's ``n_codes`` codes used by at least one item."""
    check_positive_int(n_codes=n_codes)
    codes = check_indices("codes", codes, n_codes, ndim=2)
    return np.array([len(np.unique(codes[:, level])) / n_codes for level in range(codes.shape[1])])


def prefix_purity(codes: object, labels: object, length: int) -> float:
    """Share of items whose label is the most common label among the items that share their first
    ``length`` codes (ties: the label that sorts first). 1.0: every prefix group is one label.

    ``labels`` (n,): one hashable label per item (e.g. its first genre). Compare with the same
    measure for random codes of the same group sizes to read it.
    """
    codes = np.asarray(codes)
    check_positive_int(length=length)
    if codes.ndim != 2 or length > codes.shape[1]:
        raise ValueError(f"length must be at most the {codes.shape[1] if codes.ndim == 2 else 0} code "
                         f"columns, got {length}")
    labels = pd.Series(np.asarray(labels, dtype=object))
    if len(labels) != len(codes) or labels.isna().any():
        raise ValueError(f"labels must hold one non-null label per item ({len(codes)}), got {len(labels)}")
    frame = pd.DataFrame(codes[:, :length]).assign(label=labels.to_numpy())
    keys = list(range(length))
    counts = frame.groupby([*keys, "label"], sort=True).size().rename("n").reset_index()
    majority = counts.sort_values([*keys, "n", "label"], ascending=[True] * length + [False, True],
                                  kind="stable").groupby(keys, sort=False)["n"].first()
    return float(majority.sum() / len(codes))

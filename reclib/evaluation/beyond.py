r"""Beyond accuracy: how spread out, surprising and popular the recommended lists are.

Accuracy metrics say whether a list holds the held-out items; these say what else the lists do.
All take encoded item indices (``recommended``, (n_users, K) integers in ``[0, n_items)``, as in
``EvaluationResult.top_items`` after encoding, or as :func:`~reclib.evaluation.evaluate_scores`
returns them, ``.to_numpy()``) and item statistics
counted on the *training* data:

- :func:`gini_index` of the recommendation counts over the catalogue: 0 when every item is
  recommended equally often, towards 1 when a few items take every slot.
- :func:`per_user_novelty`: mean self-information :math:`-\log_2 p_i` of each list (bits), with
  :math:`p_i` the share of training users who saw item ``i``.
- :func:`per_user_diversity`: intra-list diversity, the mean pairwise cosine distance of each
  list's item vectors (genre indicators, BERT vectors, ...).
- :func:`serendipity`: share of each list that is relevant *and* unexpected, i.e. not in the list
  a primitive model (popularity) would give that user (Ge et al., 2010).
- :func:`popularity_percentile`: each item's popularity percentile in the catalogue; its mean over
  the recommended items against the mean over the items users actually consumed in test is the
  popularity bias of a model (above = the model pushes the head of the catalogue).
- :func:`user_bucket_table` / :func:`item_bucket_table`: metrics broken down by user activity and
  by item popularity bucket.
- :func:`sampled_ranking`: the sampled evaluation (rank among 100 random negatives) that papers
  often report, to show how it differs from ranking the whole catalogue.

Catalogue coverage, novelty (averaged over all lists) and the list-averaged diversity are in
:mod:`reclib.evaluation.metrics`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from reclib.checks import check_finite_array, check_positive_int, require_columns
from reclib.evaluation.metrics import _hits, _item_indices, _item_values

__all__ = ["gini_index", "item_bucket_table", "per_user_diversity", "per_user_novelty",
           "popularity_percentile", "sampled_ranking", "serendipity", "user_bucket_table"]


def gini_index(recommended: object, n_items: int) -> float:
    r"""Gini coefficient of how often each of the ``n_items`` catalogue items is recommended.

    With the counts sorted ascending, :math:`c_{(1)} \le \dots \le c_{(n)}`:
    :math:`G = \sum_i (2i - n - 1)\, c_{(i)} \big/ (n \sum_i c_i)`; items never recommended count
    0. ``recommended``: integer indices in ``[0, n_items)`` of any shape (``-1`` = an empty slot,
    not counted), at least one recommendation.
    """
    check_positive_int(n_items=n_items)
    items = _item_indices("recommended", recommended, n_items, allow_padding=True)
    items = items[items >= 0]
    if items.size == 0:
        raise ValueError("recommended holds no item (only -1 padding): the Gini index is undefined")
    counts = np.sort(np.bincount(items.ravel(), minlength=n_items)).astype(np.float64)
    rank = np.arange(1, n_items + 1)
    return float(((2 * rank - n_items - 1) * counts).sum() / (n_items * counts.sum()))


def per_user_novelty(recommended: object, item_popularity: object) -> np.ndarray:
    r"""Per-list mean self-information :math:`-\log_2 p_i` in bits, shape (n_users,).

    ``item_popularity`` (n_items,) in [0, 1]: share of training users who interacted with each
    item (zeros count as the rarest seen item, as in :func:`~reclib.evaluation.novelty`, whose
    value is the mean of these). ``recommended`` (n_users, K) indices.
    """
    pop = _item_values("item_popularity", item_popularity, 0.0, 1.0)
    recs = _item_indices("recommended", recommended, len(pop), ndim=2)
    floor = pop[pop > 0].min() if (pop > 0).any() else 1.0
    return (-np.log2(np.maximum(pop, floor)))[recs].mean(axis=1)


def per_user_diversity(recommended: object, item_vectors: object) -> np.ndarray:
    """Per-list intra-list diversity: mean pairwise cosine distance (1 - cosine) between the K
    items of each list, shape (n_users,); the mean over users is
    :func:`~reclib.evaluation.intra_list_diversity`. ``item_vectors`` (n_items, d) finite (a zero
    vector, e.g. a film without genre, is at distance 1 from every item); K >= 2."""
    vecs = check_finite_array("item_vectors", item_vectors)
    if vecs.ndim != 2 or 0 in vecs.shape:
        raise ValueError(f"item_vectors must be a non-empty (n_items, d) array, got {vecs.shape}")
    recs = _item_indices("recommended", recommended, len(vecs), ndim=2)
    k = recs.shape[1]
    if k < 2:
        raise ValueError(f"recommended must be (n_users, K) with K >= 2, got {recs.shape}")
    unit = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
    summed = unit[recs].sum(axis=1)                            # (n_users, d)
    self_sims = (unit[recs] ** 2).sum(axis=(1, 2))             # k, or fewer for zero vectors
    pair_sims = ((summed ** 2).sum(axis=1) - self_sims) / (k * (k - 1))
    return 1.0 - pair_sims


def serendipity(hits: object, recommended: object, expected: object) -> np.ndarray:
    """Per-user serendipity: the share of the K recommended items that are relevant (``hits``)
    and not in the user's ``expected`` list (what a primitive model, usually popularity, would
    recommend), shape (n_users,).

    ``hits`` (n_users, K) booleans or 0/1 aligned with ``recommended`` (n_users, K) item indices;
    ``expected`` (n_users, K') item indices (``-1`` padding allowed). Unexpectedness follows Ge et
    al. (2010): a hit that the popularity list also holds is no surprise.
    """
    h = _hits(hits)
    recs = np.asarray(recommended)
    exp = np.asarray(expected)
    for name, array in (("recommended", recs), ("expected", exp)):
        if array.dtype.kind not in "iu" or array.ndim != 2 or len(array) != h.shape[0]:
            raise ValueError(f"{name} must be an integer (n_users={h.shape[0]}, K) array, "
                             f"got dtype {array.dtype} shape {array.shape}")
    if recs.shape != h.shape:
        raise ValueError(f"recommended {recs.shape} and hits {h.shape} must have the same shape")
    in_expected = (recs[:, :, None] == exp[:, None, :]).any(axis=2)
    return (h & ~in_expected).sum(axis=1) / h.shape[1]


def popularity_percentile(item_counts: object) -> np.ndarray:
    """Each item's popularity percentile, shape (n_items,): the share of catalogue items at most
    as popular as it (``rankdata(counts, "max") / n_items``; the most popular item is 1.0, ties
    share the highest rank). ``item_counts`` (n_items,) finite, non-negative training counts."""
    counts = _item_values("item_counts", item_counts, 0.0)
    return rankdata(counts, method="max") / counts.size


def user_bucket_table(per_user: pd.DataFrame, activity: pd.Series,
                      edges: tuple[float, ...] = (0, 20, 50, 100, 200, np.inf)) -> pd.DataFrame:
    """Mean of each per-user metric by user-activity bucket.

    ``per_user``: users x metrics (index: user ids, e.g. ``result.per_user``); ``activity``:
    number of training interactions per user id (users missing from it count 0); ``edges``:
    increasing bucket edges, a bucket is ``(low, high]``. Returns one row per non-empty bucket
    (index like ``"(20, 50]"``) with ``n_users`` and the metric means.
    """
    if not isinstance(per_user, pd.DataFrame) or per_user.empty:
        raise ValueError("per_user must be a non-empty DataFrame (users x metrics)")
    if not isinstance(activity, pd.Series):
        raise ValueError(f"activity must be a Series user id -> count, got {type(activity).__name__}")
    counts = activity.reindex(per_user.index).fillna(0).to_numpy(np.float64)
    bucket = _buckets(counts, edges, "edges")
    table = per_user.groupby(bucket, observed=True).mean()
    table.insert(0, "n_users", per_user.groupby(bucket, observed=True).size())
    table.index.name = "user activity (train interactions)"
    return table


def item_bucket_table(top_items: pd.DataFrame, test: pd.DataFrame, item_counts: pd.Series,
                      edges: tuple[float, ...] = (0, 10, 50, 100, 200, np.inf),
                      user_col: str = "user_id", item_col: str = "item_id") -> pd.DataFrame:
    """How a model treats popular and rare items: one row per item-popularity bucket.

    ``top_items``: (users x K) raw item ids (``EvaluationResult.top_items``); ``test``: the test
    interactions; ``item_counts``: training interactions per raw item id (items missing count
    0); ``edges``: increasing bucket edges, ``(low, high]``. Columns: ``catalogue_share`` (share of
    the items in ``item_counts``), ``test_share`` (share of test interactions), ``rec_share``
    (share of recommendation slots) and ``recall`` (share of the bucket's test interactions of
    the evaluated users that were recommended; NaN for a bucket without any).
    """
    require_columns(test, user_col, item_col)
    if not isinstance(item_counts, pd.Series) or item_counts.empty:
        raise ValueError("item_counts must be a non-empty Series item id -> training count")
    bucket_of = pd.Series(_buckets(item_counts.to_numpy(np.float64), edges, "edges"),
                          index=item_counts.index)
    names = bucket_of.cat.categories

    def bucket(items: np.ndarray) -> pd.Categorical:
        counts = item_counts.reindex(items).fillna(0).to_numpy(np.float64)
        return _buckets(counts, edges, "edges")

    recs = top_items.stack()
    pairs = test[test[user_col].isin(top_items.index)][[user_col, item_col]].drop_duplicates()
    recommended = pd.MultiIndex.from_arrays([recs.index.get_level_values(0), recs.to_numpy()])
    hit = pd.MultiIndex.from_frame(pairs).isin(recommended)
    test_bucket = bucket(pairs[item_col].to_numpy())
    table = pd.DataFrame({
        "catalogue_share": bucket_of.value_counts(normalize=True, sort=False),
        "test_share": pd.Series(test_bucket).value_counts(normalize=True, sort=False),
        "rec_share": pd.Series(bucket(recs.to_numpy())).value_counts(normalize=True, sort=False),
        "recall": pd.Series(hit).groupby(test_bucket, observed=False).mean(),
    }).reindex(names)
    table[["catalogue_share", "test_share", "rec_share"]] = (
        table[["catalogue_share", "test_share", "rec_share"]].fillna(0.0))
    table.index.name = "item popularity (train interactions)"
    return table


def _buckets(values: np.ndarray, edges: tuple[float, ...], name: str) -> pd.Categorical:
    """``values`` cut into ``(low, high]`` buckets labelled like ``"(20, 50]"``."""
    edges_array = np.asarray(edges, dtype=np.float64)
    if edges_array.ndim != 1 or edges_array.size < 2 or np.isnan(edges_array).any() \
            or (np.diff(edges_array) <= 0).any():
        raise ValueError(f"{name} must be at least two strictly increasing numbers, got {edges!r}")
    labels = [f"({lo:g}, {hi:g}]" for lo, hi in zip(edges_array[:-1], edges_array[1:])]
    edges_array = edges_array.copy()
    edges_array[0] = min(edges_array[0], values.min() - 1)  # values at the lowest edge count
    return pd.cut(values, edges_array, labels=labels)


def sampled_ranking(model: object, train: pd.DataFrame, test: pd.DataFrame, k: int = 10,
                    n_negatives: int = 100, random_state: int = 42, batch_size: int = 256,
                    user_col: str = "user_id", item_col: str = "item_id") -> pd.Series:
    """The *sampled* evaluation many papers use, for comparison with full ranking: each test
    (user, item) pair is ranked against ``n_negatives`` items drawn uniformly (with replacement)
    from the model's items the user has in neither ``train`` nor ``test``.

    The rank of the test item is the number of its negatives scoring strictly higher plus half
    of those tied (ties split evenly, no lucky index order). Returns a Series ``hit_rate`` (rank
    < ``k``) and ``ndcg`` (``1 / log2(rank + 2)`` when rank < ``k``, else 0), means over test
    pairs whose item and user the model knows. ``model``: a fitted recommender (``score``,
    ``item_ids_``, ``item_encoder_``); deterministic in ``random_state``.
    """
    check_positive_int(k=k, n_negatives=n_negatives, batch_size=batch_size)
    require_columns(train, user_col, item_col)
    require_columns(test, user_col, item_col)
    items = pd.Index(model.item_ids_)
    pairs = test[[user_col, item_col]].drop_duplicates()
    pairs = pairs[items.get_indexer(pairs[item_col]) >= 0]
    users = pd.Index(pd.unique(pairs[user_col]))
    seen = pd.concat([train[[user_col, item_col]], test[[user_col, item_col]]])
    seen = seen[seen[user_col].isin(users) & seen[item_col].isin(items)]
    n_items = len(items)
    blocked = np.zeros((len(users), n_items), dtype=bool)
    blocked[users.get_indexer(seen[user_col]), items.get_indexer(seen[item_col])] = True
    row = users.get_indexer(pairs[user_col])
    positive = items.get_indexer(pairs[item_col])
    rng = np.random.default_rng(random_state)
    # uniform draws among each user's allowed items: the j-th allowed item, j uniform
    allowed = np.flatnonzero(~blocked.ravel())               # user-major flat positions
    n_allowed = (~blocked).sum(axis=1)
    if (n_allowed[row] == 0).any():
        raise ValueError("some test users have no item left to sample as a negative")
    first = np.concatenate([[0], np.cumsum(n_allowed)[:-1]])
    pick = np.floor(rng.random((len(pairs), n_negatives)) * n_allowed[row][:, None]).astype(np.int64)
    negatives = allowed[first[row][:, None] + pick] % n_items
    rank = np.empty(len(pairs))
    for start in range(0, len(users), batch_size):
        stop = min(start + batch_size, len(users))
        in_batch = np.flatnonzero((row >= start) & (row < stop))
        scores = np.asarray(model.score(users[start:stop].to_numpy()), dtype=np.float64)
        local = row[in_batch] - start
        pos_score = scores[local, positive[in_batch]][:, None]
        neg_score = scores[local[:, None], negatives[in_batch]]
        rank[in_batch] = ((neg_score > pos_score).sum(axis=1)
                          + 0.5 * (neg_score == pos_score).sum(axis=1))
    hit = rank < k
    return pd.Series({"hit_rate": float(hit.mean()),
                      "ndcg": float(np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0).mean())})

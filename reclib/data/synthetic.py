r"""Seeded synthetic data at any size: implicit feedback and click rows with power-law popularity and
planted low-rank preferences, streamed in chunks (never one giant array).

**Implicit feedback** (:class:`SyntheticImplicit`). ``n_topics`` latent topics; user :math:`u` has
topic weights :math:`\theta_u \sim \mathrm{Dirichlet}(\alpha)` (small :math:`\alpha`: a few topics per
user) and topic :math:`t` an item distribution

.. math:: \varphi_{ti} \propto w_i \, e^{s\, g_{ti}}, \qquad w_i = r_i^{-a}, \quad g_{ti} \sim N(0, 1),

where :math:`r_i` is item :math:`i`'s popularity rank (a random permutation of 1..n_items, Zipf
exponent :math:`a`) and :math:`s` the topic ``sharpness``. An event of user :math:`u` picks a topic
:math:`t \sim \theta_u`, then an item :math:`i \sim \varphi_t`, so

.. math:: P(i \mid u) = \sum_t \theta_{ut} \varphi_{ti} = (\Theta \Phi)_{ui},

a rank-``n_topics`` preference matrix (the *planted* structure), skewed by popularity. Users are drawn
uniformly. Sampling is vectorised: one inverse-CDF look-up for the topic of every event in a chunk,
and one ``searchsorted`` into the topics' concatenated CDFs (topic :math:`t`'s CDF shifted by
:math:`t`) for the item. Memory: :math:`O(n_{topics} \cdot n_{items} + n_{users} \cdot n_{topics})`
plus one chunk.

**Click rows** (:func:`synthetic_ctr_chunks`): ``n_categorical`` Zipf-distributed id fields, ``n_numeric``
standard-normal fields and a ``click`` label drawn from a planted logistic model (one random effect
per id value plus a linear numeric term), as in the shape of the Criteo data.

**Planted order** (:func:`planted_sequences`): items lie on a hidden random cycle (item
:math:`i`'s successor is ``successor[i]``); each user starts at a random item and at every step
moves to the current item's successor with probability ``follow``, otherwise to a uniformly random
item. A next-item model that reads order can reach HR@10 near ``follow``; popularity cannot (every
item is about equally common), so a broken causal mask or an off-by-one shift shows as a collapse.

Same seed and chunk size -> same rows: every chunk draws from its own generator, seeded by
``(random_state, chunk index)``, so chunks can be generated independently (in parallel, resumed, or as one process's shard:
``shard=(p, P)`` streams chunks ``p, p + P, ...`` only).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclib.checks import check_indices, check_non_negative_int, check_positive, check_positive_int, check_probability

__all__ = ["SyntheticImplicit", "planted_sequences", "synthetic_ctr_chunks"]


def _chunk_starts(n_rows: int, chunk_size: int, shard: tuple[int, int]) -> list[tuple[int, int]]:
    """``(chunk index, first row)`` of the chunks shard ``(p, P)`` owns: indices ``p, p + P, ...``.
    Each chunk draws from its own seeded generator, so a shard is generated without the others."""
    if (not isinstance(shard, tuple) or len(shard) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in shard)):
        raise ValueError(f"shard must be a pair (process_index, process_count) of ints, got {shard!r}")
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard (process_index, process_count) needs 0 <= process_index < process_count, got {shard}")
    starts = list(enumerate(range(0, n_rows, chunk_size)))
    return starts[index::count]


def _zipf_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Weights ``rank ** -exponent`` over ``n`` values, ranks in random order, summing to 1: (n,)."""
    weights = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return rng.permutation(weights / weights.sum())


@dataclass
class SyntheticImplicit:
    """Implicit-feedback generator with a planted rank-``n_topics`` preference matrix (module doc).

    Parameters
    ----------
    n_users, n_items: ints >= 1; n_topics: latent rank, >= 1.
    zipf: popularity exponent :math:`a` > 0 (1.0: the 10 % most popular items draw most events).
    concentration: Dirichlet :math:`\\alpha` > 0 of the users' topic weights.
    sharpness: :math:`s` >= 0, how strongly topics prefer their own items (0: popularity only).
    random_state: >= 0.

    Attributes: ``user_topics_`` (n_users, n_topics), ``topic_items_`` (n_topics, n_items; rows
    sum to 1), ``popularity_`` (n_items,) the Zipf weights :math:`w`.
    """

    n_users: int = 10_000
    n_items: int = 2_000
    n_topics: int = 8
    zipf: float = 1.0
    concentration: float = 0.1
    sharpness: float = 2.0
    random_state: int = 0

    def __post_init__(self) -> None:
        check_positive_int(n_users=self.n_users, n_items=self.n_items, n_topics=self.n_topics)
        check_positive(zipf=self.zipf, concentration=self.concentration)
        check_non_negative_int(random_state=self.random_state)
        if not isinstance(self.sharpness, (int, float)) or not np.isfinite(self.sharpness) or self.sharpness < 0:
            raise ValueError(f"sharpness must be a finite number >= 0, got {self.sharpness!r}")
        rng = np.random.default_rng([self.random_state, 0])
        self.popularity_ = _zipf_weights(self.n_items, self.zipf, rng)
        logits = np.log(self.popularity_) + self.sharpness * rng.standard_normal((self.n_topics, self.n_items))
        logits -= logits.max(axis=1, keepdims=True)
        topic_items = np.exp(logits)
        self.topic_items_ = topic_items / topic_items.sum(axis=1, keepdims=True)
        self.user_topics_ = rng.dirichlet(np.full(self.n_topics, self.concentration), size=self.n_users)
        # topic t's CDF lives in [t, t + 1]: one searchsorted finds the item of every (topic, uniform) pair
        cdf = np.cumsum(self.topic_items_, axis=1)
        cdf[:, -1] = 1.0
        self._item_cdf = (cdf + np.arange(self.n_topics)[:, None]).ravel()
        self._topic_cdf = np.cumsum(self.user_topics_, axis=1)
        self._topic_cdf[:, -1] = 1.0

    def preferences(self, users: np.ndarray) -> np.ndarray:
        """The planted :math:`P(i \\mid u)` for user indices ``users`` (1-D, in ``[0, n_users)``):
        (len(users), n_items), rows sum to 1."""
        return self.user_topics_[check_indices("users", users, self.n_users, ndim=1)] @ self.topic_items_

    def planted_top_items(self, users: np.ndarray, k: int = 10,
                          exclude: sp.spmatrix | None = None) -> np.ndarray:
        """The ``k`` items of highest planted preference for each user index: (len(users), k) item
        indices, best first, ties to the lower index (:func:`reclib.base.top_k`); ``exclude``
        (len(users), n_items) masks items (e.g. those the user already has)."""
        from reclib.base import top_k          # reclib.base imports reclib.data: resolved at call time

        check_positive_int(k=k)
        items, _ = top_k(self.preferences(users), k, exclude)
        return items

    def planted_recall(self, model, k: int = 10) -> float:
        r"""Recall@k of a fitted :class:`reclib.base.Recommender` (trained on this generator's
        events) against the planted top-``k`` items each user does not have yet: the mean over the
        model's users of :math:`|\text{recommended} \cap \text{planted}| / k`. Both sides exclude the
        user's training items; ``model.recommend(exclude_seen=True)`` gives the recommended side."""
        check_positive_int(k=k)
        users = np.asarray(model.user_ids_, dtype=np.int64)
        seen = model.train_matrix_.tocoo()
        exclude = sp.csr_matrix((np.ones(seen.nnz), (seen.row, np.asarray(model.item_ids_)[seen.col])),
                                shape=(len(users), self.n_items))
        truth = self.planted_top_items(users, k, exclude)                        # (n_users, k)
        recs = model.recommend(users, k=k)
        recommended = np.full((len(users), k), -1, dtype=np.int64)
        recommended[model.user_index(recs[model.user_col].to_numpy()), recs["rank"].to_numpy() - 1] = \
            recs[model.item_col].to_numpy()
        hits = (recommended[:, :, None] == truth[:, None, :]).any(axis=2).sum(axis=1)
        return float(np.mean(hits / k))

    def chunks(self, n_rows: int, chunk_size: int = 1_000_000,
               shard: tuple[int, int] = (0, 1)) -> Iterator[pd.DataFrame]:
        """``n_rows`` events in frames of at most ``chunk_size`` rows: ``user_id``, ``item_id``
        (int64 indices) and ``timestamp`` (the event's global position, int64, so rows are unique).
        ``shard=(p, P)``: only chunks ``p, p + P, p + 2P, ...`` (process ``p`` of ``P`` streams
        its own disjoint part; the ``P`` shards together are every chunk once)."""
        check_positive_int(n_rows=n_rows, chunk_size=chunk_size)
        for index, start in _chunk_starts(n_rows, chunk_size, shard):
            size = min(chunk_size, n_rows - start)
            rng = np.random.default_rng([self.random_state, 1, index])
            users = rng.integers(0, self.n_users, size)
            cdf = self._topic_cdf[users]
            topics = np.minimum((cdf < rng.random(size)[:, None]).sum(axis=1), self.n_topics - 1)
            items = np.searchsorted(self._item_cdf, topics + rng.random(size), side="right")
            items = np.minimum(items - topics * self.n_items, self.n_items - 1)   # float round-off at a topic's end
            yield pd.DataFrame({"user_id": users.astype(np.int64), "item_id": items.astype(np.int64),
                                "timestamp": np.arange(start, start + size, dtype=np.int64)})

    def frame(self, n_rows: int, chunk_size: int = 1_000_000) -> pd.DataFrame:
        """All ``n_rows`` events in one frame (the chunks concatenated), for sizes that fit in memory."""
        return pd.concat(self.chunks(n_rows, chunk_size), ignore_index=True)


def synthetic_ctr_chunks(n_rows: int, n_categorical: int = 8, n_numeric: int = 4, vocabulary: int = 1000,
                         zipf: float = 1.1, signal: float = 1.0, chunk_size: int = 1_000_000,
                         random_state: int = 0, shard: tuple[int, int] = (0, 1)) -> Iterator[pd.DataFrame]:
    """Click rows in frames of at most ``chunk_size`` rows (module doc); ``shard=(p, P)``: only
    chunks ``p, p + P, ...`` (as :meth:`SyntheticImplicit.chunks`).

    Columns ``c0..c{n_categorical-1}`` (int64 ids in ``[0, vocabulary)``, Zipf exponent ``zipf``),
    ``n0..n{n_numeric-1}`` (float32, standard normal) and ``click`` (float32 0/1 from
    :math:`\\sigma(\\text{signal} \\cdot (\\sum_f e_{f, c_f} + \\sum_j \\beta_j n_j) - 1)`, with
    random effects :math:`e \\sim N(0, 1/F)` per id value and :math:`\\beta \\sim N(0, 1/J)`: a base
    click rate near 30 %).
    """
    check_positive_int(n_rows=n_rows, n_categorical=n_categorical, vocabulary=vocabulary, chunk_size=chunk_size)
    check_non_negative_int(n_numeric=n_numeric, random_state=random_state)
    check_positive(zipf=zipf)
    if not isinstance(signal, (int, float)) or not np.isfinite(signal) or signal < 0:
        raise ValueError(f"signal must be a finite number >= 0, got {signal!r}")
    rng = np.random.default_rng([random_state, 0])
    cdfs = np.cumsum([_zipf_weights(vocabulary, zipf, rng) for _ in range(n_categorical)], axis=1)
    cdfs[:, -1] = 1.0
    effects = rng.standard_normal((n_categorical, vocabulary)) / np.sqrt(n_categorical)
    betas = rng.standard_normal(n_numeric) / np.sqrt(max(n_numeric, 1))
    for index, start in _chunk_starts(n_rows, chunk_size, shard):
        size = min(chunk_size, n_rows - start)
        chunk_rng = np.random.default_rng([random_state, 1, index])
        uniforms = chunk_rng.random((n_categorical, size))
        ids = np.stack([np.minimum(np.searchsorted(cdfs[f], uniforms[f], side="right"), vocabulary - 1)
                        for f in range(n_categorical)])                          # loop over fields, not rows
        numeric = chunk_rng.standard_normal((size, n_numeric)).astype(np.float32)
        logit = signal * (np.take_along_axis(effects, ids, axis=1).sum(axis=0) + numeric @ betas) - 1.0
        click = (chunk_rng.random(size) < 1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
        columns = {f"c{f}": ids[f].astype(np.int64) for f in range(n_categorical)}
        columns.update({f"n{j}": numeric[:, j] for j in range(n_numeric)})
        columns["click"] = click
        yield pd.DataFrame(columns)


def planted_sequences(n_users: int = 400, n_items: int = 200, length: int = 15, follow: float = 0.8,
                      random_state: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Event sequences with planted transitions (module doc): ``(events, successor)``.

    events: ``user_id``, ``item_id`` (int64 indices) and ``timestamp`` (the step, 0..length-1, so
    no two events of a user tie), at most ``n_users * length`` rows: a user's repeat of an item
    they already had is dropped (a film is rated once), so a few sequences are shorter.
    successor: (n_items,) the planted next item of each item. ``follow`` in [0, 1]; the walk is
    vectorised over users, one step at a time.
    """
    check_positive_int(n_users=n_users, n_items=n_items, length=length)
    check_non_negative_int(random_state=random_state)
    check_probability(follow=follow)
    rng = np.random.default_rng([random_state, 2])
    cycle = rng.permutation(n_items)
    successor = np.empty(n_items, np.int64)
    successor[cycle] = np.roll(cycle, -1)
    items = np.empty((n_users, length), np.int64)
    items[:, 0] = rng.integers(0, n_items, n_users)
    for step in range(1, length):
        jump = rng.random(n_users) >= follow
        items[:, step] = np.where(jump, rng.integers(0, n_items, n_users), successor[items[:, step - 1]])
    events = pd.DataFrame({"user_id": np.repeat(np.arange(n_users, dtype=np.int64), length),
                           "item_id": items.ravel(), "timestamp": np.tile(np.arange(length, dtype=np.int64), n_users)})
    return events.drop_duplicates(["user_id", "item_id"], keep="first").reset_index(drop=True), successor

r"""Policies for the recommend -> feedback -> update loop: ``select(users, k)`` and ``update(users, items, rewards)``.

Every policy works on user and item *indices* of one catalogue (the simulator's columns) and on a
whole population at once: ``select`` takes an int or an array of ``n`` users and returns an
(n, k) array of items, best first, never an item the user was already shown (or has in their
``exclude`` history; ``ValueError`` when fewer than ``k`` such items are left); ``update`` takes
the users, the (n, k) items shown and the (n, k) rewards (1.0 click, 0.0 none). ``select`` changes no state except the random draws, so the offline replay
(:func:`~reclib.interactive.loop.replay`) can discard slates. Equal scores are ordered by the
``tie_keys`` a policy is given (:func:`reclib.data.ties.tie_keys` of the catalogue's raw ids: the
kit's tie rule, as in :func:`reclib.base.top_k`); :class:`GreedyPolicy` derives them from its
``item_ids``; without keys, ties go to the lower item index.

- :class:`PopularityPolicy`: item counts from the log plus the clicks seen online.
- :class:`GreedyPolicy`: exploit a collaborative model that scores histories (its public
  ``score_history_matrix``: for :class:`~reclib.cf.ImplicitALS` the closed-form fold-in) over each
  user's clicked and logged items, so every click moves the next slate; a user with no positive
  item yet gets popularity.
- :class:`EpsilonGreedyPolicy`: the greedy slate with each position replaced, with probability
  :math:`\varepsilon`, by a uniformly random item the user has not been shown.
- :class:`LinUCBPolicy` (Li et al. 2010) and :class:`LinearThompsonPolicy` (Agrawal & Goyal 2013):
  one ridge regression of clicks on arm features :math:`x_i` per user, :math:`A_u = \lambda I +
  \sum x_i x_i^\top`, :math:`b_u = \lambda \theta^0_u + \sum r_i x_i`, :math:`\hat\theta_u = A_u^{-1}
  b_u`. LinUCB scores :math:`\hat\theta_u^\top x_i + \alpha \sqrt{x_i^\top A_u^{-1} x_i}`; Thompson
  sampling draws :math:`\tilde\theta_u \sim N(\hat\theta_u, v^2 A_u^{-1})` each round and scores
  :math:`\tilde\theta_u^\top x_i`. The prior mean :math:`\theta^0_u` (zero by default) is where a
  user's free text enters. :math:`A_u^{-1}` is kept up to date by Sherman-Morrison rank-one updates,
  vectorised over users.
- :class:`TextPolicy`: cosine between item text vectors and a user query vector that starts at
  the embedding of what the user wrote and moves towards clicked items (Rocchio):
  :math:`q_u = t_u + \beta \sum_{\text{clicked}} v_i`.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from reclib.base import Recommender, top_k, user_batches
from reclib.data.ties import tie_keys as kit_tie_keys
from reclib.checks import (check_distinct_rows, check_finite_array, check_indices, check_non_negative,
                           check_non_negative_int, check_positive, check_positive_int,
                           check_probability)
from reclib.serving.history import HistoryStore

__all__ = ["EpsilonGreedyPolicy", "GreedyPolicy", "LinUCBPolicy", "LinearThompsonPolicy", "Policy",
           "PopularityPolicy", "TextPolicy", "arm_features"]


def arm_features(text_vectors: np.ndarray, popularity: np.ndarray, n_components: int = 16,
                 random_state: int = 0) -> tuple[np.ndarray, object]:
    """Arm features for the linear bandits: whitened PCA of the item text vectors (n_components
    dims), the standardised log-popularity, and a constant 1 (the user's base click rate).

    Returns ``(features (n_items, n_components + 2), pca)``; ``pca.transform`` maps a text vector
    (e.g. a user's sentence) into the same reduced space.
    """
    from sklearn.decomposition import PCA

    vectors = check_finite_array("text_vectors", text_vectors)
    pop = check_finite_array("popularity", popularity)
    check_positive_int(n_components=n_components)
    if vectors.ndim != 2 or pop.shape != (len(vectors),):
        raise ValueError(f"text_vectors must be (n_items, d) and popularity (n_items,), got "
                         f"{vectors.shape} and {pop.shape}")
    pca = PCA(n_components, whiten=True, random_state=random_state).fit(vectors)
    logpop = np.log1p(np.maximum(pop, 0.0))
    logpop = (logpop - logpop.mean()) / max(logpop.std(), 1e-12)
    return np.hstack([pca.transform(vectors), logpop[:, None], np.ones((len(vectors), 1))]), pca


def distinct_users(caller: str, users: np.ndarray) -> None:
    """Raise ``ValueError`` naming the first user index that occurs more than once in ``users``."""
    values, counts = np.unique(users, return_counts=True)
    if (counts > 1).any():
        first = int(np.argmax(counts > 1))
        raise ValueError(f"{caller} takes each user at most once per call, got user {values[first]} "
                         f"{counts[first]} times")


class Policy:
    """Shared state: ``history``, a :class:`~reclib.serving.history.HistoryStore` of every item each
    user was shown (value: the reward) or has in ``exclude`` (value 1.0, a logged positive); an item
    in it is never shown to that user again.

    Users and items are indices (``reclib.checks.check_indices``: integers, or whole floats, in
    ``[0, n_users)`` and ``[0, n_items)``). ``select`` raises ``ValueError`` naming the user when a
    user has fewer than ``k`` items left unshown, rather than repeat an item. ``tie_keys``: (n_items,)
    keys ordering equal scores, lower first (default the item index). Subclasses implement
    ``_scores(users) -> (n, n_items)`` and may extend ``_learn``.
    """

    name = "policy"

    def __init__(self, n_users: int, n_items: int, exclude: sp.spmatrix | None = None,
                 random_state: int = 0, *, tie_keys: np.ndarray | None = None) -> None:
        check_positive_int(n_users=n_users, n_items=n_items)
        check_non_negative_int(random_state=random_state)
        if tie_keys is not None:
            tie_keys = np.asarray(tie_keys)
            if tie_keys.shape != (n_items,) or tie_keys.dtype.kind not in "iuf":
                raise ValueError(f"tie_keys must be ({n_items},) numbers, one per item, got shape "
                                 f"{tie_keys.shape} of {tie_keys.dtype}")
        self.n_users, self.n_items, self.random_state = n_users, n_items, random_state
        self.tie_keys = tie_keys
        self.history = HistoryStore(n_items, n_users=n_users)
        if exclude is not None:
            if exclude.shape != (n_users, n_items):
                raise ValueError(f"exclude must have shape {(n_users, n_items)}, got {exclude.shape}")
            coo = sp.coo_matrix(exclude)
            coo.sum_duplicates()
            self.history.add(coo.row, coo.col)
        self.rng = np.random.default_rng(random_state)

    def _users(self, users: object) -> np.ndarray:
        """``users`` (an int or a 1-D array) as an int64 array of user indices, else raise."""
        return check_indices("users", np.atleast_1d(users), self.n_users, ndim=1)

    def _scores(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def select(self, users: object, k: int) -> np.ndarray:
        """The (n, k) items to show, best first (module doc)."""
        check_positive_int(k=k)
        users = self._users(users)
        seen = self.history.seen(users)                  # read once: the mask and the counts
        left = self.n_items - np.diff(seen.indptr)
        if (left < k).any():
            first = int(np.argmax(left < k))
            raise ValueError(f"user {users[first]} has {left[first]} of {self.n_items} items left "
                             f"unshown, fewer than k={k}: a slate would repeat an item")
        scores = np.array(self._scores(users), dtype=np.float64)
        shown = seen.tocoo()
        scores[shown.row, shown.col] = -np.inf
        return top_k(scores, k, tie_keys=self.tie_keys)[0]

    def update(self, users: object, items: np.ndarray, rewards: np.ndarray) -> None:
        """Record that ``items`` (n, k) were shown to ``users`` (n,) with ``rewards`` (n, k)."""
        users = self._users(users)
        items = check_indices("items", items, self.n_items, ndim=2)
        rewards = check_finite_array("rewards", rewards)
        if len(items) != len(users) or rewards.shape != items.shape:
            raise ValueError(f"items and rewards must both be (len(users), k) = ({len(users)}, k), "
                             f"got items {items.shape} and rewards {rewards.shape}")
        if len(users) == 0:
            return
        distinct_users("update", users)
        check_distinct_rows("items", items)
        again = self.history.contains(users, items)
        if again.any():
            row, col = np.unravel_index(int(np.argmax(again)), again.shape)
            raise ValueError(f"items: item {items[row, col]} was already shown to (or excluded for) user "
                             f"{users[row]}; a policy shows each item once per user")
        self.history.add(users, items, rewards)
        self._learn(users, items, rewards)

    def _learn(self, users: np.ndarray, items: np.ndarray, rewards: np.ndarray) -> None:
        """Update the model from one batch of feedback (no-op by default)."""


class PopularityPolicy(Policy):
    """Score = log count of an item (e.g. its ratings in the log) + its clicks seen online so far."""

    name = "popularity"

    def __init__(self, counts: np.ndarray, n_users: int, exclude: sp.spmatrix | None = None,
                 random_state: int = 0, *, tie_keys: np.ndarray | None = None) -> None:
        counts = check_finite_array("counts", counts)
        super().__init__(n_users, len(counts), exclude, random_state, tie_keys=tie_keys)
        self.counts = counts.copy()

    def _scores(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(users), self.n_items))

    def _learn(self, users: np.ndarray, items: np.ndarray, rewards: np.ndarray) -> None:
        np.add.at(self.counts, items.ravel(), rewards.ravel())      # incremental item statistics


class GreedyPolicy(PopularityPolicy):
    """Exploit a fitted recommender that scores histories, from each user's positives (module doc).

    ``model`` was fitted on the log (e.g. :class:`~reclib.cf.ImplicitALS`, whose history scores are
    the ALS fold-in; a model whose history scores need the order of events, such as the sequential
    ones, does not fit here); ``item_ids`` are the catalogue's raw ids (items the model never saw
    score 0); ``exclude`` (n_users, n_items) sparse holds each user's logged items, which count as
    positives and are excluded from the slates; ``counts`` are the popularity fallback. A user's positives
    are the items of their :attr:`Policy.history` with a positive value (logged, or clicked).
    ``tie_keys`` default to the kit's rule over ``item_ids``.
    """

    name = "greedy"

    def __init__(self, model: Recommender, item_ids: np.ndarray, counts: np.ndarray, n_users: int,
                 exclude: sp.spmatrix | None = None, random_state: int = 0, *,
                 tie_keys: np.ndarray | None = None) -> None:
        if not isinstance(model, Recommender):
            raise ValueError(f"model must be a fitted Recommender that scores history matrices "
                             f"(score_history_matrix), got {type(model).__name__}")
        model._check_fitted()
        try:                                            # one empty history: refused here, not at select
            model.score_history_matrix(sp.csr_matrix((1, len(model.item_ids_))))
        except NotImplementedError:
            raise ValueError(f"model must be a fitted Recommender that scores history matrices "
                             f"(score_history_matrix), got {type(model).__name__}") from None
        keys = kit_tie_keys(np.asarray(item_ids)) if tie_keys is None else tie_keys
        super().__init__(counts, n_users, exclude, random_state, tie_keys=keys)
        self.model = model
        columns = model.item_encoder_.transform(np.asarray(item_ids), unknown="ignore")
        known = np.flatnonzero(columns >= 0)
        # (n_items, n_model_items) 0/1 map from catalogue columns to the model's columns
        self.to_model = sp.csr_matrix((np.ones(len(known)), (known, columns[known])),
                                      shape=(self.n_items, len(model.item_ids_)))

    def positives(self, users: object) -> sp.csr_matrix:
        """(n, n_items) CSR with 1.0 for each item the user logged or clicked."""
        positive = self.history.values(self._users(users))
        positive.data = (positive.data > 0).astype(np.float64)
        positive.eliminate_zeros()
        return positive

    def _scores(self, users: np.ndarray) -> np.ndarray:
        positive = self.positives(users)
        scores = np.asarray(self.model.score_history_matrix(sp.csr_matrix(positive @ self.to_model)))
        scores = np.asarray(scores @ self.to_model.T, dtype=np.float64)
        cold = np.diff(positive.indptr) == 0
        scores[cold] = self.counts
        return scores


class EpsilonGreedyPolicy(GreedyPolicy):
    """:class:`GreedyPolicy` exploring each slate position with probability ``epsilon``."""

    name = "epsilon-greedy"

    def __init__(self, model: Recommender, item_ids: np.ndarray, counts: np.ndarray, n_users: int,
                 exclude: sp.spmatrix | None = None, epsilon: float = 0.1, random_state: int = 0, *,
                 tie_keys: np.ndarray | None = None) -> None:
        check_probability(epsilon=epsilon)
        super().__init__(model, item_ids, counts, n_users, exclude, random_state, tie_keys=tie_keys)
        self.epsilon = epsilon

    def select(self, users: object, k: int) -> np.ndarray:
        greedy = super().select(users, k)
        users = self._users(users)
        noise = self.rng.random((len(users), self.n_items))
        shown = self.history.seen(users).tocoo()
        noise[shown.row, shown.col] = -np.inf
        np.put_along_axis(noise, greedy, -np.inf, axis=1)          # explore outside the greedy slate
        explore = top_k(noise, greedy.shape[1])[0]
        coin = self.rng.random(greedy.shape) < self.epsilon
        return np.where(coin & (np.take_along_axis(noise, explore, 1) > -np.inf), explore, greedy)


class LinUCBPolicy(Policy):
    """Per-user ridge regression of clicks on arm features, optimistic scores (module doc).

    Parameters
    ----------
    features: (n_items, d) arm features (:func:`arm_features`); n_users.
    alpha: width of the confidence bonus; reg: :math:`\\lambda` (prior precision).
    prior: (n_users, d) prior means :math:`\\theta^0_u` (e.g. from a user's text), zeros if ``None``.
    exclude, random_state: as for every policy. batch_size: users per scoring batch (memory
    ``batch_size * n_items * d`` floats).
    """

    name = "LinUCB"

    def __init__(self, features: np.ndarray, n_users: int, alpha: float = 0.3, reg: float = 1.0,
                 prior: np.ndarray | None = None, exclude: sp.spmatrix | None = None, random_state: int = 0,
                 batch_size: int = 64, *, tie_keys: np.ndarray | None = None) -> None:
        features = check_finite_array("features", features)
        if features.ndim != 2:
            raise ValueError(f"features must be (n_items, d), got {features.shape}")
        check_non_negative(alpha=alpha)
        check_positive(reg=reg)
        check_positive_int(batch_size=batch_size)
        super().__init__(n_users, len(features), exclude, random_state, tie_keys=tie_keys)
        d = features.shape[1]
        prior = np.zeros((n_users, d)) if prior is None else check_finite_array("prior", prior)
        if prior.shape != (n_users, d):
            raise ValueError(f"prior must have shape {(n_users, d)}, got {prior.shape}")
        self.features, self.alpha, self.reg, self.batch_size = features, alpha, reg, batch_size
        self.A_inv = np.broadcast_to(np.eye(d) / reg, (n_users, d, d)).copy()
        self.b = reg * prior

    def theta(self, users: np.ndarray) -> np.ndarray:
        """:math:`\\hat\\theta_u = A_u^{-1} b_u`, (n, d)."""
        users = self._users(users)
        return np.einsum("nde,ne->nd", self.A_inv[users], self.b[users])

    def _scores(self, users: np.ndarray) -> np.ndarray:
        mean = self.theta(users) @ self.features.T
        if self.alpha == 0:
            return mean
        width = np.empty_like(mean)
        for batch in user_batches(len(users), self.batch_size):
            projected = np.matmul(self.features, self.A_inv[users[batch]])   # (b, n_items, d)
            width[batch] = np.sqrt(np.maximum(np.einsum("bid,id->bi", projected, self.features), 0))
        return mean + self.alpha * width

    def _learn(self, users: np.ndarray, items: np.ndarray, rewards: np.ndarray) -> None:
        for j in range(items.shape[1]):                  # k rank-one updates, each over all users
            x = self.features[items[:, j]]                                   # (n, d)
            Ax = np.einsum("nde,ne->nd", self.A_inv[users], x)
            denom = 1.0 + np.einsum("nd,nd->n", x, Ax)
            self.A_inv[users] -= Ax[:, :, None] * Ax[:, None, :] / denom[:, None, None]
            self.b[users] += rewards[:, j, None] * x


class LinearThompsonPolicy(LinUCBPolicy):
    """Thompson sampling on the same per-user ridge posterior; ``scale`` is :math:`v` (module doc)."""

    name = "Thompson"

    def __init__(self, features: np.ndarray, n_users: int, scale: float = 0.3, reg: float = 1.0,
                 prior: np.ndarray | None = None, exclude: sp.spmatrix | None = None,
                 random_state: int = 0, *, tie_keys: np.ndarray | None = None) -> None:
        check_non_negative(scale=scale)
        super().__init__(features, n_users, 0.0, reg, prior, exclude, random_state, tie_keys=tie_keys)
        self.scale = scale

    def _scores(self, users: np.ndarray) -> np.ndarray:
        cov = self.A_inv[users]
        chol = np.linalg.cholesky(0.5 * (cov + cov.transpose(0, 2, 1)))
        z = self.rng.standard_normal((len(users), self.features.shape[1]))
        sample = self.theta(users) + self.scale * np.einsum("nde,ne->nd", chol, z)
        return sample @ self.features.T


class TextPolicy(Policy):
    """Cold start from free text: cosine of item text vectors with a Rocchio query (module doc).

    ``item_vectors`` (n_items, d) and ``user_vectors`` (n_users, d) are unit text embeddings (the
    items' text, each user's sentence); ``beta`` weighs each clicked item.
    """

    name = "text"

    def __init__(self, item_vectors: np.ndarray, user_vectors: np.ndarray, beta: float = 0.5,
                 exclude: sp.spmatrix | None = None, random_state: int = 0, *,
                 tie_keys: np.ndarray | None = None) -> None:
        items = check_finite_array("item_vectors", item_vectors)
        query = check_finite_array("user_vectors", user_vectors)
        check_non_negative(beta=beta)
        if items.ndim != 2 or query.ndim != 2 or query.shape[1] != items.shape[1]:
            raise ValueError(f"item_vectors (n_items, d) and user_vectors (n_users, d) must share d, "
                             f"got {items.shape} and {query.shape}")
        super().__init__(len(query), len(items), exclude, random_state, tie_keys=tie_keys)
        self.item_vectors, self.query, self.beta = items, query.copy(), beta

    def _scores(self, users: np.ndarray) -> np.ndarray:
        q = self.query[users]
        return (q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)) @ self.item_vectors.T

    def _learn(self, users: np.ndarray, items: np.ndarray, rewards: np.ndarray) -> None:
        np.add.at(self.query, users, self.beta * np.einsum("nk,nkd->nd", rewards,
                                                           self.item_vectors[items]))

r"""A seeded user simulator whose ground truth comes from data, and the text users write about themselves.

**Ground truth.** A rating model fitted on *all* MovieLens-100K ratings (by default
:class:`~reclib.cf.BiasedMF`, predictions clipped to [1, 5]) gives every user a "true" rating
:math:`r_{ui}` of every item, rated or not.

**Click model.** Shown item :math:`i`, user :math:`u` clicks when :math:`r_{ui} + \varepsilon \ge
\theta` with :math:`\varepsilon \sim N(0, \sigma^2)` drawn afresh for every impression
(:math:`\theta` = ``threshold``, default 4: "would rate it 4 or 5"; :math:`\sigma` = ``noise``), so
the click probability is :math:`p_{ui} = \Phi((r_{ui} - \theta)/\sigma)`. Clicks of one slate are
independent, position plays no role, an item is shown to a user at most once, and preferences do
not drift. Those are the simulator's assumptions; a real user would also tire, be swayed by the
slate's order and change their mind.

**Reward and regret.** The reward of a round is the number of clicks on its slate of ``k`` items.
The *expected* reward of slate :math:`S` is :math:`\sum_{i \in S} p_{ui}`. The oracle knows
:math:`p` and shows, in round :math:`t`, the items ranked :math:`(t-1)k+1 .. tk` by :math:`p_{ui}`
among those the user may be shown; after :math:`T` rounds it has collected the sum of the
:math:`Tk` largest :math:`p_{ui}`, the most any policy can expect from :math:`Tk` distinct items
(rounds past the end of the catalogue add 0). Cumulative (pseudo-)regret after :math:`T` rounds is
that sum minus the policy's summed expected reward; it is never negative (up to float round-off)
for a policy that shows each item at most once, which :func:`~reclib.interactive.loop.simulate`
guarantees. The regret of a *single* round can be negative: a policy that shows the oracle's
second-best items in round 1 and its best in round 2 beats the oracle in round 2, and the oracle
catches up only in the sum.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import ndtr

from reclib.base import Recommender
from reclib.checks import (check_distinct_rows, check_finite_array, check_indices, check_non_negative_int,
                           check_positive, check_positive_int, require_columns)

__all__ = ["ClickSimulator", "interest_sentences"]


class ClickSimulator:
    """Users clicking on slates by the click model of the module doc.

    Parameters
    ----------
    true_ratings: (n_users, n_items) finite array of true ratings.
    user_ids, item_ids: raw ids of the rows and columns (default 0..n-1).
    threshold: :math:`\\theta`; noise: :math:`\\sigma` > 0; random_state: the click draws' generator.

    ``click_probability_`` (n_users, n_items) holds :math:`p_{ui}`. Users and items are row and
    column *indices* everywhere below.
    """

    def __init__(self, true_ratings: np.ndarray, user_ids: Sequence[object] | None = None,
                 item_ids: Sequence[object] | None = None, threshold: float = 4.0,
                 noise: float = 0.5, random_state: int = 0) -> None:
        ratings = check_finite_array("true_ratings", true_ratings)
        if ratings.ndim != 2 or 0 in ratings.shape:
            raise ValueError(f"true_ratings must be a non-empty (n_users, n_items) array, got {ratings.shape}")
        check_positive(noise=noise)
        check_finite_array("threshold", threshold)
        check_non_negative_int(random_state=random_state)
        self.true_ratings, self.threshold, self.noise, self.random_state = ratings, float(threshold), noise, random_state
        self.user_ids = np.arange(ratings.shape[0]) if user_ids is None else np.asarray(user_ids)
        self.item_ids = np.arange(ratings.shape[1]) if item_ids is None else np.asarray(item_ids)
        if (len(self.user_ids), len(self.item_ids)) != ratings.shape:
            raise ValueError(f"user_ids and item_ids must have {ratings.shape} entries")
        self.click_probability_ = ndtr((ratings - self.threshold) / noise)
        self.rng = np.random.default_rng(random_state)

    @classmethod
    def from_ratings(cls, ratings: pd.DataFrame, model: Recommender | None = None,
                     threshold: float = 4.0, noise: float = 0.5, random_state: int = 0) -> ClickSimulator:
        """Fit ``model`` (default ``BiasedMF()``) on every rating and take its clipped predictions
        for every (user, item) pair as the truth."""
        from reclib.cf import BiasedMF

        require_columns(ratings, "user_id", "item_id", "rating")
        model = BiasedMF() if model is None else model
        model.fit(ratings)
        truth = np.clip(model.score(model.user_ids_), 1.0, 5.0)
        return cls(truth, model.user_ids_, model.item_ids_, threshold, noise, random_state)

    def reseed(self, random_state: int) -> None:
        """Restart the click draws from ``random_state`` (one independent run per seed)."""
        check_non_negative_int(random_state=random_state)
        self.rng = np.random.default_rng(random_state)

    @property
    def n_users(self) -> int:
        return self.true_ratings.shape[0]

    @property
    def n_items(self) -> int:
        return self.true_ratings.shape[1]

    def expected(self, users: np.ndarray, slates: np.ndarray) -> np.ndarray:
        """:math:`p_{ui}` of each shown item: (n, k) for users (n,) and slates (n, k) (indices)."""
        users = check_indices("users", users, self.n_users, ndim=1)
        slates = check_indices("slates", slates, self.n_items, ndim=2)
        check_distinct_rows("slates", slates)
        if len(slates) != len(users):
            raise ValueError(f"slates must have one row per user: {len(users)} users, slates of shape "
                             f"{slates.shape}")
        return self.click_probability_[users[:, None], slates]

    def step(self, users: np.ndarray, slates: np.ndarray) -> np.ndarray:
        """Clicks (n, k) of 0.0/1.0 on slates (n, k), drawn from the seeded generator."""
        p = self.expected(users, slates)
        return (self.rng.random(p.shape) < p).astype(np.float64)

    def oracle(self, users: np.ndarray, rounds: int, k: int,
               exclude: sp.spmatrix | np.ndarray | None = None) -> np.ndarray:
        """The oracle's expected reward per round, (rounds, n_users): the sum of the ``k`` items
        ranked :math:`(t-1)k+1 .. tk` by :math:`p_{ui}` among items not in ``exclude``
        (a (len(users), n_items) sparse matrix or boolean array of items each user may not be
        shown); past the last item a round adds 0."""
        check_positive_int(rounds=rounds, k=k)
        users = check_indices("users", users, self.n_users, ndim=1)
        if exclude is not None and np.shape(exclude) != (len(users), self.n_items):
            raise ValueError(f"exclude must have shape (len(users), n_items) = "
                             f"{(len(users), self.n_items)}, got {np.shape(exclude)}")
        p = self.click_probability_[users].copy()
        if sp.issparse(exclude):
            coo = sp.coo_matrix(exclude)
            p[coo.row, coo.col] = 0.0
        elif exclude is not None:
            p[np.asarray(exclude, dtype=bool)] = 0.0
        n = min(rounds * k, p.shape[1])
        best = -np.sort(-p, axis=1)[:, :n]
        best = np.pad(best, ((0, 0), (0, rounds * k - n)))
        return best.reshape(len(p), rounds, k).sum(axis=2).T


def interest_sentences(ratings: pd.DataFrame, items: pd.DataFrame, users: Sequence[object],
                       n_genres: int = 2, n_titles: int = 2,
                       min_rating: float = 4.0) -> pd.DataFrame:
    """A sentence of interests per user, written from their favourite genres and titles.

    Favourite genres: the ``n_genres`` genres most frequent among the user's ratings >=
    ``min_rating`` (ties alphabetically); titles: the ``n_titles`` highest-rated items (ties to the
    earliest rating). Returns a frame (user_id, text, mentioned): ``mentioned`` lists the item ids
    named in the text, which a fair evaluation must not count as discoveries. Users without a
    rating >= ``min_rating`` get a sentence from their highest-rated items instead.
    """
    require_columns(ratings, "user_id", "item_id", "rating", "timestamp")
    require_columns(items, "item_id", "title", "genres")
    check_positive_int(n_genres=n_genres, n_titles=n_titles)
    mine = ratings[ratings["user_id"].isin(list(users))]
    mine = mine.sort_values(["user_id", "rating", "timestamp", "item_id"],
                            ascending=[True, False, True, True])
    liked = mine[mine["rating"] >= min_rating]
    liked = pd.concat([liked, mine[~mine["user_id"].isin(liked["user_id"])]])
    liked = liked.merge(items[["item_id", "title", "genres"]], on="item_id", how="left")
    rows = []
    for user, group in liked.groupby("user_id", sort=False):      # one sentence per user
        genres = pd.Series([g for gs in group["genres"] for g in gs], dtype=object)
        top = genres.value_counts().rename_axis("g").reset_index().sort_values(
            ["count", "g"], ascending=[False, True])["g"].head(n_genres).tolist()
        titled = group.head(n_titles)
        text = (f"I enjoy {' and '.join(top).lower() or 'good'} movies, for example "
                f"{' and '.join(titled['title'])}.")
        rows.append({"user_id": user, "text": text, "mentioned": titled["item_id"].tolist()})
    out = pd.DataFrame(rows).set_index("user_id").loc[list(users)].reset_index()
    return out

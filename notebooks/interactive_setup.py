"""The MovieLens-100K interactive experiment of notebook 10, wired once: simulator, log, users, text.

Notebook wiring, not library: it lives beside the notebooks (which import it from their own
folder) and uses only ``reclib``'s public API.

:func:`movielens_setup` draws ``n_cold`` *cold* users (their ratings are hidden from every policy;
they arrive with one sentence about what they like) and keeps the other users as *warm* users
(their ratings form the log: the CF model and popularity are fitted on it, and their logged items
are never recommended again). The simulator's truth is fitted on all ratings (module doc of
:mod:`reclib.interactive.environment`). :func:`make_policies` builds every policy for one seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from reclib.base import interaction_matrix
from reclib.checks import check_non_negative, check_non_negative_int, check_positive_int
from reclib.data.ties import tie_keys
from reclib.interactive.environment import ClickSimulator, interest_sentences
from reclib.interactive.policies import (EpsilonGreedyPolicy, GreedyPolicy, LinearThompsonPolicy,
                                         LinUCBPolicy, Policy, PopularityPolicy, TextPolicy,
                                         arm_features)

__all__ = ["InteractiveSetup", "make_policies", "movielens_setup", "text_prior"]


@dataclass
class InteractiveSetup:
    """Everything the policies and the loop share (indices are the simulator's rows and columns).

    env: the simulator; log: the warm users' ratings (raw ids); model: ImplicitALS fitted on the
    log; counts (n_items,): ratings per item in the log; exclude (n_users, n_items) CSR: items a
    user may not be shown (warm: logged items; cold: the titles their sentence names);
    warm, cold: user indices; sentences: frame (user_id, text, mentioned) of the cold users;
    item_vectors (n_items, 384) and user_vectors (n_users, 384, zero for warm users): unit text
    embeddings; features (n_items, d) arm features and pca (text -> reduced space).
    """

    env: ClickSimulator
    log: pd.DataFrame
    model: object
    counts: np.ndarray
    exclude: sp.csr_matrix
    warm: np.ndarray
    cold: np.ndarray
    sentences: pd.DataFrame
    item_vectors: np.ndarray
    user_vectors: np.ndarray
    features: np.ndarray
    pca: object


def movielens_setup(ml: object, encoder: object, n_cold: int = 150, n_components: int = 16,
                    noise: float = 0.5, random_state: int = 0, als_epochs: int = 15) -> InteractiveSetup:
    """Build the experiment from a :class:`~reclib.data.MovieLens` and a text encoder (module doc)."""
    from reclib.cf import ImplicitALS
    from reclib.features import item_text

    check_positive_int(n_cold=n_cold, n_components=n_components, als_epochs=als_epochs)
    check_non_negative_int(random_state=random_state)
    env = ClickSimulator.from_ratings(ml.ratings, noise=noise, random_state=random_state)
    rng = np.random.default_rng(random_state)
    cold = np.sort(rng.choice(env.n_users, n_cold, replace=False))
    warm = np.setdiff1d(np.arange(env.n_users), cold)
    log = ml.ratings[ml.ratings["user_id"].isin(env.user_ids[warm])]
    model = ImplicitALS(epochs=als_epochs).fit(log)
    item_col = pd.Index(env.item_ids)
    counts = np.bincount(item_col.get_indexer(log["item_id"]), minlength=env.n_items).astype(float)
    sentences = interest_sentences(ml.ratings, ml.items, env.user_ids[cold])
    user_col = pd.Index(env.user_ids)
    rows = np.concatenate([user_col.get_indexer(log["user_id"]),
                           np.repeat(cold, sentences["mentioned"].str.len())])
    cols = np.concatenate([item_col.get_indexer(log["item_id"]),
                           item_col.get_indexer(np.concatenate(sentences["mentioned"].to_list()))])
    exclude = interaction_matrix(rows, cols, (env.n_users, env.n_items))
    items = ml.items.set_index("item_id").loc[env.item_ids].reset_index()
    item_vectors = np.asarray(encoder.encode(item_text(items).tolist()), dtype=np.float64)
    user_vectors = np.zeros((env.n_users, item_vectors.shape[1]))
    user_vectors[cold] = encoder.encode(sentences["text"].tolist())
    features, pca = arm_features(item_vectors, counts, n_components, random_state)
    return InteractiveSetup(env, log, model, counts, exclude, warm, cold, sentences, item_vectors,
                            user_vectors, features, pca)


def text_prior(setup: InteractiveSetup, weight: float) -> np.ndarray:
    """Prior means (n_users, d) for the linear bandits: ``weight`` times each cold user's sentence
    in the reduced text space (zeros for the popularity and constant features, and for warm users)."""
    check_non_negative(weight=weight)
    prior = np.zeros((setup.env.n_users, setup.features.shape[1]))
    reduced = setup.pca.transform(setup.user_vectors[setup.cold])
    prior[setup.cold, :reduced.shape[1]] = weight * reduced
    return prior


def make_policies(setup: InteractiveSetup, random_state: int = 0, epsilon: float = 0.05, alpha: float = 0.3,
                  scale: float = 0.1, reg: float = 1.0, prior_weight: float = 0.1,
                  beta: float = 0.5) -> dict[str, Policy]:
    """Fresh policies for one run (module doc of :mod:`reclib.interactive.policies`):
    popularity, greedy, epsilon-greedy, LinUCB + text, Thompson + text, and the text policy.

    The defaults (``epsilon`` 0.05 of {0.05, 0.1, 0.2}; ``alpha`` 0.3 of {0.1, 0.3, 1}; ``scale`` 0.1
    of {0.1, 0.3}; ``prior_weight`` 0.1 of {0, 0.1, 0.3}; ``beta`` 0.5, indifferent between 0.2 and 1)
    maximised the expected reward after 50 rounds of 5 items for 100 cold users of a *validation*
    draw (``movielens_setup(random_state=1)``), never the users a notebook reports on.
    """
    n = setup.env.n_users
    prior = text_prior(setup, prior_weight)
    keys = tie_keys(setup.env.item_ids)          # the kit's tie rule, as every model's ranking uses
    common = dict(exclude=setup.exclude, random_state=random_state, tie_keys=keys)
    return {
        "popularity": PopularityPolicy(setup.counts, n, **common),
        "greedy": GreedyPolicy(setup.model, setup.env.item_ids, setup.counts, n, setup.exclude, random_state),
        "epsilon-greedy": EpsilonGreedyPolicy(setup.model, setup.env.item_ids, setup.counts, n,
                                              setup.exclude, epsilon, random_state),
        "LinUCB + text": LinUCBPolicy(setup.features, n, alpha, reg, prior, **common),
        "Thompson + text": LinearThompsonPolicy(setup.features, n, scale, reg, prior, **common),
        "text": TextPolicy(setup.item_vectors, setup.user_vectors, beta, **common),
    }

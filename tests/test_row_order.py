"""The order of the training rows never changes what a model recommends (fit sorts them
canonically), and a model fitted twice with the same seed gives the same scores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reclib.cf import (BPR, EASE, BaselinePredictor, BiasedMF, ImplicitALS, ItemKNN, MostPopular,
                       NeighborhoodCF)
from reclib.models import NCF, TwoTowerRecommender

MODELS = {
    "MostPopular": lambda: MostPopular(),
    "ItemKNN": lambda: ItemKNN(n_neighbors=20),
    "EASE": lambda: EASE(reg=50.0),
    "ImplicitALS": lambda: ImplicitALS(n_factors=8, epochs=3, verbose=False),
    "BPR": lambda: BPR(n_factors=8, epochs=3, verbose=False),
    "BaselinePredictor": lambda: BaselinePredictor(),
    "NeighborhoodCF": lambda: NeighborhoodCF(k=10),
    "BiasedMF-sgd": lambda: BiasedMF(n_factors=8, epochs=3, verbose=False),
    "BiasedMF-als": lambda: BiasedMF(n_factors=8, solver="als", epochs=3, verbose=False),
    "NCF": lambda: NCF(gmf_dim=8, mlp_dims=(16, 8), epochs=1, batch_size=256),
    "TwoTower": lambda: TwoTowerRecommender(embedding_dim=8, tower_dims=(16,), epochs=1, batch_size=256),
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_shuffled_rows_give_the_same_recommendations(name, synthetic_interactions):
    frame = synthetic_interactions
    shuffled = frame.sample(frac=1.0, random_state=7)
    users = np.sort(frame["user_id"].unique())[:50]
    first = MODELS[name]().fit(frame).recommend(users, k=10)
    second = MODELS[name]().fit(shuffled).recommend(users, k=10)
    pd.testing.assert_frame_equal(first[["user_id", "item_id", "rank"]],
                                  second[["user_id", "item_id", "rank"]])
    np.testing.assert_allclose(first["score"], second["score"], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("with_time", [False, True])
def test_canonical_order_is_the_stable_lexicographic_sort(with_time):
    from reclib.base import canonical_order
    rng = np.random.default_rng(0)
    users, items = rng.integers(0, 7, 500), rng.integers(0, 5, 500)     # many exact ties
    times = rng.integers(0, 3, 500) if with_time else None
    keys = [items] + ([times] if with_time else []) + [users]
    np.testing.assert_array_equal(canonical_order(users, items, times), np.lexsort(keys))
    huge = np.array([2**62, 0, 2**62]), np.array([3, 1, 2])            # the packed key would overflow
    np.testing.assert_array_equal(canonical_order(*huge), [1, 2, 0])

"""Serving core: scoring from an explicit history equals scoring the fitted user, per-event
updates, the user-state store and exact top-K search."""

from __future__ import annotations

import numpy as np
import pytest

from reclib.base import top_k
from reclib.cf import EASE, BiasedMF, ItemKNN, MostPopular
from hypothesis import given, settings
from hypothesis import strategies as st

from reclib.serving import ExactIndex, HistoryStore, RealTimeRecommender


@pytest.mark.parametrize("make", [lambda: EASE(reg=20.0), lambda: ItemKNN(n_neighbors=20),
                                  lambda: MostPopular()], ids=["EASE", "ItemKNN", "MostPopular"])
def test_history_scores_equal_fitted_user_scores(make, synthetic_interactions):
    model = make().fit(synthetic_interactions)
    users = np.sort(synthetic_interactions["user_id"].unique())[:20]
    histories = [synthetic_interactions.loc[synthetic_interactions["user_id"] == u, "item_id"].tolist()
                 for u in users]
    np.testing.assert_allclose(model.score_histories(histories), model.score(users), rtol=1e-10)


def test_history_with_an_unknown_item_names_it(synthetic_interactions):
    model = EASE(reg=20.0).fit(synthetic_interactions)
    with pytest.raises(ValueError, match="not seen at fit"):
        model.score_histories([[0, 10**9]])


def test_models_without_history_scoring_say_so(tiny_ratings):
    model = BiasedMF(n_factors=2, epochs=1, verbose=False).fit(tiny_ratings)
    with pytest.raises(NotImplementedError, match="BiasedMF cannot score"):
        model.score_histories([[10]])


def test_realtime_update_refreshes_and_excludes_the_history(synthetic_interactions):
    model = EASE(reg=20.0).fit(synthetic_interactions)
    server = RealTimeRecommender(model, k=10)
    history = synthetic_interactions.loc[synthetic_interactions["user_id"] == 3, "item_id"].tolist()
    server.seed("new", history)
    before = server.recommend("new")
    assert before["item_id"].tolist() == model.recommend([3], k=10)["item_id"].tolist()
    clicked = int(before["item_id"].iloc[0])
    after = server.update("new", clicked)
    assert clicked not in after["item_id"].tolist() and len(after) == 10
    with pytest.raises(ValueError, match="not seen at fit"):
        server.update("new", 10**9)


def test_history_store_keeps_every_event_and_reads_the_newest():
    store = HistoryStore(n_items=10, max_length=3)
    for item in range(5):
        store.add(7, item)
    store.add([2, 7], [[9, 8], [5, 5]], values=[[1.0, 0.0], [2.0, 3.0]])   # k events per user, in order
    assert store.items(7).tolist() == [4, 5, 5] and store.all_items(7).tolist() == [0, 1, 2, 3, 4, 5, 5]
    assert store.items(2).tolist() == [9, 8] and store.items(100).tolist() == [] and len(store) == 9
    assert store.n_users == 8 and store.n_seen([7, 2, 0, 100]).tolist() == [6, 2, 0, 0]
    assert store.seen([7])[0, 5] == 2 and store.values([7])[0, 5] == 5.0
    assert store.values([2]).indices.tolist() == [9]                        # a zero value is no value
    assert store.contains([2, 7], [[8, 0], [0, 6]]).tolist() == [[True, False], [True, False]]
    with pytest.raises(ValueError, match="max_length"):
        HistoryStore(10, max_length=0)
    with pytest.raises(ValueError, match=r"items must be indices in \[0, 10\), got 10"):
        store.add(1, 10)
    with pytest.raises(ValueError, match="values"):
        store.add([1], [1], values=np.nan)
    assert len(store) == 9 and store.items(1).tolist() == []               # nothing stored by a refused call


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 7)), max_size=40),
       st.integers(1, 7), st.integers(1, 4))
def test_history_store_equals_a_list_per_user(events, batch, max_length):
    """Any split of the same events into batches gives each user's list of items, in order."""
    store, reference = HistoryStore(8, max_length=max_length), {}
    for start in range(0, len(events), batch):
        chunk = np.array(events[start:start + batch], dtype=np.int64).reshape(-1, 2)
        store.add(chunk[:, 0], chunk[:, 1])
        for user, item in chunk:
            reference.setdefault(int(user), []).append(int(item))
    for user in range(7):
        want = reference.get(user, [])
        assert store.items(user).tolist() == want[-max_length:]
        assert store.all_items(user).tolist() == want
        assert store.seen([user]).indices.tolist() == sorted(set(want))


def test_exact_index_matches_brute_force():
    rng = np.random.default_rng(0)
    vectors, queries = rng.normal(size=(500, 8)), rng.normal(size=(7, 8))
    index = ExactIndex(vectors, item_ids=np.arange(1000, 1500), batch_size=3)
    found = index.search(queries, k=5)
    want, _ = top_k(queries @ vectors.T, 5)
    assert found["item_id"].to_numpy().reshape(7, 5).tolist() == (want + 1000).tolist()
    assert found["rank"].tolist() == list(range(1, 6)) * 7
    with pytest.raises(ValueError, match="queries must have shape"):
        index.search(np.ones((2, 3)))
    with pytest.raises(ValueError, match="item_vectors"):
        ExactIndex(np.full((3, 2), np.nan))


def test_stateful_sequential_model_is_served_step_by_step():
    """A GRU learns the cycle i0 -> i1 -> ...; every update moves the top item one step on, and
    the real-time scores equal re-scoring the history while it fits in the window."""
    import numpy as np
    import pandas as pd

    from reclib.models.sequential import RecurrentRecommender
    from reclib.serving import RealTimeRecommender

    rng = np.random.default_rng(0)
    rows = [(u, f"i{(s + t) % 12}", t) for u, s in enumerate(rng.integers(0, 12, 60)) for t in range(15)]
    data = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    model = RecurrentRecommender("gru", max_length=8, embedding_dim=16, epochs=60, learning_rate=0.01,
                                 dropout=0.0).fit(data)
    served = RealTimeRecommender(model, k=3, exclude_seen=False)
    assert served.stateful
    served.seed("new", ["i3"])
    for step, item in enumerate(["i4", "i5", "i6"]):
        top = served.update("new", item)
        assert top["item_id"].iloc[0] == f"i{5 + step}"
    np.testing.assert_allclose(served.scores("new"), model.score_histories([["i3", "i4", "i5", "i6"]])[0],
                               rtol=1e-4, atol=1e-4)
    # excluding seen items drops them from the list
    served_excluding = RealTimeRecommender(model, k=12)
    served_excluding.seed("u", ["i1", "i2"])
    assert {"i1", "i2"}.isdisjoint(served_excluding.update("u", "i3")["item_id"])
    assert len(served_excluding.recommend("u")) == 9


def test_history_store_counts_users_exactly_and_bounds_them_when_asked():
    store = HistoryStore(5)
    for user in range(3):
        store.add(user, user)
    assert store.n_users == 3 and store.seen(np.arange(3)).shape == (3, 5)
    bounded = HistoryStore(5, n_users=2)
    with pytest.raises(ValueError, match=r"users must be indices in \[0, 2\)"):
        bounded.add([0, 2], [1, 1])
    assert len(bounded) == 0
    assert bounded.contains(np.empty(0, np.int64), np.empty((0, 2), np.int64)).shape == (0, 2)
    with pytest.raises(ValueError, match=r"values must be a number or have the shape of items \(2, 2\)"):
        bounded.add([0, 1], [[1, 2], [3, 4]], values=[1.0, 0.0])


def test_a_user_seeded_with_nothing_gets_popularity(synthetic_interactions):
    model = EASE(reg=20.0).fit(synthetic_interactions)
    server = RealTimeRecommender(model, k=5)
    server.seed("nobody yet", [])
    assert server.recommend("nobody yet")["item_id"].tolist() == \
        RealTimeRecommender(model, k=5).recommend("never seen")["item_id"].tolist()

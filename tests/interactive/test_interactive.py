"""reclib.interactive: the click model, regret, every policy's contract, the loop, replay and explanations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy.special import ndtr

from reclib.cf import EASE, ImplicitALS, ItemKNN, LastItemKNN, MostPopular
from reclib.data.ties import tie_keys
from reclib.interactive import (ClickSimulator, EpsilonGreedyPolicy, GreedyPolicy, LinUCBPolicy,
                                LinearThompsonPolicy, PopularityPolicy, TextPolicy, contributions,
                                cumulative_curves, explain, exposure, interest_sentences,
                                nearest_texts, replay, simulate)

TRUTH = np.array([[5.0, 4.0, 3.0, 1.0],
                  [1.0, 2.0, 4.5, 4.0]])


def test_click_probability_is_the_noisy_threshold_model():
    env = ClickSimulator(TRUTH, threshold=4.0, noise=0.5)
    # P(r + eps >= 4) = Phi((r - 4) / 0.5): r = 5 -> Phi(2) = 0.97725, r = 4 -> 0.5
    np.testing.assert_allclose(env.click_probability_[0], ndtr(np.array([2.0, 0.0, -2.0, -6.0])))
    assert env.click_probability_[0, 0] == pytest.approx(0.977250, abs=1e-6)
    clicks = np.mean([env.step(np.array([0]), np.array([[0, 1]])) for _ in range(4000)], axis=0)
    np.testing.assert_allclose(clicks[0], [0.97725, 0.5], atol=0.03)


def test_oracle_takes_the_next_best_items_each_round():
    env = ClickSimulator(TRUTH, noise=0.5)
    p = env.click_probability_
    oracle = env.oracle(np.array([0, 1]), rounds=2, k=2)
    assert oracle.shape == (2, 2)
    assert oracle[0, 0] == pytest.approx(p[0, 0] + p[0, 1])
    assert oracle[1, 0] == pytest.approx(p[0, 2] + p[0, 3])
    excluded = env.oracle(np.array([1]), 1, 1, exclude=sp.csr_matrix(([1.0], ([0], [2])), shape=(1, 4)))
    assert excluded[0, 0] == pytest.approx(p[1, 3])          # item 2 excluded -> next best, item 3


def test_simulator_is_seeded_and_checks_input():
    a = ClickSimulator(TRUTH, random_state=3).step(np.array([0, 1]), np.array([[1, 2], [2, 3]]))
    b = ClickSimulator(TRUTH, random_state=3).step(np.array([0, 1]), np.array([[1, 2], [2, 3]]))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="noise"):
        ClickSimulator(TRUTH, noise=0.0)
    with pytest.raises(ValueError, match="true_ratings"):
        ClickSimulator(np.array([[np.nan]]))


@pytest.fixture(scope="module")
def world():
    """40 users x 60 items: two taste clusters in 4-d item vectors; users like their cluster."""
    rng = np.random.default_rng(0)
    items = rng.normal(size=(60, 4))
    items[:30, 0] += 2.0
    items[30:, 0] -= 2.0
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    taste = np.where(np.arange(40)[:, None] < 20, 1.0, -1.0) * np.array([[1.0, 0, 0, 0]])
    truth = np.clip(3.0 + 2.0 * taste @ items.T, 1, 5)
    env = ClickSimulator(truth, noise=0.5, random_state=0)
    log = pd.DataFrame([(u, i) for u in range(20, 40) for i in range(0, 60, 3)
                        if truth[u, i] >= 4.0], columns=["user_id", "item_id"])
    model = ImplicitALS(n_factors=4, epochs=10).fit(log)
    return env, items, taste, model


def _policies(world, seed=0):
    env, items, taste, model = world
    counts = np.arange(60, 0, -1).astype(float)
    features = np.hstack([items, np.ones((60, 1))])
    prior = np.hstack([taste, np.zeros((40, 1))])
    return {"popularity": PopularityPolicy(counts, 40, random_state=seed),
            "greedy": GreedyPolicy(model, np.arange(60), counts, 40, random_state=seed),
            "epsilon-greedy": EpsilonGreedyPolicy(model, np.arange(60), counts, 40, epsilon=0.5, random_state=seed),
            "LinUCB": LinUCBPolicy(features, 40, alpha=0.5, random_state=seed),
            "LinUCB + prior": LinUCBPolicy(features, 40, alpha=0.5, prior=prior, random_state=seed),
            "Thompson": LinearThompsonPolicy(features, 40, scale=0.3, prior=prior, random_state=seed),
            "text": TextPolicy(items, taste @ np.eye(4), beta=0.5, random_state=seed)}


@pytest.mark.parametrize("name", ["popularity", "greedy", "epsilon-greedy", "LinUCB",
                                  "LinUCB + prior", "Thompson", "text"])
def test_policy_contract_never_repeats_an_item(world, name):
    policy = _policies(world)[name]
    users = np.arange(40)
    seen = np.zeros((40, 60), dtype=int)
    for _ in range(6):
        slate = policy.select(users, 5)
        assert slate.shape == (40, 5)
        assert all(len(set(row)) == 5 for row in slate)
        np.add.at(seen, (users[:, None], slate), 1)
        policy.update(users, slate, np.zeros((40, 5)))
    assert seen.max() == 1                                   # 30 items each, none twice
    single = policy.select(3, 2)
    assert single.shape == (1, 2)


def test_policies_reject_bad_input(world):
    policy = _policies(world)["LinUCB"]
    with pytest.raises(ValueError, match="users"):
        policy.select(np.array([40]), 2)
    with pytest.raises(ValueError, match="once"):
        policy.update(np.array([1, 1]), np.array([[0], [1]]), np.array([[1.0], [0.0]]))
    with pytest.raises(ValueError, match="rewards"):
        policy.update(np.array([1]), np.array([[0]]), np.array([[np.nan]]))
    with pytest.raises(ValueError, match="epsilon"):
        EpsilonGreedyPolicy(world[3], np.arange(60), np.ones(60), 40, epsilon=1.5)


def test_policies_order_tied_scores_by_their_tie_keys(world):
    """Equal counts: popularity follows the keys it is given (index order without them); greedy's
    popularity fallback for a user with no positives uses the kit's rule over its item ids."""
    keys = tie_keys(np.arange(60))
    by_keys = np.argsort(keys, kind="stable")
    assert PopularityPolicy(np.ones(60), 2).select(0, 5)[0].tolist() == [0, 1, 2, 3, 4]
    assert PopularityPolicy(np.ones(60), 2, tie_keys=keys).select(0, 5)[0].tolist() == by_keys[:5].tolist()
    greedy = GreedyPolicy(world[3], np.arange(60), np.ones(60), 40)
    assert greedy.select(0, 5)[0].tolist() == by_keys[:5].tolist()          # user 0: no logged positives
    with pytest.raises(ValueError, match="tie_keys must be \\(60,\\)"):
        PopularityPolicy(np.ones(60), 2, tie_keys=keys[:10])


def test_linucb_sherman_morrison_equals_the_direct_inverse(world):
    env, items, taste, model = world
    features = np.hstack([items, np.ones((60, 1))])
    policy = LinUCBPolicy(features, 40, alpha=0.5, reg=2.0)
    shown = np.array([[0, 7, 12], [3, 4, 5]])
    rewards = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    policy.update(np.array([2, 9]), shown, rewards)
    X = features[shown[0]]
    A = 2.0 * np.eye(5) + X.T @ X
    np.testing.assert_allclose(policy.A_inv[2], np.linalg.inv(A), atol=1e-12)
    np.testing.assert_allclose(policy.theta(np.array([2]))[0], np.linalg.solve(A, X.T @ rewards[0]))
    # the optimistic score: theta . x + alpha sqrt(x^T A^-1 x)
    x = features[20]
    expected = policy.theta(np.array([2]))[0] @ x + 0.5 * np.sqrt(x @ np.linalg.inv(A) @ x)
    assert policy._scores(np.array([2]))[0, 20] == pytest.approx(expected)


def test_greedy_folds_in_clicks(world):
    env, items, taste, model = world
    policy = _policies(world)["greedy"]
    assert policy.positives(np.arange(20)).nnz == 0          # cold users: popularity until a click
    np.testing.assert_array_equal(policy._scores(np.array([0]))[0], np.arange(60, 0, -1))
    item = int(model.item_ids_[0])                           # an item the model knows
    policy.update(np.array([0]), np.array([[item, 1]]), np.array([[1.0, 0.0]]))
    assert policy.positives([0]).indices.tolist() == [item]  # the click, not the unclicked item
    folded = model.fold_in([[item]])[0] @ model.item_factors_.T  # the ALS fold-in's scores
    scores = policy._scores(np.array([0]))[0]
    np.testing.assert_allclose(scores[model.item_ids_], folded, rtol=1e-6, atol=1e-9)
    assert policy.counts[item] == 60 - item + 1.0            # item statistics updated
    assert policy.counts[1] == 59.0


def test_text_prior_beats_blind_exploration_in_the_toy_world(world):
    env, *_ = world
    users = np.arange(40)
    results = {}
    for name in ("popularity", "LinUCB", "LinUCB + prior", "text"):
        env.rng = np.random.default_rng(1)
        frame, slates = simulate(env, _policies(world)[name], users, rounds=4, k=5)
        results[name] = cumulative_curves(frame).iloc[-1]
        assert slates.shape == (4, 40, 5)
    assert results["LinUCB + prior"]["expected"] > results["LinUCB"]["expected"]
    assert results["text"]["expected"] > results["popularity"]["expected"]
    assert all(r["regret"] >= 0 for r in results.values())


def test_cumulative_curves_worked_example():
    frame = pd.DataFrame({"round": [1, 1, 2, 2], "user": [0, 1, 0, 1], "clicks": [1.0, 0.0, 2.0, 1.0],
                          "expected": [0.5, 0.5, 1.0, 1.0], "oracle": [1.0, 1.0, 1.5, 1.5]})
    curve = cumulative_curves(frame)
    np.testing.assert_allclose(curve["reward"], [0.5, 2.0])
    np.testing.assert_allclose(curve["regret"], [0.5, 1.0])


def test_exposure_worked_example():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])
    stats = exposure(np.array([[[0, 1]], [[0, 2]]]), vectors, np.array([4.0, 3.0, 2.0, 1.0]))
    assert stats["coverage"] == pytest.approx(0.75)
    assert stats["diversity"] == pytest.approx(0.5)          # (1 - 0 + 1 - 1) / 2
    assert stats["popularity"] == pytest.approx((1.0 + 0.75 + 1.0 + 0.5) / 4)


def test_replay_counts_only_matched_events():
    counts = np.array([5.0, 4.0, 3.0, 2.0, 1.0])
    events = pd.DataFrame({"user": [0, 0, 0, 1], "item": [4, 0, 1, 1], "reward": [1.0, 1.0, 0.0, 1.0]})
    result = replay(PopularityPolicy(counts, 2), events, k=2)
    # user 0: item 4 not in [0, 1] (skip), item 0 matched (1), item 1 matched (0); user 1: item 1 in [0, 1]
    assert result == {"events": 4.0, "matched": 3.0, "match_rate": 0.75, "reward": pytest.approx(2 / 3)}


def test_interest_sentences_name_favourite_genres_and_titles():
    ratings = pd.DataFrame({"user_id": [1, 1, 1, 2], "item_id": [10, 11, 12, 10],
                            "rating": [5.0, 4.0, 2.0, 3.0], "timestamp": [1, 2, 3, 4]})
    items = pd.DataFrame({"item_id": [10, 11, 12], "title": ["Heat", "Fargo", "Cats"],
                          "genres": [["Action", "Crime"], ["Crime"], ["Musical"]]})
    out = interest_sentences(ratings, items, [1, 2], n_genres=1, n_titles=2)
    assert out.loc[0, "text"] == "I enjoy crime movies, for example Heat and Fargo."
    assert out.loc[0, "mentioned"] == [10, 11]
    assert out.loc[1, "mentioned"] == [10]                   # no rating >= 4: the best one


@pytest.mark.parametrize("make", [lambda: EASE(reg=20.0), lambda: ItemKNN(n_neighbors=30),
                                  lambda: ImplicitALS(n_factors=8, epochs=10, solver="cholesky")],
                         ids=["EASE", "ItemKNN", "ImplicitALS"])
def test_contributions_add_up_and_removing_the_top_item_lowers_the_score(make, synthetic_interactions):
    model = make().fit(synthetic_interactions)
    history = synthetic_interactions.loc[synthetic_interactions.user_id == 3, "item_id"].tolist()
    table = explain(model, history, k=3, top=1)
    item = table.loc[0, "item_id"]
    parts = contributions(model, history, [item])[0]
    score = model.score_histories([history])[0, model.item_encoder_.transform([item])[0]]
    assert parts.sum() == pytest.approx(score, rel=1e-8)
    assert table.loc[0, "score"] == pytest.approx(score)
    reduced = [h for h in history if h != table.loc[0, "because"]]
    lower = model.score_histories([reduced])[0, model.item_encoder_.transform([item])[0]]
    assert lower < score


def test_last_item_knn_explains_by_its_last_item_and_others_say_they_cannot(synthetic_interactions):
    model = LastItemKNN().fit(synthetic_interactions)
    history = synthetic_interactions.loc[synthetic_interactions.user_id == 3, "item_id"].tolist()
    table = explain(model, history, k=3, top=1)
    assert set(table["because"]) == {history[-1]}
    parts = contributions(model, history, table["item_id"].tolist())
    np.testing.assert_allclose(parts.sum(axis=1), table["score"], rtol=1e-12)
    assert not parts[:, :-1].any()
    with pytest.raises(ValueError, match="MostPopular cannot split its scores"):
        contributions(MostPopular().fit(synthetic_interactions), history, [history[0]])


def test_nearest_texts_orders_by_cosine():
    out = nearest_texts(np.array([1.0, 0.0]), np.array([[0.0, 1.0], [0.6, 0.8], [1.0, 0.0]]),
                        ["a", "b", "c"], k=2)
    assert out["text"].tolist() == ["c", "b"]
    np.testing.assert_allclose(out["cosine"], [1.0, 0.6])

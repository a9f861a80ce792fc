"""Bad input to the interactive loop raises before any work, naming the culprit; the loop's promises.

Each case gives a call, the exception type and a pattern the message must match (the argument,
column, user or sizes at fault). The tests after the tables check the promises the checks protect:
no index wraps around or is truncated, ``select`` never repeats an item, the cumulative regret of
:func:`simulate` is never negative (while a single round's can be), an error leaves the policy and
the simulator untouched, and whole-float indices give the same numbers as integers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from reclib.cf import ImplicitALS
from reclib.checks import ParameterTypeError
from reclib.interactive import (ClickSimulator, EpsilonGreedyPolicy, GreedyPolicy, LinUCBPolicy,
                                LinearThompsonPolicy, PopularityPolicy, TextPolicy,
                                cumulative_curves, exposure, replay, simulate)

NAN = float("nan")
TRUTH = np.array([[5.0, 4.0, 3.0, 1.0],
                  [1.0, 2.0, 4.5, 4.0]])                   # 2 users x 4 items
COUNTS = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])           # 6 items
UNIT = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.8]])


def env():
    return ClickSimulator(TRUTH, noise=0.5, random_state=0)


def popularity(n_users=3, counts=COUNTS, exclude=None):
    return PopularityPolicy(counts, n_users, exclude=exclude)


def linucb():
    return LinUCBPolicy(np.eye(6), 3)


def greedy():
    log = pd.DataFrame({"user_id": [0, 0, 1, 1, 2], "item_id": [0, 1, 1, 2, 3]})
    model = ImplicitALS(n_factors=2, epochs=2).fit(log)
    return GreedyPolicy(model, np.arange(6), COUNTS, 3)


def shown_all_but(n_left, user=1):
    policy = popularity()
    policy.history.add(user, np.arange(n_left, policy.n_items)[None])
    return policy


def events(user=(0, 0, 1), item=(0, 1, 2), reward=(1.0, 0.0, 1.0)):
    return pd.DataFrame({"user": list(user), "item": list(item), "reward": list(reward)})


# (id, call, exception, message pattern)
SIMULATOR_CASES = [
    ("step-user-negative", lambda: env().step([-1], [[0, 1]]), ValueError,
     r"users must be indices in \[0, 2\), got -1"),
    ("step-user-n", lambda: env().step([2], [[0, 1]]), ValueError, r"users .*\[0, 2\), got 2"),
    ("step-item-twice-in-a-slate", lambda: env().step([0, 1], [[0, 1], [2, 2]]), ValueError,
     "slates row 1 holds item 2 more than once"),
    ("step-user-fraction", lambda: env().step([0.5], [[0, 1]]), ValueError,
     "users must hold integer indices, got 0.5"),
    ("step-user-str", lambda: env().step(["a"], [[0, 1]]), ParameterTypeError, "users.*raw ids"),
    ("step-item-negative", lambda: env().step([0], [[0, -1]]), ValueError,
     r"slates must be indices in \[0, 4\), got -1"),
    ("step-item-n", lambda: env().step([0], [[4, 0]]), ValueError, r"slates .*\[0, 4\), got 4"),
    ("step-item-fraction", lambda: env().step([0], [[1.5, 0]]), ValueError,
     "slates must hold integer indices, got 1.5"),
    ("step-slates-1d", lambda: env().step([0], [0, 1]), ValueError, "slates must be a 2-D"),
    ("step-users-2d", lambda: env().step([[0]], [[0, 1]]), ValueError, "users must be a 1-D"),
    ("step-rows-differ", lambda: env().step([0, 1], [[0, 1]]), ValueError,
     r"one row per user: 2 users, slates of shape \(1, 2\)"),
    ("expected-item-negative", lambda: env().expected(np.array([0]), np.array([[-1]])), ValueError,
     "slates.*got -1"),
    ("oracle-user-negative", lambda: env().oracle(np.array([-1]), 1, 1), ValueError,
     "users.*got -1"),
    ("oracle-user-n", lambda: env().oracle(np.array([2]), 1, 1), ValueError, "users.*got 2"),
    ("oracle-user-fraction", lambda: env().oracle(np.array([0.5]), 1, 1), ValueError,
     "users.*integer.*0.5"),
    ("oracle-exclude-shape", lambda: env().oracle(np.array([0]), 1, 1, np.zeros((2, 4), bool)),
     ValueError, r"exclude must have shape .* \(1, 4\), got \(2, 4\)"),
    ("oracle-rounds-0", lambda: env().oracle(np.array([0]), 0, 1), ValueError, "rounds"),
]

POLICY_CASES = [
    ("select-user-negative", lambda: popularity().select(-1, 2), ValueError,
     r"users must be indices in \[0, 3\), got -1"),
    ("select-user-n", lambda: popularity().select([3], 2), ValueError, r"users .*got 3"),
    ("select-user-fraction", lambda: popularity().select([1.5], 2), ValueError,
     "users must hold integer indices, got 1.5"),
    ("select-user-str", lambda: popularity().select(["u1"], 2), ParameterTypeError, "users"),
    ("select-users-2d", lambda: popularity().select([[0, 1]], 2), ValueError, "users must be a 1-D"),
    ("select-k-0", lambda: popularity().select(0, 0), ValueError, "k must be a positive integer"),
    ("select-k-over-catalogue", lambda: popularity().select([0], 7), ValueError,
     "user 0 has 6 of 6 items left unshown, fewer than k=7"),
    ("select-too-few-left", lambda: shown_all_but(2).select([0, 1], 3), ValueError,
     "user 1 has 2 of 6 items left unshown, fewer than k=3"),
    ("epsilon-too-few-left", lambda: EpsilonGreedyPolicy(greedy().model, np.arange(6), COUNTS, 3)
     .select([0], 7), ValueError, "user 0 has 6 of 6 items left"),
    ("update-item-twice-in-a-row", lambda: popularity().update([0], [[3, 3]], [[1.0, 0.0]]), ValueError,
     "items row 0 holds item 3 more than once"),
    ("update-item-excluded", lambda: popularity(exclude=sp.csr_matrix(np.eye(3, 6))).update([1], [[1]], [[1.0]]),
     ValueError, "item 1 was already shown to \\(or excluded for\\) user 1"),
    ("update-item-negative", lambda: popularity().update([0], [[-1]], [[1.0]]), ValueError,
     r"items must be indices in \[0, 6\), got -1"),
    ("update-item-n", lambda: popularity().update([0], [[6]], [[1.0]]), ValueError,
     r"items .*got 6"),
    ("update-item-fraction", lambda: popularity().update([0], [[0.5]], [[1.0]]), ValueError,
     "items must hold integer indices, got 0.5"),
    ("update-item-str", lambda: popularity().update([0], [["x"]], [[1.0]]), ParameterTypeError,
     "items"),
    ("update-items-1d", lambda: popularity().update([0], [1], [1.0]), ValueError,
     "items must be a 2-D"),
    ("update-items-rows", lambda: popularity().update([0, 1], [[1]], [[1.0]]), ValueError,
     r"\(2, k\), got items \(1, 1\)"),
    ("update-rewards-shape", lambda: popularity().update([0], [[1, 2]], [[1.0]]), ValueError,
     r"rewards .*got items \(1, 2\) and rewards \(1, 1\)"),
    ("update-rewards-flat", lambda: popularity().update([0], [[1, 2]], [1.0, 0.0]), ValueError,
     r"rewards \(2,\)"),
    ("update-rewards-nan", lambda: popularity().update([0], [[1]], [[NAN]]), ValueError,
     "rewards.*non-finite"),
    ("update-duplicate-user", lambda: popularity().update([1, 1], [[0], [1]], [[1.0], [0.0]]),
     ValueError, "update takes each user at most once.*user 1 2 times"),
    ("update-user-negative", lambda: popularity().update([-1], [[0]], [[1.0]]), ValueError,
     "users.*got -1"),
    ("linucb-update-item-negative", lambda: linucb().update([0], [[-1]], [[1.0]]), ValueError,
     "items.*got -1"),
    ("linucb-theta-user-negative", lambda: linucb().theta(np.array([-1])), ValueError,
     "users.*got -1"),
    ("greedy-positives-user-n", lambda: greedy().positives(np.array([3])), ValueError, "users.*got 3"),
    ("greedy-update-item-n", lambda: greedy().update([0], [[6]], [[1.0]]), ValueError,
     "items.*got 6"),
]

SIMULATE_CASES = [
    ("items-differ", lambda: simulate(env(), popularity(2), [0], 1, 1), ValueError,
     "the simulator has 4 items but the policy 6"),
    ("user-beyond-policy", lambda: simulate(env(), popularity(1, COUNTS[:4]), [0, 1], 1, 1),
     ValueError, r"users \(the simulator has 2 users, the policy 1\) must be indices in \[0, 1\), got 1"),
    ("user-negative", lambda: simulate(env(), popularity(2, COUNTS[:4]), [-1], 1, 1), ValueError,
     r"users must be indices in \[0, 2\), got -1"),
    ("user-fraction", lambda: simulate(env(), popularity(2, COUNTS[:4]), [0.5], 1, 1), ValueError,
     "users must hold integer indices, got 0.5"),
    ("user-duplicate", lambda: simulate(env(), popularity(2, COUNTS[:4]), [0, 0], 1, 1), ValueError,
     "simulate takes each user at most once.*user 0 2 times"),
    ("users-empty", lambda: simulate(env(), popularity(2, COUNTS[:4]), [], 1, 1), ValueError,
     "users is empty"),
    ("rounds-k-over-catalogue", lambda: simulate(env(), popularity(2, COUNTS[:4]), [0, 1], 3, 2),
     ValueError, r"rounds=3 x k=2 = 6 items per user, but user 0 has only 4 of the 4-item"),
    ("rounds-k-over-unshown", lambda: simulate(env(), popularity(
        2, COUNTS[:4], sp.csr_matrix(([1.0, 1.0], ([1, 1], [0, 3])), shape=(2, 4))), [0, 1], 3, 1),
     ValueError, "rounds=3 x k=1 = 3 items per user, but user 1 has only 2 of the 4-item"),
    ("rounds-0", lambda: simulate(env(), popularity(2, COUNTS[:4]), [0], 0, 1), ValueError,
     "rounds must be a positive integer"),
    ("k-float", lambda: simulate(env(), popularity(2, COUNTS[:4]), [0], 1, 1.0),
     ParameterTypeError, "k must be a positive integer"),
    ("env-not-simulator", lambda: simulate(TRUTH, popularity(2, COUNTS[:4]), [0], 1, 1),
     ParameterTypeError, "ClickSimulator and a Policy, got ndarray"),
]

EXPOSURE_CASES = [
    ("slate-item-negative", lambda: exposure(np.array([[0, -1]]), UNIT, COUNTS[:4]), ValueError,
     r"slates must be indices in \[0, 4\), got -1"),
    ("slate-item-n", lambda: exposure(np.array([[0, 4]]), UNIT, COUNTS[:4]), ValueError,
     "slates.*got 4"),
    ("slate-item-fraction", lambda: exposure(np.array([[0, 1.5]]), UNIT, COUNTS[:4]), ValueError,
     "slates must hold integer indices, got 1.5"),
    ("slates-empty", lambda: exposure(np.zeros((0, 2), int), UNIT, COUNTS[:4]), ValueError,
     r"slates must be a non-empty .* shape \(0, 2\)"),
    ("slates-scalar", lambda: exposure(np.int64(1), UNIT, COUNTS[:4]), ValueError,
     "slates must be a non-empty"),
    ("popularity-shape", lambda: exposure(np.array([[0, 1]]), UNIT, COUNTS), ValueError,
     r"popularity \(n_items,\).*\(6,\)"),
    ("vectors-not-unit", lambda: exposure(np.array([[0, 1]]), 2 * UNIT, COUNTS[:4]), ValueError,
     "item_vectors must be unit vectors, row 0 has norm 2"),
    ("vectors-nan", lambda: exposure(np.array([[0, 1]]), np.full((4, 2), NAN), COUNTS[:4]),
     ValueError, "item_vectors.*non-finite"),
]

REPLAY_CASES = [
    ("raw-item-ids", lambda: replay(popularity(), events(item=(1001, 1002, 1003))), ValueError,
     r"events\['item'\] must be indices in \[0, 6\), got 1001"),
    ("raw-user-ids", lambda: replay(popularity(), events(user=("a", "a", "b"))), ParameterTypeError,
     r"events\['user'\] must be integer indices .*raw ids"),
    ("user-negative", lambda: replay(popularity(), events(user=(0, -1, 1))), ValueError,
     r"events\['user'\] .*got -1 at position \(1,\)"),
    ("item-fraction", lambda: replay(popularity(), events(item=(0, 1.5, 2))), ValueError,
     r"events\['item'\] must hold integer indices, got 1.5"),
    ("empty-log", lambda: replay(popularity(), events((), (), ())), ValueError, "events is empty"),
    ("max-steps-0", lambda: replay(popularity(), events(), max_steps=0), ValueError,
     "max_steps must be a positive integer, got 0"),
    ("max-steps-negative", lambda: replay(popularity(), events(), max_steps=-3), ValueError,
     "max_steps.*-3"),
    ("max-steps-float", lambda: replay(popularity(), events(), max_steps=1.5), ParameterTypeError,
     "max_steps"),
    ("k-0", lambda: replay(popularity(), events(), k=0), ValueError, "k must be a positive integer"),
    ("reward-nan", lambda: replay(popularity(), events(reward=(1.0, NAN, 0.0))), ValueError,
     r"events\['reward'\] holds 1 non-finite"),
    ("reward-inf-beyond-max-steps", lambda: replay(popularity(), events(reward=(1.0, np.inf, 0.0)),
                                                   max_steps=1), ValueError, r"events\['reward'\]"),
    ("missing-column", lambda: replay(popularity(), events().drop(columns="reward")), ValueError,
     "column 'reward' is missing"),
    ("nothing-can-match", lambda: replay(popularity(exclude=sp.csr_matrix(
        ([1.0, 1.0, 1.0], ([0, 0, 1], [0, 1, 2])), shape=(3, 6))), events()), ValueError,
     "none of the 3 events can match"),
    ("catalogue-too-small", lambda: replay(popularity(), events((0, 0, 0), (0, 1, 2), (1, 1, 1)),
                                           k=5), ValueError,
     r"user 0 has 3 events .* k=5 but only 6 of 6 items left unshown \(needs k \+ events - 1 = 7\)"),
    ("policy-not-a-policy", lambda: replay(COUNTS, events()), ParameterTypeError,
     "policy must be a Policy, got ndarray"),
]


def _cases(table):
    return pytest.mark.parametrize(("call", "error", "pattern"), [c[1:] for c in table],
                                   ids=[c[0] for c in table])


@_cases(SIMULATOR_CASES)
def test_simulator_rejects_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@_cases(POLICY_CASES)
def test_policies_reject_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@_cases(SIMULATE_CASES)
def test_simulate_rejects_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@_cases(EXPOSURE_CASES)
def test_exposure_rejects_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


@_cases(REPLAY_CASES)
def test_replay_rejects_bad_input(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


# -- promises --------------------------------------------------------------------------------------

def _all_policies(n_users, n_items, seed):
    """One of each policy type on a random catalogue (the greedy ones on a tiny fitted model)."""
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n_items, 3))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    counts = rng.integers(0, 20, n_items).astype(float)
    log = pd.DataFrame({"user_id": rng.integers(0, n_users, 40), "item_id": rng.integers(0, n_items, 40)})
    model = ImplicitALS(n_factors=2, epochs=2).fit(log.drop_duplicates())
    return [PopularityPolicy(counts, n_users, random_state=seed),
            GreedyPolicy(model, np.arange(n_items), counts, n_users, random_state=seed),
            EpsilonGreedyPolicy(model, np.arange(n_items), counts, n_users, epsilon=0.5, random_state=seed),
            LinUCBPolicy(vectors, n_users, alpha=0.5, random_state=seed),
            LinearThompsonPolicy(vectors, n_users, scale=0.5, random_state=seed),
            TextPolicy(vectors, rng.normal(size=(n_users, 3)), random_state=seed)]


@pytest.mark.parametrize("seed", range(4))
def test_cumulative_regret_is_never_negative_up_to_the_whole_catalogue(seed):
    # rounds * k = the whole catalogue: the old code let a slate repeat items once fewer than k were
    # left; now every item is shown exactly once, and the regret ends at 0 (all items collected)
    rng = np.random.default_rng(seed)
    truth = rng.uniform(1, 5, size=(5, 12))
    for policy in _all_policies(5, 12, seed):
        sim = ClickSimulator(truth, noise=0.7, random_state=seed)
        frame, slates = simulate(sim, policy, np.arange(5), rounds=4, k=3)
        per_user = frame.pivot(index="round", columns="user", values=["expected", "oracle"])
        regret = (per_user["oracle"].cumsum() - per_user["expected"].cumsum()).to_numpy()
        assert regret.min() >= -1e-12, policy.name
        np.testing.assert_allclose(regret[-1], 0.0, atol=1e-12)
        assert all(len(np.unique(slates[:, u])) == 12 for u in range(5)), policy.name
        assert cumulative_curves(frame)["regret"].min() >= -1e-12


def test_one_round_regret_can_be_negative_while_the_cumulative_one_is_not():
    # the oracle's guarantee is about sums: show the worst two films first, the best two next
    sim = ClickSimulator(np.array([[5.0, 4.5, 4.0, 3.0]]), noise=0.5)
    policy = PopularityPolicy(np.array([0.0, 1.0, 3.0, 2.0]), 1)
    frame, _ = simulate(sim, policy, [0], rounds=2, k=2)
    per_round = frame["oracle"] - frame["expected"]
    assert per_round.iloc[1] < 0
    assert per_round.cumsum().min() >= 0


def test_select_never_repeats_and_refuses_when_items_run_out():
    policy = PopularityPolicy(np.arange(5, 0, -1.0), 1)
    seen = []
    for _ in range(2):
        slate = policy.select(0, 2)
        seen.extend(slate[0].tolist())
        policy.update(0, slate, np.zeros_like(slate, dtype=float))
    assert sorted(seen) == [0, 1, 2, 3]
    assert policy.select(0, 1).tolist() == [[4]]               # the last unshown item
    with pytest.raises(ValueError, match="user 0 has 1 of 5 items left unshown, fewer than k=2"):
        policy.select(0, 2)                                    # the old code returned [4, 0]


def test_errors_leave_the_policy_and_the_simulator_untouched():
    sim, policy = env(), popularity(2, COUNTS[:4])
    state, counts = sim.rng.bit_generator.state, policy.counts.copy()
    shown = policy.history.seen(np.arange(policy.n_users)).toarray()
    with pytest.raises(ValueError, match="rounds=3"):
        simulate(sim, policy, [0, 1], 3, 2)
    with pytest.raises(ValueError, match="items"):
        policy.update([0, 1], [[0], [-1]], [[1.0], [1.0]])
    with pytest.raises(ValueError, match=r"user 1 has 3 events"):
        replay(policy, events((0, 1, 1, 1), (0, 1, 2, 3), (1.0, 1.0, 1.0, 1.0)), k=3)
    assert sim.rng.bit_generator.state == state
    np.testing.assert_array_equal(policy.history.seen(np.arange(policy.n_users)).toarray(), shown)
    np.testing.assert_array_equal(policy.counts, counts)


def test_whole_float_indices_give_the_numbers_of_integer_ones():
    runs = []
    for users in (np.array([0, 1]), np.array([0.0, 1.0])):
        frame, slates = simulate(env(), popularity(2, COUNTS[:4]), users, rounds=2, k=2)
        runs.append((frame.drop(columns="user"), slates))
    pd.testing.assert_frame_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    log = events((0, 0, 1), (4, 0, 1), (1.0, 1.0, 0.0))
    as_float = log.astype({"user": float, "item": float})
    assert replay(popularity(), log, k=2) == replay(popularity(), as_float, k=2)
    assert exposure(np.array([[0.0, 1.0]]), UNIT, COUNTS[:4]) == exposure(np.array([[0, 1]]), UNIT,
                                                                          COUNTS[:4])


def test_greedy_refuses_a_model_without_history_matrix_scores_before_any_work():
    from reclib.cf import LastItemKNN

    log = pd.DataFrame({"user_id": [0, 0, 1, 1, 2], "item_id": [0, 1, 1, 2, 3], "timestamp": [1, 2, 3, 4, 5]})
    with pytest.raises(ValueError, match="scores history matrices .* got LastItemKNN"):
        GreedyPolicy(LastItemKNN().fit(log), np.arange(6), COUNTS, 3)

r"""The interactive loop, simulated and replayed: recommend a slate, observe clicks, update, repeat.

:func:`simulate` runs a policy against a :class:`~reclib.interactive.environment.ClickSimulator`
for a population of users, all of them in one array step per round. :func:`replay` is the offline
replay evaluation of Li et al. (2011) on logged events: walk each user's log in time order; at a
user's ``t``-th event the policy proposes a slate, and the event counts (reward, update) only if
the logged item is in the slate; otherwise it is discarded. With a uniformly random logging policy
the matched events are an unbiased sample of what the policy would have seen; a real log such as
MovieLens is not random, so replay favours policies that resemble the logging behaviour (popular
items), which is why its order of policies is a check, not the truth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reclib.checks import (ParameterTypeError, check_finite_array, check_indices,
                           check_positive_int, require_columns)
from reclib.interactive.environment import ClickSimulator
from reclib.interactive.policies import Policy, distinct_users

__all__ = ["cumulative_curves", "exposure", "replay", "simulate"]


def simulate(env: ClickSimulator, policy: Policy, users: np.ndarray, rounds: int = 50,
             k: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    """Run ``rounds`` rounds of slates of ``k`` items for ``users`` (distinct indices into the
    simulator and the policy, which must share one catalogue).

    Returns ``(frame, slates)``: ``frame`` has one row per (round, user) with ``clicks`` (the
    realised reward), ``expected`` (the slate's expected reward) and ``oracle`` (the oracle's
    expected reward in that round, module doc of the environment); ``slates`` is (rounds, n, k).
    No item is shown to a user twice, so every user needs ``rounds * k`` items the policy has not
    shown them yet; a shorter catalogue raises ``ValueError`` before the first round.
    """
    check_positive_int(rounds=rounds, k=k)
    if not isinstance(env, ClickSimulator) or not isinstance(policy, Policy):
        raise ParameterTypeError(f"simulate needs a ClickSimulator and a Policy, got "
                                 f"{type(env).__name__} and {type(policy).__name__}")
    if env.n_items != policy.n_items:
        raise ValueError(f"the simulator has {env.n_items} items but the policy {policy.n_items}: "
                         f"they must share one catalogue")
    name = "users" if env.n_users == policy.n_users else \
        f"users (the simulator has {env.n_users} users, the policy {policy.n_users})"
    users = check_indices(name, np.atleast_1d(users), min(env.n_users, policy.n_users), ndim=1)
    if len(users) == 0:
        raise ValueError("users is empty: simulate needs at least one user index")
    distinct_users("simulate", users)
    seen = policy.history.seen(users)
    left = policy.n_items - np.diff(seen.indptr)
    if rounds * k > left.min():
        first = int(np.argmin(left))
        raise ValueError(f"rounds={rounds} x k={k} = {rounds * k} items per user, but user "
                         f"{users[first]} has only {left[first]} of the {policy.n_items}-item "
                         f"catalogue left unshown: lower rounds or k")
    oracle = env.oracle(users, rounds, k, seen.toarray() > 0)
    slates = np.empty((rounds, len(users), k), dtype=np.int64)
    clicks = np.empty((rounds, len(users)))
    expected = np.empty((rounds, len(users)))
    for t in range(rounds):                      # one vectorised step over the population per round
        slate = policy.select(users, k)
        reward = env.step(users, slate)
        policy.update(users, slate, reward)
        slates[t], clicks[t], expected[t] = slate, reward.sum(1), env.expected(users, slate).sum(1)
    frame = pd.DataFrame({"round": np.repeat(np.arange(1, rounds + 1), len(users)),
                          "user": np.tile(users, rounds), "clicks": clicks.ravel(),
                          "expected": expected.ravel(), "oracle": oracle.ravel()})
    return frame, slates


def cumulative_curves(frame: pd.DataFrame, by: list[str] | None = None) -> pd.DataFrame:
    """Mean per user of cumulative clicks, expected reward and regret after each round.

    ``frame``: rows (round, user, clicks, expected, oracle[, more keys in ``by``]). Returns one row
    per (``by``..., round) with ``reward`` (cumulative clicks), ``expected`` and ``regret``
    (cumulative oracle minus cumulative expected reward), each averaged over users.
    """
    require_columns(frame, "round", "user", "clicks", "expected", "oracle")
    keys = list(by or [])
    per_round = frame.groupby([*keys, "round"], sort=True)[["clicks", "expected", "oracle"]].mean()
    cumulative = per_round.groupby(level=keys, sort=False).cumsum() if keys else per_round.cumsum()
    cumulative["regret"] = cumulative["oracle"] - cumulative["expected"]
    return cumulative.rename(columns={"clicks": "reward"}).drop(columns="oracle").reset_index()


def exposure(slates: np.ndarray, item_vectors: np.ndarray, popularity: np.ndarray) -> dict[str, float]:
    """What a policy showed: ``coverage`` (share of the catalogue shown to anyone),
    ``diversity`` (mean over slates of the mean pairwise cosine distance of the items' unit
    vectors) and ``popularity`` (mean popularity percentile of shown items, 1 = most popular).

    slates: (..., k) item indices; item_vectors: (n_items, d) unit vectors; popularity (n_items,).
    Raises ``ValueError`` for an empty ``slates``, an index outside ``[0, n_items)`` or a vector
    whose norm is not 1 (within 1e-3).
    """
    vectors = check_finite_array("item_vectors", item_vectors)
    pop = check_finite_array("popularity", popularity)
    if vectors.ndim != 2 or pop.shape != (len(vectors),):
        raise ValueError(f"item_vectors must be (n_items, d) and popularity (n_items,), got "
                         f"{vectors.shape} and {pop.shape}")
    norms = np.linalg.norm(vectors, axis=1)
    not_unit = ~np.isclose(norms, 1.0, atol=1e-3)           # the diversity formula needs unit vectors
    if not_unit.any():
        first = int(np.argmax(not_unit))
        raise ValueError(f"item_vectors must be unit vectors, row {first} has norm {norms[first]:.4g}")
    slates = check_indices("slates", slates, len(vectors))
    if slates.ndim == 0 or slates.size == 0:
        raise ValueError(f"slates must be a non-empty (..., k) array of item indices, got shape "
                         f"{slates.shape}")
    flat = slates.reshape(-1, slates.shape[-1])
    k = flat.shape[1]
    v = vectors[flat]                                                  # (n_slates, k, d)
    gram = np.einsum("skd,sjd->skj", v, v)
    pairs = max(k * (k - 1), 1)
    diversity = float(np.mean((k * k - gram.sum(axis=(1, 2))) / pairs)) if k > 1 else 0.0
    percentile = pd.Series(pop).rank(pct=True).to_numpy()
    return {"coverage": len(np.unique(flat)) / len(vectors), "diversity": diversity,
            "popularity": float(percentile[flat].mean())}


def replay(policy: Policy, events: pd.DataFrame, k: int = 10,
           max_steps: int | None = None) -> dict[str, float]:
    """Offline replay (module doc) of ``events`` (user, item, reward), indices of the policy,
    rows in time order within each user; at most ``max_steps`` events per user.

    Returns ``events`` (replayed), ``matched`` (events whose item was in the slate), ``match_rate``
    and ``reward`` (mean reward over the matched events: the replay estimate of the policy's
    click rate; 0.0 when nothing matched). Raises ``ValueError`` before the replay for an empty
    log, indices outside the policy's users or items, a log none of whose events can match (every
    item already shown to its user), or a user with fewer than ``k + events - 1`` items left
    unshown (a slate could then repeat an item).
    """
    if not isinstance(policy, Policy):
        raise ParameterTypeError(f"policy must be a Policy, got {type(policy).__name__}")
    require_columns(events, "user", "item", "reward")
    check_positive_int(k=k)
    if max_steps is not None:
        check_positive_int(max_steps=max_steps)
    if len(events) == 0:
        raise ValueError("events is empty: replay needs at least one logged (user, item, reward)")
    users = check_indices("events['user']", events["user"].to_numpy(), policy.n_users, ndim=1)
    items = check_indices("events['item']", events["item"].to_numpy(), policy.n_items, ndim=1)
    rewards = check_finite_array("events['reward']", events["reward"].to_numpy())
    step = events.groupby("user", sort=False).cumcount().to_numpy()
    keep = step < max_steps if max_steps is not None else np.ones(len(step), bool)
    users, items, rewards, step = users[keep], items[keep], rewards[keep], step[keep]
    _check_replay_room(policy, users, items, k)
    matched, total = 0, 0.0
    for s in range(int(step.max()) + 1 if len(step) else 0):     # one vectorised step per event rank
        at = step == s
        u, i, r = users[at], items[at], rewards[at]
        hit = (policy.select(u, k) == i[:, None]).any(axis=1)
        policy.update(u[hit], i[hit, None], r[hit, None])
        matched += int(hit.sum())
        total += float(r[hit].sum())
    return {"events": float(len(users)), "matched": float(matched),
            "match_rate": matched / len(users), "reward": total / max(matched, 1)}


def _check_replay_room(policy: Policy, users: np.ndarray, items: np.ndarray, k: int) -> None:
    """Raise before the replay if some event can never match, or if a user could run out of
    unshown items: at their last event a user has been shown at most (events - 1) more items, so
    they need ``k + events - 1`` items left unshown for every slate to be new."""
    unshown = ~policy.history.contains(users, items[:, None])[:, 0]
    if not unshown.any():
        raise ValueError(f"none of the {len(users)} events can match: every logged item was already "
                         f"shown to (or excluded for) its user in the policy")
    present, n_events = np.unique(users, return_counts=True)
    need = k + n_events - 1
    left = policy.n_items - policy.history.n_seen(present)
    if (left < need).any():
        first = int(np.argmax(left < need))
        raise ValueError(f"user {present[first]} has {n_events[first]} events to replay with slates "
                         f"of k={k} but only {left[first]} of {policy.n_items} items left unshown "
                         f"(needs k + events - 1 = {need[first]}): lower k or max_steps")

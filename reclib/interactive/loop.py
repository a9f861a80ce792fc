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

from reclib.checks import check_finite_array, check_positive_int, require_columns
from reclib.interactive.environment import ClickSimulator
from reclib.interactive.policies import Policy

__all__ = ["cumulative_curves", "exposure", "replay", "simulate"]


def simulate(env: ClickSimulator, policy: Policy, users: np.ndarray, rounds: int = 50,
             k: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    """Run ``rounds`` rounds of slates of ``k`` items for ``users`` (indices into the simulator and
    the policy, which must share them).

    Returns ``(frame, slates)``: ``frame`` has one row per (round, user) with ``clicks`` (the
    realised reward), ``expected`` (the slate's expected reward) and ``oracle`` (the oracle's
    expected reward in that round, module doc of the environment); ``slates`` is (rounds, n, k).
    """
    check_positive_int(rounds=rounds, k=k)
    users = policy._users(users)
    oracle = env.oracle(users, rounds, k, policy.shown[users])
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
    """
    slates = np.asarray(slates)
    vectors = check_finite_array("item_vectors", item_vectors)
    pop = check_finite_array("popularity", popularity)
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
    click rate).
    """
    require_columns(events, "user", "item", "reward")
    check_positive_int(k=k)
    step = events.groupby("user", sort=False).cumcount().to_numpy()
    keep = step < max_steps if max_steps is not None else np.ones(len(step), bool)
    users, items = events["user"].to_numpy()[keep], events["item"].to_numpy()[keep]
    rewards, step = check_finite_array("reward", events["reward"].to_numpy()[keep]), step[keep]
    matched, total = 0, 0.0
    for s in range(int(step.max()) + 1 if len(step) else 0):     # one vectorised step per event rank
        at = step == s
        u, i, r = users[at], items[at], rewards[at]
        hit = (policy.select(u, k) == i[:, None]).any(axis=1)
        policy.update(u[hit], i[hit, None], r[hit, None])
        matched += int(hit.sum())
        total += float(r[hit].sum())
    return {"events": float(len(users)), "matched": float(matched),
            "match_rate": matched / max(len(users), 1), "reward": total / max(matched, 1)}

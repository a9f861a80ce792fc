"""The evaluation protocols P1-P5 as objects: split recipe, validation carve-out, candidates, metrics.

Every notebook, benchmark and experiment evaluates through these five objects instead of re-typing
the split calls, so a protocol is defined once (seed 42 everywhere)::

    split = P1.split(ratings)                     # the same four parts for every protocol:
    split.train, split.test                       # learn from train, touch test once
    split.fit, split.valid                        # choose settings on this carve-out of train
    result = P1.evaluate(model.fit(split.train), split.train, split.test)
    result.values                                 # Series metric -> value (result.frame: tidy)
    result.per_user                               # users x metrics (for confidence intervals)

======  =================  ==========================================  =================================
name    task               split (``split``)                           metrics (``metrics``)
======  =================  ==========================================  =================================
P1      top-N, implicit    per-user stratified 75/25                   precision, recall, ndcg, map,
                           (:func:`~reclib.data.stratified_split`)     hit_rate @10, coverage, novelty
P2      rating prediction  random 80/20 (:func:`~reclib.data.random_   rmse, mae
                           split`)
P3      next item          per user by time: last = test, second-to-   hit_rate, ndcg, mrr @10
                           last = valid (:func:`~reclib.data.leave_
                           last_out`)
P4      click-through      label = rating >= 4, random 80/10/10        auc, log_loss
                           (:func:`~reclib.data.click_split`)
P5      cold-start items   20 % of items held out with all their       recall, ndcg @10 over the held-
                           interactions (:func:`~reclib.data.cold_     out items only
                           start_item_split`)
======  =================  ==========================================  =================================

Ranking protocols (P1, P3, P5) rank, for every test user, the candidate items not in the user's
``train`` rows: all items the model knows (P1, P3) or only the held-out items (P5). Their
``evaluate`` is :func:`~reclib.evaluation.ranking.ranking_result` with the protocol's ``k`` and
candidates (the same numbers); the tidy frame holds every ranking metric (the protocol's
``metrics`` are the headline ones).

Variants (another seed, a notebook parameter) are new objects: ``P5.with_params(test_item_fraction=
0.3)`` or ``P1.with_params(random_state=seed)``; the module-level P1-P5 never change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reclib.checks import check_choice, check_fraction, check_positive_int, require_columns
from reclib.data.splits import cold_start_item_split, leave_last_out, stratified_split
from reclib.evaluation.pointwise_protocols import ClickProtocol, RatingProtocol
from reclib.evaluation.protocol_base import Protocol, Split, _ratings
from reclib.evaluation.ranking import EvaluationResult, ranking_result

__all__ = ["P1", "P2", "P3", "P4", "P5", "PROTOCOLS", "ClickProtocol", "ColdStartProtocol",
           "NextItemProtocol", "Protocol", "RatingProtocol", "Split", "TopNProtocol"]


@dataclass(frozen=True, kw_only=True)
class _RankingProtocol(Protocol):
    """Top-K ranking over the candidates not in each user's ``train`` rows."""

    k: int | None = 10

    def evaluate(self, model: Any, train: pd.DataFrame, test: pd.DataFrame,
                 **extra: Any) -> EvaluationResult:
        """:func:`~reclib.evaluation.ranking.ranking_result` at ``self.k`` over the candidates.

        ``model`` is a fitted recommender (public interface: ``score(user_ids)``); ``train`` the
        rows whose items are masked per user; ``extra``: ``item_vectors``, ``batch_size``,
        ``user_col``, ``item_col`` as for ``ranking_result``. Returns the tidy frame (every
        ranking metric), ``per_user`` (users x precision..mrr) and ``top_items`` (raw ids).
        """
        item_col = extra.get("item_col", "item_id")
        return ranking_result(model, train, test, k=self.k,
                              candidates=self.candidates(train, test, item_col), **extra)


@dataclass(frozen=True, kw_only=True)
class TopNProtocol(_RankingProtocol):
    """P1: per-user stratified random split (each user's rows shuffled, the first
    ``round(train_size * n)`` to train); ``split.fit`` and ``split.valid`` are the same split
    of train."""

    train_size: float = 0.75

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction(train_size=self.train_size)

    def _recipe(self, ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(train, test) = ``stratified_split(ratings, train_size, random_state=random_state)``."""
        return stratified_split(ratings, train_size=self.train_size, random_state=self.random_state)


@dataclass(frozen=True, kw_only=True)
class NextItemProtocol(_RankingProtocol):
    """P3: per user by timestamp (ties by item id), last row = test, second-to-last = valid.

    ``evaluate(model, history, test)`` masks each user's ``history`` rows: pass ``split.fit``
    when validating on ``split.valid``, and ``split.train`` (what the model was refitted on)
    when testing, so a user's earlier items are never ranked again. ``tie_break``: the order of
    equal timestamps, ``"item_id"`` or ``"random"`` (seeded by ``random_state``;
    :func:`~reclib.data.leave_last_out`): ``P3.with_params(tie_break="random")`` is the robustness
    check of a result against the tie rule.
    """

    min_history: int = 3
    tie_break: str = "item_id"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_choice("tie_break", self.tie_break, ("item_id", "random"))
        check_positive_int(min_history=self.min_history)
        if self.min_history < 3:
            raise ValueError(f"min_history must be an integer >= 3 (one row each for train, "
                             f"validation and test), got {self.min_history!r}")

    def split(self, data: object) -> Split:
        """``fit``, ``valid``, ``test`` = ``leave_last_out(ratings, min_history, tie_break,
        random_state)``; ``train`` = ``pd.concat([fit, valid])``, everything before each user's
        test event."""
        fit, valid, test = leave_last_out(_ratings(data), min_history=self.min_history,
                                          tie_break=self.tie_break, random_state=self.random_state)
        return Split.of_parts(fit, valid, test)


@dataclass(frozen=True, kw_only=True)
class ColdStartProtocol(_RankingProtocol):
    """P5: ``round(test_item_fraction * n_items)`` random items held out with all their
    interactions; only the held-out items are ranked (a content model must place them).
    ``split.fit`` and ``split.valid`` are the same split of train: validation films are cold too."""

    test_item_fraction: float = 0.2

    def __post_init__(self) -> None:
        super().__post_init__()
        check_fraction(test_item_fraction=self.test_item_fraction)

    def _recipe(self, ratings: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(train, test) = ``cold_start_item_split(ratings, test_item_fraction, random_state=random_state)``."""
        return cold_start_item_split(ratings, test_item_fraction=self.test_item_fraction,
                                     random_state=self.random_state)

    def candidates(self, train: pd.DataFrame, test: pd.DataFrame,
                   item_col: str = "item_id") -> np.ndarray:
        """The held-out items: the sorted distinct items of ``test``."""
        require_columns(test, item_col)
        return np.sort(pd.unique(test[item_col]))


P1 = TopNProtocol(name="P1", task="top-N recommendation from implicit feedback (ML-100K)",
                  metrics=("precision", "recall", "ndcg", "map", "hit_rate", "coverage", "novelty"))
P2 = RatingProtocol(name="P2", task="rating prediction (ML-100K)", metrics=("rmse", "mae"))
P3 = NextItemProtocol(name="P3", task="next-item prediction (ML-100K, leave last out)",
                      metrics=("hit_rate", "ndcg", "mrr"))
P4 = ClickProtocol(name="P4", task="click-through prediction (ML-100K, label rating >= 4)",
                   metrics=("auc", "log_loss"))
P5 = ColdStartProtocol(name="P5", task="cold-start items: rank only the held-out items (ML-100K)",
                       metrics=("recall", "ndcg"))

#: the five protocols by name
PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (P1, P2, P3, P4, P5)}

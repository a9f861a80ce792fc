"""The contract every reclib recommender keeps, as a function a test can call (scikit-learn's
``check_estimator``, LensKit's scorer tests): a module copied out of reclib carries its test.

:func:`check_recommender` fits a fresh model on a small frame and checks, in order:

1. ``fit`` returns the model itself;
2. ``score(users)`` is a finite ``(n_users, n_items)`` array over ``item_ids_``;
3. ``recommend(users, k, exclude_seen=True)`` returns the columns ``user_id, item_id, score,
   rank``, ranks ``1..k`` for every user, and no item the user interacted with;
4. ``predict(users, items)`` equals the matching entries of ``score``;
5. an unknown user gets finite scores (``handles_unknown_users``) or a ``ValueError`` saying it
   was "not seen at fit";
6. ``clone(model)`` has the same parameters and no fitted state, and refitted on the same frame
   gives the same scores (same seed, same numbers);
7. ``save`` then ``load`` gives the very same scores;
8. a model that scores histories (``type(model).can_score_histories()``) gives finite
   ``score_histories`` of the users' training items (in time order), and the per-event server
   (``reclib.serving.RealTimeRecommender``, its user history store) serves those same scores.

It needs reclib's core only (no test framework): a broken promise raises ``AssertionError``
naming the check.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reclib.base import Recommender, clone

__all__ = ["check_recommender"]

UNKNOWN_USER = 10 ** 9


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def check_recommender(model: Recommender, frame: pd.DataFrame, fit_data: dict[str, Any] | None = None,
                      n_users: int = 7, k: int = 5, rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Check the contract (module doc) for an unfitted ``model`` on ``frame`` (``user_id``,
    ``item_id`` and whatever else the model reads, e.g. ``rating``, ``timestamp``).

    fit_data: keyword arguments of ``fit`` besides the interactions (e.g. ``item_features``);
    n_users: how many users (the smallest ids) are scored; k: recommendation
    length; rtol, atol: the tolerance of ``predict`` against ``score`` and of the refit.
    """
    name = type(model).__name__
    fit_data = dict(fit_data or {})
    _require(model.fit(frame, **fit_data) is model, f"{name}.fit must return the model itself")
    users = np.sort(frame["user_id"].unique())[:n_users]
    scores = model.score(users)
    _require(scores.shape == (len(users), len(model.item_ids_)) and bool(np.isfinite(scores).all()),
             f"{name}.score: expected finite scores of shape {(len(users), len(model.item_ids_))}, got "
             f"{scores.shape}")

    recs = model.recommend(users, k=k, exclude_seen=True)
    _require(list(recs.columns) == ["user_id", "item_id", "score", "rank"],
             f"{name}.recommend columns: {list(recs.columns)}")
    seen = set(zip(frame["user_id"], frame["item_id"]))
    _require(not any((u, i) in seen for u, i in zip(recs["user_id"], recs["item_id"])),
             f"{name}.recommend(exclude_seen=True) returned an item the user interacted with")
    ranks = recs.groupby("user_id")["rank"].apply(list)
    _require(len(ranks) == len(users) and all(r == list(range(1, k + 1)) for r in ranks),
             f"{name}.recommend: every user needs ranks 1..{k}")

    column = {item: j for j, item in enumerate(model.item_ids_)}
    pairs = recs.head(10)
    rows = np.searchsorted(users, pairs["user_id"])
    expected = scores[rows, [column[i] for i in pairs["item_id"]]]
    predicted = np.asarray(model.predict(pairs["user_id"], pairs["item_id"]))
    _require(predicted.shape == expected.shape, f"{name}.predict: expected shape {expected.shape}, got {predicted.shape}")
    _require(np.allclose(predicted, expected, rtol=rtol, atol=atol),
             f"{name}.predict differs from score")

    if model.handles_unknown_users:
        _require(bool(np.isfinite(model.score([UNKNOWN_USER])).all()), f"{name}: unknown users need finite scores")
    else:
        try:
            model.score([UNKNOWN_USER])
        except ValueError as error:
            _require("not seen at fit" in str(error), f"{name}: the unknown-user error must say 'not seen at fit'")
        else:
            raise AssertionError(f"{name}.score of an unknown user must raise ValueError")

    again = clone(model)
    _require(again.get_params().keys() == model.get_params().keys(), f"{name}: clone changed the parameters")
    _require(not hasattr(again, "train_matrix_"), f"{name}: clone kept fitted state")
    refitted = again.fit(frame, **fit_data).score(users)
    _require(refitted.shape == scores.shape and np.allclose(refitted, scores, rtol=rtol, atol=atol),
             f"{name}: the same seed on the same data must give the same scores")

    with tempfile.TemporaryDirectory() as folder:
        loaded = type(model).load(model.save(Path(folder) / "model.reclib"))
        _require(np.array_equal(loaded.score(users), scores), f"{name}: a saved and loaded model scores differently")
    if type(model).can_score_histories():
        _check_history_path(model, frame, users, rtol, atol)


def _check_history_path(model: Recommender, frame: pd.DataFrame, users: np.ndarray, rtol: float,
                        atol: float) -> None:
    """Check 8 (module doc): ``score_histories`` and the server's scores of the same histories."""
    from reclib.serving import RealTimeRecommender

    name = type(model).__name__
    order = [c for c in ("user_id", "timestamp", "item_id") if c in frame]
    rows = frame.sort_values(order, kind="stable")
    histories = [rows.loc[rows["user_id"] == user, "item_id"].tolist() for user in users]
    expected = np.asarray(model.score_histories(histories))
    _require(expected.shape == (len(users), len(model.item_ids_)) and bool(np.isfinite(expected).all()),
             f"{name}.score_histories: expected finite scores of shape {(len(users), len(model.item_ids_))}")
    server = RealTimeRecommender(model)
    for user, history in zip(users, histories):
        server.seed(user, history)
    served = np.stack([server.scores(user) for user in users])
    _require(np.allclose(served, expected, rtol=rtol, atol=atol),
             f"{name}: the per-event server serves other scores than score_histories")

"""Real-time serving serves what the model would, refuses what it cannot serve, and checks input
before it stores anything."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reclib.base import Recommender
from reclib.checks import ParameterTypeError
from reclib.cf import EASE, BiasedMF, ItemKNN, LastItemKNN, MostPopular
from reclib.serving import RealTimeRecommender, update_latency

_spec = importlib.util.spec_from_file_location("contract", Path(__file__).parents[1] / "test_contract.py")
contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(contract)
SERVABLE = [cls for cls in contract.FACTORIES if cls.can_score_histories()]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    keys = rng.choice(contract.N_USERS * contract.N_ITEMS, size=900, replace=False)
    return pd.DataFrame({"user_id": keys // contract.N_ITEMS, "item_id": contract.ITEMS[keys % contract.N_ITEMS],
                         "rating": rng.integers(1, 6, size=900).astype(float),
                         "timestamp": rng.integers(0, 10**6, size=900)})


def test_the_servable_models_are_those_that_score_histories():
    names = {cls.__name__ for cls in SERVABLE}
    assert {"EASE", "ItemKNN", "LastItemKNN", "MostPopular", "RP3beta", "ImplicitALS", "RecurrentRecommender",
            "SASRecRecommender", "ItemGPT2Recommender"} <= names
    assert not names & {"BiasedMF", "NCF", "BaselinePredictor"}


@pytest.mark.parametrize("cls", SERVABLE, ids=lambda c: c.__name__)
def test_served_scores_are_the_models_own(cls, frame):
    """After a seed and two updates, the server's scores equal ``score_histories`` of the same
    history (stateful models advance step by step, so allow float32 noise)."""
    model = contract.FACTORIES[cls]().fit(frame, **contract.FIT_DATA.get(cls, {}))
    server = RealTimeRecommender(model, k=5)
    history = [contract.ITEMS[3], contract.ITEMS[7], contract.ITEMS[1], contract.ITEMS[7]]
    server.seed("u", history[:2])
    for item in history[2:]:
        server.update("u", item)
    expected = np.asarray(model.score_histories([history]), dtype=np.float64)[0]
    np.testing.assert_allclose(server.scores("u"), expected, rtol=1e-5, atol=1e-6)
    top = server.recommend("u")
    assert not set(top["item_id"]) & set(history) and len(top) == 5


def test_last_item_knn_serves_the_last_item_not_the_sum(frame):
    model = LastItemKNN().fit(frame)
    server = RealTimeRecommender(model)
    server.seed("u", [contract.ITEMS[0], contract.ITEMS[5]])
    np.testing.assert_array_equal(server.scores("u"), model.score_histories([[contract.ITEMS[5]]])[0])


def test_a_user_without_history_gets_the_most_popular_items(frame):
    server = RealTimeRecommender(EASE(reg=10.0).fit(frame), k=4)
    counts = frame["item_id"].value_counts()
    expected = counts.reset_index().sort_values(["count", "item_id"], ascending=[False, True])["item_id"]
    assert server.recommend("new user")["item_id"].tolist() == expected.head(4).tolist()
    assert server.recommend("new user")["item_id"].tolist() == \
        MostPopular().fit(frame).recommend([frame["user_id"].iloc[0]], k=4, exclude_seen=False)["item_id"].tolist()


@pytest.fixture(scope="module")
def server(frame) -> RealTimeRecommender:
    return RealTimeRecommender(ItemKNN(n_neighbors=10).fit(frame))


CASES = [
    ("model not a recommender", lambda s, f: RealTimeRecommender("EASE"), ParameterTypeError, "model must be a fitted Recommender, got str"),
    ("model cannot score histories", lambda s, f: RealTimeRecommender(BiasedMF(epochs=1, verbose=False).fit(f)),
     ValueError, "BiasedMF cannot score histories"),
    ("model not fitted", lambda s, f: RealTimeRecommender(EASE()), RuntimeError, "EASE is not fitted"),
    ("exclude_seen a string", lambda s, f: RealTimeRecommender(s.model, exclude_seen="False"), ParameterTypeError,
     "exclude_seen must be True or False, got 'False'"),
    ("exclude_seen an int", lambda s, f: RealTimeRecommender(s.model, exclude_seen=0), ParameterTypeError, "exclude_seen"),
    ("k zero", lambda s, f: RealTimeRecommender(s.model, k=0), ValueError, "k must be"),
    ("k a float", lambda s, f: RealTimeRecommender(s.model, k=2.5), ValueError, "k must be"),
    ("max_length negative", lambda s, f: RealTimeRecommender(s.model, max_length=-1), ValueError, "max_length"),
    ("seed an unknown item", lambda s, f: s.seed("x", [contract.ITEMS[0], "nope"]), ValueError, "nope"),
    ("seed a string", lambda s, f: s.seed("x", "abc"), ParameterTypeError, "items must be a list of item ids, got str"),
    ("update an unknown item", lambda s, f: s.update("x", 99999), ValueError, "99999"),
    ("latency warmup negative", lambda s, f: update_latency(s, f.head(20), warmup=-1), ValueError, "warmup"),
    ("latency warmup a float", lambda s, f: update_latency(s, f.head(20), warmup=1.5), ValueError, "warmup"),
    ("latency too few events", lambda s, f: update_latency(s, f.head(5), warmup=5), ValueError,
     r"more than warmup=5 rows \(at least one timed event\), got 5"),
    ("latency missing column", lambda s, f: update_latency(s, f.drop(columns="item_id"), warmup=0), ValueError,
     "column 'item_id' is missing"),
    ("latency not a server", lambda s, f: update_latency(s.model, f, warmup=0), ParameterTypeError,
     "server must be a RealTimeRecommender"),
]


@pytest.mark.parametrize("call, error, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_naming_it(server, frame, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(server, frame)
    assert "x" not in server.user_index and len(server.history) == 0   # nothing stored by a refused call


def test_every_recommender_says_whether_it_scores_histories():
    assert all(isinstance(cls.can_score_histories(), bool) for cls in contract.FACTORIES)
    assert Recommender.can_score_histories() is False

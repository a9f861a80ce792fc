import json

import numpy as np
import pandas as pd
import pytest

from reclib.cf import EASE, BaselinePredictor, MostPopular
from reclib.evaluation import P1, P2, P4, bootstrap_interval
from reclib.evaluation.leaderboard import Leaderboard, leaderboard


@pytest.fixture(scope="module")
def small_p1(movielens):
    ratings = movielens.ratings[movielens.ratings.user_id <= 150]
    return P1.split(ratings)


def _board(train, test, **kwargs):
    models = [("MostPopular", MostPopular()), ("EASE", EASE(reg=100.0))]
    return leaderboard(models, P1, train, test, n_boot=200, **kwargs)


def test_p1_leaderboard_values_intervals_and_tests(small_p1):
    train, test = small_p1
    genres = pd.DataFrame(np.eye(4)[np.arange(train.item_id.max() + 1) % 4],
                          index=np.arange(train.item_id.max() + 1))
    expected = P1.evaluate(MostPopular().fit(train), train, test).top_items
    board = _board(train, test, item_vectors={"genres": genres}, expected=expected)
    assert isinstance(board, Leaderboard) and board.models == ["MostPopular", "EASE"]
    assert list(board.frame.columns) == ["model", "metric", "value", "low", "high"]
    wide = board.wide()
    for name, model in (("MostPopular", MostPopular()), ("EASE", EASE(reg=100.0))):
        direct = P1.evaluate(model.fit(train), train, test).values
        for metric in ("precision", "recall", "ndcg", "map", "hit_rate", "mrr", "novelty",
                       "coverage", "popularity_bias"):
            assert wide.loc[name, metric] == pytest.approx(direct[metric], abs=1e-9), metric
        ci = bootstrap_interval(board.per_user[name][["ndcg"]], n_boot=200).loc["ndcg"]
        row = board.frame.query("model == @name and metric == 'ndcg'").iloc[0]
        np.testing.assert_allclose([row["low"], row["high"]], [ci["low"], ci["high"]], rtol=1e-12)
        assert row["low"] < row["value"] < row["high"]
    assert wide.loc["MostPopular", "serendipity"] == 0.0      # popularity holds no surprise
    assert wide.loc["EASE", "serendipity"] > 0.0
    assert wide.loc["EASE", "ndcg"] == pytest.approx(0.4078, abs=5e-5)
    assert wide.loc["MostPopular", "ndcg"] == pytest.approx(0.2297, abs=5e-5)
    assert np.isnan(board.frame.query("metric == 'gini'")["low"]).all()
    assert set(board.times.columns) == {"fit_seconds", "eval_seconds"}
    sig = board.significance("ndcg")
    assert list(sig[["model_a", "model_b"]].iloc[0]) == ["MostPopular", "EASE"]
    assert sig.loc[0, "mean_diff"] == pytest.approx(
        wide.loc["MostPopular", "ndcg"] - wide.loc["EASE", "ndcg"], abs=1e-12)
    assert bool(sig.loc[0, "significant"]) and sig.loc[0, "p_holm"] == sig.loc[0, "p_value"]
    with pytest.raises(ValueError, match="per-user"):
        board.significance("coverage")
    assert "0.4078 [" in board.table(["ndcg"]).loc["EASE", "ndcg"]


def test_write_markdown_and_json(small_p1, tmp_path):
    train, test = small_p1
    board = _board(train, test)
    md, js = board.write(tmp_path / "build")
    text = md.read_text()
    assert text.startswith("# Leaderboard: P1 (K = 10)") and "| EASE |" in text
    data = json.loads(js.read_text())
    assert data["protocol"] == "P1" and data["k"] == 10 and data["n_boot"] == 200
    rows = pd.DataFrame(data["rows"])
    assert len(rows) == len(board.frame)
    np.testing.assert_allclose(rows["value"].astype(float), board.frame["value"])
    assert rows.query("metric == 'coverage'")["low"].isna().all()   # NaN written as null
    assert not list(tmp_path.joinpath("build").glob(".*.tmp"))


def test_two_runs_give_identical_numbers_with_a_keras_model(small_p1):
    from reclib.models import NCF

    train, test = small_p1

    def run():
        models = [("EASE", EASE(reg=100.0)),
                  ("GMF", NCF(variant="gmf", gmf_dim=8, epochs=2, batch_size=512, patience=0))]
        return leaderboard(models, P1, train, test, n_boot=100)

    first, second = run(), run()
    pd.testing.assert_frame_equal(first.frame, second.frame, check_exact=True)
    assert first.wide().loc["GMF", "ndcg"] > 0.05


def test_p2_and_p4_intervals(movielens):
    ratings = movielens.ratings[movielens.ratings.user_id <= 200]
    train, test = P2.split(ratings)
    board = leaderboard({"baseline": BaselinePredictor()}, P2, train, test, n_boot=200)
    rmse = board.frame.set_index("metric").loc["rmse"]
    assert rmse["value"] == pytest.approx(P2.evaluate(BaselinePredictor().fit(train), train,
                                                      test)["rmse"], abs=1e-12)
    assert rmse["low"] < rmse["value"] < rmse["high"]

    rng = np.random.default_rng(0)
    clicks = pd.DataFrame({"user_id": rng.integers(0, 30, 400), "label": rng.integers(0, 2, 400)})
    prob = np.clip(0.3 * clicks.label + 0.7 * rng.random(400), 0.01, 0.99)
    board = leaderboard([("scores", prob.to_numpy()), ("function", lambda t: np.full(len(t), 0.5))],
                        P4, clicks.iloc[:0], clicks, n_boot=200)
    wide = board.wide()
    assert wide.loc["function", "auc"] == 0.5
    assert wide.loc["function", "log_loss"] == pytest.approx(np.log(2), abs=1e-12)
    row = board.frame.query("model == 'scores' and metric == 'auc'").iloc[0]
    assert row["low"] < row["value"] < row["high"]


def test_bad_entries_raise(small_p1):
    train, test = small_p1
    with pytest.raises(ValueError, match="distinct"):
        leaderboard([("a", MostPopular()), ("a", EASE())], P1, train, test)
    with pytest.raises(ValueError, match="non-empty"):
        leaderboard([], P1, train, test)
    with pytest.raises(ValueError, match="n_boot"):
        leaderboard([("a", MostPopular())], P1, train, test, n_boot=0)

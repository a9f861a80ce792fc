import json

import numpy as np
import pandas as pd
import pytest

from reclib.cf import EASE, BaselinePredictor, MostPopular
from reclib.evaluation import P1, P2, P4, bootstrap_interval
from reclib.checks import ParameterTypeError
from reclib.evaluation.leaderboard import Leaderboard, LeaderboardFailed, leaderboard


@pytest.fixture(scope="module")
def small_p1(movielens):
    split = P1.split(movielens.ratings[movielens.ratings.user_id <= 150])
    return split.train, split.test


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
    assert wide.loc["MostPopular", "ndcg"] == pytest.approx(0.2301, abs=5e-5)
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
    split = P2.split(ratings)
    train, test = split.train, split.test
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


# -- every argument is checked before the first model is fitted ----------------------------------
class _MustNotFit:
    """A model whose fit fails the test: the checks must raise before any fit."""

    def fit(self, *args, **kwargs):
        raise AssertionError("a model was fitted before the arguments were checked")


TRAIN = pd.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [10, 11, 10, 12, 11]})
TEST = pd.DataFrame({"user_id": [1, 2, 3], "item_id": [12, 11, 12]})
VECTORS = pd.DataFrame(np.eye(3), index=[10, 11, 12])
EXPECTED = pd.DataFrame([[10], [10], [10]], index=[1, 2, 3])
OK = [("a", _MustNotFit())]

# (id, keyword arguments replacing the valid ones, exception, message pattern)
LEADERBOARD_CASES = [
    ("random_state-negative", {"random_state": -1}, ValueError, "random_state"),
    ("random_state-float", {"random_state": 1.5}, ParameterTypeError, "random_state"),
    ("n-boot-zero", {"n_boot": 0}, ValueError, "n_boot"),
    ("confidence-one", {"confidence": 1.0}, ValueError, "confidence"),
    ("names-repeat", {"models": [("a", _MustNotFit()), ("a", _MustNotFit())]}, ValueError,
     r"distinct.*\['a', 'a'\]"),
    ("name-empty", {"models": [(" ", _MustNotFit())]}, ValueError,
     "model name must be a non-empty string, got ' ' for _MustNotFit"),
    ("name-not-str", {"models": [(3, _MustNotFit())]}, ValueError, r"\(name, model\).*got \(3,"),
    ("no-models", {"models": []}, ValueError, "models must be a non-empty list"),
    ("fit-kwargs-list", {"models": [("a", _MustNotFit(), [1])]}, ParameterTypeError,
     "fit_kwargs of 'a' must be a mapping"),
    ("protocol-str", {"protocol": "P1"}, ParameterTypeError, "protocol must be a Protocol.*str"),
    ("fit-str", {"fit": "yes"}, ParameterTypeError, "fit must be True or False, got 'yes'"),
    ("test-not-frame", {"test": TEST.to_numpy()}, ParameterTypeError, "test must be a DataFrame"),
    ("train-no-item-column", {"train": TRAIN.rename(columns={"item_id": "movie"})}, ValueError,
     "train has no column 'item_id'"),
    ("vectors-not-mapping", {"item_vectors": VECTORS}, ParameterTypeError,
     "item_vectors must be a mapping"),
    ("vectors-missing-item", {"item_vectors": {"g": VECTORS.iloc[:2]}}, ValueError,
     r"item_vectors\['g'\] has no row \(needed for diversity_g\) for 1 id\(s\), first 12"),
    ("vectors-nan", {"item_vectors": {"g": VECTORS.replace({1.0: np.nan})}}, ValueError,
     r"item_vectors\['g'\] holds 3 non-finite"),
    ("vectors-repeated-id", {"item_vectors": {"g": VECTORS.set_axis([10, 11, 11])}}, ValueError,
     r"item_vectors\['g'\] repeats item id 11"),
    ("vectors-array", {"item_vectors": {"g": np.eye(3)}}, ParameterTypeError,
     r"item_vectors\['g'\] must be a DataFrame"),
    ("expected-missing-user", {"expected": EXPECTED.iloc[:2]}, ValueError,
     r"expected has no list \(needed for serendipity\) for 1 id\(s\), first 3"),
    ("expected-unknown-item", {"expected": EXPECTED.replace({10: 99})}, ValueError,
     "expected holds 3 value.*neither train nor test, first 99"),
    ("expected-array", {"expected": EXPECTED.to_numpy()}, ParameterTypeError,
     "expected must be a DataFrame"),
    ("vectors-on-p2", {"protocol": P2, "item_vectors": {"g": VECTORS}}, ValueError,
     "item_vectors and expected apply to ranking protocols.*not P2"),
    ("metric-unknown", {"metrics": ["ndcg", "auc"]}, ValueError,
     "metrics: 'auc' is not reported on P1"),
    ("metric-serendipity-without-expected", {"metrics": ["serendipity"]}, ValueError,
     "metrics: 'serendipity'"),
    ("metrics-str", {"metrics": "ndcg"}, ParameterTypeError, "metrics must be a list"),
    ("output-name-path", {"output_name": "../board"}, ValueError,
     "output_name must be a plain file name, got '../board'"),
    ("output-dir-int", {"output_dir": 5}, ParameterTypeError, "output_dir must be a path"),
]


@pytest.mark.parametrize(("changes", "error", "pattern"), [c[1:] for c in LEADERBOARD_CASES],
                         ids=[c[0] for c in LEADERBOARD_CASES])
def test_leaderboard_rejects_bad_input_before_fitting(changes, error, pattern):
    kwargs = {"models": OK, "protocol": P1, "train": TRAIN, "test": TEST, **changes}
    with pytest.raises(error, match=pattern):
        leaderboard(**kwargs)


def test_unwritable_output_dir_is_refused_before_fitting(tmp_path):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    with pytest.raises(ValueError, match="output_dir .*a file/board.: cannot create or write this folder"):
        leaderboard(OK, P1, TRAIN, TEST, output_dir=blocker / "board")


def test_valid_vectors_and_expected_pass_the_checks():
    with pytest.raises(LeaderboardFailed, match="model 'a' .*_MustNotFit.* failed"):
        leaderboard(OK, P1, TRAIN, TEST, item_vectors={"g": VECTORS}, expected=EXPECTED,
                    metrics=["ndcg", "diversity_g", "serendipity", "gini"])


# -- a failing entry keeps what finished, names itself and writes a consistent pair --------------
class _Broken(MostPopular):
    def fit(self, *args, **kwargs):
        raise FloatingPointError("the loss diverged")


def test_failing_entry_keeps_the_finished_results(small_p1, tmp_path):
    train, test = small_p1
    out = tmp_path / "build"
    out.mkdir()
    (out / "board.md").write_text("old complete board")
    models = [("MostPopular", MostPopular()), ("broken", _Broken()), ("EASE", EASE(reg=100.0))]
    with pytest.raises(LeaderboardFailed, match=r"model 'broken' \(_Broken\) failed: "
                       r"FloatingPointError: the loss diverged.*MostPopular") as caught:
        leaderboard(models, P1, train, test, n_boot=50, output_dir=out, output_name="board",
                    metrics=["ndcg", "coverage"])
    err = caught.value
    assert err.entry == "broken" and isinstance(err.__cause__, FloatingPointError)
    assert err.partial.models == ["MostPopular"] and list(err.partial.times.index) == ["MostPopular"]
    assert err.paths == (out / "board-failed.md", out / "board-failed.json")
    assert (out / "board.md").read_text() == "old complete board"       # not overwritten
    data = json.loads((out / "board-failed.json").read_text())
    assert "the loss diverged" in data["failure"] and {r["model"] for r in data["rows"]} == {
        "MostPopular"}
    text = (out / "board-failed.md").read_text()
    assert "The run failed" in text and f"run id: `{data['run_id']}`" in text
    # a later successful run writes the board and removes the stale failed pair
    board = leaderboard(models[:1], P1, train, test, n_boot=50, output_dir=out,
                        output_name="board")
    assert not (out / "board-failed.md").exists() and not (out / "board-failed.json").exists()
    assert board.failure is None and "old complete" not in (out / "board.md").read_text()


def test_write_puts_one_run_id_in_both_files(small_p1, tmp_path):
    train, test = small_p1
    md, js = _board(train, test).write(tmp_path)
    run_id = json.loads(js.read_text())["run_id"]
    assert md.read_text().rstrip().endswith(f"run id: `{run_id}`") and len(run_id) == 16
    assert (md.stat().st_mode & 0o777) == (js.stat().st_mode & 0o777) != 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leaderboard.json", "leaderboard.md"]


def test_leader_names_the_best_model_and_its_lead_over_the_next(small_p1):
    train, test = small_p1
    models = [("MostPopular", MostPopular()), ("EASE", EASE(reg=100.0)), ("EASE again", EASE(reg=100.0))]
    board = leaderboard(models, P1, train, test, n_boot=200)
    lead = board.leader("ndcg")
    wide = board.wide()
    # the two EASE rows are equal: the one listed first leads, the copy is the runner-up, no gap
    assert lead["model"] == "EASE" and lead["runner_up"] == "EASE again"
    assert lead["value"] == pytest.approx(wide.loc["EASE", "ndcg"], abs=1e-12)
    assert lead["low"] < lead["value"] < lead["high"]
    assert lead["mean_diff"] == lead["diff_low"] == lead["diff_high"] == 0.0
    assert lead["fit_seconds"] == board.times.loc["EASE", "fit_seconds"]
    two = leaderboard(models[:2], P1, train, test, n_boot=200).leader("ndcg")
    assert two["runner_up"] == "MostPopular"
    assert two["mean_diff"] == pytest.approx(wide.loc["EASE", "ndcg"] - wide.loc["MostPopular", "ndcg"], abs=1e-12)
    assert two["diff_low"] > 0 and two["p_holm"] < 0.05
    with pytest.raises(ValueError, match="squared_error"):     # P2's per-user error is not a board metric
        two_board = leaderboard(models[:2], P1, train, test, n_boot=20)
        two_board.leader("squared_error")


def test_already_fitted_models_keep_their_own_fit_time(small_p1, tmp_path):
    from reclib.fit_cache import fit_cached

    train, test = small_p1
    cached = fit_cached(EASE(reg=100.0), train, cache_dir=tmp_path)
    board = leaderboard({"EASE": cached, "MostPopular": MostPopular().fit(train)}, P1, train, test,
                        fit=False, n_boot=50)
    assert board.times.loc["EASE", "fit_seconds"] == cached.fit_seconds_      # the fit that made the model
    assert np.isnan(board.times.loc["MostPopular", "fit_seconds"])           # a fit the board never saw
    assert board.wide().loc["EASE", "ndcg"] == pytest.approx(0.4078, abs=5e-5)
    times = {row["model"]: row["fit_seconds"] for row in board.to_json()["times"]}
    assert times == {"EASE": cached.fit_seconds_, "MostPopular": None}          # NaN is null in JSON
    refitted = leaderboard({"EASE": cached}, P1, train, test, n_boot=50)          # fit=True: this fit's time
    assert refitted.times.loc["EASE", "fit_seconds"] != cached.fit_seconds_

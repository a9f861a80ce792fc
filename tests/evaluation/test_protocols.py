"""The protocols P1-P5: split sizes, determinism, validation carve-outs, evaluation numbers equal
to the functions the notebooks call, per-user values, bad input, and the tuning pieces built on
them (``reclib.evaluation.tuning``, ``experiments/tune.py``)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from reclib.cf import EASE, BaselinePredictor, MostPopular
from reclib.checks import ParameterTypeError
from reclib.features import ItemFeatures
from reclib.data import (GENRES, build_click_dataset, click_split, cold_start_item_split,
                         leave_last_out, random_split, stratified_split)
from reclib.evaluation import (P1, P2, P3, P4, P5, PROTOCOLS, EvaluationResult, Protocol, Split, auc,
                               ranking_result, log_loss, mae, rmse)
from reclib.evaluation.tuning import (grid_search, protocol_objective, protocol_search,
                                      ranking_objective, rating_objective)
from reclib.features import ContentRecommender, genre_matrix

RANKING_COLUMNS = ["precision", "recall", "ndcg", "map", "hit_rate", "mrr"]
NAN, INF = float("nan"), float("inf")

# ranking_result(EASE(reg=500).fit(p1_train), p1_train, p1_test, k=10) before the protocols
# existed (it then called the model's private _score): the numbers must not move
EASE_P1 = {"precision": 0.41770943796394483, "recall": 0.22770303199483988,
           "ndcg": 0.4808463443727256, "map": 0.3380641078846212, "hit_rate": 0.95864262990456,
           "mrr": 0.7307718527495833, "coverage": 0.18547895057962172,
           "novelty": 2.045030662889065, "popularity_bias": 5.326510537935641}


def _keys(frame: pd.DataFrame) -> set[tuple[int, int]]:
    return set(zip(frame.user_id, frame.item_id))


@pytest.fixture(scope="module")
def ratings(movielens):
    return movielens.ratings


@pytest.fixture(scope="module")
def p1(ratings):
    split = P1.split(ratings)
    return split.train, split.test


@pytest.fixture(scope="module")
def ease_p1(p1):
    train, test = p1
    return EASE(reg=500.0).fit(train)


# -- splits -------------------------------------------------------------------------------------
def test_split_sizes(ratings, movielens, p1):
    assert len(p1[1]) == 25_008 and len(p1[0]) + len(p1[1]) == len(ratings)
    p2 = P2.split(ratings)
    assert [len(p2.train), len(p2.test), len(p2.fit), len(p2.valid)] == [80_000, 20_000, 64_000, 16_000]
    split = P3.split(ratings)
    assert len(split.test) == len(split.valid) == 943 and split.test.user_id.is_unique
    assert len(split.train) + len(split.test) == len(ratings)       # every user has >= 3 ratings
    assert len(P5.split(ratings).test) == 19_728
    clicks = build_click_dataset(movielens)
    parts = P4.split(clicks)
    assert [len(parts.fit), len(parts.valid), len(parts.test), len(parts.train)] == [80_000, 10_000, 10_000, 90_000]
    for ours, theirs in zip((parts.fit, parts.valid, parts.test), click_split(clicks, random_state=42)):
        pd.testing.assert_frame_equal(ours, theirs)
    pd.testing.assert_frame_equal(parts.train, pd.concat([parts.fit, parts.valid]))
    again = P4.split(movielens)                             # a MovieLens is turned into clicks
    for name in ("train", "test", "fit", "valid"):
        pd.testing.assert_frame_equal(getattr(again, name), getattr(parts, name))


def _leave_last_out_train_test(ratings):
    """P3's documented recipe as (train, test): train is everything before each user's last row."""
    fit, valid, test = leave_last_out(ratings)
    return pd.concat([fit, valid]), test


@pytest.mark.parametrize(("protocol", "recipe"), [
    (P1, lambda r: stratified_split(r, 0.75, random_state=42)),
    (P2, lambda r: random_split(r, 0.2, random_state=42)),
    (P3, _leave_last_out_train_test),
    (P5, lambda r: cold_start_item_split(r, 0.2, random_state=42)),
], ids=["P1", "P2", "P3", "P5"])
def test_split_is_the_documented_recipe_and_deterministic(ratings, protocol, recipe):
    ours, again = protocol.split(ratings), protocol.split(ratings)
    for name, expected in zip(("train", "test"), recipe(ratings)):
        pd.testing.assert_frame_equal(getattr(ours, name), getattr(again, name))
        pd.testing.assert_frame_equal(getattr(ours, name), expected)
    for name in ("fit", "valid"):
        pd.testing.assert_frame_equal(getattr(ours, name), getattr(again, name))
    if protocol is P3:       # fit and valid: the first two parts of leave_last_out
        for ours_part, theirs in zip((ours.fit, ours.valid), leave_last_out(ratings)):
            pd.testing.assert_frame_equal(ours_part, theirs)


def test_a_split_is_read_by_name_not_unpacked(ratings):
    split = P1.split(ratings)
    assert isinstance(split, Split) and repr(split) == "Split(train=74,992 rows, test=25,008 rows)"
    assert (len(split.fit), len(split.valid)) == (56_246, 18_746) and split.fit is split.fit   # carved once
    with pytest.raises(TypeError):
        train, test = split
    with pytest.raises(ParameterTypeError, match="Split.test must be a DataFrame"):
        Split(train=split.train, test=None, carve_out=lambda t: (t, t[:0]))
    with pytest.raises(ParameterTypeError, match="Split.carve_out must be a function"):
        Split(train=split.train, test=split.test, carve_out=(split.fit, split.valid))
    with pytest.raises(ValueError, match="split Split.train's 74992 rows in two, got 56246 \\+ 56246"):
        Split(train=split.train, test=split.test, carve_out=lambda t: (split.fit, split.fit)).valid


def test_data_too_small_for_a_carve_out_still_splits_into_train_and_test():
    ratings = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 2], "item_id": [1, 2, 3, 1, 2, 3],
                            "rating": [5.0, 4.0, 3.0, 2.0, 1.0, 4.0]})
    split = P1.split(ratings)
    assert (len(split.train), len(split.test)) == (4, 2)
    with pytest.raises(ValueError, match=r"validation carve-out of train \(Split.fit, Split.valid\) is impossible"):
        split.fit


def test_seed_changes_the_split_and_module_protocols_stay(ratings):
    other = P1.with_params(random_state=7)
    assert other.random_state == 7 and P1.random_state == 42 and other.name == "P1"
    assert not P1.split(ratings).test.index.equals(other.split(ratings).test.index)
    assert not P1.split(ratings).valid.index.equals(other.split(ratings).valid.index)
    assert P5.with_params(test_item_fraction=0.3).split(ratings).test.item_id.nunique() == \
        round(0.3 * ratings.item_id.nunique())
    by_id, shuffled = P3.split(ratings).test, P3.with_params(tie_break="random").split(ratings).test
    assert len(by_id) == len(shuffled) and not by_id.index.sort_values().equals(shuffled.index.sort_values())
    assert (by_id.set_index("user_id")["timestamp"].sort_index()
            == shuffled.set_index("user_id")["timestamp"].sort_index()).all()      # only ties move


@pytest.mark.parametrize("protocol", [P1, P2, P3, P5], ids=["P1", "P2", "P3", "P5"])
def test_validation_carve_out_is_inside_train_and_disjoint_from_test(ratings, protocol):
    split = protocol.split(ratings)
    train, test = split.train, split.test
    fit, valid = split.fit, split.valid
    assert len(fit) + len(valid) == len(train) and len(valid) > 0
    assert fit.index.union(valid.index).sort_values().equals(train.index.sort_values())
    assert not _keys(valid) & _keys(test) and not _keys(fit) & _keys(test)
    if protocol is P5:   # cold items of validation are unseen in fit, and differ from test's
        assert not set(valid.item_id) & set(fit.item_id)
        assert not set(valid.item_id) & set(test.item_id)


def test_validation_carve_out_keeps_the_seeds_the_notebooks_used(ratings):
    recipes = {"P1": lambda t, seed: stratified_split(t, train_size=0.75, random_state=seed),
               "P2": lambda t, seed: random_split(t, test_size=0.2, random_state=seed),
               "P5": lambda t, seed: cold_start_item_split(t, 0.2, random_state=seed)}
    for name, recipe in recipes.items():
        for seed in (42, 7):
            protocol = PROTOCOLS[name].with_params(random_state=seed)
            split = protocol.split(ratings)
            for ours, theirs in zip((split.fit, split.valid), recipe(split.train, seed)):
                pd.testing.assert_frame_equal(ours, theirs)


def test_protocol_fields():
    assert list(PROTOCOLS) == ["P1", "P2", "P3", "P4", "P5"]
    assert all(isinstance(p, Protocol) and p.random_state == 42 for p in PROTOCOLS.values())
    assert (P1.k, P3.k, P5.k, P2.k, P4.k) == (10, 10, 10, None, None)
    assert P2.metrics == ("rmse", "mae") and P4.metrics == ("auc", "log_loss")
    assert set(P3.metrics) == {"hit_rate", "ndcg", "mrr"} and set(P5.metrics) == {"recall", "ndcg"}
    with pytest.raises(AttributeError):
        P1.random_state = 1   # frozen


# -- evaluation: same numbers as today's functions, per-user values ------------------------
def test_p1_evaluate_equals_ranking_result(p1, ease_p1):
    train, test = p1
    result = P1.evaluate(ease_p1, train, test)
    assert isinstance(result, EvaluationResult)
    pd.testing.assert_frame_equal(result.frame, ranking_result(ease_p1, train, test, k=10).frame)
    assert result.values.to_dict() == pytest.approx(EASE_P1, rel=1e-12)
    assert result["ndcg"] == result.values["ndcg"] and (result.frame.k == 10).all()
    for metric in P1.metrics:
        assert metric in result.values.index


def test_per_user_values_average_to_the_reported_metrics(p1, ease_p1):
    train, test = p1
    result = P1.evaluate(ease_p1, train, test)
    assert result.per_user.shape == (test.user_id.nunique(), len(RANKING_COLUMNS))
    assert list(result.per_user.columns) == RANKING_COLUMNS
    assert result.per_user.index.name == "user_id"
    assert set(result.per_user.index) == set(test.user_id)
    for metric in RANKING_COLUMNS:
        assert result.per_user[metric].mean() == pytest.approx(result[metric], rel=1e-12)
    top = result.top_items
    assert top.shape == (test.user_id.nunique(), 10) and top.index.equals(result.per_user.index)
    shown = pd.DataFrame({"user_id": np.repeat(top.index, 10), "item_id": top.to_numpy().ravel()})
    assert not _keys(shown) & _keys(train)                  # training items are never ranked
    assert set(shown.item_id) <= set(ease_p1.item_ids_)
    user = top.index[0]   # the lists are the model's own recommendations
    assert top.loc[user].tolist() == ease_p1.recommend([user], k=10).item_id.tolist()


def test_p5_ranks_only_the_held_out_items(movielens, ratings):
    split = P5.split(ratings)
    train, test = split.train, split.test
    ids = movielens.items.item_id.to_numpy()
    features = ItemFeatures(ids, vectors=genre_matrix(movielens.items["genres"], GENRES))
    model = ContentRecommender().fit(train, item_features=features)
    cold = np.sort(test.item_id.unique())
    np.testing.assert_array_equal(P5.candidates(train, test), cold)
    result = P5.evaluate(model, train, test)
    pd.testing.assert_frame_equal(result.frame,
                                  ranking_result(model, train, test, k=10, candidates=cold).frame)
    assert result["ndcg"] == pytest.approx(0.1008063623825083, rel=1e-12)   # genre ties: the kit's tie rule
    assert set(result.top_items.to_numpy().ravel()) <= set(cold)
    with pytest.raises(ValueError, match="candidates"):   # a CF model cannot rank cold items
        P5.evaluate(EASE(reg=500.0).fit(train), train, test)


def test_p3_masks_the_history_it_is_given(ratings):
    split = P3.split(ratings)
    history, test = split.train, split.test
    model = EASE(reg=500.0).fit(history)
    result = P3.evaluate(model, history, test)
    pd.testing.assert_frame_equal(result.frame, ranking_result(model, history, test, k=10).frame)
    assert result["ndcg"] == pytest.approx(0.04062748861219188, rel=1e-12)
    assert result.per_user.shape == (943, 6)
    assert result["hit_rate"] == result["recall"]   # one relevant item per user


def test_p2_evaluate_equals_rmse_and_mae_of_predict(ratings):
    split = P2.split(ratings)
    train, test = split.train, split.test
    model = BaselinePredictor().fit(train)
    pred = model.predict(test.user_id, test.item_id)
    result = P2.evaluate(model, train, test)
    assert result["rmse"] == rmse(test.rating, pred) and result["mae"] == mae(test.rating, pred)
    assert result.values.to_dict() == P2.evaluate(pred, train, test).values.to_dict()
    per_user = result.per_user
    assert per_user.shape == (test.user_id.nunique(), 3) and per_user["n"].sum() == len(test)
    assert np.sqrt(per_user.squared_error.sum() / per_user.n.sum()) == pytest.approx(result["rmse"])
    assert per_user.absolute_error.sum() / per_user.n.sum() == pytest.approx(result["mae"])
    assert result.top_items is None and result.frame.k.isna().all()


def test_p4_evaluate_accepts_probabilities_a_function_or_predict_proba(movielens):
    split = P4.split(movielens)
    train, test = split.fit, split.test
    prob = np.clip(0.5 + 0.1 * (test.year.to_numpy() < 1980) + 0.01 * test.user_id.to_numpy() % 7 / 7,
                   0, 1)
    result = P4.evaluate(prob, train, test)
    assert result["auc"] == auc(test.label, prob) and result["log_loss"] == log_loss(test.label, prob)

    class Proba:
        def predict_proba(self, frame):
            return np.column_stack([1 - prob, prob])

    for source in (Proba(), lambda frame: prob, pd.Series(prob), list(prob)):
        assert P4.evaluate(source, train, test).values.to_dict() == result.values.to_dict()
    per_user = result.per_user
    assert per_user["n"].sum() == len(test) and per_user["positives"].sum() == test.label.sum()
    assert per_user.log_loss.sum() / per_user.n.sum() == pytest.approx(result["log_loss"])


# -- bad input ----------------------------------------------------------------------------------
PROTOCOL_PARAM_CASES = [
    ("random_state-negative", P1, {"random_state": -1}, ValueError, "random_state"),
    ("random_state-float", P1, {"random_state": 4.2}, ParameterTypeError, "random_state"),
    ("random_state-none", P2, {"random_state": None}, ParameterTypeError, "random_state"),
    ("random_state-bool", P5, {"random_state": True}, ParameterTypeError, "random_state"),
    ("k-zero", P1, {"k": 0}, ValueError, "k must be"),
    ("k-str", P3, {"k": "10"}, ParameterTypeError, "k must be"),
    ("train-size-nan", P1, {"train_size": NAN}, ValueError, "train_size"),
    ("train-size-one", P1, {"train_size": 1.0}, ValueError, "train_size"),
    ("test-size-zero", P2, {"test_size": 0.0}, ValueError, "test_size"),
    ("test-size-str", P2, {"test_size": "0.2"}, ParameterTypeError, "test_size"),
    ("fraction-inf", P5, {"test_item_fraction": INF}, ValueError, "test_item_fraction"),
    ("fraction-negative", P5, {"test_item_fraction": -0.2}, ValueError, "test_item_fraction"),
    ("min-history-2", P3, {"min_history": 2}, ValueError, "min_history"),
    ("min-history-float", P3, {"min_history": 3.0}, ParameterTypeError, "min_history"),
    ("tie-break", P3, {"tie_break": "timestamp"}, ValueError, "tie_break"),
    ("threshold-nan", P4, {"threshold": NAN}, ValueError, "threshold"),
    ("threshold-str", P4, {"threshold": "4"}, ParameterTypeError, "threshold"),
]


@pytest.mark.parametrize(("protocol", "changes", "error", "pattern"),
                         [c[1:] for c in PROTOCOL_PARAM_CASES],
                         ids=[c[0] for c in PROTOCOL_PARAM_CASES])
def test_protocol_parameters_are_checked(protocol, changes, error, pattern):
    with pytest.raises(error, match=pattern):
        protocol.with_params(**changes)


@pytest.mark.parametrize("data", [None, np.zeros((3, 3)), "ratings.csv", [(1, 2, 3)]],
                         ids=["none", "array", "str", "list"])
@pytest.mark.parametrize("protocol", [P1, P2, P3, P5], ids=["P1", "P2", "P3", "P5"])
def test_split_rejects_what_is_not_a_frame(protocol, data):
    with pytest.raises(ParameterTypeError, match="data must be a ratings DataFrame or a MovieLens"):
        protocol.split(data)


def test_split_checks_the_frame(tiny_ratings):
    with pytest.raises(ValueError, match="'user_id'"):
        P1.split(tiny_ratings.drop(columns="user_id"))
    with pytest.raises(ValueError, match="label"):
        P4.split(tiny_ratings)      # a ratings frame is not a click dataset


@pytest.fixture()
def p2_tiny(tiny_ratings):
    model = BaselinePredictor().fit(tiny_ratings)
    return model, tiny_ratings, tiny_ratings.iloc[:4]


P2_CASES = [
    ("nan", lambda t: [1.0, NAN, 3.0, 4.0], ValueError, "predictions.*non-finite"),
    ("inf", lambda t: [1.0, INF, 3.0, 4.0], ValueError, "predictions.*non-finite"),
    ("neg-inf", lambda t: [-INF, 1.0, 3.0, 4.0], ValueError, "predictions.*non-finite"),
    ("short", lambda t: [1.0, 2.0], ValueError, r"predictions must hold one value per test row \(4,\)"),
    ("2d", lambda t: np.ones((4, 2)), ValueError, "predictions must hold one value per test row"),
    ("empty", lambda t: [], ValueError, "predictions must hold one value per test row"),
    ("str", lambda t: ["a", "b", "c", "d"], ParameterTypeError, "predictions"),
    ("no-predict", lambda t: object(), ParameterTypeError, "model must be a rating model"),
    ("none", lambda t: None, ParameterTypeError, "model must be a rating model"),
]


@pytest.mark.parametrize(("make", "error", "pattern"), [c[1:] for c in P2_CASES],
                         ids=[c[0] for c in P2_CASES])
def test_p2_evaluate_rejects_bad_predictions(p2_tiny, make, error, pattern):
    _, train, test = p2_tiny
    with pytest.raises(error, match=pattern):
        P2.evaluate(make(test), train, test)


def test_p2_evaluate_checks_the_test_frame(p2_tiny):
    model, train, test = p2_tiny
    with pytest.raises(ValueError, match="'rating'"):
        P2.evaluate(model, train, test.drop(columns="rating"))
    with pytest.raises(ValueError, match="test column 'rating'.*non-finite"):
        P2.evaluate(model, train, test.assign(rating=[1.0, NAN, 3.0, 4.0]))


@pytest.fixture()
def clicks_tiny(tiny_ratings):
    return tiny_ratings.assign(label=(tiny_ratings.rating >= 4).astype(int)).drop(columns="rating")


P4_CASES = [
    ("nan", lambda n: np.r_[NAN, np.full(n - 1, 0.5)], ValueError, "probabilities.*non-finite"),
    ("inf", lambda n: np.r_[INF, np.full(n - 1, 0.5)], ValueError, "probabilities.*non-finite"),
    ("above-one", lambda n: np.r_[1.5, np.full(n - 1, 0.5)], ValueError, "y_prob must be probabilities"),
    ("negative", lambda n: np.r_[-0.1, np.full(n - 1, 0.5)], ValueError, "y_prob must be probabilities"),
    ("short", lambda n: np.full(n - 1, 0.5), ValueError, "probabilities must hold one value per test row"),
    ("str", lambda n: ["x"] * n, ParameterTypeError, "probabilities"),
    ("not-a-model", lambda n: object(), ParameterTypeError, "model must be an array of probabilities"),
    ("none", lambda n: None, ParameterTypeError, "model must be an array of probabilities"),
    ("function-nan", lambda n: (lambda frame: np.full(n, NAN)), ValueError, "probabilities.*non-finite"),
]


@pytest.mark.parametrize(("make", "error", "pattern"), [c[1:] for c in P4_CASES],
                         ids=[c[0] for c in P4_CASES])
def test_p4_evaluate_rejects_bad_probabilities(clicks_tiny, make, error, pattern):
    with pytest.raises(error, match=pattern):
        P4.evaluate(make(len(clicks_tiny)), clicks_tiny, clicks_tiny)


def test_p4_evaluate_checks_the_labels(clicks_tiny):
    prob = np.full(len(clicks_tiny), 0.5)
    with pytest.raises(ValueError, match="'label'"):
        P4.evaluate(prob, clicks_tiny, clicks_tiny.drop(columns="label"))
    with pytest.raises(ValueError, match="y_true must hold 0/1 labels"):
        P4.evaluate(prob, clicks_tiny, clicks_tiny.assign(label=2))


def test_ranking_evaluate_rejects_a_fixed_k_or_candidates(p1, ease_p1):
    train, test = p1
    with pytest.raises(TypeError, match="candidates"):
        P1.evaluate(ease_p1, train, test, candidates=[1, 2])
    with pytest.raises(TypeError, match="'k'"):
        P1.evaluate(ease_p1, train, test, k=5)
    assert P1.with_params(k=5).evaluate(ease_p1, train, test).top_items.shape[1] == 5


# -- tuning on the protocols' carve-outs ------------------------------------------------------
def test_protocol_search_equals_grid_search_on_the_carve_out(tiny_ratings, synthetic_interactions):
    split = P1.split(synthetic_interactions)
    fit, valid = split.fit, split.valid
    grid = {"reg": [10.0, 100.0]}
    ours = protocol_search(P1, EASE, grid, split, verbose=False)
    theirs = grid_search(EASE, grid, fit, valid, ranking_objective("ndcg", 10), verbose=False)
    pd.testing.assert_frame_equal(ours.drop(columns="seconds"), theirs.drop(columns="seconds"))
    p2_split = P2.split(synthetic_interactions)
    fit2, valid2 = p2_split.fit, p2_split.valid
    model = BaselinePredictor().fit(fit2)
    assert protocol_objective(P2)(model, fit2, valid2) == rating_objective(model, fit2, valid2) \
        == -rmse(valid2.rating, model.predict(valid2.user_id, valid2.item_id))
    assert protocol_objective(P1, "recall")(MostPopular().fit(fit), fit, valid) > 0
    with pytest.raises(ValueError, match="grid is empty"):
        grid_search(EASE, {}, fit, valid, rating_objective)
    with pytest.raises(ParameterTypeError, match=r"split must be a Split \(P1.split\(data\)\)"):
        protocol_search(P1, EASE, grid, split.train)
    p3 = P3.split(synthetic_interactions)      # a three-way split searches on its own validation part
    ours = protocol_search(P3, EASE, grid, p3, verbose=False)
    theirs = grid_search(EASE, grid, p3.fit, p3.valid, protocol_objective(P3), verbose=False)
    pd.testing.assert_frame_equal(ours.drop(columns="seconds"), theirs.drop(columns="seconds"))


@pytest.mark.slow
def test_experiments_tune_writes_the_best_point(tmp_path, monkeypatch):
    from experiments import tune

    searches = tune.cf_searches()
    assert set(searches) == {"EASE", "ItemKNN", "ImplicitALS", "BPR", "NeighborhoodCF", "BiasedMF"}
    assert {name: s[2].name for name, s in searches.items()} == {
        "EASE": "P1", "ItemKNN": "P1", "ImplicitALS": "P1", "BPR": "P1",
        "NeighborhoodCF": "P2", "BiasedMF": "P2"}
    # the defaults of notebooks 02 and 02b are points of the grids
    assert 500.0 in searches["EASE"][1]["reg"] and 20 in searches["ItemKNN"][1]["n_neighbors"]
    assert 200 in searches["BiasedMF"][1]["n_factors"] and 0.06 in searches["BiasedMF"][1]["reg"]
    monkeypatch.setattr(tune, "cf_searches", lambda: {"EASE": (EASE, {"reg": [250.0, 500.0]}, P1)})
    output = tmp_path / "tuning" / "cf.json"
    assert tune.main(["EASE", "--output", str(output)]) == 0
    written = json.loads(output.read_text())
    assert written["EASE"]["protocol"] == "P1" and written["EASE"]["best"]["reg"] in (250.0, 500.0)
    with pytest.raises(SystemExit):
        tune.main(["NoSuchModel", "--output", str(output)])


def test_compare_builds_one_row_per_model(movielens):
    split = P1.split(movielens.ratings)
    train, test = split.train, split.test
    models = {"pop": MostPopular().fit(train), "ease": EASE().fit(train)}
    table = P1.compare(models, train, test)
    assert list(table.index) == ["pop", "ease"]
    assert table.loc["ease", "ndcg"] == pytest.approx(P1.evaluate(models["ease"], train, test)["ndcg"], abs=0)
    with pytest.raises(ValueError, match="non-empty mapping"):
        P1.compare({}, train, test)

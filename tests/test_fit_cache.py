"""The fit cache: a second identical fit is a load with the same scores, and every input that can
change a fit changes the key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reclib import fit_cache
from reclib.cf import ImplicitALS
from reclib.features import ItemFeatures
from reclib.fit_cache import CACHE_VARIABLE, cache_key, default_fit_cache_dir, fit_cached
from reclib.models import SASRecRecommender

FRAME = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 3, 3, 3], "item_id": [10, 11, 12, 10, 12, 11, 12, 13],
                      "timestamp": [1, 2, 3, 1, 2, 1, 2, 3]})
USERS = np.array([1, 2, 3])


def small_als(**params) -> ImplicitALS:
    return ImplicitALS(n_factors=4, epochs=3, random_state=0, **params)


def test_a_second_fit_loads_the_first_with_the_same_scores(tmp_path):
    first = fit_cached(small_als(), FRAME, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("ImplicitALS-") and files[0].suffix == ".reclib"
    unfitted = small_als()
    second = fit_cached(unfitted, FRAME.copy(), cache_dir=tmp_path)
    assert second is not unfitted and not hasattr(unfitted, "train_matrix_")   # loaded, the given model untouched
    np.testing.assert_array_equal(second.score(USERS), first.score(USERS))
    assert second.fit_seconds_ == first.fit_seconds_ > 0


def test_a_keras_sequence_model_comes_back_scoring_the_same(tmp_path):
    features = ItemFeatures(np.array([10, 11, 12, 13]))
    sasrec = dict(max_length=4, embedding_dim=8, n_blocks=1, epochs=1, random_state=0)
    first = fit_cached(SASRecRecommender(**sasrec), FRAME, cache_dir=tmp_path, item_features=features)
    second = fit_cached(SASRecRecommender(**sasrec), FRAME, cache_dir=tmp_path, item_features=features)
    assert second is not first and len(list(tmp_path.iterdir())) == 1
    assert second.fit_seconds_ == first.fit_seconds_          # loaded, not fitted again
    np.testing.assert_array_equal(second.score(USERS), first.score(USERS))


@pytest.mark.parametrize("change", ["parameter", "value", "row order", "column name", "dtype", "features",
                                    "argument name", "library source", "library versions", "backend"])
def test_every_input_of_a_fit_changes_the_key(change, monkeypatch):
    features = ItemFeatures(np.array([10, 11, 12, 13]), vectors=np.eye(4))
    model, frame, side = small_als(), FRAME, {"item_features": features}
    base = cache_key(model, (frame,), side)
    if change == "parameter":
        model = small_als(reg=0.5)
    elif change == "value":
        frame = FRAME.assign(item_id=FRAME["item_id"].replace(13, 14))
    elif change == "row order":
        frame = FRAME.iloc[::-1].reset_index(drop=True)         # the same index, the rows reversed
    elif change == "argument name":
        side = {"other_features": features}
    elif change == "library source":
        monkeypatch.setattr(fit_cache, "_library_fingerprint", lambda: "an edited reclib")
    elif change == "library versions":
        monkeypatch.setattr(fit_cache, "_versions", lambda: {"numpy": "0.0"})
    elif change == "backend":
        monkeypatch.setattr(fit_cache, "_backend", lambda: "jax, gpu none")
    elif change == "column name":
        frame = FRAME.rename(columns={"timestamp": "time"})
    elif change == "dtype":
        frame = FRAME.astype({"user_id": "int32"})
    else:
        vectors = np.eye(4)
        vectors[3, 3] = 0.5
        side = {"item_features": ItemFeatures(np.array([10, 11, 12, 13]), vectors=vectors)}
    assert cache_key(model, (frame,), side) != base
    monkeypatch.undo()
    assert cache_key(small_als(), (FRAME.copy(),), {"item_features": features}) == base   # same content, same key


def test_a_function_argument_is_refused_before_any_work(tmp_path):
    model = small_als()
    with pytest.raises(TypeError, match="argument 'validate' is a function"):
        fit_cached(model, FRAME, cache_dir=tmp_path, validate=lambda m: {})
    assert not hasattr(model, "train_matrix_") and not any(tmp_path.iterdir())
    with pytest.raises(TypeError, match="expects a Recommender, got str"):
        fit_cached("ALS", FRAME, cache_dir=tmp_path)


def test_a_damaged_file_is_fitted_again_and_replaced(tmp_path):
    first = fit_cached(small_als(), FRAME, cache_dir=tmp_path)
    (path,) = tmp_path.iterdir()
    path.write_bytes(b"not a model")
    again = fit_cached(small_als(), FRAME, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.score(USERS), first.score(USERS))
    assert type(again).load(path).fit_seconds_ == again.fit_seconds_      # a whole file again


def test_the_environment_variable_moves_or_turns_off_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "fits"))
    assert default_fit_cache_dir() == tmp_path / "fits"
    fit_cached(small_als(), FRAME)
    assert len(list((tmp_path / "fits").iterdir())) == 1
    monkeypatch.setenv(CACHE_VARIABLE, "off")
    assert default_fit_cache_dir() is None
    model = small_als()
    assert fit_cached(model, FRAME) is model and model.fit_seconds_ > 0       # fitted, nothing written
    assert len(list((tmp_path / "fits").iterdir())) == 1


def test_a_fit_that_cannot_be_written_is_returned_with_a_warning(tmp_path):
    blocker = tmp_path / "a file, not a folder"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="not cached"):
        model = fit_cached(small_als(), FRAME, cache_dir=blocker / "fits")
    assert model.fit_seconds_ > 0 and model.score(USERS).shape == (3, 4)

"""The kit's subclassed Keras models (NeuMF, PairwiseScorer, TwoTower) have a ``build()``: fitting
them raises no warning (Keras used to warn "`build()` was called on layer ..., however the layer
does not have a `build()` method implemented"), and the weights are the ones ``call`` uses."""

import warnings

import keras
import numpy as np
import pandas as pd
import pytest

from reclib.features.content import ItemFeatures
from reclib.models import NCF, NeuMF, TwoTowerRecommender
from reclib.models.layers import build_by_tracing


@pytest.fixture()
def interactions() -> pd.DataFrame:
    """1,500 unique random pairs of 60 users and 80 items, with timestamps (seeded)."""
    rng = np.random.default_rng(0)
    keys = rng.choice(60 * 80, size=1500, replace=False)
    return pd.DataFrame({"user_id": keys // 80, "item_id": keys % 80, "timestamp": rng.integers(0, 1000, 1500)})


def fit_without_warnings(make_and_fit) -> object:
    """Run ``make_and_fit()`` with every warning turned into an error; return its result."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return make_and_fit()


@pytest.mark.parametrize("variant, loss", [("gmf", "bce"), ("neumf", "bce"), ("neumf", "bpr")])
def test_ncf_fits_without_warning(interactions, variant, loss):
    model = fit_without_warnings(lambda: NCF(variant=variant, gmf_dim=8, mlp_dims=(16, 8), loss=loss, epochs=1,
                                             batch_size=256).fit(interactions))
    assert model.keras_model_.built
    assert np.isfinite(model.history_["loss"]).all()


@pytest.mark.parametrize("use_user_id", [True, False])
def test_two_tower_fits_without_warning(interactions, use_user_id):
    text = np.random.default_rng(1).normal(size=(90, 12)).astype("float32")      # 10 cold items
    model = fit_without_warnings(lambda: TwoTowerRecommender(
        embedding_dim=8, tower_dims=(16,), epochs=1, batch_size=128, use_user_id=use_user_id).fit(
        interactions, item_features=ItemFeatures(np.arange(90), vectors=text)))
    keras_model = model.keras_model_
    assert keras_model.built
    # the user-id table exists only when the user tower reads it
    assert keras_model.user_embedding.built is use_user_id
    assert np.isfinite(model.score([0, 1])).all()


def test_build_by_tracing_creates_the_weights_call_uses():
    model = NeuMF(n_users=3, n_items=4, variant="gmf", gmf_dim=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.build({"user": (2,), "item": (2,)})
    assert model.built and model.task.built is False          # the weightless task is not used by call
    # GMF: two (n, 5) tables and the (5, 1) + (1,) output layer, 3*5 + 4*5 + 5 + 1 weights
    assert [tuple(w.shape) for w in model.weights] == [(3, 5), (4, 5), (5, 1), (1,)]
    assert model.count_params() == 41
    out = keras.ops.convert_to_numpy(model({"user": np.array([0, 2]), "item": np.array([3, 1])}))
    assert out.shape == (2,) and np.isfinite(out).all()
    pooled = NeuMF(n_users=3, n_items=4, variant="mlp", mlp_dims=(4, 2))
    build_by_tracing(pooled, {"user": (1,), "item": (1,)})   # what build() runs: the sublayers call uses
    assert [tuple(w.shape) for w in pooled.weights] == [(3, 2), (4, 2), (4, 2), (2,), (2, 1), (1,)]

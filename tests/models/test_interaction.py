"""Feature specifications and the feature-interaction models of notebook 07."""

import keras
import numpy as np
import pandas as pd
import pytest

from reclib.data import build_click_dataset, click_split
from reclib.features import Categorical, FeatureSpace, MultiCategorical, Numeric, Vector
from reclib.models import CrossLayer, build_ctr_model, field_vectors, fit_binary_classifier, fm_interaction


@pytest.fixture()
def frame():
    rng = np.random.default_rng(0)
    n = 600
    color = rng.choice(["red", "blue", "green"], n)
    size = rng.choice(["s", "m", "l"], n)
    tags = [list(rng.choice(["a", "b", "c", "d"], rng.integers(1, 3), replace=False)) for _ in range(n)]
    # the label is an interaction: red and large, or blue and small
    label = ((color == "red") & (size == "l")) | ((color == "blue") & (size == "s"))
    return pd.DataFrame({"color": color, "size": size, "tags": tags, "x": rng.normal(size=n),
                         "key": rng.integers(0, 5, n), "label": label.astype(int)})


def specs(table=None):
    out = [Categorical("color"), Categorical("size"), MultiCategorical("tags"), Numeric("x")]
    return out + ([Vector("vec", key="key", table=table)] if table is not None else [])


def test_feature_space_transform(frame):
    table = {k: np.full(3, float(k)) for k in range(5)}
    space = FeatureSpace(specs(table)).fit(frame.iloc[:500])
    out = space.transform(frame.iloc[500:])
    assert out["color"].dtype == np.int32 and out["tags"].shape == (100, 2) and out["vec"].shape == (100, 3)
    assert abs(space.transform(frame)["x"].mean()) < 0.1
    odd = frame.head(2).assign(color=["purple", "red"], tags=[["zzz"], ["a"]])
    coded = space.transform(odd)
    assert coded["color"][0] == 0 and coded["color"][1] > 0 and coded["tags"][0, 0] == 0
    with pytest.raises(ValueError, match="'size'"):
        space.transform(frame.drop(columns="size"))
    with pytest.raises(ValueError, match="'x' must be numeric"):
        space.transform(frame.assign(x="high"))
    with pytest.raises(ValueError, match="'tags' must hold lists"):
        space.transform(frame.assign(tags="a"))
    with pytest.raises(ValueError, match="unique"):
        FeatureSpace([Categorical("a"), Numeric("a")])
    with pytest.raises(RuntimeError, match="not fitted"):
        FeatureSpace(specs()).transform(frame)


def test_fm_sum_square_identity():
    v = np.random.default_rng(1).normal(size=(4, 6, 3)).astype("float32")
    pairwise = np.array([sum(v[b, f] @ v[b, g] for f in range(6) for g in range(f + 1, 6)) for b in range(4)])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fm_interaction(v)).ravel(), pairwise, rtol=1e-4)


@pytest.mark.parametrize("rank", [0, 2])
def test_cross_layer_formula(rank):
    rng = np.random.default_rng(2)
    x0, x = rng.normal(size=(3, 5)).astype("float32"), rng.normal(size=(3, 5)).astype("float32")
    layer = CrossLayer(rank=rank)
    out = keras.ops.convert_to_numpy(layer([x0, x]))
    W = (keras.ops.convert_to_numpy(layer.u) @ keras.ops.convert_to_numpy(layer.v)) if rank else \
        keras.ops.convert_to_numpy(layer.w)
    np.testing.assert_allclose(out, x0 * (x @ W + keras.ops.convert_to_numpy(layer.b)) + x, atol=1e-5)


@pytest.mark.parametrize("kind", ["lr", "fm", "deepfm", "dcnv2", "autoint"])
def test_every_model_trains(frame, kind):
    table = {k: np.random.default_rng(k).normal(size=4) for k in range(5)}
    space = FeatureSpace(specs(table)).fit(frame)
    x = space.transform(frame)
    keras.utils.set_random_seed(0)
    model = build_ctr_model(kind, space, embedding_dim=4, hidden_units=(8,), learning_rate=0.01)
    history = fit_binary_classifier(model, x, frame.label, x, frame.label, epochs=5, batch_size=64, patience=5)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.predict(x, verbose=0).shape == (len(frame),)
    if kind != "lr":   # the label is a pure interaction: every model but LR should learn it
        assert history.history["auc"][-1] > 0.75


@pytest.mark.parametrize("kind", ["fm", "dcnv2", "autoint"])
def test_model_round_trip_and_field_vectors(frame, kind, tmp_path):
    """A saved model (CrossLayer, FieldAttention, pooling registered under reclib>) loads and predicts the
    same; field_vectors reads the (n, F, k) fields the model computes."""
    table = {k: np.random.default_rng(k).normal(size=4) for k in range(5)}
    space = FeatureSpace(specs(table)).fit(frame)
    x = space.transform(frame.head(20))
    keras.utils.set_random_seed(0)
    model = build_ctr_model(kind, space, embedding_dim=4, hidden_units=(8,), cross_rank=2)
    model.optimizer.build(model.trainable_variables)     # its slots exist, as after training: they load
    model.save(tmp_path / "ctr.keras")
    loaded = keras.models.load_model(tmp_path / "ctr.keras")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5)
    fields = field_vectors(model, x)
    assert fields.shape == (20, 5, 4)
    color = keras.ops.convert_to_numpy(model.get_layer("color_embedding").embeddings)[x["color"]]
    np.testing.assert_allclose(fields[:, 0], color, rtol=1e-6)
    if kind == "fm":
        pairs = sum(np.sum(fields[:, f] * fields[:, g], axis=1) for f in range(5) for g in range(f + 1, 5))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(fm_interaction(fields)).ravel(), pairs, rtol=1e-4,
                                   atol=1e-6)
    with pytest.raises(ValueError, match="has no 'fields' layer"):
        field_vectors(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]), {"x": np.ones((1, 2))})


def test_model_arguments_are_checked(frame):
    space = FeatureSpace(specs()).fit(frame)
    with pytest.raises(ValueError, match="kind"):
        build_ctr_model("xgboost", space)
    with pytest.raises(ValueError, match="cross_structure"):
        build_ctr_model("dcnv2", space, cross_structure="diagonal")
    with pytest.raises(ValueError, match="fitted"):
        build_ctr_model("fm", FeatureSpace(specs()))


def test_click_dataset(movielens):
    clicks = build_click_dataset(movielens)
    assert len(clicks) == 100_000 and clicks.label.mean() == pytest.approx(0.55375)
    assert set(clicks.age_bucket) <= {"<18", "18-24", "25-34", "35-44", "45-49", "50-55", "56+"}
    train, valid, test = click_split(clicks)
    assert (len(train), len(valid), len(test)) == (80_000, 10_000, 10_000)
    assert not set(train.index) & set(test.index)

"""Keras models: losses fall on every installed backend, the math of the retrieval task, the input
pipelines, early stopping and saving."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from reclib.features.content import ItemFeatures
from reclib.models import NCF, NeuMF, TwoTowerRecommender
from reclib.models.tasks import RetrievalTask
from reclib.training import (InBatchDataset, NegativeSamplingDataset, RankingEarlyStopping, load_model,
                             save_model)

TRAIN_SCRIPT = textwrap.dedent("""
    import json, numpy as np, pandas as pd
    import keras
    from reclib.features.content import ItemFeatures
    from reclib.models import NCF, TwoTowerRecommender
    rng = np.random.default_rng(0)
    keys = rng.choice(60 * 80, size=1500, replace=False)
    df = pd.DataFrame({"user_id": keys // 80, "item_id": keys % 80, "timestamp": rng.integers(0, 1000, 1500)})
    out = {"backend": keras.backend.backend()}
    ncf = NCF(variant="neumf", gmf_dim=8, mlp_dims=(16, 8), epochs=4, batch_size=256).fit(df)
    out["ncf_loss"] = ncf.history_["loss"].tolist()
    out["ncf_shape"] = list(ncf.score([0, 1, 2]).shape)
    text = rng.normal(size=(90, 12)).astype("float32")           # 10 items never interacted with
    tt = TwoTowerRecommender(embedding_dim=8, tower_dims=(16,), epochs=4, batch_size=128)
    tt.fit(df, item_features=ItemFeatures(np.arange(90), vectors=text))
    out["tt_loss"] = tt.history_["loss"].tolist()
    out["tt_shape"] = list(tt.score([0, 1]).shape)
    out["tt_pred"] = tt.predict([0, 1], [85, 3]).tolist()
    print("RESULT" + json.dumps(out))
""")


def run_backend(backend: str) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend}
    proc = subprocess.run([sys.executable, "-c", TRAIN_SCRIPT], capture_output=True, text=True, env=env,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):])


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "torch"])
def test_tiny_models_learn_on_each_backend(backend):
    out = run_backend(backend)
    assert out["backend"] == backend
    assert out["ncf_loss"][-1] < out["ncf_loss"][0] and out["tt_loss"][-1] < out["tt_loss"][0]
    assert out["ncf_shape"] == [3, 80] and out["tt_shape"] == [2, 90]
    assert all(np.isfinite(out["tt_pred"]))          # item 85 is cold: scored from its text alone


def test_retrieval_logits_by_hand():
    u = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float32)
    v = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], np.float32)
    items = np.array([5, 7, 5])                       # rows 0 and 2 share item 5: an accidental hit
    log_q = np.log(np.array([0.5, 0.25, 0.5], np.float32))
    logits = keras.ops.convert_to_numpy(RetrievalTask(temperature=0.5).logits(u, v, items, log_q))
    expected = (u @ v.T) / 0.5 - log_q[None, :]
    expected[0, 2] = expected[2, 0] = -1e9
    np.testing.assert_allclose(logits, expected, rtol=1e-6)
    # the correction raises the rarer item 7 relative to the popular item 5 by log(0.5 / 0.25)
    plain = keras.ops.convert_to_numpy(RetrievalTask(temperature=0.5).logits(u, v, items, None))
    assert np.isclose((logits[1, 1] - logits[1, 0]) - (plain[1, 1] - plain[1, 0]), np.log(2), atol=1e-6)


def test_negative_sampling_dataset_resamples_each_epoch():
    users, items = np.repeat(np.arange(20), 3), np.tile(np.arange(3), 20)
    data = NegativeSamplingDataset(users, items, n_items=30, n_negatives=2, batch_size=16, random_state=0)
    first = np.concatenate([data[j][0]["item"][data[j][1] == 0] for j in range(len(data))])
    data.on_epoch_end()
    batches = [data[j] for j in range(len(data))]
    second = np.concatenate([x["item"][y == 0] for x, y in batches])
    assert len(first) == len(second) == 120 and not np.array_equal(np.sort(first), np.sort(second))
    negatives = np.concatenate([np.c_[x["user"], x["item"]][y == 0] for x, y in batches])
    assert not set(map(tuple, negatives)) & set(zip(users, items))
    pairwise = NegativeSamplingDataset(users, items, 30, 1, 8, mode="pairwise")
    assert set(pairwise[0]) == {"user", "item", "negative"}      # inputs only: BPR needs no labels


def test_in_batch_dataset_gathers_lookups():
    table = np.arange(10)[:, None] * np.ones((1, 3))
    data = InBatchDataset({"row": np.arange(10)}, batch_size=4, lookups={"text": (table, "row")})
    x = data[0]                                       # inputs only: the retrieval task needs no labels
    assert len(data) == 2 and isinstance(x, dict) and (x["text"][:, 0] == x["row"]).all()
    with pytest.raises(ValueError, match="lookups"):
        InBatchDataset({"row": np.arange(10)}, 4, lookups={"text": (table, "missing")})


def test_early_stopping_restores_the_best_weights():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile("sgd", "mse")
    scores = iter([0.1, 0.3, 0.2, 0.15, 0.1, 0.05])
    snapshots = []

    def validate():
        snapshots.append([w.copy() for w in model.get_weights()])
        return {"ndcg": next(scores)}

    stopper = RankingEarlyStopping(validate, patience=1)
    x, y = np.random.default_rng(0).normal(size=(64, 2)), np.ones(64)
    model.fit(x, y, epochs=6, callbacks=[stopper], verbose=0)
    assert stopper.best_epoch == 2 and len(stopper.history) == 4
    for restored, best in zip(model.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(restored, best)


def test_save_and_load_keras_format(tmp_path):
    model = NeuMF(10, 12, gmf_dim=4, mlp_dims=(8, 4))
    inputs = {"user": np.array([1, 2], np.int32), "item": np.array([3, 4], np.int32)}
    before = keras.ops.convert_to_numpy(model(inputs))
    path = save_model(model, tmp_path / "neumf.keras")
    loaded = load_model(path)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(inputs)), before, rtol=1e-6)
    with pytest.raises(ValueError, match=".keras"):
        save_model(model, tmp_path / "neumf.h5")


@pytest.mark.parametrize("make, message", [
    (lambda: NCF(variant="deep"), "variant"), (lambda: NCF(loss="hinge"), "loss"),
    (lambda: NCF(epochs=0), "epochs"), (lambda: NCF(learning_rate=0), "learning_rate"),
    (lambda: TwoTowerRecommender(embedding_dim=0), "embedding_dim"),
    (lambda: ItemFeatures([1, 2], vectors=np.zeros((3, 4))), "item_features.vectors"),
    (lambda: NeuMF(5, 5, variant="neumf", mlp_dims=(7, 4)), "even"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()

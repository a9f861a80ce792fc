"""The one trainer (reclib.training.Trainer): repeatable runs, the precision policy, divergence,
early stopping, already compiled models, and its arguments."""

import contextlib

import keras
import numpy as np
import pandas as pd
import pytest

from reclib.checks import ParameterTypeError
from reclib.models import NeuMF, mlp_classifier
from reclib.training import NegativeSamplingDataset, Trainer


def pairs_dataset(seed: int = 0) -> NegativeSamplingDataset:
    rng = np.random.default_rng(seed)
    keys = rng.choice(30 * 40, size=300, replace=False)
    return NegativeSamplingDataset(keys // 40, keys % 40, n_items=40, n_negatives=2, batch_size=64, random_state=seed)


def neumf() -> NeuMF:
    return NeuMF(30, 40, gmf_dim=4, mlp_dims=(8, 4))


def test_same_seed_gives_the_same_history_and_weights():
    runs = []
    for _ in range(2):
        trainer = Trainer(epochs=3, batch_size=64, learning_rate=0.01, random_state=7)
        runs.append((trainer.fit(neumf, pairs_dataset()), trainer.model_.get_weights()))
    pd.testing.assert_frame_equal(runs[0][0], runs[1][0])
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_array_equal(a, b)
    assert runs[0][0]["epoch"].tolist() == [1, 2, 3] and runs[0][0]["loss"].iloc[-1] < runs[0][0]["loss"].iloc[0]
    other = Trainer(epochs=3, batch_size=64, learning_rate=0.01, random_state=8).fit(neumf, pairs_dataset())
    assert not np.array_equal(other["loss"], runs[0][0]["loss"])


def test_precision_policy_applies_to_built_models_and_is_restored():
    before = keras.config.dtype_policy().name
    seen = {}

    def build():
        model = neumf()
        seen["policy"] = model.dtype_policy.name
        return model

    history = Trainer(epochs=1, batch_size=64, learning_rate=0.01, precision="mixed_float16").fit(build, pairs_dataset())
    assert seen["policy"] == "mixed_float16" and np.isfinite(history["loss"]).all()
    assert keras.config.dtype_policy().name == before

    def broken():
        raise RuntimeError("no model")

    with pytest.raises(RuntimeError, match="no model"):
        Trainer(epochs=1, learning_rate=0.01, precision="mixed_bfloat16").fit(broken, pairs_dataset())
    assert keras.config.dtype_policy().name == before


def test_non_finite_loss_stops_naming_the_learning_rate():
    with pytest.raises(FloatingPointError, match=r"toy diverged at epoch 1 of 3 with learning_rate=1e\+20"):
        Trainer(epochs=3, batch_size=64, learning_rate=1e20).fit(neumf, pairs_dataset(), name="toy")


def test_early_stopping_restores_the_best_epoch():
    scores = iter([0.1, 0.3, 0.2, 0.15, 0.1, 0.05])
    snapshots, built = [], {}

    def build():
        built["model"] = neumf()
        return built["model"]

    def validate():
        snapshots.append([w.copy() for w in built["model"].get_weights()])
        return {"ndcg": next(scores), "recall": 0.0}

    trainer = Trainer(epochs=6, batch_size=64, learning_rate=0.01, patience=1)
    history = trainer.fit(build, pairs_dataset(), validate=validate)
    assert trainer.best_epoch_ == 2 and len(history) == 4 and history["val_ndcg"].tolist() == [0.1, 0.3, 0.2, 0.15]
    for restored, best in zip(trainer.model_.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(restored, best)


def test_a_compiled_model_keeps_its_compile_with_keras_validation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.float32)
    model = mlp_classifier(5, (8,), learning_rate=0.01)
    trainer = Trainer(epochs=4, batch_size=32, learning_rate=None, monitor="val_auc", patience=5)
    history = trainer.fit(model, (x, y), validation_data=(x, y))
    assert {"loss", "auc", "val_auc"} <= set(history) and trainer.best_epoch_ == int(history["val_auc"].idxmax()) + 1
    with pytest.raises(ValueError, match="learning_rate=None"):
        Trainer(epochs=1, learning_rate=None).fit(neumf, pairs_dataset())


def test_distribution_scope_is_entered():
    entered = []

    class FakeDistribution:
        @contextlib.contextmanager
        def scope(self):
            entered.append(True)
            yield

    Trainer(epochs=1, batch_size=64, learning_rate=0.01, distribution=FakeDistribution()).fit(neumf, pairs_dataset())
    assert entered == [True]


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"epochs": 0}, ValueError, "epochs"), ({"batch_size": 1.5}, ParameterTypeError, "batch_size"),
    ({"learning_rate": 0.0}, ValueError, "learning_rate"), ({"learning_rate": float("nan")}, ValueError, "learning_rate"),
    ({"patience": -1}, ValueError, "patience"), ({"random_state": None}, ParameterTypeError, "random_state"),
    ({"monitor": ""}, ParameterTypeError, "monitor"), ({"verbose": 3}, ValueError, "verbose"),
    ({"precision": "float8"}, ValueError, "precision"), ({"distribution": object()}, ParameterTypeError, "distribution"),
    ({"steps_per_execution": 0}, ValueError, "steps_per_execution"), ({"jit_compile": "yes"}, ValueError, "jit_compile"),
    ({"callbacks": ["stop"]}, ParameterTypeError, r"callbacks\[0\]"), ({"mode": "up"}, ValueError, "mode"),
])
def test_bad_trainer_arguments_are_named(kwargs, exc, message):
    with pytest.raises(exc, match=message):
        Trainer(**kwargs)


@pytest.mark.parametrize("model, validate, message", [
    (3, None, "model"), (neumf, "ndcg", "validate"), (lambda: 3, None, "model function"),
])
def test_bad_fit_arguments_are_named(model, validate, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Trainer(epochs=1, learning_rate=0.01).fit(model, pairs_dataset(), validate=validate)

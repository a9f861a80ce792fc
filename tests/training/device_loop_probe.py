"""Checks of ``Trainer(device_data=True)`` on one Keras backend, run in its own process by
``test_device_loop.py``: ``KERAS_BACKEND=jax python tests/training/device_loop_probe.py OUT.json``."""

from __future__ import annotations

import json
import sys

import keras
import numpy as np
import pandas as pd

from reclib.features.specs import Categorical, FeatureSpace, Numeric
from reclib.models.interaction import build_ctr_model
from reclib.training import Trainer
from reclib.training.device_loop import direct_embedding_inputs

LOSS = keras.losses.BinaryCrossentropy(from_logits=True)


def clicks(n: int, seed: int = 0):
    """A FeatureSpace of two categorical fields and a number, and n rows whose click depends on
    an interaction of the two fields."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"a": rng.integers(0, 40, n), "b": rng.integers(0, 25, n), "x": rng.normal(size=n)})
    y = (((frame["a"] % 2) ^ (frame["b"] % 3 == 0)) | (frame["x"] > 1.5)).to_numpy(np.float32)
    space = FeatureSpace([Categorical("a"), Categorical("b"), Numeric("x")]).fit(frame)
    return space, space.transform(frame), y


def build(space):
    return build_ctr_model("dcnv2", space, embedding_dim=8, hidden_units=(16,), dropout=0.0, l2=0.0, cross_layers=1)


def fit(space, x, y, **options):
    trainer = Trainer(learning_rate=1e-2, loss=LOSS, random_state=3, **options)
    history = trainer.fit(lambda: build(space), (x, y))
    return trainer.model_, history


def main(out: str) -> None:
    space, x, y = clicks(2048)
    result = {"backend": keras.backend.backend()}
    # one full-batch step: the device loop and Keras' model.fit start from the same seeded weights
    # and take the same Adam step on the same mean loss
    first = {k: v[:64] for k, v in x.items()}
    on_device, _ = fit(space, first, y[:64], epochs=1, batch_size=64, device_data=True)
    keras_fit, _ = fit(space, first, y[:64], epochs=1, batch_size=64)
    result["one_step_max_diff"] = max(float(np.max(np.abs(a - b)))
                                      for a, b in zip(on_device.get_weights(), keras_fit.get_weights()))
    # row-sparse: one step changes exactly the rows of the ids in the batch
    model = build(space)
    model(first)
    before = [np.array(v) for v in model.get_weights()]
    tables = direct_embedding_inputs(model)
    trainer = Trainer(epochs=1, batch_size=64, learning_rate=1e-2, loss=LOSS, random_state=3, device_data=True,
                      sparse_embeddings=True)
    trainer.fit(model, (first, y[:64]))
    weights = {id(v): i for i, v in enumerate(model.weights)}
    after = model.get_weights()
    checked = {}
    for j, name in tables.items():
        i = weights[id(model.trainable_variables[j])]
        used = np.zeros(len(before[i]), bool)
        used[first[name]] = True
        changed = np.any(after[i] != before[i], axis=1)
        checked[name] = {"untouched_rows_changed": int(changed[~used].sum()), "used_rows_unchanged": int((~changed[used]).sum()),
                         "used_rows": int(used.sum())}
    result["sparse_rows"] = checked
    # whole runs: repeatable, and the loss falls
    for label, sparse in (("dense", False), ("sparse", True)):
        runs = [fit(space, x, y, epochs=6, batch_size=128, device_data=True, sparse_embeddings=sparse,
                    sparse_learning_rate=0.3, steps_per_execution=5)[1]["loss"].tolist() for _ in range(2)]
        result[f"{label}_losses"] = runs
    # Keras early stopping on validation AUC (the logs come from EvaluateEachEpoch), best weights kept
    valid = {k: v[1536:] for k, v in x.items()}
    trainer = Trainer(epochs=4, batch_size=128, learning_rate=None, random_state=3, device_data=True,
                      monitor="val_loss", mode="min", patience=1)
    keras.utils.set_random_seed(3)
    model = build(space)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=LOSS, metrics=[keras.metrics.AUC(name="auc", from_logits=True)])
    history = trainer.fit(model, ({k: v[:1536] for k, v in x.items()}, y[:1536]), validation_data=(valid, y[1536:]))
    result["validated"] = {"columns": sorted(history.columns), "epochs": len(history),
                           "best_epoch": trainer.best_epoch_,
                           "restored_val_loss": float(trainer.model_.evaluate(valid, y[1536:], verbose=0,
                                                                              return_dict=True)["loss"]),
                           "best_val_loss": float(history["val_loss"].min())}
    with open(out, "w") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv[1])

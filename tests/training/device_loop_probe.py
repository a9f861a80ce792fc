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
from reclib.training.device_loop import ADAGRAD_EPSILON, direct_embedding_inputs

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


def table_weights(model) -> dict[str, np.ndarray]:
    """The row-sparse tables of a model, by the input that reads them."""
    return {name: keras.ops.convert_to_numpy(model.trainable_variables[j]).copy()
            for j, name in direct_embedding_inputs(model).items()}


def compiled_with(space, optimizer):
    def factory():
        model = build(space)
        model.compile(optimizer=optimizer, loss=LOSS)
        return model
    return factory


def sparse_step_against_reference(space, x, y) -> dict[str, float]:
    """One row-sparse step from seeded weights against the formula, with the table gradient g
    read off a plain SGD step of rate 1 from the same weights (w - w' = g): the rows of the
    batch move by 0.01 g / (sqrt(mean g^2) + eps) (accumulators start at 0), the others stay."""
    keras.utils.set_random_seed(3)
    before = table_weights(build(space))
    sgd = Trainer(epochs=1, batch_size=len(y), learning_rate=None, random_state=3, device_data=True)
    sgd.fit(compiled_with(space, keras.optimizers.SGD(1.0)), (x, y))
    sparse = Trainer(epochs=1, batch_size=len(y), learning_rate=None, random_state=3, device_data=True,
                     sparse_embeddings=True, sparse_learning_rate=0.01)
    sparse.fit(compiled_with(space, keras.optimizers.Adam(1e-2)), (x, y))
    errors = {}
    for name, start in before.items():
        g = start - table_weights(sgd.model_)[name]
        expected = start - 0.01 * g / (np.sqrt(np.mean(g * g, axis=1, keepdims=True)) + ADAGRAD_EPSILON)
        expected[~np.isin(np.arange(len(start)), x[name])] = start[~np.isin(np.arange(len(start)), x[name])]
        errors[name] = float(np.max(np.abs(table_weights(sparse.model_)[name] - expected)))
    return errors


def program_size(space, x, y) -> int:
    """JAX only: characters of the lowered two-step training program for data (x, y): the same
    for any number of rows when the data is an argument of the call, not a constant inside it."""
    import jax.numpy as jnp

    from reclib.training.device_loop import _JaxRunner
    keras.utils.set_random_seed(3)
    model = build(space)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=LOSS)
    model({k: v[:2] for k, v in x.items()})
    runner = _JaxRunner(model, x, y, 64, {}, 0.03, 0)
    lowered = runner._program(2).lower(runner.state, runner.data, jnp.arange(len(y), dtype="int32"), jnp.int32(0))
    return len(lowered.as_text())


def _scatter_dtypes(jaxpr) -> set[str]:
    """Output dtypes of every scatter in a jaxpr, nested calls included."""
    found = set()
    for eqn in jaxpr.eqns:
        if eqn.primitive.name.startswith("scatter"):
            found.add(str(eqn.outvars[0].aval.dtype))
        for param in eqn.params.values():
            inner = getattr(param, "jaxpr", param)
            if hasattr(inner, "eqns"):
                found |= _scatter_dtypes(inner)
    return found


def scatter_dtypes() -> dict[str, list[str]]:
    """JAX only: the dtypes of the scatter-adds in the gradient of a two-field model under
    mixed_bfloat16, with keras.layers.Embedding and with TableEmbedding."""
    import jax

    from reclib.models.layers import TableEmbedding
    found = {}
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        for label, layer_class in (("keras", keras.layers.Embedding), ("reclib", TableEmbedding)):
            ids = keras.Input((), dtype="int32", name="ids")
            model = keras.Model(ids, keras.layers.Dense(1)(layer_class(50, 4)(ids)))
            batch = np.array([1, 2, 2, 7], dtype="int32")

            def loss(values):
                out, _ = model.stateless_call(values, [], batch)
                return jax.numpy.sum(out.astype("float32"))

            jaxpr = jax.make_jaxpr(jax.grad(loss))([v.value for v in model.trainable_variables])
            found[label] = sorted(_scatter_dtypes(jaxpr.jaxpr))
    finally:
        keras.config.set_dtype_policy(previous)
    return found


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
    result["sparse_step_error"] = sparse_step_against_reference(space, first, y[:64])
    # four steps in one compiled call or in four calls: the same numbers
    four = {k: v[:256] for k, v in x.items()}
    weights = [fit(space, four, y[:256], epochs=1, batch_size=64, device_data=True, sparse_embeddings=True,
                   steps_per_execution=k)[0].get_weights() for k in (1, 4)]
    result["steps_per_call_max_diff"] = max(float(np.max(np.abs(a - b))) for a, b in zip(*weights))
    # whole runs: repeatable, and the loss falls; the row-sparse tables move
    keras.utils.set_random_seed(3)
    start = table_weights(build(space))
    for label, sparse in (("dense", False), ("sparse", True)):
        runs = [fit(space, x, y, epochs=6, batch_size=128, device_data=True, sparse_embeddings=sparse,
                    steps_per_execution=5) for _ in range(2)]
        result[f"{label}_losses"] = [history["loss"].tolist() for _, history in runs]
        result[f"{label}_table_moved"] = min(float(np.max(np.abs(table_weights(runs[0][0])[name] - start[name])))
                                             for name in start)
    if keras.backend.backend() == "jax":
        result["scatter_dtypes"] = scatter_dtypes()
        result["program_chars"] = [program_size(space, {k: v[:n] for k, v in x.items()}, y[:n]) for n in (256, 2048)]
    try:
        Trainer(epochs=1, batch_size=64, learning_rate=1e-2, loss=LOSS, device_data=True,
                precision="mixed_float16").fit(lambda: build(space), (first, y[:64]))
        result["float16_refused"] = ""
    except ValueError as error:
        result["float16_refused"] = str(error)
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

"""The parts of ``experiments.bench_gpu``, one per process: ``python -m experiments.bench_gpu_parts PART OUT.json``.

KERAS_BACKEND must be set before this module imports Keras (the driver does it). Every part
writes its JSON after each measurement, so a part stopped by the time limit keeps its rows.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from pathlib import Path

import numpy as np

from experiments.bench_gpu import SHAPES, _write

SEED = 42


class Recorder:
    """The part's result dict, written to ``path`` after every change."""

    def __init__(self, path: Path, **fields: object) -> None:
        self.path, self.result = path, {**fields, "rows": []}
        self.save()

    def save(self) -> None:
        _write(self.path, self.result)

    def row(self, **values: object) -> None:
        print("[bench_gpu]", values, flush=True)
        self.result["rows"].append(values)
        self.save()

    def set(self, **values: object) -> None:
        self.result.update(values)
        self.save()


# -- the bf16 peak ------------------------------------------------------------------------------
def matmul_tflops(backend: str, n: int, repeats: int = 10) -> float:
    """TFLOP/s of an n x n x n bfloat16 matrix product (mean of ``repeats`` after 3 warm-ups)."""
    if backend == "jax":
        import jax
        import jax.numpy as jnp
        keys = jax.random.split(jax.random.key(0))
        a, b = (jax.random.normal(k, (n, n), jnp.bfloat16) for k in keys)
        product = jax.jit(lambda p, q: p @ q)
        for _ in range(3):
            product(a, b).block_until_ready()
        start = time.perf_counter()
        for _ in range(repeats):
            out = product(a, b)
        out.block_until_ready()
    else:
        import torch
        device = "cuda" if torch.cuda.is_available() else "cpu"
        a, b = (torch.randn(n, n, device=device, dtype=torch.bfloat16) for _ in range(2))
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for _ in range(3):
            a @ b
        sync()
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        sync()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e12


# -- DCN-V2 in NVIDIA's shape -------------------------------------------------------------------
def zipf_clicks(shape: dict, seed: int = 0):
    """``(space, x, y)``: a FeatureSpace of ``fields`` categorical features (``vocabulary`` values
    each, index 0 unknown) and ``numeric`` numbers, and ``rows`` synthetic rows: ids drawn from a
    Zipf law (exponent 1.1) over a field-specific permutation of the values, standard-normal
    numbers, and a click label from planted per-value weights of three fields and one number."""
    import pandas as pd
    from reclib.features.specs import Categorical, FeatureSpace, Numeric

    rng = np.random.default_rng(seed)
    vocabulary, n = shape["vocabulary"], shape["rows"]
    names = [f"c{f}" for f in range(shape["fields"])]
    numbers = [f"n{j}" for j in range(shape["numeric"])]
    every_value = pd.DataFrame({**{c: np.arange(1, vocabulary + 1) for c in names},
                                **{c: rng.normal(size=vocabulary) for c in numbers}})
    space = FeatureSpace([Categorical(c) for c in names] + [Numeric(c) for c in numbers]).fit(every_value)
    template = space.transform(every_value.head(2))
    cdf = np.cumsum(np.arange(1, vocabulary + 1, dtype=np.float64) ** -1.1)
    cdf /= cdf[-1]
    x = {}
    for c in names:
        ranks = np.minimum(np.searchsorted(cdf, rng.random(n)), vocabulary - 1)
        x[c] = (rng.permutation(vocabulary)[ranks] + 1).astype(np.int32)
    for c in numbers:
        x[c] = rng.normal(size=(n,) + template[c].shape[1:]).astype(np.float32)
    planted = rng.normal(scale=1.0, size=(3, vocabulary + 1))
    logit = planted[0][x[names[0]]] + planted[1][x[names[1 % len(names)]]] * planted[2][x[names[2 % len(names)]]]
    logit = logit + 0.5 * x[numbers[0]].reshape(n) - 1.0
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.float32)
    return space, x, y


def dense_flops_per_sample(model) -> float:
    """6 x the weights of every matrix outside the embedding tables: the multiply-adds of one
    sample's forward (2 per weight) and backward (4 per weight) pass."""
    import keras
    tables = {id(layer.embeddings) for layer in model.layers if isinstance(layer, keras.layers.Embedding)}
    return 6.0 * sum(int(np.prod(v.shape)) for v in model.weights if len(v.shape) == 2 and id(v) not in tables)


def dcnv2(part: str, out: Path, tiny: bool) -> None:
    import keras
    from reclib.models.interaction import build_ctr_model
    from reclib.training import Trainer
    from reclib.training.timing import EpochTimer

    backend = keras.backend.backend()
    shape = SHAPES["tiny" if tiny else "full"]
    rec = Recorder(out, backend=backend, shape={k: v for k, v in shape.items() if k != "batches"})
    rec.set(peak_bf16_tflops=float(f"{matmul_tflops(backend, shape['matmul']):.4g}"))  # no rounding to 0 on a slow CPU
    start = time.perf_counter()
    space, x, y = zipf_clicks(shape)
    rec.set(data_seconds=round(time.perf_counter() - start, 1), click_rate=float(y.mean()))

    def build(frozen_tables: bool = False):
        model = build_ctr_model("dcnv2", space, embedding_dim=shape["dim"], hidden_units=shape["mlp"], dropout=0.0,
                                l2=0.0, cross_layers=shape["cross"], cross_rank=shape["rank"])
        for layer in model.layers:       # the bound: what the step costs without any embedding gradient
            if frozen_tables and isinstance(layer, keras.layers.Embedding):
                layer.trainable = False
        return model

    small, large = shape["batches"]
    # most informative first: a part stopped by its time share keeps the rows it finished
    configs = [("mixed_bfloat16", small, True, True), ("mixed_bfloat16", small, False, True),
               ("float32", small, True, True), ("mixed_bfloat16", large, True, True),
               ("float32", large, True, True), ("mixed_bfloat16", small, False, False),
               ("mixed_bfloat16", small, "frozen", True)]
    devices = keras.distribution.list_devices() if backend == "jax" else []
    if len(devices) > 1:        # a machine with several devices: one data-parallel point, same trainer
        configs.insert(1, ("mixed_bfloat16", large, False, False, len(devices)))
    for precision, batch, sparse, on_device, *spread in configs:
        frozen = sparse == "frozen"
        sparse = sparse is True
        distribution = keras.distribution.DataParallel(devices=devices) if spread else None
        rows = len(y) if on_device else 8 * batch           # model.fit is timed on fewer rows
        steps = rows // batch
        timer = EpochTimer()
        trainer = Trainer(epochs=2, batch_size=batch, learning_rate=1e-3, loss=keras.losses.BinaryCrossentropy(
                              from_logits=True), precision=precision, device_data=on_device,
                          sparse_embeddings=sparse, warmup_steps=min(8, steps),
                          steps_per_execution=steps if on_device else 1, jit_compile=backend == "jax", callbacks=[timer],
                          monitor="loss", mode="min", random_state=SEED, distribution=distribution)
        history = trainer.fit(lambda: build(frozen), ({k: v[:rows] for k, v in x.items()}, y[:rows]))
        model = trainer.model_
        epoch_s = min(timer.seconds[1:])
        per_s = rows // batch * batch / epoch_s
        flops = dense_flops_per_sample(model)
        policy = sorted({layer.dtype_policy.compute_dtype for layer in model.layers if layer.weights})
        rec.set(flops_per_sample=flops, parameters=int(model.count_params()))
        path = "device loop" if on_device else "Keras model.fit (NumPy batches)"
        rec.row(path=f"{path}, DataParallel over {spread[0]} devices" if spread else path, precision=precision,
                batch=batch, embeddings="frozen (no gradient)" if frozen else "row-sparse Adagrad" if sparse else "dense Adam",
                samples_per_s=round(per_s), tflops=round(per_s * flops / 1e12, 1),
                share_of_peak=round(per_s * flops / 1e12 / rec.result["peak_bf16_tflops"], 3),
                first_epoch_s=round(timer.seconds[0], 2), epoch_s=round(epoch_s, 3),
                loss_first=round(float(history["loss"].iloc[0]), 4), loss_last=round(float(history["loss"].iloc[-1]), 4),
                compute_dtypes="/".join(policy))
        del trainer, model, history
        keras.backend.clear_session()
        gc.collect()


# -- MovieLens-100K models ----------------------------------------------------------------------
def _timed_fit(model, frame, **data):
    start = time.perf_counter()
    model.fit(frame, **data)
    return time.perf_counter() - start


def _epochs_run(model) -> int | None:
    history = getattr(model, "history_", None)
    return None if history is None else int(len(history))


def _subsample(frame, tiny: bool, users: int = 80):
    return frame[frame["user_id"] <= users] if tiny else frame


def next_item_row(rec: Recorder, name: str, model_class, ratings, tiny: bool) -> None:
    """Fit a sequential model with its defaults on P3's training and validation events, test on
    the last event of each user, and record the row."""
    from reclib.evaluation import P3

    p3_split = P3.split(ratings)
    history, p3_test = p3_split.train, p3_split.test
    model = model_class(random_state=SEED, **({"epochs": 1} if tiny else {}))
    seconds = _timed_fit(model, history)
    values = P3.evaluate(model, history, p3_test).values
    rec.row(model=name, protocol="P3", fit_s=round(seconds, 1), epochs=model.epochs,
            ndcg=round(float(values["ndcg"]), 4), hit_rate=round(float(values["hit_rate"]), 4))


def ml100k_jax(part: str, out: Path, tiny: bool) -> None:
    import keras
    from reclib.data import load_movielens
    from reclib.evaluation import P1
    from reclib.models import SASRecRecommender, TwoTowerRecommender

    rec = Recorder(out, backend=keras.backend.backend())
    ratings = _subsample(load_movielens("100k").ratings, tiny)
    split = P1.split(ratings)
    train, test = split.train, split.test
    model = TwoTowerRecommender(random_state=SEED, **({"epochs": 1} if tiny else {}))
    seconds = _timed_fit(model, train)
    values = P1.evaluate(model, train, test).values
    rec.row(model="two-tower (ids)", protocol="P1", fit_s=round(seconds, 1), epochs=model.epochs,
            ndcg=round(float(values["ndcg"]), 4), recall=round(float(values["recall"]), 4))
    next_item_row(rec, "SASRec", SASRecRecommender, ratings, tiny)


def ml100k_torch(part: str, out: Path, tiny: bool) -> None:
    import torch
    from reclib.data import load_movielens
    from reclib.evaluation import P5, paired_difference
    from reclib.models import ItemGPT2Recommender
    from reclib.features import ItemFeatures, item_text
    from reclib.models.text_tower import TextTowerRecommender

    rec = Recorder(out, backend="torch", cuda=torch.cuda.is_available(),
                   device=torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu")
    ml = load_movielens("100k")
    ratings = _subsample(ml.ratings, tiny)
    next_item_row(rec, "GPT-2 over item ids", ItemGPT2Recommender, ratings, tiny)
    if os.environ.get("RECLIB_BENCH_SKIP_FINETUNE") == "1":
        return
    texts = ItemFeatures(ml.items["item_id"].to_numpy(), texts=item_text(ml.items).to_numpy())
    p5 = P5.with_params(random_state=SEED, k=10)
    split = p5.split(ratings)
    train, test = split.train, split.test
    fit_part, held = split.fit, split.valid
    held = held[held["user_id"].isin(fit_part["user_id"])]
    test = test[test["user_id"].isin(train["user_id"])]
    tuned = {"trainable_layers": 1, "epochs": 2, "max_length": 8} if tiny else {"trainable_layers": 6, "epochs": 4}

    def validate(m):
        return dict(p5.evaluate(m, fit_part, held).values[["recall", "ndcg"]])

    probe = TextTowerRecommender(random_state=SEED, patience=tuned["epochs"], **tuned)   # the whole curve
    seconds = _timed_fit(probe, fit_part, validate=validate, item_features=texts)
    curve = probe.history_["val_recall"].tolist()
    best = int(np.argmax(curve)) + 1
    rec.set(finetune_validation_recall=[round(v, 4) for v in curve], finetune_epochs_chosen=best)
    results = {}
    for name, model in (("text tower, fine-tuned", TextTowerRecommender(random_state=SEED, **{**tuned, "epochs": best})),
                        ("text tower, frozen", TextTowerRecommender(random_state=SEED, **({"max_length": 8} if tiny else {})))):
        seconds = _timed_fit(model, train, item_features=texts)
        results[name] = p5.evaluate(model, train, test)
        values = results[name].values
        rec.row(model=name, protocol="P5", fit_s=round(seconds, 1), epochs=model.epochs,
                recall=round(float(values["recall"]), 4), ndcg=round(float(values["ndcg"]), 4))
    from reclib.cf import ImplicitALS
    from reclib.features import FeatureToFactorRecommender, TextEncoder
    vectors = TextEncoder(show_progress=False).encode(texts.texts.tolist())
    mapping = FeatureToFactorRecommender(ImplicitALS())
    seconds = _timed_fit(mapping, train, item_features=ItemFeatures(texts.item_ids, vectors=vectors))
    results["BERT -> factor map"] = p5.evaluate(mapping, train, test)
    values = results["BERT -> factor map"].values
    rec.row(model="BERT -> factor map", protocol="P5", fit_s=round(seconds, 1), recall=round(float(values["recall"]), 4),
            ndcg=round(float(values["ndcg"]), 4))
    tuned_users = results["text tower, fine-tuned"].per_user["recall"]
    rec.set(paired_recall={other: {k: round(float(v), 4) for k, v in paired_difference(
        tuned_users, results[other].per_user["recall"], random_state=SEED).items()}
        for other in ("text tower, frozen", "BERT -> factor map")})


PART_FUNCTIONS = {"dcnv2_jax": dcnv2, "dcnv2_torch": dcnv2, "ml100k_jax": ml100k_jax, "ml100k_torch": ml100k_torch}


if __name__ == "__main__":
    import reclib
    reclib.quiet()          # before any part imports Keras or transformers
    name, target = sys.argv[1], Path(sys.argv[2])
    PART_FUNCTIONS[name](name, target, "--tiny" in sys.argv[3:])

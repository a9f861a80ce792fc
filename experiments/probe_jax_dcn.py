"""A short JAX diagnostic of DCN-V2 in NVIDIA's shape: where ``bench_gpu``'s JAX part spends its time.

``KERAS_BACKEND=jax python -m experiments.probe_jax_dcn [--precision float32|mixed_bfloat16]``: 2^19
Zipf rows, batch 65,536, ``Trainer(device_data=True, steps_per_execution=8)``; prints the time
of each stage and each epoch (the first includes compilation), for dense Adam, row-sparse
Adagrad at batch 65,536 and row-sparse at 131,072. Results on one H200:
``experiments/results/probe_jax_dcn_h200.md`` (its first run built the model before the Trainer
set a policy, i.e. ``--precision float32``).
"""

from __future__ import annotations

import reclib

reclib.quiet()  # a script: TensorFlow's start-up logs off before anything imports it

import argparse
import time

import keras

from experiments.bench_gpu_parts import SHAPES, zipf_clicks
from reclib.models.interaction import build_ctr_model
from reclib.training import Trainer
from reclib.training.timing import EpochTimer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="mixed_bfloat16", choices=("float32", "mixed_bfloat16"))
    args = parser.parse_args(argv)
    start = time.perf_counter()

    def say(*values: object) -> None:
        print(f"[{time.perf_counter() - start:6.1f}s]", *values, flush=True)

    shape = dict(SHAPES["full"], rows=2 ** 19)
    space, x, y = zipf_clicks(shape)
    say("data")
    for sparse, batch in ((False, 65_536), (True, 65_536), (True, 131_072)):
        timer = EpochTimer()
        trainer = Trainer(epochs=2, batch_size=batch, learning_rate=1e-3, precision=args.precision,
                          loss=keras.losses.BinaryCrossentropy(from_logits=True), device_data=True,
                          sparse_embeddings=sparse, steps_per_execution=8, callbacks=[timer], monitor="loss",
                          mode="min")
        trainer.fit(lambda: build_ctr_model("dcnv2", space, embedding_dim=128, hidden_units=(1024, 1024, 512, 256),
                                            dropout=0.0, l2=0.0, cross_layers=3, cross_rank=512), (x, y))
        say("fit", args.precision, "sparse" if sparse else "dense", batch, [round(s, 2) for s in timer.seconds],
            "samples/s", round(len(y) // batch * batch / timer.seconds[-1]))


if __name__ == "__main__":
    main()

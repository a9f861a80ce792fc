"""The row-sparse learning rate of ``Trainer(sparse_embeddings=True)``, chosen on P4's validation rows.

``KERAS_BACKEND=jax python -m experiments.tune_device_loop``: DCN-V2 (``build_ctr_model``'s
defaults) on P4's user and item features without text, trained through the device loop with
row-wise Adagrad on the embedding tables at several rates, next to dense Adam on every variable;
each run early-stops on validation AUC (patience 2, at most 12 epochs, best weights kept).
Prints the best validation AUC and log loss per setting; the test rows are never read.
"""

from __future__ import annotations

import reclib

reclib.quiet()  # a script: TensorFlow's start-up logs off before anything imports it

import keras
import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

from reclib.data import build_click_dataset, load_movielens
from reclib.evaluation import P4
from reclib.features import Categorical, FeatureSpace, MultiCategorical, Numeric
from reclib.models.interaction import build_ctr_model
from reclib.training import Trainer

RATES = (0.001, 0.003, 0.01, 0.03, 0.1)
SPECS = [Categorical("user_id"), Categorical("item_id"), Categorical("gender"), Categorical("occupation"),
         Categorical("age_bucket"), Categorical("zip_prefix"), MultiCategorical("genres"), Numeric("year")]


def main() -> None:
    clicks = build_click_dataset(load_movielens("100k"))
    split = P4.with_params(random_state=42).split(clicks)
    train, valid = split.fit, split.valid
    space = FeatureSpace(SPECS).fit(train)
    x_train, x_valid = space.transform(train), space.transform(valid)
    y_train, y_valid = train["label"].to_numpy(np.float32), valid["label"].to_numpy(np.float32)
    settings = [("dense Adam", False, 0.05)] + [(f"row-sparse Adagrad {r}", True, r) for r in RATES]
    for name, sparse, rate in settings:
        trainer = Trainer(epochs=12, batch_size=1024, learning_rate=1e-3, device_data=True, sparse_embeddings=sparse,
                          sparse_learning_rate=rate, steps_per_execution=16, random_state=42, patience=2,
                          monitor="val_auc", mode="max", loss=keras.losses.BinaryCrossentropy(from_logits=True))
        trainer.fit(lambda: build_ctr_model("dcnv2", space), (x_train, y_train), validation_data=(x_valid, y_valid))
        logits = keras.ops.convert_to_numpy(trainer.model_.predict(x_valid, batch_size=8192, verbose=0))
        p = 1 / (1 + np.exp(-logits.astype(np.float64)))
        print(f"{name:26s} valid AUC {roc_auc_score(y_valid, p):.4f}  log loss {log_loss(y_valid, p):.4f}  "
              f"best epoch {trainer.best_epoch_}", flush=True)


if __name__ == "__main__":
    main()

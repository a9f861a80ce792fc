"""Training utilities for the Keras models (notebooks 05-08): input pipelines that re-sample
negatives every epoch, early stopping on validation ranking metrics, seeding, saving."""

from reclib.training.callbacks import RankingEarlyStopping, StopOnNonFiniteLoss
from reclib.training.data import InBatchDataset, NegativeSamplingDataset
from reclib.training.persistence import load_model, save_model, set_seed

__all__ = ["InBatchDataset", "NegativeSamplingDataset", "RankingEarlyStopping", "StopOnNonFiniteLoss",
           "load_model", "save_model", "set_seed"]

"""Training for the Keras models (notebooks 04-08): one :class:`Trainer` (seeding, precision,
distribution, compile, callbacks) for every model, its device-resident path for accelerators
(:mod:`reclib.training.device_loop`), input pipelines that re-sample negatives every epoch, early
stopping on validation ranking metrics, seeding, saving, and one model trained by several
processes (:mod:`reclib.training.launch`, :mod:`reclib.training.processes`)."""

from reclib.training.callbacks import EvaluateEachEpoch, RankingEarlyStopping, StopOnNonFiniteLoss
from reclib.training.devices import device_report
from reclib.training.timing import ctr_arrays, linear_scaling, time_training
from reclib.training.data import InBatchDataset, NegativeSamplingDataset
from reclib.training.device_loop import LinearWarmup, fit_on_device
from reclib.training.persistence import load_model, save_model, set_seed
from reclib.training.trainer import Trainer, fit_binary_classifier
from reclib.training.processes import (ProcessShard, ShardedArrays, data_parallel, initialize_processes,
                                       sharded_tables)

__all__ = ["EvaluateEachEpoch", "InBatchDataset", "LinearWarmup", "NegativeSamplingDataset", "RankingEarlyStopping",
           "StopOnNonFiniteLoss", "Trainer", "fit_on_device", "fit_binary_classifier", "load_model", "save_model", "set_seed",
           "ctr_arrays", "device_report", "linear_scaling", "time_training", "ProcessShard",
           "ShardedArrays", "data_parallel", "initialize_processes", "sharded_tables"]

"""A small language model over item ids: GPT-2 from ``transformers``, trained from scratch.

The tokens are item codes (item index + 1; ``0`` is padding), a "sentence" is a user's window
of items in time order, and next-token prediction is next-item prediction. The configuration
(``GPT2Config(vocab_size=n_items + 1, n_positions=max_length, n_embd, n_layer, n_head)``) is a
causal transformer like :class:`~reclib.models.sequence_encoders.SASRec`: learned positions, masked
self-attention, layer norm, residuals and an output layer tied to the input embeddings. The
differences are GPT-2's details (GELU, a 4x wider feed-forward layer, its initialisation), so
the two can be compared on quality and speed.

It trains with PyTorch (``transformers`` models are PyTorch modules), not Keras: the loss is
the softmax cross-entropy of the next item at every non-padding position, exactly the task of the
Keras models, with Adam. ``torch`` is imported when a model is built.

Two things keep the CPU cost down without changing the model or the loss:

- the output layer runs only where it is needed: at the trained positions (target > 0) when
  training, at the last position when scoring (:func:`next_item_logits`), instead of producing
  ``(b, L, n_items + 1)`` logits and discarding most of them;
- the activation is ``"gelu_pytorch_tanh"``, PyTorch's one-kernel form of GPT-2's tanh
  approximation of GELU (``"gelu_new"``, the same formula spelt as six element-wise operations).

**Several processes.** Inside a ``torch.distributed`` run
(:func:`reclib.training.processes.initialize_torch_processes`, started by
:mod:`reclib.training.launch`), ``fit`` trains one model with ``DistributedDataParallel``: every
rank draws the same window order, takes its contiguous equal part of every global batch of
``batch_size`` windows (:func:`~reclib.models.torch_device.equal_parts`: at most ``P - 1`` windows
of an epoch's last batch are left out) and scales its summed loss so that the averaged gradient
is that of the global batch's mean, as in one process. Each step's loss is summed over the ranks
before the divergence check, so every rank stops alike; ``verbose`` lines come from rank 0. With
``dropout=0`` two processes follow the one-process losses up to float32 rounding (dropout masks
are drawn per rank, so with dropout the runs differ like two seeds). Validation runs on every
rank (one model, one decision).

**Devices.** ``device`` ("auto", "cpu", "cuda" or "cuda:N") says where a fit trains and the
fitted model scores; "auto" takes CUDA when torch sees a GPU. The weights are initialised and the
windows shuffled on the CPU (``torch.manual_seed`` and a NumPy generator) whatever the device, so
the CPU numbers are those of a model without the parameter, and a GPU fit starts from the same
weights and sees the same batches (its arithmetic, and its dropout masks, differ). On CUDA,
``precision="bfloat16"`` runs the training forward passes under ``torch.autocast`` in bfloat16
(weights, optimiser and scoring stay float32). A saved (or copied) model holds CPU tensors
whatever it was trained on (:func:`cpu_state`); loaded, it goes back to its GPU where that GPU is
visible, else it stays on the CPU with ``device_ = "cpu"`` (:func:`restore_state`). The helpers
here (:func:`check_device`, :func:`resolve_device`, ...) serve
:class:`~reclib.models.text_tower.TextTowerRecommender` too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from reclib.base import FitContext, Recommender, user_batches
from reclib.checks import (ParameterTypeError, check_in_range, check_monitor, check_non_negative_int,
                           check_positive, check_positive_int, check_validate_function, check_verbose,
                           require_columns)
from reclib.data.sequences import training_windows
from reclib.features.content import ItemFeatures, check_item_features
from reclib.models.sequential import SequenceScoring
from reclib.models.torch_device import (BestEpoch, DivergenceCheck, check_device, check_precision, cpu_state,
                                        equal_parts, global_mean, print_epoch, process_group, resolve_device,
                                        restore_state, synchronize, training_autocast)

if TYPE_CHECKING:                           # torch is imported when a model is built
    import torch
    from transformers import GPT2LMHeadModel

__all__ = ["ItemGPT2Recommender", "next_item_logits"]

#: the width is the best candidate's on P3's validation event (``python -m experiments.tune_sequential
#: --models gpt2``, which started from SASRecRecommender's sizes); the rate and the epoch count come
#: from a three-seed check with a patience of 10 epochs (``python -m experiments.sequential_seeds
#: --families gpt2 --patience 10``: the better rate's median early-stopped epoch), because GPT-2 climbs
#: slowly and a patience of 3 stopped it on a passing plateau (numbers: README, "How the defaults
#: were chosen")
GPT2_EPOCHS = 52


# -- devices and precision of the PyTorch models (here and reclib.models.text_tower) -----------------
def next_item_logits(model: GPT2LMHeadModel, windows: torch.Tensor,
                     positions: torch.Tensor | None = None) -> torch.Tensor:
    """Next-item logits of a ``GPT2LMHeadModel`` over item codes, only where they are needed.

    windows: (b, L) int64 tensor of left-padded codes (0 = padding, masked in attention);
    positions: (b, L) bool tensor of the positions to score, or ``None`` for the last position
    of every window. Returns a float32 tensor (n, n_items), n = ``positions.sum()`` (row-major
    order) or b: the hidden states at those positions times the output embeddings without the
    padding row (GPT-2's ``lm_head``, tied to the input embeddings, has no bias). The numbers
    are those of ``model(windows).logits[..., 1:]`` at the same positions.
    """
    hidden = model.transformer(input_ids=windows, attention_mask=(windows > 0).long()).last_hidden_state
    picked = hidden[:, -1] if positions is None else hidden[positions]
    return picked @ model.lm_head.weight[1:].T


def next_item_loss(model: GPT2LMHeadModel) -> torch.nn.Module:
    """A module around ``model`` whose ``forward(windows, targets, scale=None)`` is the
    cross-entropy of the next item at the trained positions (targets > 0): the mean with
    ``scale=None``, else the sum times ``scale``. A module, so that ``DistributedDataParallel``
    can wrap the whole training forward pass (it synchronises gradients only for a forward
    that runs through it)."""
    import torch

    class NextItemLoss(torch.nn.Module):
        def __init__(self, inner: GPT2LMHeadModel) -> None:
            super().__init__()
            self.model = inner

        def forward(self, windows: torch.Tensor, targets: torch.Tensor, scale: float | None = None) -> torch.Tensor:
            trained = targets > 0
            logits = next_item_logits(self.model, windows, trained)
            if scale is None:
                return torch.nn.functional.cross_entropy(logits, targets[trained] - 1)
            return torch.nn.functional.cross_entropy(logits, targets[trained] - 1, reduction="sum") * scale

    return NextItemLoss(model)


class ItemGPT2Recommender(SequenceScoring, Recommender):
    """GPT-2 over item ids behind ``fit`` / ``score`` / ``recommend`` (module doc).

    Parameters
    ----------
    max_length: L, the window of items (GPT-2's ``n_positions``); embedding_dim (``n_embd``,
    divisible by ``n_heads``), n_layers, n_heads, dropout (every GPT-2 dropout); epochs,
    batch_size, learning_rate (Adam), patience and monitor (early stopping with ``validate``, by
    the rule of :class:`~reclib.training.RankingEarlyStopping`:
    :class:`~reclib.models.torch_device.BestEpoch`), random_state (``torch.manual_seed`` and the
    window shuffle), verbose (print the loss per epoch). The window, depth, heads and dropout
    are :class:`~reclib.models.sequential.SASRecRecommender`'s; the width (64, half of SASRec's:
    GPT-2's feed-forward layer is four times wider than SASRec's), the rate (0.01, twice SASRec's)
    and ``epochs`` (``GPT2_EPOCHS``) were chosen on the validation event; GPT-2 needs about three
    times SASRec's epochs to reach its level.
    feed_forward_dim: the inner width of each block's feed-forward layer (GPT-2's ``n_inner``);
    ``None`` (default): GPT-2's own 4 x ``embedding_dim``; ``embedding_dim`` gives SASRec's.
    device: "auto" (default: CUDA when torch sees a GPU, else the CPU), "cpu", "cuda" or
    "cuda:N": where ``fit`` trains and the fitted model scores (windows are scored on it, scores
    come back as NumPy arrays); CUDA where none is visible raises ``ValueError`` at fit.
    precision: ``None`` (float32, default) or "bfloat16": on CUDA only (``ValueError`` at fit on
    the CPU), the training forward passes run under ``torch.autocast`` in bfloat16; weights,
    Adam and scoring stay float32.

    After ``fit``: ``history_`` (loss and seconds of training per epoch, validation excluded),
    ``torch_model_`` (on ``device_``), ``device_`` (the device resolved from ``device``, where the
    model scores; a saved model holds CPU tensors and loads back on its GPU, or on the CPU with
    ``device_ = "cpu"`` where that GPU is not visible: module doc). Scoring, ``observe`` and the
    real-time state as :class:`~reclib.models.sequential.SequenceScoring` (the last
    ``max_length`` items, re-encoded).
    """

    def __init__(self, max_length: int = 50, embedding_dim: int = 64, n_layers: int = 2, n_heads: int = 2,
                 dropout: float = 0.2, epochs: int = GPT2_EPOCHS, batch_size: int = 128, learning_rate: float = 1e-2,
                 patience: int = 3, monitor: str = "ndcg", random_state: int = 42, verbose: int = 0,
                 timestamp_col: str = "timestamp", device: str = "auto", precision: str | None = None,
                 feed_forward_dim: int | None = None, **columns: str) -> None:
        super().__init__(**columns)
        check_positive_int(max_length=max_length, embedding_dim=embedding_dim, n_layers=n_layers,
                           n_heads=n_heads, epochs=epochs, batch_size=batch_size)
        if feed_forward_dim is not None:
            check_positive_int(feed_forward_dim=feed_forward_dim)
        check_in_range("dropout", dropout, 0.0, 1.0, high_inclusive=False)
        check_positive(learning_rate=learning_rate)
        check_non_negative_int(random_state=random_state, patience=patience)
        check_monitor(monitor)
        if embedding_dim % n_heads:
            raise ValueError(f"embedding_dim ({embedding_dim}) must be divisible by n_heads ({n_heads})")
        if not isinstance(timestamp_col, str):
            raise ParameterTypeError(f"timestamp_col must be a column name, got {timestamp_col!r}")
        check_device(device)
        check_precision(precision)
        check_verbose(verbose)
        self.max_length, self.embedding_dim, self.n_layers, self.n_heads = max_length, embedding_dim, n_layers, n_heads
        self.dropout, self.epochs, self.batch_size, self.learning_rate = dropout, epochs, batch_size, learning_rate
        self.patience, self.random_state, self.verbose, self.timestamp_col = patience, random_state, verbose, timestamp_col
        self.device, self.precision, self.monitor = device, precision, monitor
        self.feed_forward_dim = feed_forward_dim

    def fit(self, interactions: pd.DataFrame,
            validate: Callable[[Recommender], dict[str, float]] | None = None, *,
            item_features: ItemFeatures | None = None) -> ItemGPT2Recommender:
        """Fit on ``interactions`` (needs ``timestamp_col``). ``validate(model) -> {name: value}``
        runs after every epoch; training stops after ``patience`` epochs without a better
        ``monitor`` value and keeps the best epoch's weights (``best_epoch_``). ``item_features``: only its
        ``item_ids`` are used, as the catalogue (see ``SASRecRecommender``). Trains on ``device``
        (class doc)."""
        require_columns(interactions, self.user_col, self.item_col, self.timestamp_col)
        self.item_features_ = check_item_features(item_features, interactions, self.item_col,
                                                  model=type(self).__name__)
        check_validate_function(validate)
        self.device_ = resolve_device(self.device, self.precision)
        return self._fit_on(interactions, validate=validate)

    def _fit(self, context: FitContext) -> None:
        interactions = context.interactions
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        self._store_sequences(interactions)
        inputs, targets = training_windows(self.sequences_, self.max_length)
        if len(inputs) == 0:
            raise ValueError("no user has two events: a next-item model needs sequences of length >= 2")
        torch.manual_seed(self.random_state)
        config = GPT2Config(vocab_size=len(self.item_ids_) + 1, n_positions=self.max_length,
                            n_embd=self.embedding_dim, n_layer=self.n_layers, n_head=self.n_heads,
                            n_inner=self.feed_forward_dim,
                            resid_pdrop=self.dropout, embd_pdrop=self.dropout, attn_pdrop=self.dropout,
                            bos_token_id=0, eos_token_id=0, pad_token_id=0,
                            activation_function="gelu_pytorch_tanh")
        device = self.device_
        model = GPT2LMHeadModel(config).to(device)          # initialised on the CPU, then moved
        optimiser = torch.optim.Adam(model.parameters(), lr=self.learning_rate)
        rng = np.random.default_rng(self.random_state)
        x_all = torch.from_numpy(inputs.astype(np.int64)).to(device)
        y_all = torch.from_numpy(targets.astype(np.int64)).to(device)
        self.torch_model_ = model
        rows, stopper = [], BestEpoch(self.monitor, self.patience, {"model": model})
        check = DivergenceCheck(type(self).__name__, self.epochs, {"learning_rate": self.learning_rate},
                                model.named_parameters())
        rank, world = process_group()             # several processes: module doc, "Several processes"
        step = next_item_loss(model)
        if world > 1:
            step = torch.nn.parallel.DistributedDataParallel(step)
        for epoch in range(self.epochs):
            synchronize(device)
            epoch_start = time.perf_counter()
            model.train()
            order = torch.from_numpy(rng.permutation(len(inputs))).to(device)    # drawn on the CPU
            total, count = 0.0, 0
            for batch in user_batches(len(order), self.batch_size):
                picked, scale = order[batch], None
                if world > 1:
                    parts = equal_parts(picked, world)
                    if parts.shape[1] == 0:        # a last batch smaller than the world: skipped by every rank
                        continue
                    scale = world / int((y_all[parts] > 0).sum())    # DDP averages: the global batch's mean
                    picked = parts[rank]
                x, y = x_all[picked], y_all[picked]
                n = int((y > 0).sum())
                with training_autocast(device, self.precision):
                    loss = step(x, y, scale)
                if scale is None:
                    value = check.batch(loss, epoch + 1)
                else:                              # every rank checks the same global mean
                    mean, n = global_mean(loss.detach() / scale, n)
                    value = check.batch(mean, epoch + 1)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total, count = total + value * n, count + n
            synchronize(device)
            row = {"epoch": epoch + 1, "loss": total / count, "seconds": time.perf_counter() - epoch_start}
            check.epoch(epoch + 1, row["loss"])
            model.eval()
            stop = False
            if context.validate is not None:
                metrics = {k: float(v) for k, v in context.validate(self).items()}
                row.update({f"val_{k}": v for k, v in metrics.items()})
                stop = stopper.update(epoch + 1, metrics)
            rows.append(row)
            if self.verbose and rank == 0:
                print_epoch(row)
            if stop:
                break
        stopper.restore()
        self.best_epoch_ = stopper.best_epoch or len(rows)
        self.history_ = pd.DataFrame(rows)

    def score_windows(self, windows: np.ndarray) -> np.ndarray:
        """(b, n_items) next-item logits (a NumPy array) after left-padded code windows
        (b, max_length), computed on ``device_`` in float32."""
        import torch

        device = getattr(self, "device_", "cpu")             # models saved before devices: the CPU
        out = np.empty((len(windows), len(self.item_ids_)), np.float32)
        with torch.no_grad():
            for batch in user_batches(len(windows), 256):
                x = torch.from_numpy(windows[batch].astype(np.int64)).to(device)
                out[batch] = next_item_logits(self.torch_model_, x).cpu().numpy()
        return out

    def __getstate__(self) -> dict[str, Any]:
        """The state ``save`` and ``copy`` keep, the weights on the CPU (:func:`cpu_state`)."""
        return cpu_state(self.__dict__.copy())

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Back on the fit's GPU when it is visible, else on the CPU (:func:`restore_state`)."""
        self.__dict__.update(restore_state(state))

r"""A two-tower model whose item tower is a BERT-family text encoder, fine-tuned on the
recommendation objective (notebook 08b).

User tower: an embedding table (one vector per training user). Item tower: the item's text
(``reclib.features.item_text``) through all-MiniLM-L6-v2 (``reclib.features.text``), masked mean
pooling, L2 normalisation and a linear projection to ``embedding_dim``, plus an optional item-id
embedding; both towers end L2-normalised. The loss is :class:`~reclib.models.tasks.RetrievalTask`'s
in-batch softmax with log-Q correction and accidental-hit masking: the task's own logits
(:mod:`reclib.models.softmax_logits`) computed with torch functions, then torch's cross-entropy
(:func:`~reclib.models.torch_losses.in_batch_softmax_loss`).

**Partial fine-tuning.** With ``trainable_layers = k`` the bottom ``6 - k`` transformer layers (and
the token embeddings) are frozen: their output for every item's tokens is computed once per fit
without gradients and cached, and each step runs only the top ``k`` layers, pooling and
projection on the batch's distinct items. ``k = 0`` is the frozen-encoder two-tower through the
very same code; ``k = 6`` fine-tunes the whole encoder (a GPU setting).

**Shared frozen states.** The cached bottom states depend only on the encoder's weights and the
catalogue's tokens, so a fit starts from the deepest state at or below its own depth that a live
model fitted on the same weights and tokens holds (the same tensors, computed in the same
batches: the numbers are those of a fit from scratch), held by weak references only.

**Cold items.** Items seen in training get their own id embedding (index ``1 + item``); items
absent from training share index 0 ("unknown"). During training ``id_dropout`` of the batch rows
use index 0 too, so the text path learns to place an item on its own (TwoTower's ``id_dropout``).

It trains with PyTorch directly, as :class:`~reclib.models.item_lm.ItemGPT2Recommender` (the
default Keras backend, TensorFlow, cannot train a wrapped ``transformers`` torch module), with the
contract's divergence check and early stopping (:mod:`reclib.models.torch_device`).

**Several processes.** Inside a ``torch.distributed`` run
(:func:`reclib.training.processes.initialize_torch_processes`, started by
:mod:`reclib.training.launch`), ``fit`` trains one model with ``DistributedDataParallel``: every
rank draws the same order, encodes the items and users of its contiguous part of each batch,
and gathers every rank's item vectors (``all_gather``, gradients included) as the columns of the
in-batch softmax, so the negatives are those of the whole batch, as in one process. The ranks
split every batch into equal parts (:func:`~reclib.models.torch_device.equal_parts`: at most
``P - 1`` rows of an epoch's last batch are left out). Each step's loss is summed over the ranks
before the divergence check, so every rank stops alike. The id-dropout and encoder-dropout masks
are drawn per rank; the progress bar and ``verbose`` lines come from rank 0.

**Devices.** ``device`` ("auto", "cpu", "cuda" or "cuda:N"; "auto" takes CUDA when torch sees a
GPU) is where a fit runs: the encoder, the towers, the cached frozen states and every batch live
there. The weights are initialised, the batches ordered and the id-dropout masks drawn on the CPU
(``torch.manual_seed``, a NumPy generator, a CPU ``torch.Generator``) whatever the device, so the
CPU numbers are those of a model without the parameter and a GPU fit sees the same batches (its
arithmetic, and the encoder's dropout masks, differ). Frozen states are shared only between fits on
the same device. The score tables are computed on the device at the end of the fit and kept on the
CPU, where ``score`` multiplies them (NumPy). On CUDA, ``precision="bfloat16"`` runs the training
forward passes of the towers (trained layers, projection) under ``torch.autocast`` in bfloat16;
the frozen states, the pooling, the loss's logits, the weights, the optimisers and the score
tables stay float32. A saved (or copied) model holds CPU tensors whatever it was trained on, and
loads back on its GPU where that GPU is visible, else on the CPU with ``device_ = "cpu"``
(``reclib.models.torch_device.cpu_state`` and ``restore_state``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from reclib import progress
from reclib.base import FitContext, Recommender, user_batches
from reclib.checks import (ParameterTypeError, check_bool, check_in_range, check_monitor,
                           check_non_negative_int, check_positive, check_positive_int, check_validate_function,
                           check_verbose)
from reclib.features.content import ItemFeatures, check_item_features
from reclib.features.text import DEFAULT_MODEL, resolve_model, weights_hash
from reclib.models.frozen_states import frozen_states
from reclib.models.torch_device import (BestEpoch, DivergenceCheck, check_device, check_precision, cpu_state,
                                        equal_parts, global_mean, print_epoch, process_group, resolve_device,
                                        restore_state, synchronize, training_autocast)
from reclib.models.torch_losses import in_batch_softmax_loss

__all__ = ["TextTowerRecommender"]

N_LAYERS = 6            # transformer layers of all-MiniLM-L6-v2

def _training_step(model: TextTowerRecommender, log_q):
    """The training forward pass of ``model`` as one module (so that ``DistributedDataParallel``
    can wrap it): ``forward(users, items, batch_items, first_row, scale)`` encodes ``items`` (each
    distinct item once) and ``users`` (this process's rows of the batch), and returns the in-batch
    softmax loss over the batch's items ``batch_items``. One process (``scale=None``): the batch's
    mean. Several: the item vectors of every rank are gathered (``all_gather`` with gradients) as the
    columns, and the loss is this rank's sum times ``scale``."""
    import torch

    class TrainingStep(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            used = [model._projection, model._user_embedding, model._top]     # DDP: every parameter is used
            self.towers = torch.nn.ModuleList(used + ([model._item_embedding] if model.use_item_id else []))

        def forward(self, users, items, batch_items, first_row: int = 0, scale: float | None = None,
                    generator=None):
            unique, inverse = torch.unique(items, return_inverse=True)     # encode each item once
            with training_autocast(model.device_, model.precision):
                item_vectors = model._item_vectors(unique, True, generator)[inverse]
                user_vectors = torch.nn.functional.normalize(model._user_embedding(users), dim=-1)
            correction = log_q[batch_items] if model.log_q_correction else None
            if scale is None:
                return in_batch_softmax_loss(user_vectors, item_vectors, batch_items, correction, model.temperature)
            from torch.distributed.nn.functional import all_gather
            columns = torch.cat(all_gather(item_vectors))
            return in_batch_softmax_loss(user_vectors, columns, batch_items, correction, model.temperature,
                                         first_row, "sum") * scale

    return TrainingStep()


class TextTowerRecommender(Recommender):
    """Two-tower retrieval with a (partly) fine-tuned text encoder as item tower (module doc).

    Parameters
    ----------
    trainable_layers: k in 0..6, the top transformer layers trained (0 = frozen encoder).
    embedding_dim: d of both towers; use_item_id: add the item-id embedding; id_dropout: share of
    training rows whose item id is hidden (in [0, 1)); temperature: of the softmax; log_q_correction.
    epochs, batch_size (interactions per step), learning_rate (Adam, user table, id embeddings and
    projection), encoder_learning_rate (AdamW, the trained transformer layers), max_length (tokens
    per item text), model (hub name or folder, see ``reclib.features.text.resolve_model``),
    random_state (``torch.manual_seed`` and the batch order), verbose (loss per epoch and a
    progress bar). device: "auto" (default: CUDA when torch sees a GPU, else the CPU), "cpu",
    "cuda" or "cuda:N": where ``fit`` runs (module doc, "Devices"); CUDA where none is visible
    raises ``ValueError`` at fit. precision: ``None`` (float32, default) or "bfloat16": on CUDA
    only (``ValueError`` at fit on the CPU), the training forward passes run under
    ``torch.autocast`` in bfloat16. patience and monitor: early stopping with ``validate``, by the
    rule of :class:`~reclib.training.RankingEarlyStopping` (``torch_device.BestEpoch``).

    The defaults were chosen on P5's validation carve-out of ML-100K (``python -m
    experiments.tune_finetune``; README, "How the defaults were chosen"), never on test: the
    frozen encoder (``trainable_layers=0``) for 2 epochs; pass 1..6 to fine-tune.

    Data at ``fit(interactions, *, item_features)``: an
    :class:`~reclib.features.content.ItemFeatures` with ``texts`` (one non-blank string per item,
    e.g. :func:`~reclib.features.item_text` of the item table); its ``item_ids`` are the catalogue
    and may hold items absent from ``interactions`` (cold start), which are then scored from their
    text alone. Test users must be training users (``handles_unknown_users`` is False).

    After ``fit``: ``history_`` (loss and seconds of training per epoch, validation excluded),
    ``fit_seconds_``, ``torch_model_`` (the encoder, on ``device_``; frozen layers untouched),
    ``device_`` (the device resolved from ``device``; a saved model holds CPU tensors and loads
    back on its GPU, or on the CPU with ``device_ = "cpu"`` where that GPU is not visible).
    """

    def __init__(self, trainable_layers: int = 0, embedding_dim: int = 64, use_item_id: bool = True,
                 id_dropout: float = 0.5, temperature: float = 0.1, log_q_correction: bool = True,
                 epochs: int = 2, batch_size: int = 2048, learning_rate: float = 1e-2,
                 encoder_learning_rate: float = 1e-4, max_length: int = 32, model: str = DEFAULT_MODEL,
                 random_state: int = 42, verbose: int = 0, device: str = "auto",
                 precision: str | None = None, patience: int = 3, monitor: str = "recall",
                 **columns: str) -> None:
        super().__init__(**columns)
        check_non_negative_int(trainable_layers=trainable_layers, random_state=random_state, patience=patience)
        check_monitor(monitor)
        if trainable_layers > N_LAYERS:
            raise ValueError(f"trainable_layers must be in 0..{N_LAYERS}, got {trainable_layers}")
        check_positive_int(embedding_dim=embedding_dim, epochs=epochs, batch_size=batch_size,
                           max_length=max_length)
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2 (room for [CLS] and [SEP]), got {max_length}")
        for name, flag in (("use_item_id", use_item_id), ("log_q_correction", log_q_correction)):
            check_bool(**{name: flag})
        check_verbose(verbose)
        check_in_range("id_dropout", id_dropout, 0.0, 1.0, high_inclusive=False)
        check_positive(temperature=temperature, learning_rate=learning_rate,
                       encoder_learning_rate=encoder_learning_rate)
        if not isinstance(model, str) or not model.strip():
            raise ParameterTypeError(f"model must be a hub name or a folder, got {model!r}")
        check_device(device)
        check_precision(precision)
        self.trainable_layers, self.embedding_dim, self.use_item_id = trainable_layers, embedding_dim, use_item_id
        self.id_dropout, self.temperature, self.log_q_correction = id_dropout, temperature, log_q_correction
        self.epochs, self.batch_size, self.learning_rate = epochs, batch_size, learning_rate
        self.encoder_learning_rate, self.max_length, self.model = encoder_learning_rate, max_length, model
        self.random_state, self.verbose, self.device, self.precision = random_state, verbose, device, precision
        self.patience, self.monitor = patience, monitor

    # -- data ------------------------------------------------------------------------------------
    def fit(self, interactions: pd.DataFrame, validate: Callable[[Recommender], dict[str, float]] | None = None,
            *, item_features: ItemFeatures) -> TextTowerRecommender:
        """Fit on ``interactions``; ``item_features``: class doc. ``validate(model) -> {name: value}``
        runs after every epoch (its values go to ``history_`` as ``val_<name>``); ``patience``
        epochs without a better ``monitor`` value stop the fit, keeping the best epoch
        (``best_epoch_``). Runs on ``device`` (class doc)."""
        check_validate_function(validate)
        self.item_features_ = check_item_features(item_features, interactions, self.item_col,
                                                  need=("texts",), model=type(self).__name__)
        self.device_ = resolve_device(self.device, self.precision)
        return self._fit_on(interactions, validate=validate)

    def _item_catalogue(self, interactions: pd.DataFrame) -> np.ndarray:
        return self.item_features_.item_ids

    # -- the towers --------------------------------------------------------------------------------
    def _load_encoder(self):
        import torch
        from transformers import AutoModel, AutoTokenizer

        folder = resolve_model(self.model)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        encoder = AutoModel.from_pretrained(folder, attn_implementation="eager").to(self.device_)
        n_layers = len(encoder.encoder.layer)
        if self.trainable_layers > n_layers:
            raise ValueError(f"trainable_layers={self.trainable_layers} exceeds the {n_layers} layers of {self.model!r}")
        texts = self.item_features_.texts[self.item_features_.rows(self.item_ids_)].tolist()
        tokens = tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        self._mask = tokens["attention_mask"].to(self.device_)
        # additive attention mask (n, 1, 1, t): 0 where a token is kept, the dtype's minimum on padding
        self._additive = (1.0 - self._mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        self._top = encoder.encoder.layer[n_layers - self.trainable_layers:]
        encoder.eval()
        for parameter in encoder.parameters():
            parameter.requires_grad_(False)
        for parameter in self._top.parameters():
            parameter.requires_grad_(True)
        # the frozen bottom, once for every item (or taken from a live model fitted on the same tokens)
        self._cached = frozen_states(encoder, tokens, self._additive, n_layers - self.trainable_layers,
                                      weights_hash(folder))
        return encoder

    def _encode(self, rows, training: bool):
        """Unit text vectors (len(rows), 384) of catalogue rows through the trainable layers."""
        import torch

        hidden, mask = self._cached[rows], self._mask[rows]
        self._top.train(training)
        for layer in self._top:
            hidden = layer(hidden, self._additive[rows])
        hidden = hidden.float()                     # pooled in float32 (bfloat16 under autocast)
        weights = mask[..., None].to(hidden.dtype)
        pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def _item_vectors(self, rows, training: bool, generator=None):
        """Unit item vectors (len(rows), d); rows: catalogue indices (torch long, on ``device_``);
        the id-dropout mask is drawn from ``generator`` (on the CPU)."""
        import torch

        x = self._projection(self._encode(rows, training))
        if self.use_item_id:
            ids = torch.where(self._trained_items[rows], rows + 1, torch.zeros_like(rows))
            if training and self.id_dropout > 0:
                keep = (torch.rand(len(rows), generator=generator) >= self.id_dropout).to(rows.device)
                ids = torch.where(keep, ids, torch.zeros_like(ids))
            x = x + self._item_embedding(ids)
        return torch.nn.functional.normalize(x, dim=-1)

    # -- training ----------------------------------------------------------------------------------
    def _fit(self, context: FitContext) -> None:
        matrix, interactions = context.matrix, context.interactions
        import torch

        start = time.perf_counter()
        device = self.device_
        torch.manual_seed(self.random_state)
        generator = torch.Generator().manual_seed(self.random_state)      # a CPU generator on any device
        n_users, n_items = matrix.shape
        self.torch_model_ = self._load_encoder()
        hidden_size = int(self.torch_model_.config.hidden_size)
        # initialised on the CPU (the same weights on any device), then moved
        self._projection = torch.nn.Linear(hidden_size, self.embedding_dim)
        self._item_embedding = torch.nn.Embedding(n_items + 1, self.embedding_dim)
        self._user_embedding = torch.nn.Embedding(n_users, self.embedding_dim)
        for table in (self._item_embedding, self._user_embedding):
            torch.nn.init.normal_(table.weight, std=0.05)
        for module in (self._projection, self._item_embedding, self._user_embedding):
            module.to(device)
        counts = np.asarray((matrix > 0).sum(axis=0)).ravel()
        self._trained_items = torch.from_numpy(counts > 0).to(device)       # items with a training row
        log_q = torch.from_numpy(np.log(np.maximum(counts, 1) / counts.sum()).astype(np.float32)).to(device)
        users = torch.from_numpy(self.user_encoder_.transform(interactions[self.user_col]).astype(np.int64)).to(device)
        items = torch.from_numpy(self.item_encoder_.transform(interactions[self.item_col]).astype(np.int64)).to(device)
        heads = [*self._projection.parameters(), *self._user_embedding.parameters(),
                 *self._item_embedding.parameters()]
        optimisers = [torch.optim.Adam(heads, lr=self.learning_rate)]
        if self.trainable_layers:
            optimisers.append(torch.optim.AdamW(self._top.parameters(), lr=self.encoder_learning_rate))
        rng = np.random.default_rng(self.random_state)
        rows, culprits = [], {"learning_rate": self.learning_rate}
        if self.trainable_layers:           # (the loss of unit vectors is bounded: NaN, not growth, stops a fit)
            culprits["encoder_learning_rate"] = self.encoder_learning_rate
        towers = {"projection": self._projection, "users": self._user_embedding, "items": self._item_embedding,
                  "top": self._top}
        check = DivergenceCheck(type(self).__name__, self.epochs, culprits, [
            (f"{name}.{key}", p) for name, tower in towers.items() for key, p in tower.named_parameters()])
        stopper = BestEpoch(self.monitor, self.patience, towers)
        rank, world = process_group()             # several processes: module doc, "Several processes"
        step = _training_step(self, log_q)
        if world > 1:
            step = torch.nn.parallel.DistributedDataParallel(step)
        for epoch in range(self.epochs):
            synchronize(device)
            epoch_start, total, count = time.perf_counter(), 0.0, 0
            order = torch.from_numpy(rng.permutation(len(users))).to(device)      # drawn on the CPU
            batches = list(user_batches(len(order), self.batch_size))
            for batch in progress(batches, self.verbose and rank == 0, desc=f"epoch {epoch + 1}", unit="batch"):
                picked, first_row, scale = order[batch], 0, None
                if world > 1:
                    parts = equal_parts(picked, world)
                    if parts.shape[1] == 0:        # a last batch smaller than the world: skipped by every rank
                        continue
                    picked, first_row, scale = parts.reshape(-1), rank * parts.shape[1], 1.0 / parts.shape[1]
                local = picked[first_row:first_row + len(picked) // world]
                loss = step(users[local], items[local], items[picked], first_row, scale, generator)
                n = len(local)
                if scale is None:
                    value = check.batch(loss, epoch + 1)
                else:                              # every rank checks the same global mean
                    mean, n = global_mean(loss.detach() / scale, n)
                    value = check.batch(mean, epoch + 1)
                for optimiser in optimisers:
                    optimiser.zero_grad()
                loss.backward()
                for optimiser in optimisers:
                    optimiser.step()
                total, count = total + value * n, count + n
            synchronize(device)
            rows.append({"epoch": epoch + 1, "loss": total / count,
                         "seconds": time.perf_counter() - epoch_start})
            check.epoch(epoch + 1, rows[-1]["loss"])
            stop = False
            if context.validate is not None:
                self._freeze_tables()
                metrics = {k: float(v) for k, v in context.validate(self).items()}
                rows[-1].update({f"val_{k}": v for k, v in metrics.items()})
                stop = stopper.update(epoch + 1, metrics)
            if self.verbose and rank == 0:
                print_epoch(rows[-1])
            if stop:
                break
        stopper.restore()
        self.best_epoch_ = stopper.best_epoch or len(rows)
        self.history_ = pd.DataFrame(rows)
        self._freeze_tables()
        self.fit_seconds_ = time.perf_counter() - start

    def _freeze_tables(self) -> None:
        """Compute the unit user and item tables that ``score`` reads (eval mode, no grad, float32)
        on ``device_``, and keep them on the CPU."""
        import torch

        n_items = len(self.item_ids_)
        with torch.no_grad():
            every = torch.arange(n_items, device=self.device_)
            self._item_table = torch.cat([self._item_vectors(every[b], False)
                                          for b in user_batches(n_items, 512)]).cpu()
            self._user_table = torch.nn.functional.normalize(self._user_embedding.weight, dim=-1).cpu()

    # -- scoring -------------------------------------------------------------------------------------
    def item_embeddings(self) -> np.ndarray:
        """Unit vectors (n_items, embedding_dim) of every catalogue item, cold ones included."""
        return self._item_table.numpy()

    def _score(self, users: np.ndarray) -> np.ndarray:
        """Cosine scores (len(users), n_items) for training users."""
        if (np.asarray(users) < 0).any():
            raise ValueError(f"{type(self).__name__} scores only users seen at fit")
        return self._user_table.numpy()[users] @ self.item_embeddings().T

    def __getstate__(self) -> dict:
        """The state ``save`` and ``copy`` keep, every tensor on the CPU
        (``reclib.models.torch_device.cpu_state``); ``_top``, a view of the encoder's last layers,
        is rebuilt from the encoder by ``__setstate__``."""
        state = self.__dict__.copy()
        state.pop("_top", None)
        return cpu_state(state)

    def __setstate__(self, state: dict) -> None:
        """Back on the fit's GPU when it is visible, else on the CPU (``torch_device.restore_state``)."""
        self.__dict__.update(restore_state(state))
        if "torch_model_" in state:
            layers = self.torch_model_.encoder.layer
            self._top = layers[len(layers) - self.trainable_layers:]


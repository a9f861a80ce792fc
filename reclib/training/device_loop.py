r"""Device-resident training: the training contract's fast path for data that fits on one device.

``Trainer(device_data=True)`` sends this module a compiled Keras model and arrays ``(x, y)``;
it trains with the model's own loss (``compute_loss``: compiled losses, task losses and
regularisers alike) and the Trainer's callbacks, but feeds the steps itself:

1. **Data on the device once.** ``x`` and ``y`` are copied to the accelerator before the first
   epoch; each epoch only sends a shuffled permutation of the row indices (4 bytes a row, drawn
   on the host from ``random_state``, so the order is the same on every backend and machine) and
   every batch is gathered on the device by its slice of that permutation (the arrays are an
   argument of the compiled call, not constants inside it). Keras' ``model.fit`` on NumPy arrays
   copies every batch from host memory instead.
2. **Many steps per host call.** On JAX, ``steps_per_execution`` steps run inside one compiled
   program (``jax.lax.fori_loop`` over the model's ``compute_loss_and_updates`` and the
   optimizer's ``stateless_apply``), with the training state donated so it is updated in place;
   the host waits only once an epoch, for the losses. On PyTorch the steps are queued eagerly,
   with no per-step read-back to the host.
3. **Row-sparse embedding updates** (``sparse_embeddings=True``): the tables of the
   ``keras.layers.Embedding`` layers that read a model input directly are updated by row-wise
   Adagrad on the rows of the batch only (FBGEMM's "rowwise Adagrad": one accumulator per row,
   starting at 0, :math:`a_r \mathrel{+}= \overline{g_r^2}`,
   :math:`w_r \mathrel{-}= \eta\, g_r / (\sqrt{a_r} + \epsilon)`; an id read several times by a
   batch gets its summed gradient once),
   instead of a dense optimizer step over every row of every table. For a DCN-V2 with 26 tables
   of 100,000 x 128 float32 rows (1.33 GB), Adam reads and writes the table, both moments and
   the gradient each step (about 9 GB); the row-wise update touches ``26 x batch`` rows. The
   gradient itself is still formed densely by the autodiff of the gather (a zero-filled table
   plus a scatter-add); only the optimizer is sparse. An L2 regulariser on such a table then
   acts on the batch's rows only (lazy regularisation), and the optimizer's ``clipnorm`` and
   variable constraints do not apply to the tables. A table must be read only by its own input
   (not shared with another input, not tied to an output layer): rows it gets gradient from
   elsewhere would not be updated. The other variables keep the model's optimizer.
4. **Warm-up**: the learning rate(s) rise linearly over the first ``warmup_steps`` steps
   (:class:`LinearWarmup`), which large batches need (Goyal et al. 2017).

Not supported here (use ``model.fit``): loss scaling (``mixed_float16``; refused), sample weights,
callbacks that change the learning rate (the loop trains with a copy of the compiled optimizer,
so ``model.optimizer`` is not the one that trained), a progress bar (``verbose`` is ignored).
Callbacks may read and set weights at every epoch boundary.

Rows that do not fill the last batch of an epoch are skipped that epoch (each epoch reshuffles,
so every row is used across epochs): every step has the same shape and compiles once.
The history logs the mean training loss per epoch (``loss``); compiled training metrics are not
computed on this path (validation metrics are, through the callbacks).

It serves models trained from fixed arrays (the click models of ``build_ctr_model``, any Keras model
fed ``(x, y)``). The recommenders whose examples a host dataset re-draws every epoch (sampled
negatives, in-batch retrieval, sequence windows) keep ``model.fit``. TensorFlow keeps Keras'
``model.fit`` too (its ``tf.data`` pipeline already prefetches to the device).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from reclib.checks import ParameterTypeError, check_non_negative, check_positive, check_positive_int

__all__ = ["LinearWarmup", "DEVICE_BACKENDS", "direct_embedding_inputs", "fit_on_device", "rowwise_adagrad"]

DEVICE_BACKENDS = ("jax", "torch")
ADAGRAD_EPSILON = 1e-8
ADAGRAD_INITIAL = 0.0     # every row's starting accumulator, as FBGEMM's row-wise Adagrad


@keras.saving.register_keras_serializable(package="reclib")
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """``rate * min(1, (step + 1) / warmup_steps)``: a linear ramp to ``rate`` over
    ``warmup_steps`` optimizer steps, then constant (``warmup_steps=0``: constant)."""

    def __init__(self, rate: float, warmup_steps: int) -> None:
        check_positive(rate=rate)
        if not isinstance(warmup_steps, (int, np.integer)) or isinstance(warmup_steps, bool) or warmup_steps < 0:
            raise ParameterTypeError(f"warmup_steps must be an int >= 0, got {warmup_steps!r}")
        self.rate, self.warmup_steps = float(rate), int(warmup_steps)

    def __call__(self, step):
        if self.warmup_steps == 0:
            return keras.ops.convert_to_tensor(self.rate, "float32")
        step = keras.ops.cast(step, "float32")
        return self.rate * keras.ops.minimum(1.0, (step + 1.0) / self.warmup_steps)

    def get_config(self) -> dict:
        return {"rate": self.rate, "warmup_steps": self.warmup_steps}


def rowwise_adagrad(grads, accumulators, rate):
    """One row-wise Adagrad step for the rows a batch read: ``grads`` (r, d) and their
    ``accumulators`` (r,) -> ``(step (r, d), new accumulators (r,))`` with
    :math:`a' = a + \\overline{g^2}` (mean over the row) and :math:`\\text{step} = \\eta g / (\\sqrt{a'} + \\epsilon)`;
    the caller subtracts the step from the rows. ``keras.ops`` only, so every backend runs the same math."""
    ops = keras.ops
    grads = ops.cast(grads, "float32")
    accumulators = accumulators + ops.mean(grads * grads, axis=1)
    return rate * grads / (ops.sqrt(accumulators)[:, None] + ADAGRAD_EPSILON), accumulators


def direct_embedding_inputs(model: keras.Model) -> dict[int, str]:
    """``{position in model.trainable_variables: input name}`` for every ``keras.layers.Embedding``
    whose input is one of ``model.inputs`` (1-D integer ids): the tables a row-sparse update can
    serve, since the batch's column of that input lists the rows it reads."""
    inputs = {id(tensor): tensor.name for tensor in model.inputs if len(tensor.shape) == 1}
    position = {id(v): j for j, v in enumerate(model.trainable_variables)}
    tables = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.Embedding) and layer.trainable:
            try:
                source = layer.input
            except (AttributeError, ValueError):      # a layer of a subclassed model: no graph
                continue
            if id(source) in inputs and id(layer.embeddings) in position:
                tables[position[id(layer.embeddings)]] = inputs[id(source)]
    return tables


def _host_arrays(x: object, y: object) -> tuple[dict[str, np.ndarray], np.ndarray]:
    if not isinstance(x, dict):
        raise ParameterTypeError(f"device_data=True needs x as a dict of named input arrays, got {type(x).__name__}")
    xs = {name: np.array(values, order="C") for name, values in x.items()}     # copies: the caller's stay theirs
    ys = np.array(y, order="C")
    lengths = {len(v) for v in xs.values()} | {len(ys)}
    if len(lengths) != 1:
        raise ValueError(f"every input array and the labels need the same number of rows, got {sorted(lengths)}")
    return xs, ys


def fit_on_device(model: keras.Model, x: dict[str, np.ndarray], y: np.ndarray, epochs: int, batch_size: int,
                  steps_per_call: int, callbacks: Sequence[keras.callbacks.Callback], random_state: int,
                  sparse_embeddings: bool = False, sparse_learning_rate: float = 0.03,
                  warmup_steps: int = 0) -> dict[str, list[float]]:
    """Train a compiled, built ``model`` on ``(x, y)`` held on the device (module doc); return the
    history ``{"loss": [...], <logged validation metrics>: [...]}`` of the epochs run.

    x: ``{input name: (n, ...) array}``; y: ``(n,)`` labels; ``batch_size`` <= n.
    ``callbacks`` get ``on_train_begin``, ``on_epoch_begin``/``end`` (with ``logs["loss"]``) and
    ``on_train_end``; a callback that sets ``model.stop_training`` ends the run after that epoch.
    ``warmup_steps`` warms up the row-sparse rate; the other variables train at the compiled
    optimizer's rate or schedule (``Trainer`` compiles its warm-up into it).
    """
    backend = keras.backend.backend()
    if backend not in DEVICE_BACKENDS:
        raise ValueError(f"device_data=True runs on the {' and '.join(DEVICE_BACKENDS)} backends, not "
                         f"{backend!r} (KERAS_BACKEND); on TensorFlow use device_data=False")
    check_positive_int(epochs=epochs, batch_size=batch_size, steps_per_call=steps_per_call)
    check_positive(sparse_learning_rate=sparse_learning_rate)
    check_non_negative(warmup_steps=warmup_steps)
    xs, ys = _host_arrays(x, y)
    n = len(ys)
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} is larger than the {n} training rows")
    tables = direct_embedding_inputs(model) if sparse_embeddings else {}
    if sparse_embeddings and not tables:
        raise ValueError(f"sparse_embeddings=True, but model {model.name!r} has no Embedding layer that reads "
                         f"a model input directly")
    runner_class = _JaxRunner if backend == "jax" else _TorchRunner
    runner = runner_class(model, xs, ys, batch_size, tables, sparse_learning_rate, warmup_steps)
    history: dict[str, list[float]] = {}
    callbacks = list(callbacks)
    for callback in callbacks:      # called one by one with one logs dict: a callback's val_* reach the next
        callback.set_model(model)
        callback.set_params({"epochs": epochs, "steps": n // batch_size, "verbose": 0})
    rng = np.random.default_rng(random_state)
    steps = n // batch_size
    model.stop_training = False
    for callback in callbacks:
        callback.on_train_begin({})
    for epoch in range(epochs):
        for callback in callbacks:
            callback.on_epoch_begin(epoch, {})
        runner.read_back()          # weights a callback set before the epoch are the ones trained
        order = rng.permutation(n).astype(np.int32)
        try:
            loss = runner.epoch(order, steps, steps_per_call)
        except Exception as error:
            raise RuntimeError(f"epoch {epoch + 1} of {model.name!r} failed on the device ({error}); on JAX the "
                               f"training state was donated to the failed call, so rebuild the model before "
                               f"training it again") from error
        runner.write_back()
        logs = {"loss": loss}
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
        runner.read_back()
        for key, value in logs.items():
            history.setdefault(key, []).append(float(value))
        if model.stop_training:
            break
    for callback in callbacks:
        callback.on_train_end({})
    return history


class _Runner:
    """What both backends share: the model, its optimizer (a fresh copy of the compiled one, over
    the variables that are not row-sparse tables) and the split of the trainable variables."""

    def __init__(self, model, xs, ys, batch_size, tables, sparse_learning_rate, warmup_steps) -> None:
        if getattr(model, "optimizer", None) is None:
            raise ValueError(f"model {model.name!r} must be compiled (with an optimizer) before fit_on_device")
        if isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer):
            raise ValueError("device_data=True does not scale losses: use precision='mixed_bfloat16' or 'float32', "
                             "not 'mixed_float16' (its LossScaleOptimizer)")
        self.model, self.batch_size, self.tables = model, batch_size, tables
        self.sparse_learning_rate, self.warmup_steps = float(sparse_learning_rate), int(warmup_steps)
        self.trainable = list(model.trainable_variables)
        self.dense = [j for j in range(len(self.trainable)) if j not in tables]
        # a copy of the compiled optimizer (its learning rate or schedule, warm-up included: Trainer
        # compiles the warm-up into it) over the variables that are not row-sparse tables
        self.optimizer = type(model.optimizer).from_config(model.optimizer.get_config())
        self.optimizer.build([self.trainable[j] for j in self.dense])

    def sparse_rate(self, step):
        """The row-sparse learning rate at optimizer step ``step`` (warm-up included)."""
        return LinearWarmup(self.sparse_learning_rate, self.warmup_steps)(step)


class _JaxRunner(_Runner):
    def __init__(self, model, xs, ys, batch_size, tables, sparse_learning_rate, warmup_steps) -> None:
        import jax
        import jax.numpy as jnp

        super().__init__(model, xs, ys, batch_size, tables, sparse_learning_rate, warmup_steps)
        self.jax, self.jnp = jax, jnp
        # an argument of every compiled call, never a constant captured by it (JAX would copy
        # closed-over arrays into the program itself)
        self.data = ({k: jax.device_put(v) for k, v in xs.items()}, jax.device_put(ys), [])
        self.state = ([], [], [], [], [jnp.full((self.trainable[j].shape[0],), ADAGRAD_INITIAL, "float32")
                                       for j in tables], jnp.zeros((), "int32"))
        self.read_back()
        self.compiled = {}

    def _step(self, state, data, rows):
        jax, model = self.jax, self.model
        trainable, non_trainable, optimizer_vars, metric_vars, accumulators, step = state
        xs, ys, model_optimizer_values = data
        xb = {k: v[rows] for k, v in xs.items()}
        yb = ys[rows]

        def loss_of(values):
            loss, (_, _, new_non_trainable, new_metrics) = model.compute_loss_and_updates(
                values, non_trainable, metric_vars, xb, yb, None, training=True,
                optimizer_variables=model_optimizer_values)
            return loss, (new_non_trainable, new_metrics)

        (loss, (non_trainable, metric_vars)), grads = jax.value_and_grad(loss_of, has_aux=True)(trainable)
        dense_values, optimizer_vars = self.optimizer.stateless_apply(
            optimizer_vars, [grads[j] for j in self.dense], [trainable[j] for j in self.dense])
        trainable = list(trainable)
        for j, value in zip(self.dense, dense_values):
            trainable[j] = value
        rate = self.sparse_rate(step)
        accumulators = list(accumulators)
        for a, (j, name) in enumerate(self.tables.items()):
            ids = xb[name].astype("int32")      # an id read twice gets the same row twice: same values written
            step_rows, acc = rowwise_adagrad(grads[j][ids], accumulators[a][ids], rate)
            table = trainable[j]
            trainable[j] = table.at[ids].set(table[ids] - step_rows.astype(table.dtype))
            accumulators[a] = accumulators[a].at[ids].set(acc)
        return (trainable, non_trainable, optimizer_vars, metric_vars, accumulators, step + 1), loss

    def _program(self, n_steps: int):
        """The compiled call that runs ``n_steps`` steps from batch ``start`` of ``order``."""
        if n_steps not in self.compiled:
            jax, jnp, size = self.jax, self.jnp, self.batch_size

            def run(state, data, order, start):
                def body(i, carry):
                    state, losses = carry
                    rows = jax.lax.dynamic_slice_in_dim(order, (start + i) * size, size)
                    state, loss = self._step(state, data, rows)
                    return state, losses.at[i].set(loss.astype("float32"))
                return jax.lax.fori_loop(0, n_steps, body, (state, jnp.zeros((n_steps,), "float32")))

            self.compiled[n_steps] = jax.jit(run, donate_argnums=(0,))
        return self.compiled[n_steps]

    def epoch(self, order: np.ndarray, steps: int, steps_per_call: int) -> float:
        order = self.jax.device_put(order)
        losses = []
        for start in range(0, steps, steps_per_call):
            n_steps = min(steps_per_call, steps - start)
            self.state, chunk = self._program(n_steps)(self.state, self.data, order, self.jnp.int32(start))
            losses.append(chunk)
        return float(self.jnp.mean(self.jnp.concatenate(losses)))

    def _variable_groups(self) -> tuple:
        return (self.trainable, self.model.non_trainable_variables, self.optimizer.variables,
                self.model.metrics_variables)

    def read_back(self) -> None:
        """The state from the Keras variables: callbacks may have read them (an evaluation
        donates and replaces their buffers) or written them (restoring the best weights)."""
        *_, accumulators, step = self.state
        self.state = tuple([v.value for v in group] for group in self._variable_groups()) + (accumulators, step)
        # the compiled optimizer's values, which compute_loss_and_updates reads for loss scaling
        self.data = self.data[:2] + ([v.value for v in self.model.optimizer.variables],)

    def write_back(self) -> None:
        trainable, non_trainable, optimizer_vars, metric_vars, _, _ = self.state
        for variables, values in zip(self._variable_groups(), (trainable, non_trainable, optimizer_vars, metric_vars)):
            for variable, value in zip(variables, values):
                variable.assign(value)


class _TorchRunner(_Runner):
    def __init__(self, model, xs, ys, batch_size, tables, sparse_learning_rate, warmup_steps) -> None:
        import torch

        super().__init__(model, xs, ys, batch_size, tables, sparse_learning_rate, warmup_steps)
        self.torch = torch
        device = self.trainable[0].value.device
        self.xs = {k: torch.as_tensor(v).to(device) for k, v in xs.items()}
        self.ys = torch.as_tensor(ys).to(device)
        self.accumulators = [torch.full((self.trainable[j].shape[0],), ADAGRAD_INITIAL, device=device)
                             for j in tables]
        self.step = 0

    def _train_step(self, rows) -> object:
        torch, model = self.torch, self.model
        xb = {k: v[rows] for k, v in self.xs.items()}
        yb = self.ys[rows]
        model.zero_grad()
        y_pred = model(xb, training=True)
        loss = model.compute_loss(x=xb, y=yb, y_pred=y_pred, training=True)
        loss.backward()
        with torch.no_grad():
            dense = [self.trainable[j] for j in self.dense]
            self.optimizer.apply([v.value.grad for v in dense], dense)
            rate = self.sparse_rate(self.step)
            for a, (j, name) in enumerate(self.tables.items()):
                table = self.trainable[j].value
                ids = xb[name].long()           # an id read twice gets the same row twice: same values written
                step_rows, acc = rowwise_adagrad(table.grad[ids], self.accumulators[a][ids], rate)
                self.accumulators[a].index_copy_(0, ids, acc)
                table.index_copy_(0, ids, table[ids] - step_rows.to(table.dtype))
        self.step += 1
        return loss.detach()

    def epoch(self, order: np.ndarray, steps: int, steps_per_call: int) -> float:
        order = self.torch.as_tensor(order).to(self.ys.device).long()
        size = self.batch_size
        losses = [self._train_step(order[s * size:(s + 1) * size]) for s in range(steps)]
        return float(self.torch.stack(losses).float().mean())

    def write_back(self) -> None:
        """Nothing to do: PyTorch updates the Keras variables in place."""

    def read_back(self) -> None:
        """Nothing to do: the training step reads the Keras variables themselves."""

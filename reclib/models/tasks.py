r"""Tasks: the losses (and the metrics that go with them) of the Keras models.

A model computes representations (user and item vectors, or scores); a task turns them into a
loss. A model that trains on a task overrides Keras 3's ``Model.compute_loss(x, y, y_pred,
sample_weight, training)`` and delegates to the task (:func:`total_loss` adds the model's
regularisation losses, as Keras does), so the input pipelines yield inputs and, only where they
are data, labels. One task serves any tower: as in TensorFlow Recommenders, the same
:class:`RetrievalTask` trains every (query tower, candidate tower) pair.

- :class:`RetrievalTask`: in-batch softmax over (B user vectors, B item vectors), temperature
  :math:`\tau`, log-Q correction :math:`\ell_{rj} = u_r^\top v_j/\tau - \log q_j`, accidental-hit
  removal (column :math:`j \ne r` holding row :math:`r`'s item gets a large negative logit),
  optional extra (hard) negatives and a hook to gather candidates across replicas.
- :class:`PointwiseTask`: binary cross-entropy on logits (also, as ``compiled_loss()``, the loss the
  CTR models of :mod:`reclib.models.interaction` compile).
- :class:`PairwiseTask`: BPR, :math:`-\log\sigma(s_{ui} - s_{uj})`.
- :class:`ShortlistTask`: softmax over each shortlist of candidates (a reranker's listwise loss).
- :class:`NextItemTask`: softmax over the whole catalogue, or sampled softmax with ``n_sampled``
  uniform or log-uniform negatives and the log-Q correction, or gSASRec's calibrated binary
  cross-entropy (gBCE) on sampled negatives.

Keras layers and ``keras.ops`` only: the tasks run on TensorFlow, JAX and PyTorch. Logits are
computed in float32 whatever the precision policy (so the large negative mask stays finite).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import keras
from keras import ops

from reclib.checks import ParameterTypeError, check_bool, check_choice, check_positive, check_positive_int, check_probability
from reclib.models.softmax_logits import MASK_LOGIT, in_batch_softmax_logits

__all__ = ["NextItemTask", "check_next_item_loss", "PairwiseTask", "PointwiseTask", "RetrievalTask", "ShortlistTask",
           "total_loss"]


def _summed(loss):
    """One additional loss as ``Model.compute_loss`` adds it: summed, cast to ``floatx`` if not a
    float (the public-ops version of Keras' own aggregation)."""
    if not keras.backend.is_float_dtype(loss.dtype):
        loss = ops.cast(loss, keras.config.floatx())
    return ops.sum(loss)


def total_loss(model: keras.Model, task_loss):
    """``task_loss`` plus the model's regularisation losses (``model.losses``), summed as Keras'
    own ``Model.compute_loss`` does (so the numbers are those of a compiled loss)."""
    losses = [task_loss, *(_summed(loss) for loss in model.losses)]
    return losses[0] if len(losses) == 1 else ops.sum(losses)


def _check_top_k(top_k: object) -> tuple[int, ...]:
    if not isinstance(top_k, (list, tuple)):
        raise ParameterTypeError(f"top_k must be a list or tuple of positive ints, got {top_k!r}")
    for j, k in enumerate(top_k):
        check_positive_int(**{f"top_k[{j}]": k})
    return tuple(int(k) for k in top_k)


class _Task(keras.layers.Layer):
    """Base of the tasks: a weightless layer holding the metrics it updates in :meth:`loss`.

    Metrics assigned to a layer are reported by ``Model.fit`` (``history``) under their names.
    """

    def __init__(self, top_k: Sequence[int] = (), **kwargs) -> None:
        self.top_k = _check_top_k(top_k)
        super().__init__(**kwargs)
        self.top_k_metrics = [keras.metrics.SparseTopKCategoricalAccuracy(k, name=f"top_{k}_accuracy")
                              for k in self.top_k]

    def _update_metrics(self, labels, logits, sample_weight=None) -> None:
        for metric in self.top_k_metrics:
            metric.update_state(labels, logits, sample_weight=sample_weight)

    def call(self, *args, **kwargs):
        return self.loss(*args, **kwargs)

    def get_config(self) -> dict:
        return {**super().get_config(), "top_k": list(self.top_k)}


def _identity(x):
    return x


@keras.saving.register_keras_serializable(package="reclib")
class RetrievalTask(_Task):
    r"""In-batch softmax over (user vectors, item vectors) with the corrections of Yi et al. 2019.

    Row :math:`r` of a batch is the positive pair :math:`(u_r, i_r)`; its logits are
    :math:`u_r^\top v_j / \tau - \log q_j` over the batch's items (and any extra negatives), the
    positive on the diagonal; the loss is the mean sparse cross-entropy.

    Parameters
    ----------
    - temperature: :math:`\tau`, a finite number > 0.
    - remove_accidental_hits: mask column :math:`j \ne r` when it holds row :math:`r`'s item
      (it is a positive, not a negative), with a logit of ``-1e9``.
    - gather_candidates: the **cross-replica hook**: a function mapping a per-replica
      candidate tensor (B, ...) (item vectors, then item ids, then log q) to the global batch
      (R·B, ...) gathered over the R replicas, *this replica's rows first* (so the positive
      of local row r stays column r). Identity by default (one device). On TensorFlow e.g.
      ``lambda t: tf.distribute.get_replica_context().all_gather(t, 0)`` with the local shard
      rotated to the front; on JAX a ``jax.lax.all_gather`` inside ``shard_map``.
    - top_k: in-batch top-K accuracy metrics to report (``top_{k}_accuracy``); none by default.
    """

    def __init__(self, temperature: float = 0.05, remove_accidental_hits: bool = True,
                 gather_candidates: Callable | None = None, top_k: Sequence[int] = (), **kwargs) -> None:
        check_positive(temperature=temperature)
        check_bool(remove_accidental_hits=remove_accidental_hits)
        if gather_candidates is not None and not callable(gather_candidates):
            raise ParameterTypeError(f"gather_candidates must be a function tensor -> tensor or None, "
                                     f"got {type(gather_candidates).__name__}")
        super().__init__(top_k=top_k, **kwargs)
        self.temperature, self.remove_accidental_hits = float(temperature), remove_accidental_hits
        self.gather_candidates = gather_candidates or _identity

    def logits(self, user_vectors, item_vectors, item_ids=None, log_q=None, extra_item_vectors=None,
               extra_item_ids=None, extra_log_q=None):
        """Logits (B, C): B users against the C = B (gathered: R·B) batch items, then the extra ones.

        user_vectors, item_vectors: (B, d); item_ids: (B,) ints (for accidental hits, ``None`` to
        skip); log_q: (B,) log sampling probability of each item, ``None`` for no correction;
        extra_item_vectors: (H, d) hard negatives shared by every row, with optional
        extra_item_ids (H,) and extra_log_q (H,).
        """
        items = self.gather_candidates(item_vectors)
        ids = None if item_ids is None else self.gather_candidates(item_ids)
        lq = None if log_q is None else self.gather_candidates(log_q)
        if extra_item_vectors is not None:
            items = ops.concatenate([items, ops.cast(extra_item_vectors, items.dtype)], axis=0)
            if ids is not None:
                extra = extra_item_ids if extra_item_ids is not None else ops.full(
                    (ops.shape(extra_item_vectors)[0],), -1, ids.dtype)
                ids = ops.concatenate([ids, ops.cast(extra, ids.dtype)], axis=0)
            if lq is not None:
                extra = extra_log_q if extra_log_q is not None else ops.zeros((ops.shape(extra_item_vectors)[0],))
                lq = ops.concatenate([ops.cast(lq, "float32"), ops.cast(extra, "float32")], axis=0)
        masked = ids is not None and self.remove_accidental_hits
        return in_batch_softmax_logits(ops, user_vectors, items, self.temperature,
                                       row_ids=item_ids if masked else None,
                                       column_ids=ids if masked else None, log_q=lq)

    def loss(self, user_vectors, item_vectors, item_ids=None, log_q=None, sample_weight=None, **extra):
        """Mean in-batch softmax cross-entropy (scalar); ``extra``: the ``extra_*`` of :meth:`logits`."""
        logits = self.logits(user_vectors, item_vectors, item_ids, log_q, **extra)
        labels = ops.arange(ops.shape(logits)[0], dtype="int32")
        self._update_metrics(labels, logits, sample_weight)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits, sample_weight)

    def get_config(self) -> dict:
        return {**super().get_config(), "temperature": self.temperature,
                "remove_accidental_hits": self.remove_accidental_hits}


def _binary_cross_entropy(labels, logits, sample_weight=None):
    """Mean binary cross-entropy of logits (b,) (weighted by sample_weight (b,), if given)."""
    loss = PointwiseTask.compiled_loss()
    if sample_weight is None:      # Keras averages over the last axis: the mean over the batch
        return loss(labels, logits)
    return loss(ops.expand_dims(labels, -1), ops.expand_dims(logits, -1), sample_weight)


@keras.saving.register_keras_serializable(package="reclib")
class PointwiseTask(_Task):
    """Binary cross-entropy on logits: ``loss(labels (b,) in [0, 1], logits (b,), sample_weight)``.

    ``metrics``: extra Keras metrics updated with (labels, sigmoid(logits)), e.g. ``AUC``.
    """

    def __init__(self, metrics: Sequence[keras.metrics.Metric] = (), **kwargs) -> None:
        super().__init__(**kwargs)
        self.probability_metrics = list(metrics)

    @staticmethod
    def compiled_loss() -> keras.losses.Loss:
        """The task's loss as a Keras loss for ``Model.compile(loss=...)``: binary cross-entropy
        of labels (b,) against logits (b,), the number :meth:`loss` returns. The CTR models
        (``reclib.models.interaction``) train with it through ``Model.fit(x, labels)``, where
        labels are data rather than something the model derives."""
        return keras.losses.BinaryCrossentropy(from_logits=True)

    def loss(self, labels, logits, sample_weight=None):
        for metric in self.probability_metrics:
            metric.update_state(labels, ops.sigmoid(logits), sample_weight=sample_weight)
        return _binary_cross_entropy(labels, logits, sample_weight)


@keras.saving.register_keras_serializable(package="reclib")
class PairwiseTask(_Task):
    r"""BPR: the mean of :math:`-\log\sigma(s^+ - s^-)` over (positive, negative) score pairs (b,).

    Computed as the binary cross-entropy of the difference against a label of 1 (the same
    number, evaluated stably).
    """

    def loss(self, positive_scores, negative_scores, sample_weight=None):
        difference = positive_scores - negative_scores
        return _binary_cross_entropy(ops.ones_like(difference), difference, sample_weight)


@keras.saving.register_keras_serializable(package="reclib")
class ShortlistTask(_Task):
    r"""Listwise softmax over shortlists: the mean over lists of
    :math:`-\log \frac{e^{s_{t}}}{\sum_{j \le n} e^{s_j}}`, ``loss(targets, scores (b, n),
    sample_weight)`` with ``targets`` the position (b,) of the true next item in each list of n
    candidates, or a (b, n) 0/1 relevance of every entry when a list has several relevant items:
    then the mean of :math:`-\log p_j` over the relevant j (cross-entropy against the uniform
    distribution on them, ListNet's top-one loss). What a reranker learns: :mod:`reclib.models.reranker`."""

    def loss(self, targets, scores, sample_weight=None):
        scores = ops.cast(scores, "float32")
        if tuple(targets.shape) == tuple(scores.shape) and scores.shape[-1] != 1:     # (b, n) relevance
            if self.top_k_metrics:
                raise ValueError("ShortlistTask: top_k metrics need target positions (b,), not a (b, n) relevance")
            relevance = ops.cast(targets, "float32")
            spread = relevance / ops.maximum(ops.sum(relevance, axis=1, keepdims=True), 1.0)
            per_list = keras.losses.categorical_crossentropy(spread, scores, from_logits=True)
        else:
            self._update_metrics(targets, scores, sample_weight)
            per_list = keras.losses.sparse_categorical_crossentropy(targets, scores, from_logits=True)
        if sample_weight is None:
            return ops.mean(per_list)
        return ops.sum(per_list * sample_weight) / ops.sum(sample_weight)


@keras.saving.register_keras_serializable(package="reclib")
def check_next_item_loss(loss: object, n_sampled: int | None, calibration: object, sampler: str = "uniform") -> None:
    """The checks of :class:`NextItemTask`'s ``loss`` and ``calibration`` (also run by the sequential
    recommenders at construction, before any work): ``loss`` is ``"softmax"`` or ``"gbce"``,
    ``calibration`` in [0, 1], and gBCE needs ``n_sampled`` negatives from the uniform sampler."""
    check_choice("loss", loss, ("softmax", "gbce"))
    check_probability(calibration=calibration)
    if loss == "gbce" and (n_sampled is None or sampler != "uniform"):
        raise ValueError(f"loss='gbce' needs n_sampled negatives from the uniform sampler, got "
                         f"n_sampled={n_sampled!r}, sampler={sampler!r}")


class NextItemTask(_Task):
    r"""Softmax over the catalogue for next-item prediction (the sequential models' task).

    ``loss(query_vectors (b, d), targets (b,) item indices, item_table (N, d))``:

    - ``n_sampled=None``: full softmax, logits :math:`q_r^\top e_j / \tau` over all N items.
    - ``n_sampled=m``: sampled softmax. m negatives are drawn (shared by the batch, with
      replacement) from ``sampler`` — ``"uniform"`` :math:`P(j) = 1/N` or ``"log_uniform"``
      (Zipfian over indices sorted by popularity) :math:`P(j) = \log\frac{j+2}{j+1}/\log(N+1)`;
      every logit (the target's and the negatives') gets :math:`-\log(m P(j))` subtracted (the
      log-Q correction, as ``tf.nn.sampled_softmax_loss``), and a negative equal to the row's
      target is masked (accidental hit). Then :math:`\sum_s e^{\ell_s}` over the negatives is an
      unbiased estimate of the full softmax's normaliser.

    - ``loss="gbce"`` (gSASRec, Petrov & Macdonald 2023; needs ``n_sampled`` and the uniform
      sampler): m negatives drawn for every row, as gSASRec draws them (:meth:`row_logits`; they
      are read from the full (b, N) logits, so a step costs what the full softmax costs); binary
      cross-entropy on the target and the m negatives, with the target's
      probability raised to :math:`\beta = \alpha\,(t(1 - 1/\alpha) + 1/\alpha)`,
      :math:`\alpha = m / (N - 1)`, t = ``calibration``:
      :math:`\big(\beta\,\mathrm{softplus}(-s^+) + \sum_j \mathrm{softplus}(s^-_j)\big) / (1 + m)`
      per row, on uncorrected logits (accidental hits masked). Plain BCE with few negatives
      (t = 0, :math:`\beta = 1`) makes the model over-confident: its probabilities estimate
      :math:`P(\text{positive})` against m negatives, not against the N - 1 items it must beat;
      t = 1 (:math:`\beta = \alpha`) calibrates them back.
      Every logit enters shifted by :math:`c^* = \log(\beta / m)` (:meth:`gbce_shift`), the
      minimiser of the per-row loss when all logits are equal:
      :math:`\tfrac{d}{dc}\big(\beta\,\mathrm{softplus}(-c) + m\,\mathrm{softplus}(c)\big) = 0
      \Leftrightarrow e^c = \beta / m` (the model's probability of item j is :math:`\sigma(s_j + c^*)`).
      A shift common to all items changes no ranking; without
      it, a sequence encoder's first steps lower every logit at once through one vector that all
      histories share, and its output stays the same for every history (SASRec on ML-100K sat at
      popularity's level: ``python -m experiments.gbce_collapse``).

    temperature > 0; seed: of the negative sampler (a ``keras.random.SeedGenerator``).
    """

    def __init__(self, n_sampled: int | None = None, sampler: str = "uniform", temperature: float = 1.0,
                 seed: int = 0, top_k: Sequence[int] = (), loss: str = "softmax", calibration: float = 0.75,
                 **kwargs) -> None:
        if n_sampled is not None:
            check_positive_int(n_sampled=n_sampled)
        check_choice("sampler", sampler, ("uniform", "log_uniform"))
        check_positive(temperature=temperature)
        check_next_item_loss(loss, n_sampled, calibration, sampler)
        super().__init__(top_k=top_k, **kwargs)
        self.n_sampled, self.sampler, self.temperature, self.seed = n_sampled, sampler, float(temperature), seed
        self.loss_name, self.calibration = loss, float(calibration)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def log_proposal(self, ids, n_items: int):
        """log P(j) of the sampler for item indices ``ids`` (any shape) in a catalogue of n_items."""
        ids = ops.cast(ids, "float32")
        if self.sampler == "uniform":
            return ops.full_like(ids, -math.log(n_items))
        return ops.log(ops.log((ids + 2.0) / (ids + 1.0)) / math.log(n_items + 1.0))

    def sample(self, n_items: int):
        """``n_sampled`` item indices (m,) drawn from the proposal."""
        if self.sampler == "uniform":
            return keras.random.randint((self.n_sampled,), 0, n_items, seed=self.seed_generator)
        u = keras.random.uniform((self.n_sampled,), seed=self.seed_generator)
        ids = ops.floor(ops.exp(u * math.log(n_items + 1.0))) - 1.0        # inverse CDF of the Zipfian
        return ops.cast(ops.clip(ids, 0, n_items - 1), "int32")

    def sampled_logits(self, query_vectors, targets, item_table, sampled=None, correct: bool = True):
        """(b, 1 + m) logits, the target in column 0, and the ids (m,) drawn once for the whole
        batch; log-Q corrected unless ``correct=False`` (raw logits); accidental hits masked either way."""
        n_items = int(ops.shape(item_table)[0])
        sampled = self.sample(n_items) if sampled is None else ops.cast(sampled, "int32")
        targets = ops.cast(targets, "int32")
        queries, table = ops.cast(query_vectors, "float32"), ops.cast(item_table, "float32")
        true = ops.sum(queries * ops.take(table, targets, axis=0), axis=-1) / self.temperature
        negatives = ops.matmul(queries, ops.transpose(ops.take(table, sampled, axis=0))) / self.temperature
        if correct:
            log_m = math.log(self.n_sampled)
            true = true - (self.log_proposal(targets, n_items) + log_m)
            negatives = negatives - ops.expand_dims(self.log_proposal(sampled, n_items) + log_m, 0)
        hit = ops.equal(ops.expand_dims(targets, 1), ops.expand_dims(sampled, 0))
        negatives = ops.where(hit, ops.full_like(negatives, MASK_LOGIT), negatives)
        return ops.concatenate([ops.expand_dims(true, 1), negatives], axis=1), sampled

    def catalogue_logits(self, query_vectors, item_table):
        """(b, N) logits of every row against every item: :math:`q_r^\top e_j / \tau`, in float32."""
        return ops.matmul(ops.cast(query_vectors, "float32"),
                          ops.transpose(ops.cast(item_table, "float32"))) / self.temperature

    def row_logits(self, query_vectors, targets, item_table, sampled=None):
        """(b, 1 + m) uncorrected logits, the target in column 0, and the ids (b, m) of m uniform
        negatives drawn for every row (gBCE's draw; accidental hits masked)."""
        n_items = int(ops.shape(item_table)[0])
        logits = self.catalogue_logits(query_vectors, item_table)
        if sampled is None:
            sampled = keras.random.randint((ops.shape(logits)[0], self.n_sampled), 0, n_items, seed=self.seed_generator)
        sampled = ops.cast(sampled, "int32")
        targets = ops.expand_dims(ops.cast(targets, "int32"), 1)
        negatives = ops.take_along_axis(logits, sampled, axis=1)
        negatives = ops.where(ops.equal(targets, sampled), ops.full_like(negatives, MASK_LOGIT), negatives)
        return ops.concatenate([ops.take_along_axis(logits, targets, axis=1), negatives], axis=1), sampled

    def gbce_beta(self, n_items: int) -> float:
        """gSASRec's power on the target probability (class doc) for a catalogue of n_items."""
        if self.n_sampled >= n_items - 1:
            raise ValueError(f"loss='gbce' needs fewer negatives than the catalogue's other items: "
                             f"n_sampled={self.n_sampled} for {n_items} items (alpha = m / (N - 1) must be < 1)")
        alpha = self.n_sampled / (n_items - 1)
        return alpha * (self.calibration * (1.0 - 1.0 / alpha) + 1.0 / alpha)

    def gbce_shift(self, n_items: int) -> float:
        """:math:`\log(\beta / m)`, added to every gBCE logit (class doc) for a catalogue of n_items."""
        return math.log(self.gbce_beta(n_items) / self.n_sampled)

    def loss(self, query_vectors, targets, item_table, sample_weight=None):
        """Mean softmax cross-entropy (or gBCE) of the targets (scalar), weighted by
        ``sample_weight`` (b,) and divided by b, as Keras' ``sum_over_batch_size``."""
        if self.loss_name == "gbce":
            n_items = int(ops.shape(item_table)[0])
            logits, _ = self.row_logits(query_vectors, targets, item_table)
            logits = logits + self.gbce_shift(n_items)
            labels = ops.zeros((ops.shape(logits)[0],), "int32")
            self._update_metrics(labels, logits, sample_weight)
            beta = self.gbce_beta(n_items)
            per_row = beta * ops.softplus(-logits[:, 0]) + ops.sum(ops.softplus(logits[:, 1:]), axis=1)
            per_row = per_row / float(1 + self.n_sampled)
            if sample_weight is not None:
                per_row = per_row * ops.cast(sample_weight, per_row.dtype)
            return ops.sum(per_row) / ops.cast(ops.shape(per_row)[0], per_row.dtype)
        if self.n_sampled is None:
            logits = self.catalogue_logits(query_vectors, item_table)
            labels = ops.cast(targets, "int32")
        else:
            logits, _ = self.sampled_logits(query_vectors, targets, item_table)
            labels = ops.zeros((ops.shape(logits)[0],), "int32")
        self._update_metrics(labels, logits, sample_weight)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits, sample_weight)

    def get_config(self) -> dict:
        return {**super().get_config(), "n_sampled": self.n_sampled, "sampler": self.sampler,
                "temperature": self.temperature, "seed": self.seed, "loss": self.loss_name,
                "calibration": self.calibration}

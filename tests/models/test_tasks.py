"""The tasks of reclib.models.tasks: each loss against NumPy on a tiny batch, accidental hits,
log-Q, extra negatives, the cross-replica hook, and sampled softmax on toys."""

import functools

import keras
import numpy as np
import pytest
from keras import ops

from reclib.checks import ParameterTypeError
from reclib.models.tasks import NextItemTask, PairwiseTask, PointwiseTask, RetrievalTask
from reclib.training import Trainer

U = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], np.float32)
V = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], np.float32)
ITEMS = np.array([5, 7, 5])                       # rows 0 and 2 share item 5: an accidental hit
LOG_Q = np.log(np.array([0.5, 0.25, 0.5], np.float32))


def np_softmax_ce(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    return np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(labels)), labels]


def old_in_batch_logits(user_vectors, item_vectors, item_ids, log_q=None, temperature=0.05):
    """``reclib.models.retrieval.in_batch_logits`` as it was before the tasks (the reference)."""
    logits = ops.matmul(user_vectors, ops.transpose(item_vectors)) / temperature
    if log_q is not None:
        logits = logits - ops.expand_dims(ops.cast(log_q, logits.dtype), 0)
    same_item = ops.equal(ops.expand_dims(item_ids, 1), ops.expand_dims(item_ids, 0))
    off_diagonal = ops.logical_not(ops.cast(ops.eye(ops.shape(logits)[0]), "bool"))
    return ops.where(ops.logical_and(same_item, off_diagonal), ops.full_like(logits, -1e9), logits)


def test_retrieval_task_equals_the_old_in_batch_logits_and_numpy():
    """The worked example: 3 users, items 5, 7, 5 (an accidental hit), log-Q, temperature 0.5."""
    task = RetrievalTask(temperature=0.5)
    logits = ops.convert_to_numpy(task.logits(U, V, ITEMS, LOG_Q))
    loss = float(task.loss(U, V, ITEMS, LOG_Q))
    old = old_in_batch_logits(U, V, ITEMS, LOG_Q, temperature=0.5)
    old_loss = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(np.arange(3), old))
    np.testing.assert_array_equal(logits, ops.convert_to_numpy(old))          # bit-identical
    assert loss == old_loss
    by_hand = (U @ V.T) / 0.5 - LOG_Q[None, :]
    by_hand[0, 2] = by_hand[2, 0] = -1e9
    np.testing.assert_allclose(logits, by_hand, rtol=1e-6)
    assert loss == pytest.approx(np_softmax_ce(by_hand, np.arange(3)).mean(), rel=1e-6)


def test_accidental_hits_are_masked_only_off_the_diagonal():
    masked = ops.convert_to_numpy(RetrievalTask(0.5).logits(U, V, ITEMS))
    kept = ops.convert_to_numpy(RetrievalTask(0.5, remove_accidental_hits=False).logits(U, V, ITEMS))
    assert masked[0, 2] == masked[2, 0] == -1e9 and masked[0, 0] == kept[0, 0] == 2.0
    mask = np.ones((3, 3), bool)
    mask[0, 2] = mask[2, 0] = False
    np.testing.assert_array_equal(masked[mask], kept[mask])
    # a masked column carries no softmax weight: the loss equals the softmax over the rest
    loss = float(RetrievalTask(0.5).loss(U, V, ITEMS))
    rows = [np_softmax_ce(kept[[r]][:, mask[r]], np.array([r - (r == 2)]))[0] for r in range(3)]
    assert loss == pytest.approx(np.mean(rows), rel=1e-6)


def test_log_q_raises_rarer_items_by_the_log_ratio():
    task = RetrievalTask(0.5)
    corrected = ops.convert_to_numpy(task.logits(U, V, ITEMS, LOG_Q))
    plain = ops.convert_to_numpy(task.logits(U, V, ITEMS))
    shift = (corrected[1, 1] - corrected[1, 0]) - (plain[1, 1] - plain[1, 0])
    assert shift == pytest.approx(np.log(0.5 / 0.25), abs=1e-6)


def test_extra_hard_negatives_add_columns_and_are_masked_when_positive():
    extra = np.array([[0.0, -1.0], [0.8, 0.6]], np.float32)
    task = RetrievalTask(0.5)
    logits = ops.convert_to_numpy(task.logits(U, V, ITEMS, LOG_Q, extra_item_vectors=extra,
                                              extra_item_ids=np.array([9, 7]),
                                              extra_log_q=np.log(np.array([0.1, 0.25], np.float32))))
    full_v = np.vstack([V, extra])
    full_q = np.r_[LOG_Q, np.log(np.float32(0.1)), np.log(np.float32(0.25))]
    by_hand = (U @ full_v.T) / 0.5 - full_q[None, :]
    by_hand[0, 2] = by_hand[2, 0] = -1e9
    by_hand[1, 4] = -1e9                                  # the extra negative 7 is row 1's positive
    np.testing.assert_allclose(logits, by_hand, rtol=1e-6)
    loss = float(task.loss(U, V, ITEMS, LOG_Q, extra_item_vectors=extra, extra_item_ids=np.array([9, 7]),
                           extra_log_q=np.log(np.array([0.1, 0.25], np.float32))))
    assert loss == pytest.approx(np_softmax_ce(by_hand, np.arange(3)).mean(), rel=1e-6)


def test_cross_replica_hook_gathers_candidates_with_local_rows_first():
    other_v = np.array([[0.0, 1.0], [1.0, 0.0], [0.6, 0.8]], np.float32)   # "another replica's" batch
    other_ids, other_log_q = np.array([8, 5, 9]), np.log(np.array([0.1, 0.5, 0.1], np.float32))

    def gather(t):                                        # this replica's rows first, then the other's
        extra = other_v if len(ops.shape(t)) == 2 else other_ids if "int" in str(t.dtype) else other_log_q
        return ops.concatenate([t, ops.convert_to_tensor(extra, dtype=t.dtype)], axis=0)

    task = RetrievalTask(0.5, gather_candidates=gather)
    logits = ops.convert_to_numpy(task.logits(U, V, ITEMS, LOG_Q))
    by_hand = (U @ np.vstack([V, other_v]).T) / 0.5 - np.r_[LOG_Q, other_log_q][None, :]
    by_hand[0, 2] = by_hand[2, 0] = -1e9
    by_hand[0, 4] = by_hand[2, 4] = -1e9                  # the other replica's item 5
    np.testing.assert_allclose(logits, by_hand, rtol=1e-6)
    assert float(task.loss(U, V, ITEMS, LOG_Q)) == pytest.approx(np_softmax_ce(by_hand, np.arange(3)).mean(),
                                                                  rel=1e-6)


def test_retrieval_task_reports_in_batch_top_k_accuracy():
    task = RetrievalTask(0.5, top_k=(1,))
    task.loss(U, V, ITEMS, LOG_Q)
    by_hand = (U @ V.T) / 0.5 - LOG_Q[None, :]
    by_hand[0, 2] = by_hand[2, 0] = -1e9
    expected = np.mean(by_hand.argmax(axis=1) == np.arange(3))
    assert float(task.top_k_metrics[0].result()) == pytest.approx(expected)


def test_pointwise_task_is_binary_cross_entropy_on_logits():
    labels, logits = np.array([1.0, 0.0, 1.0, 0.0], np.float32), np.array([2.0, -1.0, -0.5, 3.0], np.float32)
    weights = np.array([1.0, 2.0, 0.5, 1.0], np.float32)
    p = 1 / (1 + np.exp(-logits))
    ce = -(labels * np.log(p) + (1 - labels) * np.log(1 - p))
    assert float(PointwiseTask().loss(labels, logits)) == pytest.approx(ce.mean(), rel=1e-5)
    assert float(PointwiseTask().loss(labels, logits, weights)) == pytest.approx((ce * weights).mean(), rel=1e-5)
    auc = keras.metrics.AUC(name="auc")
    PointwiseTask(metrics=[auc]).loss(labels, logits)
    assert float(auc.result()) == pytest.approx(0.5, abs=0.05)   # 2 of the 4 (pos, neg) pairs in order


def test_pairwise_task_is_bpr():
    positive, negative = np.array([2.0, 0.0, -1.0], np.float32), np.array([1.0, 0.5, 2.0], np.float32)
    bpr = -np.log(1 / (1 + np.exp(-(positive - negative))))
    assert float(PairwiseTask().loss(positive, negative)) == pytest.approx(bpr.mean(), rel=1e-5)


def test_next_item_full_and_sampled_softmax_against_numpy():
    rng = np.random.default_rng(0)
    queries, table = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(6, 3)).astype(np.float32)
    targets = np.array([0, 5, 2, 2])
    full = queries @ table.T / 0.5
    assert float(NextItemTask(temperature=0.5).loss(queries, targets, table)) == pytest.approx(
        np_softmax_ce(full, targets).mean(), rel=1e-5)
    task = NextItemTask(n_sampled=3, sampler="log_uniform", temperature=0.5)
    sampled = np.array([1, 2, 4])
    logits, _ = task.sampled_logits(queries, targets, table, sampled=sampled)
    p = np.log((np.arange(6) + 2) / (np.arange(6) + 1)) / np.log(7)
    by_hand = np.c_[full[np.arange(4), targets] - np.log(3 * p[targets]), full[:, sampled] - np.log(3 * p[sampled])]
    by_hand[2:, 2] = -1e9                                 # rows 2 and 3 target item 2, which was drawn
    np.testing.assert_allclose(ops.convert_to_numpy(logits), by_hand, rtol=1e-5)


def test_gbce_against_numpy_and_its_calibration():
    rng = np.random.default_rng(0)
    queries, table = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=(6, 3)).astype(np.float32)
    targets, sampled = np.array([0, 5, 2, 2]), np.array([1, 2, 4])
    task = NextItemTask(n_sampled=3, loss="gbce", calibration=0.75)
    # worked example: alpha = m / (N - 1) = 3/5; beta = alpha (t (1 - 1/alpha) + 1/alpha) = 0.6 (0.75 (-2/3) + 5/3)
    assert task.gbce_beta(6) == pytest.approx(0.7)
    assert NextItemTask(n_sampled=3, loss="gbce", calibration=0.0).gbce_beta(6) == pytest.approx(1.0)   # plain BCE
    assert NextItemTask(n_sampled=3, loss="gbce", calibration=1.0).gbce_beta(6) == pytest.approx(0.6)   # beta = alpha
    # gSASRec's draw: negatives of their own for every row (rows 2 and 3 both target item 2;
    # only row 2 drew it, an accidental hit, masked as in the softmax)
    sampled = np.array([[1, 2, 4], [1, 2, 4], [1, 2, 4], [3, 0, 5]])
    logits, _ = task.row_logits(queries, targets, table, sampled=sampled)
    scores = queries @ table.T
    by_hand = np.c_[scores[np.arange(4), targets], np.take_along_axis(scores, sampled, axis=1)]
    by_hand[2, 2] = -1e9
    np.testing.assert_allclose(ops.convert_to_numpy(logits), by_hand, rtol=1e-5)
    _, drawn = task.row_logits(queries, targets, table)
    drawn = ops.convert_to_numpy(drawn)
    assert drawn.shape == (4, 3) and len({tuple(row) for row in drawn}) > 1 and 0 <= drawn.min() <= drawn.max() < 6
    softplus = lambda v: np.logaddexp(0.0, v)             # noqa: E731
    # the shift c* = log(beta / m) minimises the per-row loss of equal logits: its derivative is 0 there
    shift = task.gbce_shift(6)
    assert shift == pytest.approx(np.log(0.7 / 3))
    equal_logits = lambda c: 0.7 * softplus(-c) + 3 * softplus(c)           # noqa: E731
    assert (equal_logits(shift + 1e-4) - equal_logits(shift - 1e-4)) / 2e-4 == pytest.approx(0.0, abs=1e-6)
    assert equal_logits(shift) < min(equal_logits(shift - 0.1), equal_logits(shift + 0.1))
    shifted = by_hand + shift                             # masked columns stay at -1e9: softplus 0
    per_row = (0.7 * softplus(-shifted[:, 0]) + softplus(shifted[:, 1:]).sum(1)) / 4
    task.row_logits = functools.partial(NextItemTask.row_logits, task, sampled=sampled)   # the draw above
    assert float(task.loss(queries, targets, table)) == pytest.approx(per_row.mean(), rel=1e-5)


@pytest.mark.parametrize("sampler", ["uniform", "log_uniform"])
def test_sampler_draws_its_proposal_and_the_log_q_estimate_is_unbiased(sampler):
    n_items, m, repeats = 20, 10, 400
    task = NextItemTask(n_sampled=m * repeats, sampler=sampler, seed=3)
    draws = ops.convert_to_numpy(task.sample(n_items))
    proposal = np.exp(ops.convert_to_numpy(task.log_proposal(np.arange(n_items), n_items)))
    assert proposal.sum() == pytest.approx(1.0, abs=1e-5) and draws.min() >= 0 and draws.max() < n_items
    np.testing.assert_allclose(np.bincount(draws, minlength=n_items) / len(draws), proposal, atol=0.02)
    # importance sampling: (1/m) sum_s exp(o_s) / P(s) estimates the full normaliser sum_j exp(o_j)
    logits = np.linspace(-2.0, 2.0, n_items)[::-1].astype(np.float32)     # popular items score higher
    estimates = (np.exp(logits[draws]) / proposal[draws]).reshape(repeats, m).mean(axis=1)
    assert estimates.mean() == pytest.approx(np.exp(logits).sum(), rel=0.05)


class _NextItemToy(keras.Model):
    """Query = embedding of the previous item; trained to predict (previous + 1) mod N."""

    def __init__(self, n_items: int, task: NextItemTask) -> None:
        super().__init__(name="next_item_toy")
        self.query = keras.layers.Embedding(n_items, 8)
        self.items = keras.layers.Embedding(n_items, 8)
        self.items.build(None)
        self.task = task

    def build(self, input_shape):          # both tables have fixed shapes: nothing depends on the input
        self.query.build(None)

    def call(self, inputs, training=False):
        return self.query(inputs["previous"])

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return self.task.loss(y_pred, x["next"], self.items.embeddings)


@pytest.mark.parametrize("n_sampled, loss", [(None, "softmax"), (5, "softmax"), (5, "gbce")])
def test_next_item_task_learns_a_toy_sequence(n_sampled, loss):
    n = 20
    previous = np.tile(np.arange(n), 10).astype(np.int32)
    data = ({"previous": previous, "next": ((previous + 1) % n).astype(np.int32)}, None)
    trainer = Trainer(epochs=30, batch_size=40, learning_rate=0.05, random_state=0)
    history = trainer.fit(lambda: _NextItemToy(n, NextItemTask(n_sampled=n_sampled, loss=loss, seed=1)), data)
    model = trainer.model_
    scores = ops.convert_to_numpy(model.query(np.arange(n)) @ ops.transpose(model.items.embeddings))
    assert history["loss"].iloc[-1] < history["loss"].iloc[0]
    assert np.mean(scores.argmax(axis=1) == (np.arange(n) + 1) % n) >= 0.9


@pytest.mark.parametrize("make, exc, message", [
    (lambda: RetrievalTask(temperature=0), ValueError, "temperature"),
    (lambda: RetrievalTask(temperature=float("nan")), ValueError, "temperature"),
    (lambda: RetrievalTask(remove_accidental_hits="yes"), ValueError, "remove_accidental_hits"),
    (lambda: RetrievalTask(gather_candidates=3), ParameterTypeError, "gather_candidates"),
    (lambda: RetrievalTask(top_k=5), ParameterTypeError, "top_k"),
    (lambda: RetrievalTask(top_k=(0,)), ValueError, r"top_k\[0\]"),
    (lambda: NextItemTask(n_sampled=0), ValueError, "n_sampled"),
    (lambda: NextItemTask(n_sampled=2.5), ParameterTypeError, "n_sampled"),
    (lambda: NextItemTask(sampler="zipf"), ValueError, "sampler"),
    (lambda: NextItemTask(temperature=-1.0), ValueError, "temperature"),
    (lambda: NextItemTask(loss="gbce"), ValueError, "loss='gbce' needs n_sampled"),
    (lambda: NextItemTask(n_sampled=4, sampler="log_uniform", loss="gbce"), ValueError, "uniform sampler"),
    (lambda: NextItemTask(loss="bce"), ValueError, "loss"),
    (lambda: NextItemTask(n_sampled=4, loss="gbce", calibration=-0.1), ValueError, "calibration"),
    (lambda: NextItemTask(n_sampled=5, loss="gbce").gbce_beta(6), ValueError, "fewer negatives"),
])
def test_bad_task_arguments_are_named(make, exc, message):
    with pytest.raises(exc, match=message):
        make()

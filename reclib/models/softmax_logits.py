r"""The logits of the in-batch softmax, written once for both ways the kit trains a retrieval model.

:class:`~reclib.models.tasks.RetrievalTask` (Keras, any backend) calls :func:`in_batch_softmax_logits`
with ``keras.ops``; the text tower (:mod:`reclib.models.text_tower`), whose ``transformers`` encoder
trains in a PyTorch loop while Keras runs on TensorFlow, calls it through
:func:`~reclib.models.torch_losses.in_batch_softmax_loss` with the few ``keras.ops`` functions it
needs written for torch tensors (so autograd sees plain torch operations). The formula, the log-Q
correction, the accidental-hit mask and the positive's column therefore exist here only; each caller
applies its library's cross-entropy to the result. Nothing is imported: ``ops`` brings the library.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MASK_LOGIT", "in_batch_softmax_logits"]

MASK_LOGIT = -1e9          # logit of a masked column (accidental hit): softmax weight exactly 0


def in_batch_softmax_logits(ops: Any, user_vectors, item_vectors, temperature: float, row_ids=None,
                            column_ids=None, log_q=None, first_row: int = 0):
    r"""Logits (b, C) :math:`\ell_{rj} = u_r^\top v_j/\tau - \log q_j`, accidental hits masked.

    ops: ``keras.ops``, or the torch functions of the same names
    (``reclib.models.torch_losses``); user_vectors (b, d) and item_vectors (C, d), cast to
    float32; temperature :math:`\tau > 0`; row_ids (b,) and column_ids (C,): item ids of each
    row's positive and of each column (both ``None``: nothing masked); log_q: (C,) log sampling
    probability of each column's item, or ``None``; first_row: row r's positive is column
    ``first_row + r`` (0 for a whole batch; a process's offset in a batch gathered over several).
    A column :math:`j` other than row r's positive that holds row r's item is a positive too, not
    a negative: its logit becomes :data:`MASK_LOGIT`.
    """
    logits = ops.matmul(ops.cast(user_vectors, "float32"),
                        ops.transpose(ops.cast(item_vectors, "float32"))) / temperature
    if log_q is not None:
        logits = logits - ops.expand_dims(ops.cast(log_q, logits.dtype), 0)
    if column_ids is None:
        return logits
    same_item = ops.equal(ops.expand_dims(ops.cast(row_ids, column_ids.dtype), 1),
                          ops.expand_dims(column_ids, 0))
    n_rows, n_cols = ops.shape(logits)[0], ops.shape(logits)[1]
    positive = ops.cast(ops.eye(n_rows, n_cols, k=first_row), "bool")
    return ops.where(ops.logical_and(same_item, ops.logical_not(positive)),
                     ops.full_like(logits, MASK_LOGIT), logits)

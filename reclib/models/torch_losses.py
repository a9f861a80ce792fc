"""The in-batch softmax of :class:`~reclib.models.tasks.RetrievalTask` for the PyTorch-trained text
tower (:mod:`reclib.models.text_tower`), whose ``transformers`` encoder the default Keras backend
cannot train: the task's own logits (:func:`~reclib.models.softmax_logits.in_batch_softmax_logits`)
computed with torch functions, and torch's cross-entropy. ``tests/models/test_text_tower.py``
checks it against the Keras task; ``torch`` is imported when the loss is computed."""

from __future__ import annotations

from types import SimpleNamespace

from reclib.models.softmax_logits import in_batch_softmax_logits

__all__ = ["in_batch_softmax_loss"]


def _torch_ops(device) -> SimpleNamespace:
    """Only the ``keras.ops`` functions :func:`in_batch_softmax_logits` calls, written for torch
    tensors on ``device`` (where the identity matrix is made); not a general ``keras.ops``."""
    import torch

    dtypes = {"float32": torch.float32, "bool": torch.bool}
    return SimpleNamespace(
        matmul=torch.matmul, equal=torch.eq, logical_and=torch.logical_and, logical_not=torch.logical_not,
        where=torch.where, full_like=torch.full_like, transpose=lambda x: x.T,
        expand_dims=lambda x, axis: x.unsqueeze(axis), shape=lambda x: tuple(x.shape),
        cast=lambda x, dtype: x.to(dtypes.get(dtype, dtype)),
        eye=lambda n_rows, n_cols, k=0: (torch.arange(n_cols, device=device)[None, :]
                                         == torch.arange(n_rows, device=device)[:, None] + k))


def in_batch_softmax_loss(user_vectors, item_vectors, item_ids=None, log_q=None, temperature: float = 0.05,
                          first_row: int = 0, reduction: str = "mean"):
    r"""In-batch softmax cross-entropy, the loss of :class:`~reclib.models.tasks.RetrievalTask`.

    user_vectors: torch tensor (b, d), item_vectors (B, d): row ``first_row + r`` of the items is
    user row r's positive (``b = B``, ``first_row = 0`` for a whole batch; one process's rows of a
    batch gathered from several processes otherwise); item_ids: (B,) ints or ``None`` (column
    :math:`j` other than the positive that holds user row r's item is masked with a logit of -1e9);
    log_q: (B,) log sampling probability of each column's item or ``None`` (no correction);
    temperature > 0. Logits :math:`\ell_{rj} = u_r^\top v_j/\tau - \log q_j`. Returns a scalar
    tensor: the mean over the b rows, or their sum with ``reduction="sum"``.
    """
    import torch

    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    if not 0 <= first_row <= len(item_vectors) - len(user_vectors):
        raise ValueError(f"first_row ({first_row}) + {len(user_vectors)} user rows must fit in the "
                         f"{len(item_vectors)} item rows")
    row_ids = None if item_ids is None else item_ids[first_row:first_row + len(user_vectors)]
    logits = in_batch_softmax_logits(_torch_ops(user_vectors.device), user_vectors, item_vectors, temperature,
                                     row_ids=row_ids, column_ids=item_ids, log_q=log_q, first_row=first_row)
    labels = torch.arange(len(logits), device=logits.device) + first_row
    return torch.nn.functional.cross_entropy(logits, labels, reduction=reduction)

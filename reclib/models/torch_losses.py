"""The in-batch softmax of :class:`~reclib.models.tasks.RetrievalTask`, written in PyTorch for the
PyTorch-trained text tower (:mod:`reclib.models.text_tower`), whose ``transformers`` encoder the
default Keras backend cannot train. ``tests/models/test_text_tower.py`` checks it against the Keras
task; ``torch`` is imported when the loss is computed."""

from __future__ import annotations

from reclib.models.tasks import MASK_LOGIT

__all__ = ["in_batch_softmax_loss"]


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
    logits = user_vectors.float() @ item_vectors.float().T / temperature
    if log_q is not None:
        logits = logits - log_q.float()[None, :]
    labels = torch.arange(len(logits), device=logits.device) + first_row
    if item_ids is not None:
        same = item_ids[first_row:first_row + len(logits), None] == item_ids[None, :]
        same[torch.arange(len(logits), device=logits.device), labels] = False
        logits = logits.masked_fill(same, MASK_LOGIT)
    return torch.nn.functional.cross_entropy(logits, labels, reduction=reduction)

"""The frozen bottom of a partly fine-tuned text encoder, computed once per fit and shared between
live models (:mod:`reclib.models.text_tower`, module doc, "Shared frozen states").

The hidden states after the token embeddings and the bottom ``depth`` transformer layers depend
only on the encoder's weights and the catalogue's tokens, so a fit resumes from the deepest state
at or below its own depth that a live model fitted on the same weights, tokens and device holds
(fitting ``k = 1`` and then ``k = 0`` on one catalogue runs 5 + 1 layers over it instead of
5 + 6). The states are the same tensors, computed in the same batches, so the numbers are
identical to a fit from scratch. The registry holds weak references only: a state lives as long
as a model that holds it.
"""

from __future__ import annotations

import hashlib
import weakref

from reclib.base import user_batches

__all__ = ["FROZEN_BATCH", "frozen_states"]

FROZEN_BATCH = 256      # catalogue rows per batch of the frozen forward pass

#: (weights hash, tokens hash, device, depth) -> hidden states (n_items, tokens, hidden) after the
#: bottom ``depth`` layers, held by a live model (module doc)
_FROZEN_STATES: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def frozen_states(encoder, tokens, additive, depth: int, weights: str):
    """Hidden states (n, t, hidden) float32 of every row of ``tokens`` after the token embeddings
    and the bottom ``depth`` transformer layers of ``encoder`` (eval mode, no gradients), in
    batches of ``FROZEN_BATCH`` rows. ``tokens``: the tokenizer's CPU tensors; ``additive``: the
    (n, 1, 1, t) additive attention mask, on the encoder's device (where the states are computed
    and kept); ``weights``: a hash of the encoder's weights. Resumes from the deepest registered
    state at a depth <= ``depth`` for the same weights, tokens and device, and registers the
    result."""
    import torch

    ids, types = tokens["input_ids"], tokens["token_type_ids"]
    digest = hashlib.sha256(str(tuple(ids.shape)).encode())
    for part in (ids, types):
        digest.update(part.numpy().tobytes())
    device = additive.device
    key = (weights, digest.hexdigest(), str(device))
    start = next((d for d in range(depth, -1, -1) if (*key, d) in _FROZEN_STATES), None)
    if start == depth:
        return _FROZEN_STATES[(*key, depth)]
    known = None if start is None else _FROZEN_STATES[(*key, start)]
    layers = encoder.encoder.layer[start or 0:depth]
    with torch.no_grad():
        parts = []
        for batch in user_batches(len(ids), FROZEN_BATCH):
            hidden = (encoder.embeddings(input_ids=ids[batch].to(device), token_type_ids=types[batch].to(device))
                      if known is None else known[batch])
            for layer in layers:
                hidden = layer(hidden, additive[batch])
            parts.append(hidden)
        states = torch.cat(parts)
    _FROZEN_STATES[(*key, depth)] = states
    return states

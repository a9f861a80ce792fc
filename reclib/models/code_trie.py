r"""The trie of items' semantic IDs, and decoding constrained to it: exact item log-probabilities
and beam search that can only spell real items.

A generative retriever (:mod:`reclib.models.generative_retrieval`) spells the next item one code
at a time: level :math:`l` gives a distribution over the codes that may follow the prefix spelt
so far. Constrained to the trie, the codes that follow a prefix are only its **children** (codes
of real items that share the prefix), and the model's probability of an item is the product of
its codes' conditional probabilities, each a softmax over the children of the prefix before it:

.. math:: \log p(i \mid h) = \sum_{l} \log \frac{\exp z_l(h, c^{<l}_i)[c^l_i]}
          {\sum_{c \in \mathrm{children}(c^{<l}_i)} \exp z_l(h, c^{<l}_i)[c]}

A prefix with one child adds :math:`\log 1 = 0`, so only **branching** prefixes need logits.

- :meth:`CodeTrie.log_probs`: that sum for every item at once (exhaustive decoding; affordable
  when the catalogue has thousands of items, the exact ranking beam search approximates);
- :meth:`CodeTrie.beam_search`: level by level, keep the ``beam_width`` best prefixes (by summed
  log-probability), expand each by its children only; every finished beam is a real item.

``logits(level, nodes)`` is the model's side of both: ``nodes`` (b, m) prefix nodes of that
level (row-aligned with the model's b queries), returning (b, m, n_codes of the level) logits.
Node numbering: level 0 has the root (node 0); the nodes of level :math:`l` are the distinct
prefixes of length :math:`l` in lexicographic order (``node_codes[l]``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from reclib.checks import check_positive_int

__all__ = ["CodeTrie"]

Logits = Callable[[int, np.ndarray], np.ndarray]


class CodeTrie:
    """The prefix tree of ``codes`` (n_items, depth): non-negative ints, every row distinct.

    Attributes: ``depth``; ``level_sizes`` (depth,) codes per level (max + 1); per level ``l``:
    ``node_of_item[l]`` (n_items,) the node of each item's prefix of length ``l``,
    ``node_codes[l]`` (n_nodes_l, l), ``children[l]`` (n_nodes_l, level_sizes[l]) the child node
    (an item index at the last level) or -1, ``item_counts[l]`` (n_nodes_l,) items under a node.
    """

    def __init__(self, codes: object) -> None:
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.dtype.kind not in "iu" or codes.size == 0:
            raise ValueError(f"codes must be a non-empty 2-D integer array, got {codes.dtype} {codes.shape}")
        if codes.min() < 0:
            raise ValueError(f"codes must be non-negative, got {int(codes.min())}")
        codes = codes.astype(np.int64)
        if len(np.unique(codes, axis=0)) != len(codes):
            raise ValueError("codes must be distinct per item (append a disambiguation column: "
                             "reclib.features.semantic_ids)")
        n_items, self.depth = codes.shape
        self.codes, self.level_sizes = codes, codes.max(axis=0) + 1
        self.node_of_item, self.node_codes = [], []
        for level in range(self.depth):
            prefixes, nodes = np.unique(codes[:, :level], axis=0, return_inverse=True)
            self.node_of_item.append(nodes.reshape(-1).astype(np.int64))
            self.node_codes.append(prefixes.reshape(len(prefixes), level))
        self.children, self.item_counts = [], []
        for level in range(self.depth):
            nodes = self.node_of_item[level]
            below = self.node_of_item[level + 1] if level + 1 < self.depth else np.arange(n_items)
            table = np.full((len(self.node_codes[level]), self.level_sizes[level]), -1, np.int64)
            table[nodes, codes[:, level]] = below
            self.children.append(table)
            self.item_counts.append(np.bincount(nodes, minlength=len(table)))

    @property
    def n_items(self) -> int:
        return len(self.codes)

    def item_of(self, codes: object) -> np.ndarray:
        """(n,) the item index of each code tuple (n, depth), or -1 where no item has it (a code
        out of a level's range included): how to check that a decoded tuple names a real item."""
        codes = np.asarray(codes, np.int64)
        if codes.ndim != 2 or codes.shape[1] != self.depth:
            raise ValueError(f"codes must have shape (n, {self.depth}), got {codes.shape}")
        node = np.zeros(len(codes), np.int64)
        for level in range(self.depth):
            code = codes[:, level]
            inside = (node >= 0) & (code >= 0) & (code < self.level_sizes[level])
            node = np.where(inside, self.children[level][np.maximum(node, 0), np.where(inside, code, 0)], -1)
        return node

    def _excluded_counts(self, exclude: sp.csr_matrix | None, b: int) -> list[np.ndarray] | None:
        """Per level (b, n_nodes) how many excluded items lie under each node, or None."""
        if exclude is None:
            return None
        if exclude.shape != (b, self.n_items):
            raise ValueError(f"exclude must have shape ({b}, {self.n_items}), got {exclude.shape}")
        flags = sp.csr_matrix(exclude, dtype=np.float64, copy=True)
        flags.sum_duplicates()                                 # first: a repeated entry is one item
        flags.data[:] = 1.0
        out = []
        for nodes in self.node_of_item:
            member = sp.csr_matrix((np.ones(self.n_items), (np.arange(self.n_items), nodes)),
                                   shape=(self.n_items, int(nodes.max()) + 1))
            out.append((flags @ member).toarray())
        out.append(flags.toarray())                            # the items themselves
        return out

    def _allowed(self, level: int, nodes: np.ndarray, excluded: list[np.ndarray] | None) -> np.ndarray:
        """(b, m, level_size) bool: the children of ``nodes`` (b, m; -1 = empty beam) that exist
        and still hold an item that is not excluded."""
        child = self.children[level][np.maximum(nodes, 0)]
        ok = (child >= 0) & (nodes >= 0)[..., None]
        if excluded is not None:
            rows = np.arange(len(nodes))[:, None, None]
            if level + 1 < self.depth:
                left = self.item_counts[level + 1][np.maximum(child, 0)] - excluded[level + 1][rows, np.maximum(child, 0)]
            else:
                left = 1 - excluded[-1][rows, np.maximum(child, 0)]
            ok &= left > 0
        return ok

    @staticmethod
    def _log_softmax(logits: np.ndarray, allowed: np.ndarray) -> np.ndarray:
        """Log-softmax of ``logits`` over the ``allowed`` entries of the last axis; -inf elsewhere
        (all -inf where nothing is allowed); non-finite logits raise ``FloatingPointError``."""
        if not np.isfinite(logits).all():
            raise FloatingPointError("the decoder's logits hold NaN or inf: the model has diverged")
        z = np.where(allowed, logits.astype(np.float64), -np.inf)
        top = z.max(axis=-1, keepdims=True)
        top = np.where(np.isfinite(top), top, 0.0)
        total = np.exp(z - top).sum(axis=-1, keepdims=True)
        return z - top - np.log(np.where(total > 0, total, 1.0))

    def log_probs(self, logits: Logits, b: int) -> np.ndarray:
        """(b, n_items) float64 log-probability of every item for b queries (module doc); each
        row's exponentials sum to 1. ``logits`` is called once per level with only the branching
        nodes."""
        out = np.zeros((b, self.n_items))
        for level in range(self.depth):
            counts = (self.children[level] >= 0).sum(axis=1)
            branching = np.flatnonzero(counts >= 2)
            if len(branching) == 0:
                continue
            nodes = np.broadcast_to(branching, (b, len(branching)))
            scores = self._log_softmax(logits(level, nodes), self._allowed(level, nodes, None))
            position = np.full(len(counts), -1)
            position[branching] = np.arange(len(branching))
            at = position[self.node_of_item[level]]
            items = np.flatnonzero(at >= 0)
            out[:, items] += scores[:, at[items], self.codes[items, level]]
        return out

    def beam_search(self, logits: Logits, b: int, k: int, beam_width: int,
                    exclude: sp.spmatrix | None = None, steps: list | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best items per query by beam search: ``(items (b, k), log_probs (b, k))``,
        best first; -1 and -inf where fewer than ``k`` items are left.

        At each level every beam (at most ``beam_width``, >= k) is expanded by its allowed
        children, and the ``beam_width`` best (prefix, code) pairs by summed log-probability are
        kept; ties go to the lower beam rank, then the lower code. ``exclude`` (b, n_items)
        sparse: items never to generate (their leaves, and prefixes with nothing else under them,
        are not allowed). Every returned item is a real row of ``codes``. ``steps``: a list that,
        when given, gets one ``(prefixes (b, w, level + 1), log_probs (b, w))`` per level, the
        beams kept (codes; -1 for an empty beam), to show the search step by step.
        """
        check_positive_int(k=k, beam_width=beam_width)
        if beam_width < k:
            raise ValueError(f"beam_width ({beam_width}) must be at least k ({k})")
        excluded = self._excluded_counts(None if exclude is None else sp.csr_matrix(exclude), b)
        nodes, scores = np.zeros((b, 1), np.int64), np.zeros((b, 1))
        rows = np.arange(b)[:, None]
        for level in range(self.depth):
            # the model's distribution (a softmax over the trie's children); excluded children
            # are then masked, not renormalised away, so the scores are log p(item) as in log_probs
            step = self._log_softmax(logits(level, np.maximum(nodes, 0)), self._allowed(level, nodes, None))
            step = np.where(self._allowed(level, nodes, excluded), step, -np.inf)
            total = (scores[..., None] + step).reshape(b, -1)          # (b, m * level_size)
            width = min(beam_width if level + 1 < self.depth else k, total.shape[1])
            best = np.argsort(-total, axis=1, kind="stable")[:, :width]
            beam, code = np.divmod(best, self.level_sizes[level])
            scores = total[rows, best]
            parents = nodes[rows, beam]
            nodes = np.where(np.isfinite(scores), self.children[level][parents, code], -1)
            if steps is not None:
                prefixes = np.concatenate([self.node_codes[level][parents], code[..., None]], axis=-1)
                steps.append((np.where(np.isfinite(scores)[..., None], prefixes, -1), scores.copy()))
        if nodes.shape[1] < k:
            pad = k - nodes.shape[1]
            nodes = np.pad(nodes, ((0, 0), (0, pad)), constant_values=-1)
            scores = np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        return nodes, scores

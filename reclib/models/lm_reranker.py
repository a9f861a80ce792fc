r"""A pretrained causal language model as a zero-shot reranker of a retriever's shortlist: the
online path, for users with a network and a GPU.

For a user whose last films are :math:`h_1, \dots, h_r` (oldest first) and a candidate :math:`c`,
the prompt is ``prefix``, then ``separator`` + the title of each :math:`h_j`, then ``suffix``;
the candidate's score is the mean log-probability per token of its title after that prompt,

.. math:: s_c = \frac{1}{|t_c|} \sum_{j} \log p_{\mathrm{LM}}(t_{c,j} \mid \text{prompt}, t_{c,<j}),

(the mean, not the sum, so a long title is not penalised for its length). Nothing is trained:
``fit`` fits the retriever and loads the language model by its hub name (or a local folder,
:func:`~reclib.features.text.resolve_model`), and tokenises every title once. A request builds
its prompts from those stored token ids (so a fitted model needs no tokenizer, and a saved one
holds the language model's weights and the token arrays only). Joining separately tokenised
pieces can differ from tokenising the joined text at the seams; each title is tokenised with a
leading space, as it would appear mid-sentence.

Zero-shot ranking by language models is sensitive to the prompt and to the order of the
candidates, and well below trained recommenders (Hou et al., ECIR 2024, who rank by generating a
list rather than by likelihood), which is why the kit's default reranker is the trained
:class:`~reclib.models.reranker.ShortlistReranker`; this class keeps the real path to a large
model callable with the same interface. The prompt is run again for every candidate (no cache of
its keys and values is shared): simple, and n times the cost of a cached prompt. Its tests run a tiny randomly initialised model
(:func:`save_tiny_causal_lm`); nothing is downloaded at test time.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reclib.base import FitContext, Recommender, user_batches
from reclib.checks import ParameterTypeError, check_positive_int
from reclib.models.shortlist import ShortlistRecommender
from reclib.models.torch_device import check_device, cpu_state, resolve_device, restore_state

__all__ = ["CausalLMReranker", "save_tiny_causal_lm"]

#: an open model small enough for one consumer GPU; any causal LM on the hub (or a folder) works
DEFAULT_LANGUAGE_MODEL = "Qwen/Qwen2.5-0.5B-Instruct"
PREFIX = "A film lover watched these films, oldest first:"
SEPARATOR = "\n-"
SUFFIX = "\nThe next film they watched:"


class CausalLMReranker(ShortlistRecommender):
    """A retriever's top ``n_candidates`` reordered by a causal LM's likelihood of each title (module doc).

    Parameters
    ----------
    retriever, share_features: as :class:`~reclib.models.shortlist.ShortlistRecommender`.
    model: a hub name or a local folder of a causal LM (``AutoModelForCausalLM``).
    n_candidates: shortlist size (20, LlamaRec's); n_recent: the user's last titles in the prompt.
    prefix, separator, suffix: the prompt's pieces (module doc); max_title_tokens: titles are cut
    to this many tokens; batch_size: sequences per forward pass; device: "auto", "cpu", "cuda"
    or "cuda:N".

    Data at ``fit(interactions, item_features=ItemFeatures(item_ids, texts=...))``: the texts are
    the titles; ``interactions`` need a timestamp. After fit: ``retriever_``, ``torch_model_`` (on
    ``device_``), ``title_tokens_`` (n_items, max_title_tokens) and ``title_lengths_``.
    """

    needs = ("texts",)

    def __init__(self, retriever: Recommender, model: str = DEFAULT_LANGUAGE_MODEL, n_candidates: int = 20,
                 n_recent: int = 10, prefix: str = PREFIX, separator: str = SEPARATOR, suffix: str = SUFFIX,
                 max_title_tokens: int = 24, batch_size: int = 32, device: str = "auto",
                 share_features: bool = False, timestamp_col: str = "timestamp", **columns: str) -> None:
        super().__init__(retriever, n_candidates, n_recent, share_features, timestamp_col, **columns)
        for name, value in (("model", model), ("prefix", prefix), ("separator", separator), ("suffix", suffix)):
            if not isinstance(value, str):
                raise ParameterTypeError(f"{name} must be a string, got {value!r}")
        if not model:
            raise ValueError("model must name a causal language model (a hub name or a folder), got ''")
        check_positive_int(max_title_tokens=max_title_tokens, batch_size=batch_size)
        check_device(device)
        self.model, self.prefix, self.separator, self.suffix = model, prefix, separator, suffix
        self.max_title_tokens, self.batch_size, self.device = max_title_tokens, batch_size, device

    def _fit(self, context: FitContext) -> None:
        """Store the users' recent items, tokenise the titles and the prompt's pieces, load the
        language model on ``device_`` and fit the retriever (module doc)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from reclib.features.text import resolve_model

        events = context.interactions
        self._store_users(events)
        folder = resolve_model(self.model)
        tokenizer = AutoTokenizer.from_pretrained(folder)

        def ids(text: str) -> np.ndarray:
            return np.asarray(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=np.int64)

        titles = self.item_features_.texts[pd.Index(self.item_features_.item_ids).get_indexer(self.item_ids_)]
        pieces = [ids(" " + str(title))[:self.max_title_tokens] for title in titles]
        self.title_lengths_ = np.array([len(p) for p in pieces], dtype=np.int64)
        if (self.title_lengths_ == 0).any():
            empty = self.item_ids_[self.title_lengths_ == 0][:5].tolist()
            raise ValueError(f"item_features.texts: the titles of items {empty} have no tokens")
        self.title_tokens_ = np.zeros((len(pieces), self.max_title_tokens), dtype=np.int64)
        for j, piece in enumerate(pieces):
            self.title_tokens_[j, :len(piece)] = piece
        self.prefix_tokens_, self.separator_tokens_ = ids(self.prefix), ids(self.separator)
        self.suffix_tokens_ = ids(self.suffix)
        if not len(self.prefix_tokens_) + len(self.suffix_tokens_):
            raise ValueError(f"prefix={self.prefix!r} and suffix={self.suffix!r} give no token: a user without "
                             f"history would leave the first title token nothing to be predicted from")
        self.device_ = resolve_device(self.device)
        self.torch_model_ = AutoModelForCausalLM.from_pretrained(folder).eval().to(self.device_)
        self.retriever_ = self._fit_retriever(events)

    def _prompt(self, recent: np.ndarray) -> np.ndarray:
        """The prompt's token ids for recent items (r,) most recent first, ``-1`` padding."""
        parts = [self.prefix_tokens_]
        for item in recent[recent >= 0][::-1]:                       # oldest first
            parts += [self.separator_tokens_, self.title_tokens_[item, :self.title_lengths_[item]]]
        return np.concatenate([*parts, self.suffix_tokens_])

    def _shortlist_scores(self, shortlist: np.ndarray, shortlist_scores: np.ndarray, recent: np.ndarray,
                          request: np.ndarray) -> np.ndarray:
        """Mean log-probability per token of each candidate's title after its list's prompt (b, n)."""
        import torch

        prompts = [self._prompt(row) for row in recent]
        sequences = [(j, np.concatenate([prompts[j], self.title_tokens_[item, :self.title_lengths_[item]]]),
                      len(prompts[j])) for j in range(len(shortlist)) for item in shortlist[j]]
        out = np.empty(len(sequences))
        with torch.no_grad():
            for batch in user_batches(len(sequences), self.batch_size):
                chunk = sequences[batch]
                width = max(len(tokens) for _, tokens, _ in chunk)
                ids = np.zeros((len(chunk), width), dtype=np.int64)
                title = np.zeros((len(chunk), width), dtype=bool)          # the title's tokens, to be scored
                for row, (_, tokens, start) in enumerate(chunk):
                    ids[row, :len(tokens)], title[row, start:len(tokens)] = tokens, True
                ids_t = torch.from_numpy(ids).to(self.device_)
                mask = torch.from_numpy((np.arange(width)[None, :] < np.array([len(t) for _, t, _ in chunk])[:, None])
                                        .astype(np.int64)).to(self.device_)
                logits = self.torch_model_(input_ids=ids_t, attention_mask=mask).logits[:, :-1].float()
                # log p(token p | tokens < p), gathered on the device: only (b, width - 1) values move
                picked = torch.gather(logits, -1, ids_t[:, 1:, None])[..., 0] - torch.logsumexp(logits, dim=-1)
                weight = torch.from_numpy(title[:, 1:].astype(np.float32)).to(self.device_)
                out[batch] = ((picked * weight).sum(dim=1) / weight.sum(dim=1)).cpu().numpy()
        return out.reshape(shortlist.shape)

    def __getstate__(self) -> dict[str, Any]:
        return cpu_state(self.__dict__.copy())

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(restore_state(state))


def save_tiny_causal_lm(folder: str | Path, seed: int = 0) -> Path:
    """Write a tiny, randomly initialised GPT-2 (1 layer, 16 dimensions) with the packaged MiniLM
    tokenizer to ``folder`` and return it: a stand-in for a hub model in tests and offline demos
    (its scores mean nothing; the code path is the real one)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from reclib.data.sources import fetch_minilm

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source = fetch_minilm()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        if (source / name).exists():
            shutil.copyfile(source / name, folder / name)
    vocabulary = sum(1 for _ in open(source / "vocab.txt", encoding="utf-8"))
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=vocabulary, n_positions=512, n_embd=16, n_layer=1, n_head=2)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder

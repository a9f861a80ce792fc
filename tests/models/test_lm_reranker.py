"""The causal-LM reranker on a tiny randomly initialised GPT-2 (nothing downloaded): its scores
are the mean log-probability of each title after the prompt, computed here directly with torch;
batching does not change them; the shortlist is kept as a set; bad parameters are named."""

from __future__ import annotations

import numpy as np
import pytest

from reclib.cf import EASE
from reclib.checks import ParameterTypeError
from reclib.features.content import ItemFeatures
from reclib.models.lm_reranker import CausalLMReranker, save_tiny_causal_lm
from test_reranker import ITEMS, _clustered

TITLES = [f"the film number {j}" for j in range(len(ITEMS))]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return save_tiny_causal_lm(tmp_path_factory.mktemp("tiny_lm"))


@pytest.fixture(scope="module")
def fitted(tiny_lm):
    data, _ = _clustered(n_users=40)
    model = CausalLMReranker(EASE(reg=10.0), model=str(tiny_lm), n_candidates=5, n_recent=3, device="cpu")
    return data, model.fit(data, item_features=ItemFeatures(ITEMS, texts=TITLES))


def test_scores_are_the_mean_log_probability_of_each_title(fitted, tiny_lm):
    import torch
    from transformers import AutoTokenizer

    data, model = fitted
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    user = data["user_id"].iloc[0]
    last = data[data["user_id"] == user].sort_values("timestamp")["item_id"].tolist()[-3:]

    def ids(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    prompt = ids(model.prefix)
    for item in last:
        prompt += ids(model.separator) + ids(" " + TITLES[list(ITEMS).index(item)])
    prompt += ids(model.suffix)
    scores = model.score([user])[0]
    shortlist = model.retriever_.recommend([user], k=5)["item_id"].tolist()
    expected = []
    for item in shortlist:
        title = ids(" " + TITLES[list(ITEMS).index(item)])
        with torch.no_grad():
            log_p = torch.log_softmax(model.torch_model_(input_ids=torch.tensor([prompt + title])).logits[0], dim=-1)
        expected.append(np.mean([float(log_p[len(prompt) + j - 1, token]) for j, token in enumerate(title)]))
    lifted = scores[model.item_encoder_.transform(shortlist)]
    # the shortlist sits above every other item, its differences are the language model's
    assert lifted.min() > scores[~np.isin(model.item_ids_, shortlist)].max()
    np.testing.assert_allclose(lifted - lifted[0], np.array(expected) - expected[0], atol=1e-5)


def test_batching_does_not_change_scores_and_the_shortlist_stays_a_set(fitted):
    data, model = fitted
    users = data["user_id"].unique()[:6]
    one = model.set_params(batch_size=1)
    try:
        single = one.score(users)
    finally:
        model.set_params(batch_size=32)
    np.testing.assert_allclose(model.score(users), single, rtol=1e-5, atol=1e-6)
    ours, theirs = model.recommend(users, k=10), model.retriever_.recommend(users, k=10)
    for (_, a), (_, b) in zip(ours.groupby("user_id"), theirs.groupby("user_id")):
        assert set(a["item_id"][:5]) == set(b["item_id"][:5]) and a["item_id"][5:].tolist() == b["item_id"][5:].tolist()


@pytest.mark.parametrize("params, error, match", [
    ({"model": ""}, ValueError, "model"),
    ({"model": 3}, ParameterTypeError, "model"),
    ({"suffix": None}, ParameterTypeError, "suffix"),
    ({"device": "gpu"}, ValueError, "device"),
    ({"max_title_tokens": 0}, ValueError, "max_title_tokens"),
])
def test_bad_parameters_are_named(params, error, match):
    with pytest.raises(error, match=match):
        CausalLMReranker(EASE(), **params)


def test_fit_needs_titles(tiny_lm):
    data, features = _clustered(n_users=5)
    with pytest.raises(ValueError, match="texts"):
        CausalLMReranker(EASE(), model=str(tiny_lm)).fit(data, item_features=features)


def test_an_empty_prompt_is_refused(tiny_lm):
    data, _ = _clustered(n_users=5)
    model = CausalLMReranker(EASE(), model=str(tiny_lm), prefix="", suffix="", device="cpu")
    with pytest.raises(ValueError, match="prefix"):
        model.fit(data, item_features=ItemFeatures(ITEMS, texts=TITLES))

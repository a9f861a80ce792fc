"""Generative retrieval over semantic IDs: it learns an obvious sequence, its scores are log-
probabilities, beam search spells only real items and agrees with exhaustive decoding, an item
absent from training can be generated, and bad input is refused before training."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from reclib.features.content import ItemFeatures
from reclib.models.generative_retrieval import GenerativeRetrievalRecommender, GenerativeSASRec, collaborative_factors
from test_sequential import _cyclic  # users walking the cycle i0 -> i1 -> ... -> i11 -> i0

N_ITEMS = 12


def _features(n_items=N_ITEMS, extra=()):
    ids = [f"i{j}" for j in range(n_items)] + list(extra)
    vectors = np.random.default_rng(3).normal(size=(len(ids), 8))
    return ItemFeatures(np.array(ids), vectors=vectors)


def _model(**params):
    base = dict(n_levels=2, n_codes=3, max_length=8, embedding_dim=16, n_blocks=1, epochs=60,
                learning_rate=0.01, dropout=0.0, beam_width=4)
    return GenerativeRetrievalRecommender(**{**base, **params})


@pytest.fixture(scope="module")
def fitted():
    data = _cyclic()
    return data, _model().fit(data, item_features=_features(extra=["new"]))


def test_learns_the_next_item_of_a_cycle_by_beam_search(fitted):
    data, model = fitted
    top = model.recommend(data["user_id"].unique(), k=1, exclude_seen=False)
    last = data.sort_values("timestamp").groupby("user_id")["item_id"].last()
    expected = last.map(lambda i: f"i{(int(i[1:]) + 1) % N_ITEMS}")
    assert (top.set_index("user_id")["item_id"] == expected).mean() == 1.0


def test_scores_are_log_probabilities_and_beam_search_agrees_with_them(fitted):
    data, model = fitted
    users = data["user_id"].unique()[:10]
    scores = model.score(users)
    assert scores.shape == (10, N_ITEMS + 1)          # the catalogue holds the item never trained on
    np.testing.assert_allclose(np.exp(scores.astype(np.float64)).sum(axis=1), 1.0, rtol=1e-4)
    # a beam holding every prefix is exhaustive: beam search's top 5 are the scores' top 5
    wide = model.recommend(users, k=5, exclude_seen=False, beam_width=N_ITEMS + 1)
    exact = pd.DataFrame({"user_id": np.repeat(users, 5),
                          "item_id": model.item_ids_[np.argsort(-scores, axis=1, kind="stable")[:, :5]].ravel()})
    pd.testing.assert_frame_equal(wide[["user_id", "item_id"]], exact)
    np.testing.assert_allclose(wide["score"], np.sort(scores, axis=1)[:, ::-1][:, :5].ravel(), rtol=1e-4, atol=1e-5)


def test_recommendations_are_real_unseen_items(fitted):
    data, model = fitted
    recs = model.recommend(data["user_id"].unique(), k=3)
    assert recs["item_id"].isin(model.item_ids_).all()
    seen = set(map(tuple, data[["user_id", "item_id"]].to_numpy()))
    assert not any((u, i) in seen for u, i in recs[["user_id", "item_id"]].to_numpy())


def test_an_item_never_trained_on_has_codes_and_a_probability(fitted):
    _, model = fitted
    assert "new" in set(model.item_ids_)
    assert len(np.unique(model.semantic_ids_, axis=0)) == len(model.item_ids_)
    assert np.isfinite(model.score([0])).all()


def test_histories_and_states_score_like_fitted_users(fitted):
    data, model = fitted
    histories = data.sort_values(["user_id", "timestamp"]).groupby("user_id")["item_id"].apply(list)
    np.testing.assert_allclose(model.score_histories(histories.tolist()[:3]), model.score(histories.index[:3]),
                               rtol=1e-5, atol=1e-5)
    history = histories.iloc[0][:8]
    state = model.advance(model.start_state(history[:-1]), history[-1])
    np.testing.assert_allclose(model.state_scores(state), model.score_histories([history])[0], rtol=1e-4, atol=1e-4)


def test_loss_is_the_negative_log_probability_of_the_next_item(fitted):
    """compute_loss on one window equals minus the mean log-probability of the trained targets
    that exhaustive decoding gives (padding counted in the divisor)."""
    data, model = fitted
    encoder = model.keras_model_
    window = np.array([[0, 0, 0, 0, 0, 1, 2, 3]], np.int32)        # items i0, i1, i2
    targets = np.array([[0, 0, 0, 0, 0, 2, 3, 4]], np.int32)        # i1, i2, i3 follow
    hidden = keras.ops.convert_to_numpy(encoder(window))
    loss = float(encoder.compute_loss({"items": window, "targets": targets}, y_pred=hidden))
    log_p = np.concatenate([model.trie_.log_probs(model.decoder_logits(hidden[0, t:t + 1]), 1)
                            for t in (5, 6, 7)])
    assert loss == pytest.approx(-(log_p[0, 1] + log_p[1, 2] + log_p[2, 3]) / 8, rel=1e-4)


def test_same_seed_same_scores_and_codes():
    data = _cyclic(n_users=20, length=6)
    a, b = (_model(epochs=2).fit(data, item_features=_features()) for _ in range(2))
    np.testing.assert_array_equal(a.semantic_ids_, b.semantic_ids_)
    np.testing.assert_array_equal(a.score([0, 1]), b.score([0, 1]))


def test_collaborative_factors_group_items_bought_together():
    """Two blocks of users and items: factors of items in one block are alike, across blocks not."""
    import scipy.sparse as sp

    block = np.kron(np.eye(2), np.ones((5, 4)))                # users 0-4 buy items 0-3, 5-9 buy 4-7
    factors = collaborative_factors(sp.csr_matrix(block), n_factors=2)
    np.testing.assert_allclose(np.linalg.norm(factors, axis=1), 1.0)
    similarity = factors @ factors.T
    assert similarity[0, 1] == pytest.approx(1.0) and abs(similarity[0, 5]) < 1e-6


@pytest.mark.parametrize("kwargs, match", [
    ({"item_features": None}, "needs item_features"),
    ({"item_features": ItemFeatures(np.array([f"i{j}" for j in range(N_ITEMS)]))}, "item_features.vectors"),
])
def test_needs_item_vectors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        _model(epochs=1).fit(_cyclic(n_users=5), **kwargs)


@pytest.mark.parametrize("params, match", [({"n_codes": 1}, "n_codes"), ({"beam_width": 0}, "beam_width"),
                                           ({"collaborative_weight": -1.0}, "collaborative_weight")])
def test_bad_parameters_raise(params, match):
    with pytest.raises(ValueError, match=match):
        _model(**params)


def test_keras_model_round_trips_through_its_config():
    codes = np.array([[0, 0, 0], [0, 1, 0], [1, 0, 0], [1, 0, 1]])
    model = GenerativeSASRec(codes, max_length=4, embedding_dim=8, n_blocks=1)
    model.build((None, 4))
    again = GenerativeSASRec.from_config(model.get_config())
    np.testing.assert_array_equal(again.item_codes, codes)
    assert again.level_sizes.tolist() == [2, 2, 2]


def test_a_saved_keras_model_computes_the_same_outputs(fitted, tmp_path):
    """The fitted encoder and decoder through Keras' own .keras format (what a .reclib file holds):
    the same hidden states and the same per-level logits."""
    data, model = fitted
    path = tmp_path / "generative.keras"
    model.keras_model_.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    window = np.tile(np.arange(1, 9), (3, 1))
    expected = keras.ops.convert_to_numpy(model.keras_model_(window))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(window)), expected, rtol=1e-6, atol=1e-6)
    z = expected.reshape(-1, expected.shape[-1])[:5]
    codes = model.trie_.node_codes[1]
    assert loaded.head.level_sizes == model.keras_model_.head.level_sizes
    for level in range(model.trie_.depth):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded.head.logits(level, z)),
                                   keras.ops.convert_to_numpy(model.keras_model_.head.logits(level, z)), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded.head.prefix(1, codes)),
                               keras.ops.convert_to_numpy(model.keras_model_.head.prefix(1, codes)))


def test_greedy_decoding_constrained_names_items_unconstrained_may_not(fitted):
    data, model = fitted
    histories = data.sort_values(["user_id", "timestamp"]).groupby("user_id")["item_id"].apply(list).tolist()
    constrained = model.greedy_codes(histories)
    assert (model.trie_.item_of(constrained) >= 0).all()
    top = model.recommend(data["user_id"].unique(), k=1, exclude_seen=False)
    np.testing.assert_array_equal(model.item_ids_[model.trie_.item_of(constrained)], top["item_id"])
    free = model.greedy_codes(histories, constrained=False)
    assert free.shape == constrained.shape and (free >= 0).all()

"""Next-item models: the NumPy recurrent step equals Keras, SASRec is causal, the recommenders
learn an obvious sequence, score explicit histories like fitted ones and refuse bad input."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest

from reclib.models.item_lm import ItemGPT2Recommender
from reclib.models.sequence_encoders import RecurrentEncoder, SASRec, recurrent_step
from reclib.models.sequential import HSTURecommender, RecurrentRecommender, SASRecRecommender


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_numpy_step_equals_the_keras_layer(cell):
    keras.utils.set_random_seed(0)
    layer = (keras.layers.GRU if cell == "gru" else keras.layers.LSTM)(6, return_sequences=True)
    x = np.random.default_rng(0).normal(size=(3, 4, 5)).astype("float32")
    expected = keras.ops.convert_to_numpy(layer(x))
    state = tuple(np.zeros((3, 6), np.float32) for _ in range(1 if cell == "gru" else 2))
    for t in range(4):
        state = recurrent_step(cell, layer.get_weights(), x[:, t], state)
        np.testing.assert_allclose(state[0], expected[:, t], atol=1e-5)


def test_sasrec_position_t_never_sees_later_items():
    keras.utils.set_random_seed(0)
    model = SASRec(n_items=20, max_length=6, embedding_dim=8, n_blocks=2, n_heads=2, dropout=0.0)
    a = np.array([[0, 0, 3, 4, 5, 6]], np.int32)
    b = np.array([[0, 0, 3, 4, 17, 11]], np.int32)              # differs from position 4 on
    ha, hb = (keras.ops.convert_to_numpy(model(x)) for x in (a, b))
    np.testing.assert_allclose(ha[:, :4], hb[:, :4], atol=1e-6)
    assert np.abs(ha[:, 4:] - hb[:, 4:]).max() > 1e-3
    _, scores = model(a, return_attention=True)
    weights = keras.ops.convert_to_numpy(scores[0])[0]          # (heads, L, L)
    upper = np.triu(np.ones((6, 6), bool), k=1)
    assert np.all(weights[:, upper] == 0.0)                      # nothing after t
    assert np.all(weights[:, 2:, :2] == 0.0)                     # nothing on padding
    np.testing.assert_allclose(weights[:, 2:].sum(-1), 1.0, atol=1e-6)


def _cyclic(n_users=60, n_items=12, length=15, seed=0):
    """Users walking the cycle 0 -> 1 -> ... -> n_items-1 -> 0 from random starts."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        start = int(rng.integers(n_items))
        rows += [(u, f"i{(start + t) % n_items}", t) for t in range(length)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])


@pytest.mark.parametrize("make", [
    lambda: RecurrentRecommender("gru", max_length=8, embedding_dim=16, epochs=60, learning_rate=0.01, dropout=0.0),
    lambda: RecurrentRecommender("lstm", max_length=8, embedding_dim=16, epochs=60, learning_rate=0.01, dropout=0.0),
    lambda: SASRecRecommender(max_length=8, embedding_dim=16, n_blocks=1, epochs=60, learning_rate=0.01, dropout=0.0),
    lambda: ItemGPT2Recommender(max_length=8, embedding_dim=16, n_layers=1, epochs=60, learning_rate=0.01,
                                dropout=0.0),
    lambda: HSTURecommender(max_length=8, embedding_dim=16, n_blocks=1, epochs=60, learning_rate=0.01, dropout=0.0),
    lambda: SASRecRecommender(max_length=8, embedding_dim=16, n_blocks=1, epochs=60, learning_rate=0.01, dropout=0.0,
                              normalize=True, temperature=0.1, separate_output=True),
], ids=["gru", "lstm", "sasrec", "gpt2", "hstu", "sasrec-normalized-separate"])
def test_recommenders_learn_the_next_item_of_a_cycle(make):
    data = _cyclic()
    model = make().fit(data)
    top = model.recommend(data["user_id"].unique(), k=1, exclude_seen=False)
    last = data.sort_values("timestamp").groupby("user_id")["item_id"].last()
    expected = last.map(lambda i: f"i{(int(i[1:]) + 1) % 12}")
    assert (top.set_index("user_id")["item_id"] == expected).mean() == 1.0
    # an explicit history scores like the fitted one; the state path agrees with the batch path
    histories = data.sort_values(["user_id", "timestamp"]).groupby("user_id")["item_id"].apply(list)
    np.testing.assert_allclose(model.score_histories(histories.tolist()[:5]), model.score(histories.index[:5]),
                               rtol=1e-5, atol=1e-5)
    # within one window (8 items) the real-time state equals re-encoding (a recurrent state would
    # otherwise remember more than the window)
    history = histories.iloc[0][:8]
    state = model.advance(model.start_state(history[:-1]), history[-1])
    np.testing.assert_allclose(model.state_scores(state), model.score_histories([history])[0], rtol=1e-4, atol=1e-4)


def test_item_vectors_initialise_the_embeddings():
    from reclib.features.content import ItemFeatures
    data = _cyclic(n_users=20)
    ids = np.array(sorted(data["item_id"].unique()))
    vectors = np.random.default_rng(0).normal(size=(len(ids), 10))
    model = SASRecRecommender(max_length=8, embedding_dim=4, n_blocks=1, epochs=1, learning_rate=1e-9)
    model.fit(data, item_features=ItemFeatures(ids, vectors=vectors))
    table = model.item_table_
    centred = vectors - vectors.mean(0)
    top = np.linalg.svd(centred, full_matrices=False)[2][:4]
    projected = centred @ top.T
    # the table is the projection up to one positive scale (lr 1e-9: unchanged by training)
    scale = np.linalg.lstsq(projected.ravel()[:, None], table.ravel(), rcond=None)[0][0]
    assert scale > 0
    np.testing.assert_allclose(table, scale * projected, atol=1e-5)


def test_bad_input_is_refused_before_training():
    data = _cyclic(n_users=5)
    with pytest.raises(ValueError, match="timestamp"):
        SASRecRecommender().fit(data.drop(columns="timestamp"))
    with pytest.raises(ValueError, match="dropout"):
        SASRecRecommender(dropout=1.0)
    with pytest.raises(ValueError, match="n_heads"):
        SASRecRecommender(embedding_dim=10, n_heads=3)
    with pytest.raises(ValueError, match="cell"):
        RecurrentRecommender(cell="rnn")
    with pytest.raises(ValueError, match="loss='gbce' needs n_sampled"):
        SASRecRecommender(loss="gbce")
    with pytest.raises(ValueError, match="loss='bpr'"):
        HSTURecommender(loss="bpr")
    with pytest.raises(TypeError, match="normalize must be True or False"):
        SASRecRecommender(normalize="yes")
    with pytest.raises(ValueError, match="calibration"):
        SASRecRecommender(n_sampled=8, loss="gbce", calibration=1.5)
    with pytest.raises(ValueError, match="not seen at fit"):
        RecurrentRecommender(max_length=4, embedding_dim=4, epochs=1).fit(data).score_histories([["nope"]])


def test_observe_appends_events_without_training():
    data = _cyclic(n_users=20)
    last = data.sort_values("timestamp").groupby("user_id").tail(1)
    model = SASRecRecommender(max_length=8, embedding_dim=8, n_blocks=1, epochs=2).fit(data.drop(last.index))
    before = model.keras_model_.get_weights()
    fitted_scores = model.score(np.sort(data["user_id"].unique()))
    observed = model.observe(last)
    histories = data.sort_values(["user_id", "timestamp"]).groupby("user_id")["item_id"].apply(list)
    np.testing.assert_allclose(observed.score(histories.index), model.score_histories(histories.tolist()), atol=1e-5)
    assert all(np.array_equal(a, b) for a, b in zip(before, observed.keras_model_.get_weights()))
    np.testing.assert_array_equal(model.score(np.sort(data["user_id"].unique())), fitted_scores)  # unchanged
    model = observed
    with pytest.raises(ValueError, match="not seen at fit"):
        model.observe(last.assign(item_id="unknown"))
    stored = model.events_.copy()
    bad = [(last, "2 event\\(s\\) of observe are already stored"),              # the same events again
           (data.head(1), "already stored"),                                        # an event of fit
           (last.assign(timestamp=np.nan), "column 'timestamp': .*null values"),
           (last.assign(timestamp="2024-01-01"), "column 'timestamp': .*non-numeric"),
           (last.assign(user_id=None), "column 'user_id': .*null values"),
           (pd.concat([last.iloc[:1], last.iloc[:1]]), "duplicate the key"),
           (last.drop(columns="timestamp"), "column 'timestamp' is missing")]
    for events, message in bad:
        with pytest.raises(ValueError, match=message):
            model.observe(events.head(2) if message.startswith("2 event") else events)
    pd.testing.assert_frame_equal(model.events_, stored)                  # nothing was stored


def test_gpt2_early_stops_on_validate_and_keeps_the_best_epoch():
    data = _cyclic(n_users=20)
    scores = iter([0.1, 0.3, 0.2, 0.2, 0.9])
    model = ItemGPT2Recommender(max_length=8, embedding_dim=8, n_layers=1, epochs=5, patience=1)
    model.fit(data, validate=lambda m: {"ndcg": next(scores)})
    assert model.best_epoch_ == 2 and len(model.history_) == 4       # stopped when 2 epochs > patience 1
    assert model.history_["val_ndcg"].tolist() == [0.1, 0.3, 0.2, 0.2]
    best = ItemGPT2Recommender(max_length=8, embedding_dim=8, n_layers=1, epochs=2).fit(data)
    np.testing.assert_array_equal(model.score(data["user_id"].unique()), best.score(data["user_id"].unique()))
    recall = iter([0.5, 0.1, 0.1])        # the monitored metric is a parameter, as for the Keras models
    other = ItemGPT2Recommender(max_length=8, embedding_dim=8, n_layers=1, epochs=5, patience=1, monitor="recall")
    other.fit(data, validate=lambda m: {"ndcg": 1.0, "recall": next(recall)})
    assert other.best_epoch_ == 1 and len(other.history_) == 3
    with pytest.raises(ValueError, match="without monitor='hr'"):
        ItemGPT2Recommender(max_length=8, embedding_dim=8, n_layers=1, epochs=2, monitor="hr").fit(
            data, validate=lambda m: {"ndcg": 1.0})


def _tiny_gpt2(activation="gelu_pytorch_tanh", seed=0):
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=21, n_positions=6, n_embd=8, n_layer=2, n_head=2, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0, pad_token_id=0,
                        activation_function=activation)
    return GPT2LMHeadModel(config).eval()


def test_gpt2_logits_at_trained_positions_equal_the_full_output():
    import torch
    import torch.nn.functional as F
    from reclib.models.item_lm import next_item_logits
    model = _tiny_gpt2()
    windows = torch.tensor([[0, 0, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12], [0, 0, 0, 0, 0, 13]])
    targets = torch.tensor([[0, 0, 4, 5, 6, 2], [0, 0, 0, 11, 12, 1], [0, 0, 0, 0, 0, 20]])
    full = model(input_ids=windows, attention_mask=(windows > 0).long()).logits[..., 1:]   # (3, 6, 20)
    trained = targets > 0
    picked = next_item_logits(model, windows, trained)
    assert picked.shape == (8, 20)                               # 4 + 3 + 1 trained positions
    torch.testing.assert_close(picked, full[trained], rtol=0, atol=1e-6)
    torch.testing.assert_close(next_item_logits(model, windows), full[:, -1], rtol=0, atol=1e-6)
    # the loss: the cross-entropy over every position with padding ignored (the former form)
    old = F.cross_entropy(full.reshape(-1, 20), (targets - 1).reshape(-1), ignore_index=-1)
    new = F.cross_entropy(picked, targets[trained] - 1)
    torch.testing.assert_close(new, old, rtol=0, atol=1e-6)
    # padding never reaches a real position: other codes in the padding slots change nothing
    repadded = torch.where(windows > 0, windows, torch.tensor(17))
    hidden = model.transformer(input_ids=repadded, attention_mask=(windows > 0).long()).last_hidden_state
    torch.testing.assert_close(hidden[trained] @ model.lm_head.weight[1:].T, picked, rtol=0, atol=1e-6)


def test_gpt2_fused_gelu_is_gpt2s_tanh_gelu():
    import torch
    fused, spelt = _tiny_gpt2("gelu_pytorch_tanh"), _tiny_gpt2("gelu_new")
    spelt.load_state_dict(fused.state_dict())
    windows = torch.tensor([[0, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13]])
    with torch.no_grad():
        a, b = fused(input_ids=windows).logits, spelt(input_ids=windows).logits
    assert a.abs().max() > 0.1
    torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    x = torch.linspace(-6, 6, 121)
    expected = 0.5 * x * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (x + 0.044715 * x ** 3)))
    torch.testing.assert_close(fused.transformer.h[0].mlp.act(x), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("make", [
    lambda: SASRec(n_items=20, max_length=6, embedding_dim=8, n_blocks=1, n_heads=2, dropout=0.0),
    lambda: RecurrentEncoder(20, 8, dropout=0.0),
], ids=["sasrec", "gru"])
def test_sequence_loss_scores_trained_positions_only_and_averages_over_all(make):
    keras.utils.set_random_seed(0)
    model = make()
    items = np.array([[0, 0, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12], [0, 0, 0, 0, 0, 13]], np.int32)
    targets = np.array([[0, 0, 4, 5, 6, 2], [0, 0, 0, 11, 12, 1], [0, 0, 0, 0, 0, 20]], np.int32)
    batch = {"items": items, "targets": targets}
    hidden = model(items)
    # by hand: softmax cross-entropy of the 8 trained positions, summed, over all 3 x 6 positions
    h = keras.ops.convert_to_numpy(hidden).reshape(-1, 8)
    logits = h @ keras.ops.convert_to_numpy(model.item_table()).T                    # (18, 20)
    top = logits.max(1, keepdims=True)
    log_p = logits - top - np.log(np.exp(logits - top).sum(1, keepdims=True))
    t = targets.ravel()
    expected = -log_p[t > 0, t[t > 0] - 1].sum() / 18
    model.jit_compile = False                                      # gathers the 8 trained rows
    gathered = float(keras.ops.convert_to_numpy(model.compute_loss(batch, y_pred=hidden)))
    model.jit_compile = True                                       # static shapes: all 18, padding weight 0
    weighted = float(keras.ops.convert_to_numpy(model.compute_loss(batch, y_pred=hidden)))
    assert expected > 1.0
    assert gathered == pytest.approx(expected, rel=1e-5) and weighted == pytest.approx(expected, rel=1e-5)


def test_gpt2_feed_forward_dim_sets_the_inner_width_and_defaults_to_gpt2s():
    frame = pd.DataFrame({"user_id": np.repeat([1, 2, 3], 6), "item_id": np.tile(np.arange(6), 3),
                          "timestamp": np.tile(np.arange(6), 3)})
    default = ItemGPT2Recommender(max_length=4, embedding_dim=8, n_layers=1, epochs=1, device="cpu").fit(frame)
    narrow = ItemGPT2Recommender(max_length=4, embedding_dim=8, n_layers=1, epochs=1, device="cpu",
                                 feed_forward_dim=8).fit(frame)
    assert default.torch_model_.transformer.h[0].mlp.c_fc.weight.shape == (8, 32)     # GPT-2: 4 x width
    assert narrow.torch_model_.transformer.h[0].mlp.c_fc.weight.shape == (8, 8)
    assert narrow.get_params()["feed_forward_dim"] == 8 and default.get_params()["feed_forward_dim"] is None
    for bad in (0, -1, 2.5, "8"):
        with pytest.raises((ValueError, TypeError), match="feed_forward_dim"):
            ItemGPT2Recommender(feed_forward_dim=bad)


# -- ItemGPT2Recommender's device and precision (a CUDA fit is checked by the ``gpu`` test) ------------
def _tiny_lm(**params) -> ItemGPT2Recommender:
    return ItemGPT2Recommender(**{**dict(max_length=8, embedding_dim=8, n_layers=1, epochs=2, device="cpu"), **params})


@pytest.mark.parametrize("params, match", [
    ({"device": "gpu"}, "device"), ({"device": "cuda:"}, "device"), ({"device": "cuda:-1"}, "device"),
    ({"device": "cuda "}, "device"), ({"device": 1}, "device"), ({"device": None}, "device"),
    ({"precision": "float32"}, "precision"), ({"precision": "bfloat"}, "precision"), ({"precision": 16}, "precision"),
])
def test_gpt2_bad_device_or_precision_raise_naming_it(params, match):
    with pytest.raises(ValueError, match=match):
        ItemGPT2Recommender(**params)


def test_gpt2_device_and_precision_are_constructor_parameters():
    from reclib.base import clone
    assert {"device": "auto", "precision": None}.items() <= ItemGPT2Recommender().get_params().items()
    model = ItemGPT2Recommender(device="cuda:0", precision="bfloat16")      # resolved at fit only
    assert clone(model).get_params() == model.get_params()
    assert model.get_params()["device"] == "cuda:0" and model.get_params()["precision"] == "bfloat16"
    with pytest.raises(ValueError, match="device"):
        model.set_params(device="tpu")


def test_resolve_device(monkeypatch):
    import torch

    from reclib.models.torch_device import resolve_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match=r"device='cuda:0', but no CUDA device is visible"):
        resolve_device("cuda:0")
    with pytest.raises(ValueError, match="precision='bfloat16' runs only on a CUDA device"):
        resolve_device("auto", "bfloat16")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda:0", "bfloat16") == "cuda:0"
    with pytest.raises(ValueError, match=r"device='cuda:1', but only 1 CUDA device\(s\) are visible"):
        resolve_device("cuda:1")


def test_gpt2_cuda_where_none_is_visible_raises(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = _cyclic(n_users=5)
    with pytest.raises(ValueError, match=r"device='cuda', but no CUDA device is visible"):
        _tiny_lm(device="cuda").fit(data)
    with pytest.raises(ValueError, match="precision='bfloat16' runs only on a CUDA device"):
        _tiny_lm(device="cpu", precision="bfloat16").fit(data)


def test_gpt2_on_the_cpu_equals_the_default_here_and_loads_the_same(tmp_path):
    import torch
    data = _cyclic(n_users=20)
    users = data["user_id"].unique()
    model = _tiny_lm().fit(data)
    assert model.device_ == "cpu" and list(model.history_.columns) == ["epoch", "loss", "seconds"]
    assert (model.history_["seconds"] > 0).all()
    if not torch.cuda.is_available():                      # "auto" is the CPU here
        default = _tiny_lm(device="auto").fit(data)
        assert default.device_ == "cpu"
        np.testing.assert_array_equal(default.score(users), model.score(users))
        np.testing.assert_array_equal(default.history_["loss"], model.history_["loss"])
    loaded = ItemGPT2Recommender.load(model.save(tmp_path / "gpt2.reclib"))
    assert loaded.device_ == "cpu"
    np.testing.assert_array_equal(loaded.score(users), model.score(users))


@pytest.mark.gpu
@pytest.mark.parametrize("precision", [None, "bfloat16"])
def test_gpt2_fits_on_cuda_close_to_the_cpu(precision, tmp_path, monkeypatch, top10_overlap):
    import torch
    data = _cyclic(n_users=80, n_items=40, length=20)
    users = data["user_id"].unique()
    params = dict(embedding_dim=16, epochs=3, dropout=0.0, learning_rate=0.01)
    cpu = _tiny_lm(**params).fit(data)
    gpu = _tiny_lm(**params, device="cuda", precision=precision).fit(data)
    assert gpu.device_ == "cuda" and next(gpu.torch_model_.parameters()).is_cuda
    scores = gpu.score(users)
    assert isinstance(scores, np.ndarray) and scores.dtype == np.float32 and np.isfinite(scores).all()
    assert top10_overlap(scores, cpu.score(users)) >= 0.5
    assert (gpu.history_["seconds"] > 0).all() and np.isfinite(gpu.history_["loss"]).all()
    assert np.isfinite(gpu.score_histories([["i1", "i2"]])).all()
    loaded = ItemGPT2Recommender.load(gpu.save(tmp_path / "gpu.reclib"))       # back on the GPU here
    assert loaded.device_ == "cuda" and next(loaded.torch_model_.parameters()).is_cuda
    np.testing.assert_allclose(loaded.score(users), scores, rtol=1e-5, atol=1e-5)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)          # a machine without a GPU
    on_cpu = ItemGPT2Recommender.load(tmp_path / "gpu.reclib")
    assert on_cpu.device_ == "cpu" and not next(on_cpu.torch_model_.parameters()).is_cuda
    np.testing.assert_allclose(on_cpu.score(users), scores, rtol=1e-3, atol=1e-3)

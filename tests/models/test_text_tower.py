"""TextTowerRecommender: its torch loss equals RetrievalTask's, partial fine-tuning freezes exactly
the bottom layers, k=0 is the frozen-encoder model, same seed -> same scores, argument checks, the
device and precision parameters (a CUDA fit is checked by the ``gpu`` test)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from reclib.features import ItemFeatures  # noqa: E402
from reclib.models.tasks import RetrievalTask  # noqa: E402
from reclib.models.text_tower import TextTowerRecommender, in_batch_softmax_loss  # noqa: E402

TEXTS = pd.Series({10: "Toy Story (1995). Animation, Children's, Comedy.",
                   11: "GoldenEye (1995). Action, Adventure, Thriller.",
                   12: "Four Rooms (1995). Thriller.",
                   13: "Get Shorty (1995). Action, Comedy, Drama.",
                   14: "Copycat (1995). Crime, Drama, Thriller.",
                   15: "Babe (1995). Children's, Comedy, Drama.",
                   16: "Heat (1995). Action, Crime, Thriller.",
                   17: "Jumanji (1995). Adventure, Children's, Fantasy."})
TRAIN = pd.DataFrame({"user_id": [1, 1, 1, 2, 2, 3, 3, 3, 4, 4, 4, 4],
                      "item_id": [10, 11, 13, 10, 15, 11, 12, 16, 13, 14, 16, 10],
                      "rating": 4.0, "timestamp": np.arange(12)})      # item 17 never rated: cold
USERS = np.array([1, 2, 3, 4])


def as_features(texts: pd.Series) -> ItemFeatures:
    """``texts`` (indexed by item id) as the ItemFeatures the text tower fits with."""
    return ItemFeatures(texts.index.to_numpy(), texts=texts.to_numpy())


FEATURES = as_features(TEXTS)


def tiny(**params) -> TextTowerRecommender:
    """A tiny model on the CPU (the tests below compare with CPU tensors), unless ``device`` is given."""
    settings = dict(trainable_layers=1, embedding_dim=8, epochs=2, batch_size=4, max_length=16,
                    encoder_learning_rate=1e-3, random_state=3, device="cpu")
    return TextTowerRecommender(**{**settings, **params})


@pytest.mark.parametrize("log_q", [True, False])
def test_loss_equals_retrieval_task(log_q):
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=(6, 4)).astype(np.float32)
    ids = np.array([3, 1, 3, 2, 1, 5], np.int32)                     # two accidental hits
    lq = np.log(rng.uniform(0.05, 0.5, size=6)).astype(np.float32) if log_q else None
    expected = float(RetrievalTask(temperature=0.3).loss(users, items, ids, lq))
    ours = in_batch_softmax_loss(torch.from_numpy(users), torch.from_numpy(items), torch.from_numpy(ids),
                                 None if lq is None else torch.from_numpy(lq), 0.3)
    assert ours.item() == pytest.approx(expected, abs=1e-5)


def test_loss_of_a_process_rows_adds_up_to_the_whole_batch():
    """Several processes: each scores its rows (from ``first_row``) against the gathered columns;
    the sums of the shards are the whole batch's loss, accidental hits and log q included."""
    rng = np.random.default_rng(1)
    users, items = (torch.from_numpy(rng.normal(size=(6, 4)).astype(np.float32)) for _ in range(2))
    ids, lq = torch.tensor([3, 1, 3, 2, 1, 5]), torch.log(torch.tensor([0.1, 0.2, 0.1, 0.3, 0.2, 0.1]))
    whole = in_batch_softmax_loss(users, items, ids, lq, 0.3)
    shards = sum(in_batch_softmax_loss(users[a:a + 2], items, ids, lq, 0.3, first_row=a, reduction="sum")
                 for a in (0, 2, 4))
    assert shards.item() == pytest.approx(6 * whole.item(), rel=1e-6)
    with pytest.raises(ValueError, match="first_row"):
        in_batch_softmax_loss(users[:2], items, ids, lq, 0.3, first_row=5)


def test_loss_worked_example():
    # two rows, identical items -> column 1 of row 0 and column 0 of row 1 masked: loss 0
    u = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    v = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert in_batch_softmax_loss(u, v, torch.tensor([7, 7]), None, 1.0).item() == pytest.approx(0.0, abs=1e-7)
    # distinct items: row 0 logits (1, 1), row 1 (0, 0): loss log 2
    assert in_batch_softmax_loss(u, v, torch.tensor([7, 8]), None, 1.0).item() == pytest.approx(np.log(2), abs=1e-6)


@pytest.fixture(scope="module")
def fitted():
    start = time.perf_counter()
    model = tiny().fit(TRAIN, item_features=FEATURES)
    return model, time.perf_counter() - start


def test_tiny_fit_is_fast_and_scores_cold_items(fitted):
    model, seconds = fitted
    assert seconds < 30
    scores = model.score(np.array([1, 4]))
    assert scores.shape == (2, len(TEXTS)) and np.isfinite(scores).all()
    assert list(model.item_ids_) == list(TEXTS.index)               # the cold item 17 is in the catalogue
    assert np.allclose(np.linalg.norm(model.item_embeddings(), axis=1), 1.0, atol=1e-5)
    assert len(model.history_) == 2 and np.isfinite(model.history_["loss"]).all()


def test_only_the_top_layers_change(fitted):
    model, _ = fitted
    from transformers import AutoModel

    from reclib.features.text import resolve_model

    original = AutoModel.from_pretrained(resolve_model(model.model))
    before, after = dict(original.named_parameters()), dict(model.torch_model_.named_parameters())
    for name, value in after.items():
        unchanged = torch.equal(value, before[name])
        assert unchanged == (not name.startswith("encoder.layer.5.")), name


def test_k0_is_the_frozen_encoder():
    model = tiny(trainable_layers=0).fit(TRAIN, item_features=FEATURES)
    from transformers import AutoModel

    from reclib.features.text import resolve_model

    original = dict(AutoModel.from_pretrained(resolve_model(model.model)).named_parameters())
    assert all(torch.equal(v, original[n]) for n, v in model.torch_model_.named_parameters())
    # the cached hidden states are the encoder's own last layer
    tokens = model._mask
    assert model._cached.shape[:2] == tokens.shape and len(model._top) == 0


def test_same_seed_same_scores(fitted):
    model, _ = fitted
    again = tiny().fit(TRAIN, item_features=FEATURES)
    users = np.array([1, 2, 3, 4])
    assert np.array_equal(model.score(users), again.score(users))
    other = tiny(random_state=4).fit(TRAIN, item_features=FEATURES)
    assert not np.allclose(model.score(users), other.score(users))


_FIT_IN_A_FRESH_PROCESS = """
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import reclib
reclib.quiet()
from test_text_tower import FEATURES, TRAIN, USERS, tiny
np.save(sys.argv[2], tiny().fit(TRAIN, item_features=FEATURES).score(USERS))
"""


@pytest.mark.slow
def test_same_seed_same_scores_in_two_fresh_processes(tmp_path):
    """Bit-identical on one machine across processes too (no frozen states shared in memory):
    the CPU kernels the tower uses are deterministic for a fixed thread count."""
    import subprocess
    import sys
    from pathlib import Path

    runs = []
    for n in range(2):
        out = tmp_path / f"scores{n}.npy"
        subprocess.run([sys.executable, "-c", _FIT_IN_A_FRESH_PROCESS, str(Path(__file__).parent), str(out)],
                       check=True, capture_output=True, timeout=300)
        runs.append(np.load(out))
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("params, match", [
    ({"trainable_layers": 7}, "trainable_layers"), ({"trainable_layers": -1}, "trainable_layers"),
    ({"trainable_layers": 1.5}, "trainable_layers"), ({"embedding_dim": 0}, "embedding_dim"),
    ({"id_dropout": 1.0}, "id_dropout"), ({"temperature": 0}, "temperature"),
    ({"encoder_learning_rate": float("nan")}, "encoder_learning_rate"), ({"max_length": 1}, "max_length"),
    ({"use_item_id": "yes"}, "use_item_id"), ({"model": ""}, "model"), ({"batch_size": 0}, "batch_size"),
    ({"device": "gpu"}, "device"), ({"device": "cuda:"}, "device"), ({"device": "cuda:x"}, "device"),
    ({"device": "CPU"}, "device"), ({"device": 0}, "device"), ({"device": None}, "device"),
    ({"patience": -1}, "patience"), ({"monitor": ""}, "monitor"), ({"monitor": 3}, "monitor"),
    ({"precision": "float16"}, "precision"), ({"precision": "bf16"}, "precision"), ({"precision": True}, "precision"),
])
def test_bad_arguments_raise_naming_the_parameter(params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        TextTowerRecommender(**params)


def test_bad_item_texts_raise():
    with pytest.raises(TypeError, match="item_features must be an ItemFeatures"):
        tiny().fit(TRAIN, item_features=TEXTS)
    with pytest.raises(ValueError, match="needs item_features.texts"):
        tiny().fit(TRAIN, item_features=ItemFeatures(TEXTS.index.to_numpy()))
    with pytest.raises(ValueError, match="not in item_features.item_ids"):
        tiny().fit(TRAIN, item_features=as_features(TEXTS.drop(16)))
    with pytest.raises(ValueError, match="item_features.texts must hold non-blank strings; item 12"):
        as_features(TEXTS.replace({TEXTS[12]: "  "}))
    with pytest.raises(ValueError, match="one entry per item id"):
        ItemFeatures(TEXTS.index.to_numpy(), texts=TEXTS.to_numpy()[:-1])


@pytest.mark.gpu
@pytest.mark.parametrize("precision", [None, "bfloat16"])
def test_fits_on_cuda_close_to_the_cpu(precision, tmp_path, monkeypatch, top10_overlap):
    rng = np.random.default_rng(0)
    keys = rng.choice(150 * 60, size=1500, replace=False)
    data = pd.DataFrame({"user_id": keys // 60, "item_id": keys % 60})
    genres = ["Action", "Comedy", "Drama", "Thriller", "Romance", "Horror", "Animation"]
    texts = pd.Series({i: f"Film {i} ({1950 + i}). {genres[i % 7]}, {genres[i * 3 % 7]}." for i in range(64)})
    users = np.sort(data["user_id"].unique())
    params = dict(trainable_layers=1, embedding_dim=16, epochs=2, batch_size=256, max_length=16)
    cpu = tiny(**params).fit(data, item_features=as_features(texts))
    gpu = tiny(**params, device="cuda", precision=precision).fit(data, item_features=as_features(texts))
    assert gpu.device_ == "cuda" and next(gpu.torch_model_.parameters()).is_cuda and gpu._cached.is_cuda
    scores = gpu.score(users)
    assert isinstance(scores, np.ndarray) and scores.dtype == np.float32 and np.isfinite(scores).all()
    assert top10_overlap(scores, cpu.score(users)) >= 0.5
    assert (gpu.history_["seconds"] > 0).all() and np.isfinite(gpu.history_["loss"]).all()
    loaded = TextTowerRecommender.load(gpu.save(tmp_path / "gpu.reclib"))      # back on the GPU here
    assert loaded.device_ == "cuda" and next(loaded.torch_model_.parameters()).is_cuda
    np.testing.assert_array_equal(loaded.score(users), scores)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)          # a machine without a GPU
    on_cpu = TextTowerRecommender.load(tmp_path / "gpu.reclib")
    assert on_cpu.device_ == "cpu" and not on_cpu._cached.is_cuda
    assert all(not p.is_cuda for p in on_cpu.torch_model_.parameters())
    np.testing.assert_array_equal(on_cpu.score(users), scores)             # the tables were on the CPU

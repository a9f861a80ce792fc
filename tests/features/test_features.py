"""Content features, the text encoder, the embedding cache and text-based recommenders."""

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from reclib.cf import EASE, ImplicitALS
from reclib.features import (ContentRecommender, EmbeddingCache, FeatureToFactorRecommender,
                             HybridRecommender, TextEncoder, genre_matrix, item_text, pool,
                             recommend_for_text, softmax_scores, tfidf_matrix, user_profiles)
from reclib.features.content import ItemFeatures


@pytest.fixture(scope="session")
def encoder(tmp_path_factory):
    return TextEncoder(cache_dir=tmp_path_factory.mktemp("emb"), show_progress=False)


def fake_compute(calls):
    def compute(texts):
        calls.append(list(texts))
        return np.array([[len(t), t.count("a"), 1.0] for t in texts], dtype=np.float32)
    return compute


def test_cache_serves_hits_and_recomputes_only_new_texts(tmp_path):
    calls = []
    cache = EmbeddingCache(tmp_path, {"model": "m", "weights": "w1"})
    first = cache.get(["a", "bb", "a"], fake_compute(calls))
    assert calls == [["a", "bb"]] and first.shape == (3, 3) and (first[0] == first[2]).all()
    again = cache.get(["bb", "ccc"], fake_compute(calls))
    assert calls[-1] == ["ccc"] and (again[0] == first[1]).all()
    assert cache.hits == 1 and cache.misses == 3   # texts served from disk, texts computed


def test_changed_model_or_text_never_serves_stale_vectors(tmp_path):
    calls = []
    EmbeddingCache(tmp_path, {"model": "m", "weights": "w1"}).get(["text"], fake_compute(calls))
    other = EmbeddingCache(tmp_path, {"model": "m", "weights": "w2"})
    other.get(["text"], fake_compute(calls))
    EmbeddingCache(tmp_path, {"model": "m", "weights": "w1"}).get(["text!"], fake_compute(calls))
    assert calls == [["text"], ["text"], ["text!"]]


def test_truncated_or_tampered_cache_is_rebuilt(tmp_path):
    calls = []
    cache = EmbeddingCache(tmp_path, "key")
    cache.get(["a", "b"], fake_compute(calls))
    data = cache.path.read_bytes()
    cache.path.write_bytes(data[: len(data) // 2])
    with pytest.warns(RuntimeWarning, match="unreadable"):
        assert cache.get(["a", "b"], fake_compute(calls)).shape == (2, 3) and calls[-1] == ["a", "b"]
    keys, vectors = cache.load()
    cache.save(keys, vectors)
    with np.load(cache.path) as npz:
        tampered = {k: npz[k] for k in npz.files}
    tampered["vectors"] = tampered["vectors"] + 1
    np.savez(cache.path, **tampered)
    with pytest.warns(RuntimeWarning, match="checksum mismatch"):
        cache.get(["a"], fake_compute(calls))
    assert calls[-1] == ["a", "b"][:1]


def test_interrupted_write_leaves_no_partial_file(tmp_path):
    """A process killed in the middle of writing the cache leaves the previous file intact."""
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from reclib.features.cache import EmbeddingCache
        cache = EmbeddingCache({str(tmp_path)!r}, "key")
        cache.get(["old"], lambda t: np.ones((len(t), 3), np.float32))
        real_savez = np.savez
        def dying_savez(handle, **arrays):
            handle.write(b"PK partial bytes")
            handle.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        np.savez = dying_savez
        cache.get(["new"], lambda t: np.zeros((len(t), 3), np.float32))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    cache = EmbeddingCache(tmp_path, "key")
    keys, vectors = cache.load()
    assert len(keys) == 1 and (vectors == 1).all(), "the old file must survive the killed write"
    calls = []
    out = cache.get(["old", "new"], fake_compute(calls))
    assert calls == [["new"]] and (out[0] == 1).all()
    leftovers = [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    assert len(leftovers) <= 1  # the killed writer's temporary file, never read


def test_pooling_equals_masked_mean_by_hand():
    rng = np.random.default_rng(0)
    hidden = rng.normal(size=(2, 4, 3))
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]])
    expected = np.stack([hidden[0, :3].mean(0), hidden[1, :2].mean(0)])
    np.testing.assert_allclose(pool(hidden, mask, "mean"), expected)
    np.testing.assert_allclose(pool(hidden, mask, "cls"), hidden[:, 0])
    with pytest.raises(ValueError, match="pooling"):
        pool(hidden, mask, "max")


def test_encoder_vectors(encoder):
    texts = ["A space adventure with robots.", "A romantic comedy in Paris.", "Robots fight in space."]
    vectors = encoder.encode(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    alone = encoder.encode_uncached([texts[2]])
    np.testing.assert_allclose(alone[0], vectors[2], atol=1e-5)   # padding does not change a vector
    sims = vectors @ vectors.T
    assert sims[0, 2] > sims[0, 1] + 0.2
    with pytest.raises(ValueError, match="entry 1"):
        encoder.encode(["ok", None])


def test_encoder_second_run_comes_from_cache(encoder):
    texts = [f"film number {i}" for i in range(20)]
    first = encoder.encode(texts)
    hits = encoder.cache.hits
    np.testing.assert_array_equal(encoder.encode(texts), first)
    assert encoder.cache.hits == hits + 20


def test_encoder_arguments_are_checked():
    with pytest.raises(ValueError, match="pooling"):
        TextEncoder(pooling="max")
    with pytest.raises(ValueError, match="device"):
        TextEncoder(device="tpu")


def test_genres_text_and_tfidf():
    items = pd.DataFrame({"title": ["Alpha", "Beta"], "year": pd.array([1995, None], dtype="Int64"),
                          "genres": [["Comedy", "Drama"], ["Drama"]]})
    assert item_text(items).tolist() == ["Alpha (1995). Comedy, Drama.", "Beta. Drama."]
    np.testing.assert_array_equal(genre_matrix(items["genres"]), [[1, 1], [0, 1]])
    with pytest.raises(ValueError, match="'genres'"):
        genre_matrix(items["genres"], vocabulary=["Drama"])
    m, vec = tfidf_matrix(["red apple", "green apple", "red car"], stop_words=None, ngram_range=(1, 1),
                          sublinear_tf=False)
    idf = {w: np.log(4 / (1 + df)) + 1 for w, df in {"apple": 2, "red": 2, "car": 1, "green": 1}.items()}
    row = np.array([idf[w] if w in ("red", "apple") else 0.0 for w in vec.get_feature_names_out()])
    np.testing.assert_allclose(m[0].toarray().ravel(), row / np.linalg.norm(row))


def test_user_profiles_weighted_means():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    df = pd.DataFrame({"user_id": [7, 7, 8], "item_id": [10, 11, 12], "rating": [5.0, 3.0, 4.0],
                       "timestamp": [86_400 * 10, 0, 0]})
    users, mean = user_profiles(df, vectors, [10, 11, 12])
    assert users.tolist() == [7, 8]
    np.testing.assert_allclose(mean, [[0.5, 0.5], [1.0, 1.0]])
    _, by_rating = user_profiles(df, vectors, [10, 11, 12], weighting="rating")
    np.testing.assert_allclose(by_rating[0], [2 / 2, 0.0])   # weights: 5-4+1=2 and 3-4+1=0
    _, recent = user_profiles(df, vectors, [10, 11, 12], weighting="recency", half_life_days=10)
    np.testing.assert_allclose(recent[0], [1 / 1.5, 0.5 / 1.5])
    with pytest.raises(ValueError, match="no feature vector"):
        user_profiles(df.assign(item_id=[10, 11, 99]), vectors, [10, 11, 12])


def test_content_recommender_ranks_cold_items():
    vectors = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.95, 0.05]])
    df = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [0, 1, 2]})
    model = ContentRecommender().fit(df, item_features=ItemFeatures([0, 1, 2, 3], vectors=vectors))
    assert 3 in model.item_ids_
    recs = model.recommend([1], k=1)
    assert recs.item_id.tolist() == [3]          # item 3 was never interacted with
    with pytest.raises(ValueError, match="rows"):
        ItemFeatures([0, 1], vectors=vectors)


def test_softmax_and_text_queries(encoder):
    probs = softmax_scores(np.array([[1.0, 2.0, 3.0]]), temperature=1.0)
    np.testing.assert_allclose(probs, [np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum()])
    assert softmax_scores(np.array([[0.1, 0.2]]), 0.01)[0, 1] > 0.99
    items = ["A space adventure with robots.", "A romantic comedy in Paris.", "A horror film at night."]
    recs = recommend_for_text(["scary night"], encoder, encoder.encode(items), ["s", "r", "h"], k=2)
    assert recs.item_id.iloc[0] == "h" and recs["rank"].tolist() == [1, 2]
    assert 0 < recs.probability.iloc[1] < recs.probability.iloc[0] < 1


def test_hybrid_extremes_equal_its_parts(synthetic_interactions):
    rng = np.random.default_rng(0)
    vectors, ids = rng.normal(size=(320, 8)), np.arange(320)     # 20 items never interacted with
    df = synthetic_interactions.drop(columns="rating")
    features = ItemFeatures(ids, vectors=vectors)
    cf_only = HybridRecommender(EASE(50.0), ContentRecommender(), text_weight=0.0).fit(df, item_features=features)
    text_only = HybridRecommender(EASE(50.0), ContentRecommender(), text_weight=1.0).fit(df, item_features=features)
    ease, content = EASE(50.0).fit(df), ContentRecommender().fit(df, item_features=features)
    users = [0, 1, 2]
    top_cf = cf_only.recommend(users, k=5)
    assert top_cf.item_id.tolist() == ease.recommend(users, k=5).item_id.tolist()
    assert text_only.recommend(users, k=5).item_id.tolist() == content.recommend(users, k=5).item_id.tolist()
    with pytest.raises(ValueError, match="text_weight"):
        HybridRecommender(EASE(), content, text_weight=2)


def test_feature_to_factor_map_recovers_a_linear_truth(synthetic_interactions):
    df = synthetic_interactions.drop(columns="rating")
    rng = np.random.default_rng(1)
    features = rng.normal(size=(320, 16))
    model = FeatureToFactorRecommender(ImplicitALS(n_factors=4, epochs=3, verbose=False), reg=1e-6)
    model.fit(df, item_features=ItemFeatures(np.arange(320), vectors=features))
    warm = model.factor_model.item_encoder_.transform(np.arange(300))
    fitted = features[:300] @ model.map_
    residual = np.linalg.norm(model.factor_model.item_factors_[warm] - fitted)
    # least squares: the residual is orthogonal to the features
    assert abs((features[:300].T @ (model.factor_model.item_factors_[warm] - fitted))).max() < 1e-6 * (1 + residual)
    assert model.score([0]).shape == (1, 320)

"""The embedding cache on bad files and bad arguments: another model's file, another dimension, a
corrupt file, bad compute results, and several processes writing one key at once."""

import multiprocessing
import os
import shutil

import numpy as np
import pytest
from filelock import FileLock

from reclib.checks import ParameterTypeError
from reclib.features.cache import EmbeddingCache, text_key


def vectors_of(texts, dim=3):
    """A deterministic fake encoder: each text's vector depends only on the text."""
    return np.array([[len(t) + j + sum(map(ord, t)) % 97 for j in range(dim)] for t in texts], dtype=np.float32)


class Counting:
    def __init__(self, dim=3):
        self.calls, self.dim = [], dim

    def __call__(self, texts):
        self.calls.append(list(texts))
        return vectors_of(texts, self.dim)


# -- files written for another model or dimension ---------------------------------------------------------------

def test_file_of_another_model_is_never_served(tmp_path):
    a = EmbeddingCache(tmp_path, {"model": "a"})
    a.get(["x", "y"], lambda t: np.full((len(t), 3), 7.0, np.float32))
    b = EmbeddingCache(tmp_path, {"model": "b"})
    shutil.copy(a.path, b.path)                     # a's file under b's name
    compute = Counting()
    with pytest.warns(RuntimeWarning, match="model key"):
        out = b.get(["x", "y"], compute)
    assert compute.calls == [["x", "y"]] and not (out == 7.0).any()
    np.testing.assert_array_equal(b.get(["x"], compute), vectors_of(["x"]))   # rebuilt for b, served now
    assert len(compute.calls) == 1


def test_file_of_another_model_is_discarded_by_load(tmp_path):
    a, b = EmbeddingCache(tmp_path, "a"), EmbeddingCache(tmp_path, "b")
    a.get(["x"], Counting())
    shutil.copy(a.path, b.path)
    with pytest.warns(RuntimeWarning, match="model key 'a'"):
        keys, vectors = b.load()
    assert len(keys) == 0 and not b.path.exists()


def test_file_of_another_dimension_is_rebuilt(tmp_path):
    EmbeddingCache(tmp_path, "m", dim=3).get(["x", "y"], Counting(3))
    wide = EmbeddingCache(tmp_path, "m", dim=4)
    compute = Counting(4)
    with pytest.warns(RuntimeWarning, match="3-d vectors, expected 4-d"):
        out = wide.get(["x"], compute)
    assert out.shape == (1, 4) and compute.calls == [["x"]]
    assert EmbeddingCache(tmp_path, "m", dim=4).load()[1].shape == (1, 4)


def test_compute_of_another_dimension_is_rejected(tmp_path):
    EmbeddingCache(tmp_path, "m").get(["x"], Counting(3))
    cache = EmbeddingCache(tmp_path, "m")           # dim unknown: the file's 3 is binding
    with pytest.raises(ValueError, match="compute returned 4-d vectors; .* holds 3-d"):
        cache.get(["new"], Counting(4))
    with pytest.raises(ValueError, match="compute's result .* 4-d vectors; the cache .* expects 3-d"):
        EmbeddingCache(tmp_path, "m", dim=3).get(["new"], Counting(4))
    assert EmbeddingCache(tmp_path, "m").load()[0].tolist() == [text_key("x")]


# -- corrupt files ------------------------------------------------------------------------------------------------

def _truncate(path):
    path.write_bytes(path.read_bytes()[:40])


def _garbage(path):
    path.write_bytes(b"not a zip at all")


def _empty(path):
    path.write_bytes(b"")


def _rewrite(path, **changes):
    with np.load(path) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays.update(changes)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})


def _old_format(path):       # written by reclib before the model key and dimension were stored
    _rewrite(path, model_key=None, dim=None)


def _tampered_vectors(path):
    with np.load(path) as npz:
        _rewrite(path, vectors=npz["vectors"] + 1)


def _tampered_key(path):
    _rewrite(path, model_key=np.array("other"))


def _wrong_dim_field(path):
    _rewrite(path, dim=np.array(5))


def _int_keys(path):
    _rewrite(path, keys=np.array([1, 2]))


CORRUPTIONS = [(_truncate, "unreadable"), (_garbage, "unreadable"), (_empty, "unreadable"),
               (_tampered_vectors, "checksum"),
               (_tampered_key, "checksum"), (_wrong_dim_field, "inconsistent arrays"),
               (_int_keys, "inconsistent arrays: keys int64")]


@pytest.mark.parametrize("corrupt, reason", CORRUPTIONS, ids=[c.__name__.strip("_") for c, _ in CORRUPTIONS])
def test_corrupt_file_is_warned_about_and_rebuilt(tmp_path, corrupt, reason):
    cache = EmbeddingCache(tmp_path, "m")
    cache.get(["a", "b"], Counting())
    corrupt(cache.path)
    compute = Counting()
    with pytest.warns(RuntimeWarning, match=f"embedding cache .*{cache.path.name} is invalid .*{reason}"):
        out = cache.get(["a", "b"], compute)
    assert compute.calls == [["a", "b"]]
    np.testing.assert_array_equal(out, vectors_of(["a", "b"]))
    keys, vectors = EmbeddingCache(tmp_path, "m").load()       # the rebuilt file is valid
    assert sorted(keys.tolist()) == sorted([text_key("a"), text_key("b")])


def test_file_of_the_old_format_is_rebuilt_quietly(tmp_path, recwarn, caplog):
    cache = EmbeddingCache(tmp_path, "m")
    cache.get(["a"], Counting())
    _old_format(cache.path)
    compute = Counting()
    with caplog.at_level("INFO", logger="reclib.features.cache"):
        cache.get(["a"], compute)
    assert compute.calls == [["a"]] and not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert "older reclib" in caplog.text
    assert EmbeddingCache(tmp_path, "m").load()[0].tolist() == [text_key("a")]


@pytest.mark.parametrize("corrupt, reason", CORRUPTIONS[:2], ids=["truncate", "garbage"])
def test_load_removes_a_corrupt_file(tmp_path, corrupt, reason):
    cache = EmbeddingCache(tmp_path, "m")
    cache.get(["a"], Counting())
    corrupt(cache.path)
    with pytest.warns(RuntimeWarning, match=reason):
        keys, vectors = cache.load()
    assert keys.shape == (0,) and not cache.path.exists()


# -- bad compute results: nothing is cached -----------------------------------------------------------------------

BAD_COMPUTE = [
    (lambda t: np.full((len(t), 3), np.nan), ValueError, "NaN or ±inf in 2 row"),
    (lambda t: np.full((len(t), 3), np.inf), ValueError, "NaN or ±inf"),
    (lambda t: -np.full((len(t), 3), np.inf), ValueError, "NaN or ±inf"),
    (lambda t: np.ones((len(t) + 1, 3)), ValueError, r"compute's result for 2 texts must have shape \(2, d\)"),
    (lambda t: np.ones(len(t)), ValueError, r"compute's result .* got \(2,\)"),
    (lambda t: np.ones((len(t), 0)), ValueError, "d >= 1"),
    (lambda t: [["a", "b"]] * len(t), ParameterTypeError, "compute's result .* must be a numeric"),
    (lambda t: None, ParameterTypeError, "compute's result"),
]


@pytest.mark.parametrize("compute, error, match", BAD_COMPUTE)
def test_bad_compute_result_is_rejected_and_not_cached(tmp_path, compute, error, match):
    cache = EmbeddingCache(tmp_path, "m")
    with pytest.raises(error, match=match):
        cache.get(["a", "b"], compute)
    assert not cache.path.exists()


# -- bad arguments ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    ({"model_key": None}, ParameterTypeError, "model_key must be a string or a dict"),
    ({"model_key": 123}, ParameterTypeError, "model_key must be a string or a dict"),
    ({"model_key": ""}, ValueError, "model_key must not be empty"),
    ({"model_key": "  "}, ValueError, "model_key must not be empty"),
    ({"model_key": {}}, ValueError, "model_key must not be empty"),
    ({"model_key": {"weights": object()}}, ParameterTypeError, "model_key must be JSON-serialisable"),
    ({"model_key": {"temperature": float("nan")}}, ParameterTypeError, "model_key must be JSON-serialisable"),
    ({"folder": None}, ParameterTypeError, "folder must be a path"),
    ({"folder": 7}, ParameterTypeError, "folder must be a path"),
    ({"folder": ""}, ParameterTypeError, "folder must be a path"),
    ({"dim": 0}, ValueError, "dim must be a positive integer"),
    ({"dim": -3}, ValueError, "dim must be a positive integer"),
    ({"dim": 2.0}, ParameterTypeError, "dim must be a positive integer"),
    ({"dim": True}, ParameterTypeError, "dim must be a positive integer"),
    ({"dim": "3"}, ParameterTypeError, "dim must be a positive integer"),
    ({"lock_timeout": 0}, ValueError, "lock_timeout"),
    ({"lock_timeout": float("nan")}, ValueError, "lock_timeout"),
    ({"lock_timeout": -1}, ValueError, "lock_timeout"),
    ({"lock_timeout": "10"}, ParameterTypeError, "lock_timeout"),
])
def test_cache_arguments(tmp_path, kwargs, error, match):
    args = {"folder": tmp_path, "model_key": "m"} | kwargs
    with pytest.raises(error, match=match):
        EmbeddingCache(**args)


@pytest.mark.parametrize("texts, compute, error, match", [
    (None, vectors_of, ParameterTypeError, "texts must be a list of strings, got NoneType"),
    ("one string", vectors_of, ParameterTypeError, "texts must be a list of strings, got str"),
    (b"bytes", vectors_of, ParameterTypeError, "texts must be a list of strings"),
    (["ok", 3], vectors_of, ParameterTypeError, "entry 1 is 3"),
    (["ok", None, None], vectors_of, ParameterTypeError, r"entry 1 is None \(2 non-strings\)"),
    (["ok"], None, ParameterTypeError, "compute must be callable"),
    (["ok"], "vectors_of", ParameterTypeError, "compute must be callable"),
])
def test_get_arguments(tmp_path, texts, compute, error, match):
    with pytest.raises(error, match=match):
        EmbeddingCache(tmp_path, "m").get(texts, compute)


@pytest.mark.parametrize("keys, vectors, error, match", [
    (np.array([text_key("a")]), np.ones((2, 3)), ValueError, r"vectors must have shape \(1, d\)"),
    (np.array([text_key("a")]), np.ones(3), ValueError, r"vectors must have shape \(1, d\)"),
    (np.array([text_key("a")]), np.array([[np.nan, 1.0]]), ValueError, "vectors holds NaN"),
    (np.array([text_key("a")]), np.array([[np.inf, 1.0]]), ValueError, "vectors holds NaN or ±inf"),
    (np.array([1]), np.ones((1, 3)), ParameterTypeError, "keys must be a 1-d array of text digests"),
    (np.array([[text_key("a")]]), np.ones((1, 3)), ParameterTypeError, "keys must be a 1-d array"),
])
def test_save_arguments(tmp_path, keys, vectors, error, match):
    cache = EmbeddingCache(tmp_path, "m")
    with pytest.raises(error, match=match):
        cache.save(keys, vectors)
    assert not cache.path.exists()


def test_text_key_needs_a_string():
    with pytest.raises(ParameterTypeError, match="text must be a string, got 5"):
        text_key(5)


# -- concurrency --------------------------------------------------------------------------------------------------

def test_a_held_lock_times_out_with_a_clear_error(tmp_path):
    cache = EmbeddingCache(tmp_path, "m", lock_timeout=0.2)
    holder = FileLock(f"{cache.path}.lock")
    with holder:
        with pytest.raises(TimeoutError, match=r"\.npz\.lock for over 0\.2 s"):
            cache.get(["a"], Counting())
    assert cache.get(["a"], Counting()).shape == (1, 3)


def _writer(folder, worker, n_texts, batch):
    cache = EmbeddingCache(folder, {"model": "shared"}, dim=3)
    texts = [f"worker {worker} text {j}" for j in range(n_texts)]
    for start in range(0, n_texts, batch):
        cache.get(texts[start:start + batch], vectors_of)


@pytest.mark.slow
@pytest.mark.parametrize("n_workers", [2, 4])
def test_concurrent_writers_lose_no_entry(tmp_path, n_workers):
    """Processes writing disjoint texts to one key at once: afterwards every text is cached."""
    n_texts, batch = 40, 4
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_writer, args=(str(tmp_path), w, n_texts, batch)) for w in range(n_workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=240)
    assert [proc.exitcode for proc in procs] == [0] * n_workers
    texts = [f"worker {w} text {j}" for w in range(n_workers) for j in range(n_texts)]
    cache = EmbeddingCache(tmp_path, {"model": "shared"}, dim=3)
    keys, vectors = cache.load()
    assert len(keys) == len(set(keys.tolist())) == len(texts)
    assert set(keys.tolist()) == {text_key(t) for t in texts}

    def fail(texts):
        raise AssertionError(f"recomputed {len(texts)} texts")

    np.testing.assert_array_equal(cache.get(texts, fail), vectors_of(texts))
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]

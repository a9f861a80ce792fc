"""Reusable Keras layers (reclib.models.layers): each output against NumPy on a tiny input, shapes,
all-padding rows, argument checks and a `.keras` round trip for every registered layer."""

import keras
import numpy as np
import pytest

from reclib.checks import ParameterTypeError
from reclib.models.layers import (CrossLayer, FieldAttention, FMInteraction, MaskedMeanPooling, StackFields, TableEmbedding,
                                  fm_interaction)

RNG = np.random.default_rng(0)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


VALUES = RNG.normal(size=(3, 4, 2)).astype("float32")          # (b, L, d)
MASK = np.array([[1, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 1]])      # row 1: all padding


@pytest.mark.parametrize("mean", [True, False])
@pytest.mark.parametrize("mask", [MASK, MASK.astype(bool)])
def test_masked_pooling_matches_numpy(mean, mask):
    out = numpy(MaskedMeanPooling(mean=mean)([VALUES, mask]))
    total = (VALUES * mask[..., None]).sum(axis=1)
    expected = total / np.maximum(mask.sum(axis=1, keepdims=True), 1) if mean else total
    assert out.shape == (3, 2)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    np.testing.assert_array_equal(out[1], 0.0)                  # nothing kept -> zero vector


def test_stack_fields_shape():
    a, b = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 3))
    out = numpy(StackFields()([a, b]))
    assert out.shape == (5, 2, 3)
    np.testing.assert_allclose(out[:, 1], b, rtol=1e-6)


def test_fm_interaction_matches_pairwise_sum():
    v = RNG.normal(size=(4, 6, 3)).astype("float32")
    pairwise = np.array([sum(v[b, f] @ v[b, g] for f in range(6) for g in range(f + 1, 6)) for b in range(4)])
    layer_out = numpy(FMInteraction()(v))
    assert layer_out.shape == (4, 1)
    np.testing.assert_allclose(layer_out.ravel(), pairwise, rtol=1e-4)
    np.testing.assert_allclose(numpy(fm_interaction(v)), layer_out, rtol=1e-6)


@pytest.mark.parametrize("rank", [0, 2])
def test_cross_layer_matches_formula(rank):
    x0, x = RNG.normal(size=(3, 5)).astype("float32"), RNG.normal(size=(3, 5)).astype("float32")
    layer = CrossLayer(rank=rank)
    out = numpy(layer([x0, x]))
    w = numpy(layer.u) @ numpy(layer.v) if rank else numpy(layer.w)
    assert out.shape == (3, 5)
    np.testing.assert_allclose(out, x0 * (x @ w + numpy(layer.b)) + x, atol=1e-5)


def _softmax(z, axis):
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("heads, key_dim", [(1, None), (2, 3)])
def test_field_attention_matches_numpy(heads, key_dim):
    x = RNG.normal(size=(2, 4, 6)).astype("float32")             # (b, F, k)
    layer = FieldAttention(heads, key_dim)
    out = numpy(layer(x))
    mha = layer.attention
    q, k, v = (np.einsum("bfk,khd->bfhd", x, numpy(d.kernel)) + numpy(d.bias)
               for d in (mha._query_dense, mha._key_dense, mha._value_dense))
    d = q.shape[-1]
    weights = _softmax(np.einsum("bfhd,bghd->bhfg", q, k) / np.sqrt(d), axis=-1)
    context = np.einsum("bhfg,bghd->bfhd", weights, v)
    attended = np.einsum("bfhd,hdk->bfk", context, numpy(mha._output_dense.kernel)) + numpy(mha._output_dense.bias)
    expected = np.maximum(attended + x @ numpy(layer.residual.kernel), 0.0)
    assert out.shape == x.shape and d == (key_dim or 6)
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("make, error, match", [
    (lambda: MaskedMeanPooling(mean="yes"), ParameterTypeError, "mean must be True or False, got 'yes'"),
    (lambda: CrossLayer(rank=-1), ValueError, "rank"),
    (lambda: CrossLayer(l2=float("nan")), ValueError, "l2"),
    (lambda: FieldAttention(heads=0), ValueError, "heads"),
    (lambda: FieldAttention(heads=2, key_dim=1.5), ParameterTypeError, "key_dim"),
    (lambda: FieldAttention()(np.ones((2, 3), "float32")), ValueError, r"FieldAttention expects .* \(batch, fields, k\)"),
])
def test_bad_layer_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_registered_names_are_stable():
    for layer in (MaskedMeanPooling, StackFields, FMInteraction, CrossLayer, FieldAttention, TableEmbedding):
        assert keras.saving.get_registered_name(layer) == f"reclib>{layer.__name__}"


def test_keras_round_trip(tmp_path):
    """Every registered layer inside one model; saved and loaded, it predicts the same."""
    ids = keras.Input(shape=(4,), dtype="int32", name="ids")
    dense = keras.Input(shape=(6,), name="vec")
    embedded = keras.layers.Embedding(10, 6)(ids)
    pooled = MaskedMeanPooling(name="mean")([embedded, keras.ops.not_equal(ids, 0)])
    summed = MaskedMeanPooling(mean=False, name="sum")([embedded, keras.ops.not_equal(ids, 0)])
    fields = StackFields(name="fields")([pooled, summed, dense])
    attended = FieldAttention(2, 3, name="att")(fields)
    fm = FMInteraction(name="fm")(attended)
    crossed = CrossLayer(rank=2, l2=1e-4, name="cross")([dense, dense])
    out = keras.layers.Dense(1)(keras.ops.concatenate([fm, crossed], axis=-1))
    model = keras.Model({"ids": ids, "vec": dense}, out)
    data = {"ids": np.array([[1, 2, 0, 0], [0, 0, 0, 0], [3, 4, 5, 9]], "int32"),
            "vec": RNG.normal(size=(3, 6)).astype("float32")}
    path = tmp_path / "layers.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(numpy(loaded(data)), numpy(model(data)), rtol=1e-6)
    assert loaded.get_layer("sum").mean is False and loaded.get_layer("cross").rank == 2


def test_table_embedding_gathers_in_float32_under_mixed_precision():
    """Under float32 it gives keras.layers.Embedding's numbers; under mixed_bfloat16 the table stays
    float32 and the gathered rows come out in bfloat16 (that its gradient is a float32 scatter-add
    is checked on the lowered JAX program, tests/training/test_device_loop.py)."""
    import keras
    import numpy as np

    from reclib.models.layers import TableEmbedding

    ids = np.array([[1, 2, 2]], dtype="int32")
    keras.utils.set_random_seed(0)
    plain = keras.layers.Embedding(5, 3)(ids)
    keras.utils.set_random_seed(0)
    ours = TableEmbedding(5, 3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours(ids)), keras.ops.convert_to_numpy(plain))
    previous = keras.config.dtype_policy()
    try:
        keras.config.set_dtype_policy("mixed_bfloat16")
        inputs = keras.Input((3,), dtype="int32")
        layer = TableEmbedding(5, 3)
        model = keras.Model(inputs, layer(inputs))
        assert layer.embeddings.dtype == "float32"
        assert keras.backend.standardize_dtype(model(ids).dtype) == "bfloat16"
    finally:
        keras.config.set_dtype_policy(previous)

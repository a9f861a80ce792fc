"""HSTU: the Keras block equals its NumPy formula, attends only to the past and to real items, and
its attention is pointwise (rows need not sum to one)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from reclib.models.hstu import HSTU, HSTUBlock, hstu_block_numpy


def _block_and_inputs(dim=8, heads=2, length=5, seed=0):
    keras.utils.set_random_seed(seed)
    block = HSTUBlock(dim, heads, max_length=length)
    block.build((None, length, dim))
    rng = np.random.default_rng(seed)
    block.set_weights([w + rng.normal(scale=0.3, size=w.shape).astype("float32") for w in block.get_weights()])
    x = rng.normal(size=(3, length, dim)).astype("float32")
    real = np.ones((3, length), bool)
    real[1, :2] = False                                         # a left-padded row
    return block, x, real


def test_numpy_formula_equals_the_keras_block():
    block, x, real = _block_and_inputs()
    shapes = [w.shape for w in block.get_weights()]
    assert shapes == [(9,), (8, 32), (32,), (8, 8), (8,)]      # the order hstu_block_numpy reads
    expected = hstu_block_numpy(block.get_weights(), x.astype(np.float64), real, n_heads=2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(block(x, real)), expected, rtol=1e-4, atol=1e-4)


def test_a_shorter_window_and_the_relative_bias_by_hand():
    block, x, real = _block_and_inputs(length=5)
    short, real_short = x[:, :3], real[:, :3]                   # L = 3 < max_length = 5: the bias table stays 9 long
    expected = hstu_block_numpy(block.get_weights(), short.astype(np.float64), real_short, n_heads=2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(block(short, real_short)), expected, rtol=1e-4, atol=1e-4)
    # with q = k = 0 a weight is silu(r_{i-j}) / L: set the bias of distance 1 alone and read it back
    bias = np.zeros(9, np.float32)
    bias[5 - 1 - 1] = 2.0                                       # index j - i + max_length - 1 with j = i - 1
    block.relative_bias.assign(bias)
    zeros = np.zeros((1, 3, 2, 4), np.float32)
    weights = keras.ops.convert_to_numpy(block.attention_weights(zeros, zeros, np.ones((1, 3), bool)))[0, 0]
    silu2 = 2.0 / (1.0 + np.exp(-2.0))
    np.testing.assert_allclose(weights, np.array([[0, 0, 0], [silu2, 0, 0], [0, silu2, 0]]) / 3, atol=1e-6)


def test_new_options_survive_a_config_round_trip():
    model = HSTU(n_items=12, max_length=4, embedding_dim=8, n_blocks=1, separate_output=True, n_sampled=4,
                 loss="gbce", calibration=0.5, normalize=False, temperature=0.2)
    again = HSTU.from_config(model.get_config())
    assert (again.separate_output, again.loss_name, again.calibration, again.normalize, again.temperature,
            again.task.loss_name, again.task.n_sampled) == (True, "gbce", 0.5, False, 0.2, "gbce", 4)


def test_attention_is_causal_masks_padding_and_is_not_normalised():
    block, x, real = _block_and_inputs()
    _, weights = block(x, real, return_attention=True)
    weights = keras.ops.convert_to_numpy(weights)              # (b, h, L, L)
    assert weights.shape == (3, 2, 5, 5)
    assert np.all(weights[..., np.triu(np.ones((5, 5), bool), k=1)] == 0.0)
    assert np.all(weights[1, :, :, :2] == 0.0)                  # no query reads the padding
    assert np.abs(weights[0].sum(-1) - 1.0).max() > 0.1         # SiLU, not a softmax


def test_hstu_position_t_never_sees_later_items():
    keras.utils.set_random_seed(0)
    model = HSTU(n_items=20, max_length=6, embedding_dim=8, n_blocks=2, n_heads=2, dropout=0.0)
    a = np.array([[0, 0, 3, 4, 5, 6]], np.int32)
    b = np.array([[0, 0, 3, 4, 17, 11]], np.int32)
    ha, hb = (keras.ops.convert_to_numpy(model(x)) for x in (a, b))
    np.testing.assert_allclose(ha[:, :4], hb[:, :4], atol=1e-6)
    assert np.abs(ha[:, 4:] - hb[:, 4:]).max() > 1e-3
    np.testing.assert_allclose(np.linalg.norm(ha[0, 2:], axis=-1), 1.0, atol=1e-5)   # normalize=True
    np.testing.assert_array_equal(ha[0, :2], 0.0)              # padding positions stay zero


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="dim \\(10\\) must be divisible by n_heads \\(3\\)"):
        HSTUBlock(10, 3, max_length=4)
    with pytest.raises(ValueError, match="dropout"):
        HSTU(n_items=5, dropout=1.0)

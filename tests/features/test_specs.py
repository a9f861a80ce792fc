"""Feature specs (reclib.features.specs): fit / transform / keras_input / embed per spec, the
FeatureSpace container, and no isinstance dispatch over spec kinds left in the library or notebook 07."""

import json
import re
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from reclib.models.feature_inputs import field_embedding, keras_input, keras_inputs, space_embeddings
from reclib.features import Categorical, FeatureSpace, FeatureSpec, MultiCategorical, Numeric, Vector

ROOT = Path(__file__).resolve().parents[2]
TABLE = {0: np.array([1.0, 0.0, 2.0]), 1: np.array([0.0, 1.0, -1.0])}


def frame():
    return pd.DataFrame({"color": ["red", "blue", "red", "green"], "tags": [["a", "b"], ["c"], [], ["a"]],
                         "x": [1.0, 2.0, 3.0, 6.0], "key": [0, 1, 1, 0]})


def numpy(x):
    return keras.ops.convert_to_numpy(x)


# -- fit / transform / keras_input per spec --------------------------------------------------------------------------

@pytest.mark.parametrize("spec, shape, dtype, input_shape", [
    (Categorical("color"), (4,), np.int32, (None,)),
    (MultiCategorical("tags"), (4, 2), np.int32, (None, 2)),
    (Numeric("x"), (4, 1), np.float32, (None, 1)),
    (Vector("vec", key="key", table=TABLE), (4, 3), np.float32, (None, 3)),
])
def test_fit_transform_and_keras_input(spec, shape, dtype, input_shape):
    assert spec.fit(frame()) is spec and spec.fitted
    out = spec.transform(frame())
    assert out.shape == shape and out.dtype == dtype
    layer_input = keras_input(spec)
    assert tuple(layer_input.shape) == input_shape and layer_input.name == spec.name
    assert keras.backend.standardize_dtype(layer_input.dtype) == np.dtype(dtype).name


def test_learned_state():
    assert Categorical("color").fit(frame()).vocabulary_ == ["blue", "green", "red"]
    np.testing.assert_array_equal(Categorical("color").fit(frame()).transform(frame()), [3, 1, 3, 2])
    assert Categorical("color", min_count=2).fit(frame()).vocabulary_ == ["red"]
    tags = MultiCategorical("tags").fit(frame())
    assert tags.vocabulary_ == ["a", "b", "c"] and tags.max_length_ == 2 and tags.vocabulary_size == 4
    np.testing.assert_array_equal(tags.transform(frame()), [[1, 2], [3, 0], [0, 0], [1, 0]])
    x = Numeric("x").fit(frame())
    assert x.stats_ == pytest.approx((3.0, np.std([1, 2, 3, 6])))
    np.testing.assert_allclose(x.transform(frame()).ravel(), (frame().x - 3.0) / np.std([1, 2, 3, 6]), rtol=1e-6)
    vec = Vector("vec", key="key", table=TABLE).fit(frame())
    np.testing.assert_array_equal(vec.transform(frame())[1], TABLE[1].astype(np.float32))
    assert vec.column == "key" and Numeric("x").column == "x"


def test_spec_fit_and_transform_check_their_column():
    with pytest.raises(ValueError, match="column 'x' is missing"):
        Numeric("x").fit(frame().drop(columns="x"))
    with pytest.raises(ValueError, match=r"column 'x' holds 1 missing or infinite .* rows \[2\]"):
        Numeric("x").fit(frame().assign(x=[1.0, 2.0, np.inf, 0.0]))
    with pytest.raises(ValueError, match="column 'color' held str values at fit .* holds int values now"):
        Categorical("color").fit(frame()).transform(frame().assign(color=[1, 2, 3, 4]))
    with pytest.raises(RuntimeError, match="feature 'tags' is not fitted"):
        MultiCategorical("tags").transform(frame())
    with pytest.raises(RuntimeError, match="feature 'color' is not fitted"):
        keras_input(Categorical("color"))


# -- embed per spec -------------------------------------------------------------------------------------------------

def embed(spec, data, dim=4, l2=0.0):
    """Build the spec's field embedding into a tiny model; return (field (b, dim), first order
    (b, 1), model)."""
    spec.fit(frame())
    inp = keras_input(spec)
    vec, lin = field_embedding(spec, inp, dim, l2)
    model = keras.Model(inp, [vec, lin])
    out_vec, out_lin = (numpy(t) for t in model(spec.transform(data)))
    assert out_vec.shape == (len(data), dim) and out_lin.shape == (len(data), 1)
    return out_vec, out_lin, model


def test_categorical_embed_is_a_row_lookup():
    spec = Categorical("color")
    vec, lin, model = embed(spec, frame())
    table = numpy(model.get_layer("color_embedding").embeddings)
    np.testing.assert_allclose(vec, table[spec.transform(frame())], rtol=1e-6)
    np.testing.assert_array_equal(lin, 0.0)                      # first-order weights start at zero


@pytest.mark.parametrize("combiner", ["mean", "sum"])
def test_multicategorical_embed_pools_with_a_mask(combiner):
    spec = MultiCategorical("tags", combiner=combiner)
    vec, _, model = embed(spec, frame())
    codes = spec.transform(frame())
    rows = numpy(model.get_layer("tags_embedding").embeddings)[codes] * (codes != 0)[..., None]
    expected = rows.sum(1) / np.maximum((codes != 0).sum(1, keepdims=True), 1) if combiner == "mean" else rows.sum(1)
    np.testing.assert_allclose(vec, expected, rtol=1e-6)
    np.testing.assert_array_equal(vec[2], 0.0)                   # the empty list: all padding


def test_numeric_and_vector_embed_are_linear():
    spec = Numeric("x")
    vec, lin, model = embed(spec, frame())
    x = spec.transform(frame())
    np.testing.assert_allclose(vec, x @ numpy(model.get_layer("x_direction").kernel), rtol=1e-5)
    np.testing.assert_allclose(lin, x @ numpy(model.get_layer("x_weight").kernel), rtol=1e-5)
    spec = Vector("vec", key="key", table=TABLE)
    vec, _, model = embed(spec, frame(), l2=1e-3)
    projection = model.get_layer("vec_projection")
    np.testing.assert_allclose(vec, spec.transform(frame()) @ numpy(projection.kernel) + numpy(projection.bias),
                               rtol=1e-5, atol=1e-6)
    assert projection.kernel_regularizer is not None


@pytest.mark.parametrize("dim, l2, match", [(0, 0.0, "dim"), (2.5, 0.0, "dim"), (4, -1.0, "l2"),
                                            (4, float("nan"), "l2")])
def test_embed_arguments_are_checked(dim, l2, match):
    spec = Numeric("x").fit(frame())
    with pytest.raises(ValueError, match=match):
        field_embedding(spec, keras_input(spec), dim, l2)


# -- the container --------------------------------------------------------------------------------------------------

def test_space_fits_copies_of_the_declarations():
    color = Categorical("color")
    first = FeatureSpace([color, Numeric("x")]).fit(frame())
    second = FeatureSpace([color]).fit(frame().assign(color=["pink"] * 4))
    assert not color.fitted                                      # the declaration itself stays unfitted
    assert first.vocabularies_["color"] == ["blue", "green", "red"] and second.vocabularies_["color"] == ["pink"]
    assert first.specs[0] is not color and first.specs[0] == color
    assert isinstance(first.specs[0], FeatureSpec)


def test_space_summaries_and_keras_inputs():
    space = FeatureSpace([Categorical("color"), MultiCategorical("tags"), Numeric("x"),
                          Vector("vec", key="key", table=TABLE)]).fit(frame())
    assert space.max_lengths_ == {"tags": 2} and set(space.stats_) == {"x"} and set(space.vectors_) == {"vec"}
    assert space.kinds_ == {"color": "str", "tags": "str", "x": "float"}
    inputs = keras_inputs(space)
    assert list(inputs) == ["color", "tags", "x", "vec"]
    fields, linear = space_embeddings(space, inputs, 3, 0.0)
    assert [tuple(f.shape) for f in fields] == [(None, 3)] * 4 and [tuple(w.shape) for w in linear] == [(None, 1)] * 4


def test_models_still_reexport_the_specs():
    import reclib.models as models
    import reclib.models.feature_space as old_home
    assert models.FeatureSpace is FeatureSpace and old_home.Vector is Vector


# -- no isinstance dispatch over feature kinds ------------------------------------------------------------------------

DISPATCH = re.compile(r"isinstance\((spec|s),|isinstance\([^)]*\b(Categorical|MultiCategorical|Numeric|Vector)\b")


def test_no_isinstance_dispatch_over_spec_kinds():
    sources = {str(p.relative_to(ROOT)): p.read_text(encoding="utf-8") for p in (ROOT / "reclib").rglob("*.py")}
    notebook = json.loads((ROOT / "notebooks" / "07_feature_interaction.ipynb").read_text(encoding="utf-8"))
    sources["notebook 07"] = "\n".join("".join(c["source"]) for c in notebook["cells"])
    hits = [f"{name}: {line.strip()}" for name, text in sources.items() for line in text.splitlines()
            if DISPATCH.search(line)]
    assert hits == []
    assert DISPATCH.search("if isinstance(spec, Numeric):") and DISPATCH.search("isinstance(s, Vector)")

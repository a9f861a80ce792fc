"""Bad input to feature declarations (FeatureSpace and its specs) and to the text encoder's arguments.

Every case asserts the exception type and that the message names the culprit. No case loads a model.
"""

import re

import numpy as np
import pandas as pd
import pytest

from reclib.checks import ParameterTypeError
from reclib.features import Categorical, FeatureSpace, MultiCategorical, Numeric, TextEncoder, Vector, pool


def frame(n=6, **columns):
    base = {"user": np.arange(n) % 3, "color": ["red", "blue"] * (n // 2), "tags": [["a", "b"], ["c"]] * (n // 2),
            "x": np.linspace(0.0, 1.0, n), "key": np.arange(n) % 2}
    return pd.DataFrame(base | columns)


TABLE = {0: np.array([1.0, 0.0]), 1: np.array([0.0, 1.0])}


def space(table=TABLE):
    return FeatureSpace([Categorical("user"), Categorical("color"), MultiCategorical("tags"), Numeric("x"),
                         Vector("vec", key="key", table=table)])


# -- declarations -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, error, match", [
    (lambda: Categorical(""), ValueError, "Categorical name must be a non-empty string"),
    (lambda: Categorical("  "), ValueError, "Categorical name must be a non-empty string"),
    (lambda: Categorical(None), ParameterTypeError, "Categorical name must be a non-empty string, got None"),
    (lambda: Categorical(3), ParameterTypeError, "Categorical name .* got 3"),
    (lambda: Categorical("c", min_count=0), ValueError, "feature 'c': min_count must be a positive integer, got 0"),
    (lambda: Categorical("c", min_count=-2), ValueError, "feature 'c': min_count .* got -2"),
    (lambda: Categorical("c", min_count=1.5), ParameterTypeError, "feature 'c': min_count .* got 1.5"),
    (lambda: Categorical("c", min_count=2.0), ParameterTypeError, "feature 'c': min_count .* got 2.0"),
    (lambda: Categorical("c", min_count=True), ParameterTypeError, "feature 'c': min_count .* got True"),
    (lambda: Categorical("c", min_count="2"), ParameterTypeError, "feature 'c': min_count .* got '2'"),
    (lambda: Categorical("c", min_count=None), ParameterTypeError, "feature 'c': min_count .* got None"),
    (lambda: Categorical("c", min_count=float("nan")), ParameterTypeError, "feature 'c': min_count"),
    (lambda: MultiCategorical("t", combiner="max"), ValueError, "feature 't': combiner='max'"),
    (lambda: MultiCategorical("t", combiner=None), ValueError, "feature 't': combiner=None"),
    (lambda: MultiCategorical(""), ValueError, "MultiCategorical name"),
    (lambda: Numeric(""), ValueError, "Numeric name"),
    (lambda: Numeric(1.0), ParameterTypeError, "Numeric name"),
    (lambda: Vector("", key="k"), ValueError, "Vector name"),
    (lambda: Vector("v", key=""), ValueError, "feature 'v': key must be a non-empty string"),
    (lambda: Vector("v", key=None), ParameterTypeError, "feature 'v': key must be a non-empty string"),
    (lambda: Vector("v", key="k", table=[[1.0]]), ParameterTypeError, "feature 'v': table must be a dict"),
    (lambda: Vector("v", key="k", table=None), ParameterTypeError, "feature 'v': table must be a dict"),
    (lambda: FeatureSpace([]), ValueError, "specs is empty"),
    (lambda: FeatureSpace(None), ParameterTypeError, "specs must be a list"),
    (lambda: FeatureSpace("color"), ParameterTypeError, "specs must be a list .* got str"),
    (lambda: FeatureSpace(Categorical("c")), ParameterTypeError, "specs must be a list .* got Categorical"),
    (lambda: FeatureSpace([Categorical("c"), "x"]), ParameterTypeError, r"specs\[1\] must be .* got 'x'"),
    (lambda: FeatureSpace([Categorical("a"), Numeric("a")]), ValueError, "feature names must be unique"),
])
def test_bad_declarations(make, error, match):
    with pytest.raises(error, match=match):
        make()


# -- frames at fit and at transform -------------------------------------------------------------------------------

def with_value(column, row, value, dtype=None):
    df = frame()
    values = df[column].astype(object).tolist()
    values[row] = value
    return df.assign(**{column: pd.Series(values, dtype=dtype, index=df.index)})


BAD_FRAMES = [
    # numeric: NaN, <NA>, ±inf, wrong type
    (with_value("x", 2, np.nan, "float64"), ValueError, r"column 'x' holds 1 missing or infinite .* rows \[2\]"),
    (with_value("x", 4, np.inf, "float64"), ValueError, r"column 'x' holds 1 missing or infinite .* rows \[4\]"),
    (with_value("x", 0, -np.inf, "float64"), ValueError, r"column 'x' holds 1 missing or infinite .* rows \[0\]"),
    (frame(x=pd.array([1990, None, 1995, None, 2000, 2001], dtype="Int64")), ValueError,
     r"column 'x' holds 2 missing or infinite value\(s\) \(NaN/<NA>/±inf\) at rows \[1, 3\]"),
    (frame(x=["1", "2", "3", "4", "5", "6"]), ValueError, "column 'x' must be numeric"),
    (frame(x=[1.0, 2, 3, 4, 5, None]).astype({"x": object}), ValueError, "column 'x' must be numeric"),
    (frame(x=np.arange(6) + 1j), ValueError, "column 'x' must be numeric"),
    # categorical: nulls, ±inf, 1 and '1'
    (with_value("color", 3, None), ValueError, r"column 'color' holds 1 missing value\(s\) .* rows \[3\]"),
    (with_value("color", 1, np.nan), ValueError, r"column 'color' holds 1 missing .* rows \[1\]"),
    (with_value("user", 5, np.nan, "float64"), ValueError, r"column 'user' holds 1 missing .* rows \[5\]"),
    (frame(user=pd.array([1, 2, None, 1, 2, 1], dtype="Int64")), ValueError, r"column 'user' .* rows \[2\]"),
    (with_value("user", 2, np.inf, "float64"), ValueError, r"column 'user' holds 1 infinite value\(s\) at rows \[2\]"),
    (with_value("user", 1, "1"), ValueError, r"column 'user' mixes value types \(5 int, 1 str\).* rows \[1\]"),
    (with_value("color", 0, 1), ValueError, r"column 'color' mixes value types .* int values at rows \[0\]"),
    (with_value("user", 0, 1.5, object), ValueError, r"column 'user' mixes value types \(5 int, 1 float\)"),
    (with_value("user", 0, True), ValueError, "column 'user' mixes value types"),
    # multi-categorical: not lists, nulls inside, mixed elements
    (with_value("tags", 2, None), ValueError, r"column 'tags' must hold lists; 1 row\(s\) do not, first \[2\]"),
    (with_value("tags", 3, "a"), ValueError, r"column 'tags' must hold lists.*\[3\]"),
    (with_value("tags", 4, ["a", None]), ValueError, r"column 'tags' \(list elements\) holds 1 missing .* \[4\]"),
    (with_value("tags", 1, ["a", np.nan]), ValueError, r"column 'tags' \(list elements\) holds 1 missing .* \[1\]"),
    (with_value("tags", 5, ["a", 1]), ValueError, r"column 'tags' \(list elements\) mixes value types"),
    # vector keys and frames
    (with_value("key", 1, np.nan, "float64"), ValueError, r"column 'key' \(the key of vector feature 'vec'\) .* \[1\]"),
    (frame(key=[0, 1, 2, 0, 1, 2]), ValueError, r"feature 'vec': no vector for 1 key value\(s\), first \[2\]"),
    (frame().drop(columns="color"), ValueError, "column 'color' is missing"),
    (frame().drop(columns="key"), ValueError, "column 'key' is missing"),
    (pd.concat([frame(), frame()[["x"]]], axis=1), ValueError, "column 'x' appears more than once"),
    ({"x": [1.0]}, ParameterTypeError, "expected a pandas DataFrame, got dict"),
    (None, ParameterTypeError, "expected a pandas DataFrame, got NoneType"),
]


@pytest.mark.parametrize("bad, error, match", BAD_FRAMES)
def test_bad_frame_at_fit(bad, error, match):
    with pytest.raises(error, match=match):
        space().fit(bad)


@pytest.mark.parametrize("bad, error, match", BAD_FRAMES)
def test_bad_frame_at_transform(bad, error, match):
    fitted = space().fit(frame())
    with pytest.raises(error, match=match):
        fitted.transform(bad)


@pytest.mark.parametrize("change, match", [
    ({"user": [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]}, r"column 'user' held int values at fit \(dtype int64\) but holds float "
                                               r"values now \(dtype float64\)"),
    ({"user": ["0", "1", "2", "0", "1", "2"]}, "column 'user' held int values at fit .* holds str values now"),
    ({"user": [True, False] * 3}, "column 'user' held int values at fit .* holds bool values now"),
    ({"color": [1, 2] * 3}, "column 'color' held str values at fit .* holds int values now"),
    ({"tags": [[1], [2]] * 3}, "column 'tags' held str values at fit .* holds int values now"),
    ({"x": [True, False] * 3}, "column 'x' held float values at fit .* holds bool values now"),
])
def test_kind_seen_at_fit_is_enforced_at_transform(change, match):
    fitted = space().fit(frame())
    with pytest.raises(ValueError, match=match):
        fitted.transform(frame(**change))


SPEC_OF = {"user": Categorical("user"), "color": Categorical("color"), "tags": MultiCategorical("tags"),
           "x": Numeric("x"), "key": Vector("vec", key="key", table=TABLE)}


@pytest.mark.parametrize("column, bad, match", [
    (re.search(r"column '(\w+)'", match).group(1), bad, match) for bad, _, match in BAD_FRAMES
    if isinstance(bad, pd.DataFrame) and "is missing" not in match and "more than once" not in match
    and "no vector" not in match
])
def test_each_spec_checks_its_own_column(column, bad, match):
    """The checks live in the spec: a spec fitted (or transforming) alone raises what the space raises."""
    with pytest.raises(ValueError, match=match):
        SPEC_OF[column].clone().fit(bad)
    fitted = SPEC_OF[column].clone().fit(frame())
    with pytest.raises(ValueError, match=match):
        fitted.transform(bad)


@pytest.mark.parametrize("change, match", [
    ({"user": [0.0, 1.0, 2.0, 0.0, 1.0, 2.0]}, "column 'user' held int values at fit"),
    ({"tags": [[1], [2]] * 3}, "column 'tags' held str values at fit"),
    ({"x": [True, False] * 3}, "column 'x' held float values at fit"),
])
def test_spec_alone_enforces_the_fitted_kind(change, match):
    column = next(iter(change))
    fitted = SPEC_OF[column].clone().fit(frame())
    with pytest.raises(ValueError, match=match):
        fitted.transform(frame(**change))


@pytest.mark.parametrize("table, error, match", [
    ({}, ValueError, "feature 'vec': table is empty"),
    ({0: np.array([np.nan, 0.0]), 1: np.array([0.0, 1.0])}, ValueError,
     r"feature 'vec': 1 vector\(s\) hold NaN .* \[0\]"),
    ({0: np.array([1.0, 0.0]), 1: np.array([np.inf, 1.0])}, ValueError,
     r"feature 'vec': 1 vector\(s\) hold NaN .* \[1\]"),
    ({0: np.array([1.0, 0.0]), 1: np.array([-np.inf, 1.0])}, ValueError, "feature 'vec': .* hold NaN or ±inf"),
    ({0: np.array([1e39, 0.0]), 1: np.array([0.0, 1.0])}, ValueError, r"feature 'vec': .* ±inf \(in float32\)"),
    ({0: np.array([1.0, 0.0]), 1: np.array([0.0, 1.0, 2.0])}, ValueError, "key 0 has 2, key 1 has 3"),
    ({0: np.ones((2, 2)), 1: np.ones((2, 2))}, ValueError, r"vector of key 0 must be one-dimensional .* \(2, 2\)"),
    ({0: np.array([]), 1: np.array([])}, ValueError, "vector of key 0 must be one-dimensional and non-empty"),
    ({0: 1.0, 1: 2.0}, ValueError, r"vector of key 0 must be one-dimensional .* got shape \(\)"),
    ({0: ["a", "b"], 1: ["c", "d"]}, ValueError, "vector of key 0 must be numeric"),
    ({0: np.array([True, False]), 1: np.array([True, True])}, ValueError, "vector of key 0 must be numeric"),
    ({0: np.array([1.0, 0.0])}, ValueError, r"feature 'vec': no vector for 1 key value\(s\), first \[1\]"),
    ({"0": np.array([1.0, 0.0]), "1": np.array([0.0, 1.0])}, ValueError, "feature 'vec': no vector for 2 key"),
])
def test_bad_vector_table(table, error, match):
    with pytest.raises(error, match=match):
        space(table).fit(frame())


def test_other_fit_and_transform_errors():
    with pytest.raises(ValueError, match="fit needs a frame with at least one row"):
        space().fit(frame().iloc[:0])
    with pytest.raises(ValueError, match=r"feature 'user': no value occurs min_count=10 times \(the most frequent"):
        FeatureSpace([Categorical("user", min_count=10)]).fit(frame())
    with pytest.raises(ValueError, match="column 'x': mean .* overflows"):
        FeatureSpace([Numeric("x")]).fit(frame(x=[1e308] * 6))
    with pytest.raises(ValueError, match=r"column 'x': 1 value\(s\) overflow float32 .* at rows \[5\]"):
        FeatureSpace([Numeric("x")]).fit(frame()).transform(frame(x=[0.0] * 5 + [1e300]))
    with pytest.raises(RuntimeError, match="not fitted"):
        space().vocabulary_size("user")
    with pytest.raises(ValueError, match="'x' is not a \\(multi-\\)categorical feature"):
        space().fit(frame()).vocabulary_size("x")


def test_valid_inputs_still_work():
    """Kinds that must keep working: nullable ints without <NA>, categories, int <-> float for numbers,
    an empty frame at transform; 1 and '1' never share an index."""
    fitted = space().fit(frame(x=pd.array([1, 2, 3, 4, 5, 6], dtype="Int64")))
    assert fitted.kinds_ == {"user": "int", "color": "str", "tags": "str", "x": "int"}
    out = fitted.transform(frame(color=pd.Categorical(["red", "blue"] * 3), x=np.arange(6) + 0.5))
    np.testing.assert_array_equal(out["color"], fitted.transform(frame())["color"])
    empty = fitted.transform(frame().iloc[:0])
    assert {k: v.shape for k, v in empty.items()} == {"user": (0,), "color": (0,), "tags": (0, 2), "x": (0, 1),
                                                      "vec": (0, 2)}
    ints = FeatureSpace([Categorical("c")]).fit(pd.DataFrame({"c": [1, 2, 1]}))
    strs = FeatureSpace([Categorical("c")]).fit(pd.DataFrame({"c": ["1", "2", "1"]}))
    assert ints.kinds_["c"] == "int" and strs.kinds_["c"] == "str"
    with pytest.raises(ValueError, match="column 'c' held int values"):
        ints.transform(pd.DataFrame({"c": ["1"]}))


def test_vector_table_is_read_at_fit():
    table = dict(TABLE)
    fitted = space(table).fit(frame())
    table[0] = np.array([np.nan, np.nan])   # a later change to the table does not leak into transform
    assert np.isfinite(fitted.transform(frame())["vec"]).all()


# -- the text encoder's arguments (checked before the model loads) --------------------------------------------------

@pytest.mark.parametrize("kwargs, error, match", [
    ({"pooling": "max"}, ValueError, "pooling='max'"),
    ({"pooling": None}, ValueError, "pooling=None"),
    ({"device": "tpu"}, ValueError, "device='tpu'"),
    ({"batch_size": 0}, ValueError, "batch_size must be a positive integer, got 0"),
    ({"batch_size": -8}, ValueError, "batch_size .* got -8"),
    ({"batch_size": 1.5}, ParameterTypeError, "batch_size .* got 1.5"),
    ({"batch_size": 64.0}, ParameterTypeError, "batch_size .* got 64.0"),
    ({"batch_size": "64"}, ParameterTypeError, "batch_size .* got '64'"),
    ({"batch_size": True}, ParameterTypeError, "batch_size .* got True"),
    ({"batch_size": None}, ParameterTypeError, "batch_size .* got None"),
    ({"batch_size": float("nan")}, ParameterTypeError, "batch_size"),
    ({"max_length": 1}, ValueError, "max_length must be >= 2"),
    ({"max_length": 0}, ValueError, "max_length must be a positive integer, got 0"),
    ({"max_length": 128.0}, ParameterTypeError, "max_length .* got 128.0"),
    ({"max_length": float("inf")}, ParameterTypeError, "max_length"),
    ({"normalize": "yes"}, ParameterTypeError, "normalize must be True or False, got 'yes'"),
    ({"normalize": 1}, ParameterTypeError, "normalize must be True or False, got 1"),
    ({"use_cache": None}, ParameterTypeError, "use_cache must be True or False, got None"),
    ({"show_progress": 0}, ParameterTypeError, "show_progress must be True or False"),
    ({"model": ""}, ValueError, "model must be a hub name or a folder"),
    ({"model": None}, ParameterTypeError, "model must be a hub name or a folder, got None"),
    ({"model": 3}, ParameterTypeError, "model must be a hub name or a folder, got 3"),
    ({"cache_dir": 5}, ParameterTypeError, "cache_dir must be a path or None, got 5"),
    ({"cache_dir": ""}, ParameterTypeError, "cache_dir must be a path or None, got ''"),
])
def test_text_encoder_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        TextEncoder(**kwargs)


@pytest.fixture()
def unloaded_encoder():
    """A TextEncoder without a model: texts are checked before the model or the cache is used."""
    encoder = TextEncoder.__new__(TextEncoder)
    encoder.dim, encoder.cache, encoder.batch_size = 4, None, 8
    return encoder


@pytest.mark.parametrize("method", ["encode", "encode_uncached"])
@pytest.mark.parametrize("texts, error, match", [
    (None, ParameterTypeError, "texts must be a list of strings, got None"),
    ("a single string", ParameterTypeError, r"texts must be a list of strings, got 'a single string' \(str\)"),
    (b"bytes", ParameterTypeError, "texts must be a list of strings"),
    (5, ParameterTypeError, r"texts must be a list of strings, got 5 \(int\)"),
    (["ok", None], ParameterTypeError, r"entry 1 is None \(NoneType; 1 non-strings\)"),
    (["ok", 3, 4.5], ParameterTypeError, r"entry 1 is 3 \(int; 2 non-strings\)"),
    ([np.nan], ParameterTypeError, "entry 0 is nan"),
    (["ok", ""], ValueError, r"texts must not be empty or blank; entry 1 is '' \(1 blank texts\)"),
    (["  ", "ok", "\n"], ValueError, r"entry 0 is '  ' \(2 blank texts\)"),
])
def test_text_encoder_texts(unloaded_encoder, method, texts, error, match):
    with pytest.raises(error, match=match):
        getattr(unloaded_encoder, method)(texts)


def test_empty_text_list_gives_an_empty_array(unloaded_encoder):
    assert unloaded_encoder.encode([]).shape == (0, 4)


@pytest.mark.parametrize("hidden, mask, how, match", [
    (np.ones((2, 3, 4)), np.ones((2, 3)), "max", "pooling='max'"),
    (np.ones((2, 3)), np.ones((2, 3)), "mean", r"hidden of shape \(batch, tokens, d\) .* got hidden \(2, 3\)"),
    (np.ones((2, 3, 4)), np.ones((2, 4)), "mean", r"mask of shape \(batch, tokens\), got .* mask \(2, 4\)"),
    (np.ones((2, 3, 4)), np.ones((2, 3, 1)), "cls", r"mask \(2, 3, 1\)"),
    ([[[1.0]]], [[1]], "mean", r"got hidden \(\)"),
])
def test_pool_arguments(hidden, mask, how, match):
    with pytest.raises(ValueError, match=match):
        pool(hidden, mask, how)

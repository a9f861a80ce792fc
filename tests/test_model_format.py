"""The model file format: data round-trips exactly, and no file can run code or pass as another.

Every contract model's save/load round trip is checked by ``reclib.testing.check_recommender``
(tests/test_contract.py); here: the kinds of value the format holds, and hostile files.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from reclib.cf import EASE, MostPopular
from reclib.io import atomic_write_bytes
from reclib.model_format import ModelFileError

FRAME = pd.DataFrame({"user_id": [1, 1, 2, 2, 3, 3, 3], "item_id": [10, 11, 10, 12, 11, 12, 13]})
USERS = np.array([1, 2, 3])


class Holder(MostPopular):
    """A recommender defined outside reclib (allowed once imported) carrying every kind of value."""


@pytest.fixture()
def fitted() -> MostPopular:
    return MostPopular().fit(FRAME)


@pytest.fixture()
def saved(fitted, tmp_path) -> pathlib.Path:
    return fitted.save(tmp_path / "popular.reclib")


def _members(path: pathlib.Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def _write_forged(path: pathlib.Path, members: dict[str, bytes], **manifest_changes) -> pathlib.Path:
    """A file with ``members`` and a manifest whose hashes match them: what a forger can make."""
    manifest = json.loads(members["manifest.json"])
    body = {k: v for k, v in members.items() if k != "manifest.json"}
    manifest["sha256"] = {k: hashlib.sha256(v).hexdigest() for k, v in body.items()}
    manifest.update(manifest_changes)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        for name, data in body.items():
            archive.writestr(name, data)
    return path


def test_every_kind_of_value_comes_back_equal(tmp_path):
    model = Holder().fit(FRAME)
    values = {
        "plain": {"a": [1, 2.5, "x", None, True], "b": (1, (2, 3)), "c": {3, 1}, "d": frozenset({"z"}),
                  5: "int key", ("t", 1): "tuple key", "__reclib__": "the tag as a key"},
        "arrays": [np.arange(6, dtype=np.int32).reshape(2, 3), np.array([1.5, np.nan, -np.inf]),
                   np.array(["a", None, 3], dtype=object), np.array([], dtype=np.float16), np.bool_(True),
                   np.float32(0.1), np.dtype("<i8"), np.float64],
        "sparse": sp.random(5, 4, density=0.4, format="csr", random_state=0, dtype=np.float32),
        "csc": sp.identity(3, format="csc"),
        "frame": pd.DataFrame({"n": [1.0, 2.0], "s": ["x", "y"], "c": pd.Categorical(["u", "v"], ordered=True),
                               "i": pd.array([1, None], dtype="Int64"), "t": pd.to_datetime(["2024-01-01", "2025-06-30"]),
                               "str": pd.array(["p", None], dtype="string")},
                              index=pd.Index([7, 9], name="key")),
        "series": pd.Series([0.5, 0.25], index=pd.Index(["a", "b"], name="id"), name="score"),
        "range": pd.RangeIndex(2, 10, 2, name="r"),
        "path": pathlib.Path("/some/where.txt"),
        "rng": np.random.default_rng(7),
    }
    model.extras_ = values
    loaded = Holder.load(model.save(tmp_path / "holder.reclib"))
    back = loaded.extras_
    assert back["plain"] == values["plain"]
    for got, want in zip(back["arrays"][:4], values["arrays"][:4]):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)
    assert back["arrays"][4:] == values["arrays"][4:] and type(back["arrays"][5]) is np.float32
    assert back["sparse"].format == "csr" and back["csc"].format == "csc"
    assert (back["sparse"] != values["sparse"]).nnz == 0 and back["sparse"].dtype == np.float32
    pd.testing.assert_frame_equal(back["frame"], values["frame"])
    pd.testing.assert_series_equal(back["series"], values["series"])
    pd.testing.assert_index_equal(back["range"], values["range"], exact=True)
    assert back["path"] == values["path"]
    assert back["rng"].random() == values["rng"].random()          # the same stream, from the same point
    np.testing.assert_array_equal(loaded.score(USERS), model.score(USERS))


@pytest.mark.parametrize("value, named", [(lambda x: x, "function"), (open, "builtin_function_or_method"),
                                          (io.BytesIO(b"x"), "_io.BytesIO")])
def test_an_attribute_the_format_cannot_hold_is_refused_naming_it(fitted, tmp_path, value, named):
    fitted.hook_ = {"callback": value}
    with pytest.raises(TypeError, match=rf"MostPopular\.hook_\.callback holds a .*{named}"):
        fitted.save(tmp_path / "bad.reclib")
    assert not list(tmp_path.iterdir())                           # nothing written, not even a temp file


def test_the_file_name_must_end_in_reclib(fitted, tmp_path):
    with pytest.raises(ValueError, match=r"must end in \.reclib"):
        fitted.save(tmp_path / "model.pkl")


def test_a_saved_file_gets_the_permissions_open_would_give(saved):
    umask = os.umask(0)
    os.umask(umask)
    assert saved.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_pickle_runs_no_code_and_says_how_to_opt_in(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))                     # creates the marker file if unpickled

    path = tmp_path / "evil.reclib"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ModelFileError, match=rf"{path}: this is a Python pickle.*allow_pickle=True"):
        MostPopular.load(path)
    assert not marker.exists()


def test_a_trusted_pickle_of_reclib_0_1_loads_with_allow_pickle(fitted, tmp_path):
    path = tmp_path / "old.pkl"
    path.write_bytes(pickle.dumps(fitted))
    loaded = MostPopular.load(path, allow_pickle=True)
    np.testing.assert_array_equal(loaded.score(USERS), fitted.score(USERS))
    with pytest.raises(ModelFileError, match="holds a MostPopular, not a EASE"):
        EASE.load(path, allow_pickle=True)
    new = fitted.save(tmp_path / "new.reclib")                   # allow_pickle reads the new format too
    np.testing.assert_array_equal(MostPopular.load(new, allow_pickle=True).score(USERS), fitted.score(USERS))


def test_every_flipped_byte_of_a_member_is_detected(saved, tmp_path):
    """Flip one byte inside each stored member (not the zip's own bookkeeping): never a silent load."""
    raw = saved.read_bytes()
    members = _members(saved)
    for name, data in members.items():
        damaged = dict(members, **{name: data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 1]) + data[len(data) // 2 + 1:]})
        path = tmp_path / f"flip-{name.replace('/', '_')}.reclib"
        with zipfile.ZipFile(path, "w") as archive:
            for member, content in damaged.items():
                archive.writestr(member, content)
        with pytest.raises(ModelFileError, match=str(path)):
            MostPopular.load(path)
    # and raw flips anywhere in the file: each one is an error, never a model that loads
    step = max(1, len(raw) // 200)
    for at in range(0, len(raw), step):
        flipped = tmp_path / "raw.reclib"
        flipped.write_bytes(raw[:at] + bytes([raw[at] ^ 0x10]) + raw[at + 1:])
        try:
            loaded = MostPopular.load(flipped)
        except ModelFileError as error:
            assert str(flipped) in str(error)
        else:                                                    # only bytes no reader looks at may change
            np.testing.assert_array_equal(loaded.score(USERS), MostPopular.load(saved).score(USERS))


def test_a_changed_member_with_its_old_hash_names_the_member(saved, tmp_path):
    members = _members(saved)
    with np.load(io.BytesIO(members["arrays.npz"])) as npz:
        arrays = {k: npz[k] for k in npz.files}
    key = next(k for k, v in arrays.items() if v.dtype.kind == "f")
    arrays[key] = arrays[key] * 2
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path = tmp_path / "changed.reclib"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in {**members, "arrays.npz": buffer.getvalue()}.items():
            archive.writestr(name, data)
    with pytest.raises(ModelFileError, match="member arrays.npz does not match its SHA-256"):
        MostPopular.load(path)


@pytest.mark.parametrize("content, says", [
    (b"", "not a reclib model file"), (b"\x00" * 100, "not a reclib model file"),
    (bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), "not a reclib model file"),
    (b'{"format": "reclib-model"}', "not a reclib model file"),
])
def test_empty_random_or_foreign_files_name_the_path(tmp_path, content, says):
    path = tmp_path / "junk.reclib"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=rf"{path}: {says}"):
        MostPopular.load(path)


def test_a_truncated_file_names_the_path(saved, tmp_path):
    raw = saved.read_bytes()
    for keep in (10, len(raw) // 2, len(raw) - 5):
        path = atomic_write_bytes(tmp_path / f"cut{keep}.reclib", raw[:keep])
        with pytest.raises(ModelFileError, match=str(path)):
            MostPopular.load(path)


def test_a_file_of_another_class_is_refused_before_it_is_built(saved):
    with pytest.raises(ModelFileError, match="holds a reclib.cf.popularity:MostPopular, not a reclib.cf.ease:EASE"):
        EASE.load(saved)


def test_a_newer_format_version_is_refused(saved, tmp_path):
    path = _write_forged(tmp_path / "v2.reclib", _members(saved), format_version=2)
    with pytest.raises(ModelFileError, match="format version 2; this reclib reads version 1"):
        MostPopular.load(path)


@pytest.mark.parametrize("class_name", ["os:system", "subprocess:Popen", "builtins:eval",
                                        "reclib.base:os.PathLike", "reclib.model_format:zipfile.ZipFile",
                                        "no.such.module:Thing"])
def test_a_forged_file_naming_a_foreign_class_is_refused(saved, tmp_path, class_name):
    """Hashes protect against damage; against a forger, only the classes reclib rebuilds protect:
    the manifest's class and every object in the state must be reclib's own (or an imported
    recommender), whatever the hashes say."""
    members = _members(saved)
    path = _write_forged(tmp_path / "forged.reclib", members, **{"class": class_name})
    with pytest.raises(ModelFileError, match="not a reclib class or an imported Recommender"):
        MostPopular.load(path)
    state = json.loads(members["state.json"])
    state["state"]["payload_"] = {"__reclib__": "object", "class": class_name, "state": {}, "slots": None}
    path = _write_forged(tmp_path / "nested.reclib", {**members, "state.json": json.dumps(state).encode()})
    with pytest.raises(ModelFileError, match="not a reclib class or an imported Recommender"):
        MostPopular.load(path)


@pytest.mark.parametrize("kind", ["_init__", "__class__", "eval", "reader"])
def test_a_forged_value_of_an_unknown_kind_is_refused(saved, tmp_path, kind):
    members = _members(saved)
    state = json.loads(members["state.json"])
    state["state"]["payload_"] = {"__reclib__": kind}
    path = _write_forged(tmp_path / "forged.reclib", {**members, "state.json": json.dumps(state).encode()})
    with pytest.raises(ModelFileError, match=f"unknown kind {kind!r}"):
        MostPopular.load(path)


def test_a_forged_keras_member_with_a_lambda_layer_is_refused(tmp_path):
    """The Keras parts are read with ``safe_mode=True``: a ``Lambda`` layer (Python bytecode in
    the file) is refused even when the file's hashes are right."""
    import keras

    from reclib.models import NCF

    model = NCF(gmf_dim=4, mlp_dims=(8, 4), epochs=1, batch_size=128).fit(FRAME)
    path = model.save(tmp_path / "ncf.reclib")
    members = _members(path)
    name = next(n for n in members if n.startswith("keras/"))
    inputs = keras.Input((1,))
    evil = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs))
    evil.save(tmp_path / "evil.keras")
    forged = _write_forged(tmp_path / "forged.reclib", {**members, name: (tmp_path / "evil.keras").read_bytes()})
    with pytest.raises(ModelFileError, match="could not rebuild the model.*(Lambda|lambda|safe_mode)"):
        NCF.load(forged)


# -- forged files that would cost memory, import modules or touch global state --------------------------
def _forge_state(saved, tmp_path, payload, name="forged.reclib"):
    members = _members(saved)
    state = json.loads(members["state.json"])
    state["state"]["payload_"] = payload
    return _write_forged(tmp_path / name, {**members, "state.json": json.dumps(state).encode()})


@pytest.mark.parametrize("payload, message", [
    ({"__reclib__": "sparse", "format": "csr", "shape": [200_000_000, 1], "coo": [[], [], []]}, "does not fit"),
    ({"__reclib__": "sparse", "format": "dense", "shape": [2, 2], "coo": [[], [], []]}, "sparse format 'dense'"),
    ({"__reclib__": "torch_module", "class": "Embedding", "weights": {},
      "spec": {"num_embeddings": 400_000, "embedding_dim": 1000, "padding_idx": None}},
     "whose weights do not match its spec"),
    ({"__reclib__": "torch_module", "class": "LlamaForCausalLM", "weights": {}, "spec": {}},
     "not one of the transformers models"),
    ({"__reclib__": "tensor", "dtype": "Tensor", "values": []}, "tensor dtype 'Tensor'"),
    ({"__reclib__": "series", "dtype": "string[pyarrow]", "values": [], "index": {"range": [0, 0, 1], "name": None},
      "name": None}, "pandas dtype 'string\\[pyarrow\\]'"),
], ids=["sparse-shape", "sparse-format", "embedding-size", "transformers-class", "tensor-dtype", "pandas-dtype"])
def test_a_forged_value_that_would_allocate_or_import_is_refused(saved, tmp_path, payload, message):
    with pytest.raises(ModelFileError, match=message):
        MostPopular.load(_forge_state(saved, tmp_path, payload))


def test_a_scalar_takes_its_dtype_from_its_array_not_from_the_manifest(saved, tmp_path):
    """The file once said a scalar's dtype in JSON (``<U400000000``: 1.5 GB from 1 KB); now a scalar
    is the 0-d array itself, and anything else is refused."""
    members = _members(saved)
    key = json.loads(members["state.json"])["state"]["item_counts_"]["key"]          # a 1-d array
    path = _forge_state(saved, tmp_path, {"__reclib__": "scalar", "dtype": "<U400000000",
                                          "value": {"__reclib__": "array", "key": key}})
    with pytest.raises(ModelFileError, match="a scalar is not a 0-d array"):
        MostPopular.load(path)


def test_an_array_header_larger_than_its_data_is_refused_before_numpy_allocates(saved, tmp_path):
    members = _members(saved)
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 10,)})
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as archive:
        with np.load(io.BytesIO(members["arrays.npz"])) as real:
            for key in real.files:
                buffer = io.BytesIO()
                np.save(buffer, real[key])
                archive.writestr(f"{key}.npy", buffer.getvalue())
        archive.writestr("a99.npy", header.getvalue() + b"\0" * 8)
    path = _write_forged(tmp_path / "npy.reclib", {**members, "arrays.npz": npz.getvalue()})
    with pytest.raises(ModelFileError, match=r"a99.npy declares float64 \(10000000000,\), more than it holds"):
        MostPopular.load(path)


def test_a_zip_bomb_is_refused_before_it_is_decompressed(saved, tmp_path, monkeypatch):
    from reclib import model_format

    monkeypatch.setattr(model_format, "_SMALL", 10_000)        # the real threshold is 64 MiB
    members = _members(saved)
    path = tmp_path / "bomb.reclib"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.writestr("padding", b"\0" * 5_000_000)
    with pytest.raises(ModelFileError, match="member padding would expand"):
        MostPopular.load(path)


def test_a_class_name_imports_nothing(saved, tmp_path):
    import sys

    before = set(sys.modules)
    for name in ("scipy:odr.ODR", "scipy:io.matlab.loadmat", "transformers:LlamaModel", "reclib.nosuch:Y"):
        path = _write_forged(tmp_path / "c.reclib", _members(saved), **{"class": name})
        with pytest.raises(ModelFileError, match=rf"{path}: .*not a reclib class or an imported Recommender"):
            MostPopular.load(path)
    assert set(sys.modules) - before == set()


@pytest.mark.parametrize("changes, message", [({"sha256": ["x"]}, "sha256 must map"),
                                              ({"format_version": True}, "format version True"),
                                              ({"class": "reclib:"}, "not a reclib class")])
def test_a_malformed_manifest_names_the_file(saved, tmp_path, changes, message):
    path = _write_forged(tmp_path / "m.reclib", _members(saved), **changes)
    with pytest.raises(ModelFileError, match=rf"{path}: .*{message}"):
        MostPopular.load(path)


def test_loading_a_torch_model_leaves_the_global_random_state_alone(tmp_path):
    import torch

    from reclib.models import ItemGPT2Recommender

    frame = FRAME.assign(timestamp=np.arange(len(FRAME)))
    path = ItemGPT2Recommender(max_length=4, embedding_dim=8, n_layers=1, epochs=1).fit(frame).save(tmp_path / "g.reclib")
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    ItemGPT2Recommender.load(path)
    assert torch.equal(torch.rand(3), expected)


def test_a_reclib_0_1_pickle_of_a_moved_and_renamed_class_loads(tmp_path):
    """BPR lived in reclib.cf.implicit and called ``n_blocks`` ``n_threads`` in reclib 0.1: such a
    pickle (protocol 0 keeps module names as text, so the old one can be written here) loads."""
    from reclib.cf import BPR

    model = BPR(n_factors=4, epochs=2, verbose=False).fit(FRAME)
    old = pickle.loads(pickle.dumps(model))
    old.__dict__["n_threads"] = old.__dict__.pop("n_blocks")
    raw = pickle.dumps(old, protocol=0).replace(b"creclib.cf.bpr\nBPR\n", b"creclib.cf.implicit\nBPR\n")
    assert b"reclib.cf.implicit" in raw
    path = tmp_path / "old_bpr.pkl"
    path.write_bytes(b"\x80\x02" + raw if not raw.startswith(b"\x80") else raw)
    loaded = BPR.load(path, allow_pickle=True)
    assert loaded.get_params()["n_blocks"] == 2 and "n_threads" not in vars(loaded)
    np.testing.assert_array_equal(loaded.score(USERS), model.score(USERS))

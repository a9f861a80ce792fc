"""The values a saved model holds, as JSON-able data plus arrays and Keras files (``StateWriter``)
and back (``StateReader``): the codec behind :mod:`reclib.model_format`, whose doc lists the kinds.

A value that is not plain JSON is a dict tagged ``{"__reclib__": kind, ...}``; the reader
dispatches only on the known kinds and rebuilds objects only of reclib's classes (or of an
imported ``Recommender`` subclass), so no data in a file can name code to run.
"""

from __future__ import annotations

import importlib
import pathlib
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["ModelFileError", "StateReader", "StateWriter", "class_name", "resolve_class"]

#: what a file may name: sparse formats, torch dtypes, transformers model classes (reclib's own)
SPARSE_FORMATS = ("csr", "csc", "coo")
TENSOR_DTYPES = ("float16", "bfloat16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")
TRANSFORMERS_MODELS = ("BertModel", "GPT2LMHeadModel")
PANDAS_DTYPES = ("str", "string", "boolean", "Int8", "Int16", "Int32", "Int64", "UInt8", "UInt16", "UInt32",
                 "UInt64", "Float32", "Float64")

_TAG = "__reclib__"                 # the key marking an encoded (non-JSON) value in state.json


class ModelFileError(ValueError):
    """A model file that cannot be read back: not a reclib model, damaged, or of another class."""


# -- writing ----------------------------------------------------------------------------------------
class StateWriter:
    """Turns a value into JSON-able data, collecting arrays and Keras files on the side."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.files: dict[str, bytes] = {}

    def array(self, values: np.ndarray, where: str) -> dict[str, Any]:
        if values.dtype.kind == "O":
            items = values.ravel().tolist()
            bad = next((v for v in items if not isinstance(v, (str, int, float, bool, type(None)))), None)
            if bad is not None:
                raise TypeError(f"{where}: an object array holds a {type(bad).__name__}")
            return {_TAG: "object_array", "shape": list(values.shape), "items": items}
        if values.dtype.kind == "V" or values.dtype.hasobject:
            raise TypeError(f"{where}: arrays of dtype {values.dtype} cannot be saved")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = values          # (not ascontiguousarray: it makes a 0-d array 1-d)
        return {_TAG: "array", "key": key}

    def encode(self, value: Any, where: str) -> Any:
        for kind, applies, encoder in _ENCODERS:
            if applies(value):
                encoded = encoder(self, value, where)
                return encoded if kind is None else {_TAG: kind, **encoded}
        raise TypeError(f"{where} holds a {type(value).__module__}.{type(value).__qualname__}, "
                        "which the model format cannot store")


def _items(writer: StateWriter, values: Any, where: str) -> list[Any]:
    return [writer.encode(v, f"{where}[{i}]") for i, v in enumerate(values)]


def _plain(writer: StateWriter, value: Any, where: str) -> Any:
    return value


def _dict(writer: StateWriter, value: dict, where: str) -> Any:
    if all(isinstance(k, str) and k != _TAG for k in value):
        return {k: writer.encode(v, f"{where}.{k}") for k, v in value.items()}
    return {_TAG: "dict", "items": [[writer.encode(k, f"{where} key"), writer.encode(v, f"{where}[{k!r}]")]
                                    for k, v in value.items()]}


def class_name(cls: type) -> str:
    """``module:qualname`` of ``cls``, as a model file names the class to rebuild."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _object(writer: StateWriter, value: Any, where: str) -> dict[str, Any]:
    state = value.__getstate__()                      # a dict, or (dict or None, slots dict)
    state, slots = state if isinstance(state, tuple) else (state, None)
    return {"class": class_name(type(value)), "state": writer.encode(state or {}, where),
            "slots": None if slots is None else writer.encode(slots, where)}


def _series_parts(writer: StateWriter, values: Any, where: str) -> dict[str, Any]:
    """The values of an Index or Series column, with the dtype they need to come back as."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cat = pd.Categorical(values)
        return {"dtype": "category", "ordered": bool(dtype.ordered),
                "categories": _index(writer, cat.categories, where),
                "codes": writer.array(cat.codes, where)}
    if isinstance(dtype, np.dtype) or isinstance(values, pd.arrays.NumpyExtensionArray):
        return {"dtype": None, "values": writer.array(np.asarray(values), where)}
    items = pd.Series(values).astype(object).where(pd.notna(values), None).tolist()
    return {"dtype": str(dtype), "values": writer.array(np.array(items, dtype=object), where)}


def _index(writer: StateWriter, index: pd.Index, where: str) -> dict[str, Any]:
    if isinstance(index, pd.MultiIndex):
        raise TypeError(f"{where}: a MultiIndex cannot be saved")
    if isinstance(index, pd.RangeIndex):
        return {"range": [index.start, index.stop, index.step], "name": writer.encode(index.name, where)}
    return {**_series_parts(writer, index, where), "name": writer.encode(index.name, where)}


def _torch_tensor(writer: StateWriter, value: Any, where: str) -> dict[str, Any]:
    import torch

    tensor = value.detach().cpu()
    dtype = str(tensor.dtype).removeprefix("torch.")
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return {"dtype": dtype, "values": writer.array(tensor.numpy(), where)}


def _torch_module(writer: StateWriter, value: Any, where: str) -> dict[str, Any]:
    import torch

    weights = {k: _torch_tensor(writer, v, f"{where}.{k}") for k, v in value.state_dict().items()}
    if isinstance(value, torch.nn.Linear):
        spec = {"in_features": value.in_features, "out_features": value.out_features,
                "bias": value.bias is not None}
    elif isinstance(value, torch.nn.Embedding):
        spec = {"num_embeddings": value.num_embeddings, "embedding_dim": value.embedding_dim,
                "padding_idx": value.padding_idx}
    else:                                                       # a transformers PreTrainedModel
        spec = {"config": writer.encode(value.config.to_dict(), where),
                "attn_implementation": getattr(value.config, "_attn_implementation", None)}
    return {"class": type(value).__name__, "spec": spec, "weights": weights}


def _keras_model(writer: StateWriter, value: Any, where: str) -> dict[str, Any]:
    name = f"keras/{len(writer.files)}.keras"
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "model.keras"
        value.save(path)
        writer.files[name] = path.read_bytes()
    return {"member": name}


def _is_module_type(value: Any, module: str, *names: str) -> bool:
    """``isinstance(value, module.name)`` for any of ``names``, without importing ``module``."""
    loaded = sys.modules.get(module)
    if loaded is None:
        return False
    types = []
    for name in names:
        obj: Any = loaded
        for part in name.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, type):
            types.append(obj)
    return bool(types) and isinstance(value, tuple(types))


def _is_reclib_object(value: Any) -> bool:
    module = type(value).__module__
    return module == "reclib" or module.startswith("reclib.") or _is_recommender(value)


def _is_recommender(value: Any) -> bool:
    base = sys.modules.get("reclib.base")
    return base is not None and isinstance(value, base.Recommender)


# (kind, test, encoder): the first whose test passes encodes the value; kind None = no tag
_ENCODERS: list[tuple[str | None, Callable[[Any], bool], Callable[[StateWriter, Any, str], Any]]] = [
    (None, lambda v: v is None or isinstance(v, (bool, str)), _plain),
    (None, lambda v: type(v) in (int, float), _plain),
    (None, lambda v: type(v) is list, _items),
    ("tuple", lambda v: type(v) is tuple, lambda w, v, p: {"items": _items(w, v, p)}),
    ("set", lambda v: type(v) in (set, frozenset),
     lambda w, v, p: {"frozen": isinstance(v, frozenset), "items": _items(w, sorted(v, key=repr), p)}),
    (None, lambda v: type(v) is dict, _dict),
    ("scalar", lambda v: isinstance(v, np.generic),
     lambda w, v, p: {"dtype": v.dtype.str, "value": w.array(np.asarray(v), p)}),
    (None, lambda v: isinstance(v, np.ndarray), lambda w, v, p: w.array(v, p)),
    ("dtype", lambda v: isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)),
     lambda w, v, p: {"name": np.dtype(v).str, "type": isinstance(v, type)}),
    ("sparse", sp.issparse, lambda w, v, p: {"format": v.format, "shape": list(v.shape),
                                              "coo": _items(w, _coo_parts(v), p)}),
    ("index", lambda v: isinstance(v, pd.Index), _index),
    ("series", lambda v: isinstance(v, pd.Series),
     lambda w, v, p: {**_series_parts(w, v.array, p), "index": _index(w, v.index, p),
                      "name": w.encode(v.name, p)}),
    ("frame", lambda v: isinstance(v, pd.DataFrame),
     lambda w, v, p: {"columns": _index(w, v.columns, p), "index": _index(w, v.index, p),
                      "data": [_series_parts(w, v.iloc[:, j].array, f"{p}[{v.columns[j]!r}]")
                               for j in range(v.shape[1])]}),
    ("path", lambda v: isinstance(v, pathlib.PurePath), lambda w, v, p: {"path": str(v)}),
    ("generator", lambda v: isinstance(v, np.random.Generator),
     lambda w, v, p: {"state": w.encode(v.bit_generator.state, p)}),
    ("keras", lambda v: _is_module_type(v, "keras", "Model"), _keras_model),
    ("tensor", lambda v: _is_module_type(v, "torch", "Tensor"), _torch_tensor),
    ("torch_module", lambda v: _is_module_type(v, "torch", "nn.Linear", "nn.Embedding")
     or _is_module_type(v, "transformers", "PreTrainedModel"), _torch_module),
    ("object", lambda v: _is_reclib_object(v) and not isinstance(v, type) and not callable(v), _object),
]


#: the tags ``StateReader.decode`` dispatches on: the encoders' kinds and the tags the untagged encoders write
_KINDS = frozenset(kind for kind, _, _ in _ENCODERS if kind is not None) | {"array", "object_array", "dict"}


def _coo_parts(matrix: sp.spmatrix) -> list[np.ndarray]:
    coo = sp.coo_matrix(matrix)
    return [coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data]


def resolve_class(name: str) -> type:
    """The class ``module:qualname`` if it may be rebuilt from a file (module doc): a class of
    reclib (its module is imported: reclib's own code), or a recommender class whose module is
    already imported. Anything else raises ``ModelFileError``; no other module is imported (the
    names are looked up in the modules' and classes' own namespaces, so no lazy ``__getattr__``
    of a package runs)."""
    module_name, _, qualname = name.partition(":")
    module: Any = None
    if module_name == "reclib" or module_name.startswith("reclib."):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            module = None
    else:
        module = sys.modules.get(module_name)
    obj: Any = module
    for part in qualname.split("."):
        obj = vars(obj).get(part) if obj is not None and hasattr(obj, "__dict__") else None
    from reclib.base import Recommender

    # the class itself must be defined in reclib (not merely reachable from a reclib module)
    own = isinstance(obj, type) and (obj.__module__ == "reclib" or obj.__module__.startswith("reclib."))
    if not isinstance(obj, type) or not (own or issubclass(obj, Recommender)):
        raise ModelFileError(f"the file names class {name!r}, which is not a reclib class or an "
                             "imported Recommender subclass")
    return obj


class StateReader:
    """Decodes what :class:`StateWriter` encoded, with a model file's ``arrays`` and ``files``."""
    def __init__(self, arrays: dict[str, np.ndarray], files: dict[str, bytes]) -> None:
        self.arrays, self.files = arrays, files

    def decode(self, data: Any) -> Any:
        if isinstance(data, list):
            return [self.decode(v) for v in data]
        if not isinstance(data, dict):
            return data
        kind = data.get(_TAG)
        if kind is None:
            return {k: self.decode(v) for k, v in data.items()}
        if kind not in _KINDS:
            raise ModelFileError(f"state.json holds a value of unknown kind {kind!r}")
        return getattr(self, f"_{kind}")(data)

    def _array(self, data: dict) -> np.ndarray:
        return self.arrays[data["key"]]

    def _object_array(self, data: dict) -> np.ndarray:
        values = np.empty(len(data["items"]), dtype=object)
        values[:] = data["items"]
        return values.reshape(data["shape"])

    def _tuple(self, data: dict) -> tuple:
        return tuple(self.decode(data["items"]))

    def _set(self, data: dict) -> set | frozenset:
        return (frozenset if data["frozen"] else set)(self.decode(data["items"]))

    def _dict(self, data: dict) -> dict:
        return {self.decode(k): self.decode(v) for k, v in data["items"]}

    def _scalar(self, data: dict) -> np.generic:
        value = self.decode(data["value"])          # a 0-d array of the npz: its dtype is the scalar's
        if not isinstance(value, np.ndarray) or value.ndim != 0:
            raise ModelFileError("state.json: a scalar is not a 0-d array")
        return value[()]

    def _dtype(self, data: dict) -> Any:
        dtype = np.dtype(data["name"])
        return dtype.type if data["type"] else dtype

    def _sparse(self, data: dict) -> sp.spmatrix:
        if data["format"] not in SPARSE_FORMATS:
            raise ModelFileError(f"state.json: sparse format {data['format']!r} is not one of {SPARSE_FORMATS}")
        row, col, values = self.decode(data["coo"])
        shape = data["shape"]
        # a shape far larger than the stored entries would allocate memory the file does not hold
        if (not (isinstance(shape, list) and len(shape) == 2 and all(type(n) is int and n >= 0 for n in shape))
                or max(shape, default=0) > 16 * len(values) + 2 ** 20):
            raise ModelFileError(f"state.json: sparse shape {shape!r} does not fit its {len(values)} entries")
        matrix = sp.coo_matrix((values, (row, col)), shape=tuple(shape))
        return matrix.asformat(data["format"])

    def _values(self, data: dict) -> Any:
        if data["dtype"] == "category":
            return pd.Categorical.from_codes(self.decode(data["codes"]), self._index(data["categories"]),
                                             ordered=data["ordered"])
        values = self.decode(data["values"])
        if data["dtype"] is not None and data["dtype"] not in PANDAS_DTYPES:
            raise ModelFileError(f"state.json: pandas dtype {data['dtype']!r} is not one of {PANDAS_DTYPES}")
        return values if data["dtype"] is None else pd.array(values, dtype=data["dtype"])

    def _index(self, data: dict) -> pd.Index:
        name = self.decode(data["name"])
        if "range" in data:
            return pd.RangeIndex(*data["range"], name=name)
        return pd.Index(self._values(data), name=name, tupleize_cols=False)

    def _series(self, data: dict) -> pd.Series:
        return pd.Series(self._values(data), index=self._index(data["index"]), name=self.decode(data["name"]),
                         copy=False)

    def _frame(self, data: dict) -> pd.DataFrame:
        columns = self._index(data["columns"])
        frame = pd.DataFrame({j: self._values(part) for j, part in enumerate(data["data"])},
                             index=self._index(data["index"]))
        frame.columns = columns
        return frame

    def _path(self, data: dict) -> pathlib.Path:
        return pathlib.Path(data["path"])

    def _generator(self, data: dict) -> np.random.Generator:
        state = self.decode(data["state"])
        bit_generator = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM, "MT19937": np.random.MT19937,
                         "Philox": np.random.Philox, "SFC64": np.random.SFC64}[state["bit_generator"]]()
        bit_generator.state = state
        return np.random.Generator(bit_generator)

    def _keras(self, data: dict) -> Any:
        import keras

        with tempfile.TemporaryDirectory() as folder:
            path = pathlib.Path(folder) / "model.keras"
            path.write_bytes(self.files[data["member"]])
            return keras.saving.load_model(path, safe_mode=True)

    def _tensor(self, data: dict) -> Any:
        import torch

        if data["dtype"] not in TENSOR_DTYPES:
            raise ModelFileError(f"state.json: tensor dtype {data['dtype']!r} is not one of {TENSOR_DTYPES}")
        return torch.from_numpy(np.array(self.decode(data["values"]))).to(getattr(torch, data["dtype"]))

    def _torch_module(self, data: dict) -> Any:
        """A ``torch.nn.Linear`` / ``Embedding`` or an allowed ``transformers`` model with the stored
        weights. Built first on the ``meta`` device, so sizes the weights in the file do not back
        allocate nothing; then for real under a forked random state (loading leaves torch's global
        generator as it was)."""
        import torch

        weights = {k: self._tensor(v) for k, v in data["weights"].items()}

        def build():
            spec, name = data["spec"], data["class"]
            if name in ("Linear", "Embedding"):
                return getattr(torch.nn, name)(**spec)
            if name not in TRANSFORMERS_MODELS:
                raise ModelFileError(f"{name!r} is not one of the transformers models {TRANSFORMERS_MODELS}")
            import transformers

            cls = getattr(transformers, name)
            config = cls.config_class.from_dict(self.decode(spec["config"]))
            if spec["attn_implementation"] is not None:
                config._attn_implementation = spec["attn_implementation"]
            return cls(config)

        with torch.device("meta"):
            shapes = {k: tuple(v.shape) for k, v in build().state_dict().items()}
        stored = {k: tuple(v.shape) for k, v in weights.items()}
        if shapes != stored:
            raise ModelFileError(f"state.json: a {data['class']} whose weights do not match its spec")
        with torch.random.fork_rng(devices=[]):
            module = build()
        module.load_state_dict(weights, strict=True)
        return module.eval()

    def _object(self, data: dict) -> Any:
        cls = resolve_class(data["class"])
        obj = cls.__new__(cls)
        state = self.decode(data["state"])
        if hasattr(cls, "__setstate__"):
            obj.__setstate__(state if data["slots"] is None else (state, self.decode(data["slots"])))
        else:
            obj.__dict__.update(state)
            for name, value in (self.decode(data["slots"]) or {}).items():
                object.__setattr__(obj, name, value)
        return obj


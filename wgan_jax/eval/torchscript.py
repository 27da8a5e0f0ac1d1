"""The tensors of a TorchScript archive, read without PyTorch.

A TorchScript file (`torch.jit.save`) is a zip archive: `<root>/data.pkl` pickles the module tree
(each module an object of a `__torch__.*` class whose state holds its parameters, buffers and
submodules), and each tensor's storage is a raw little-endian file `<root>/data/<key>` that the
pickle names by a persistent id. Reading those two is all the FID needs of its Inception network's
weights, so the `[fid]` path needs neither PyTorch nor its CUDA libraries. The unpickler builds
only plain objects, NumPy arrays and containers: a class outside the few listed here is refused,
so the archive cannot run code. tests/eval/test_fid.py checks every tensor against
`torch.jit.load(...).state_dict()` where PyTorch is installed.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from pathlib import Path

import numpy as np

_STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64,
                   "HalfStorage": np.float16, "LongStorage": np.int64, "IntStorage": np.int32,
                   "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
                   "BoolStorage": np.bool_}


class _Module:
    """A scripted module as the pickle gives it: its attributes in `state`."""

    def __init__(self, *args):
        self.state = {}

    def __setstate__(self, state):
        self.state = state


def _rebuild_tensor(storage: np.ndarray, offset: int, size, stride, *_) -> np.ndarray:
    """torch._utils._rebuild_tensor_v2: a view of `storage` (strides in elements), copied."""
    if not size:
        return storage[offset:offset + 1].reshape(()).copy()
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=[s * storage.itemsize for s in stride])
    return np.ascontiguousarray(view)


class _Unpickler(pickle.Unpickler):
    def __init__(self, archive: zipfile.ZipFile, root: str):
        super().__init__(archive.open(f"{root}/data.pkl"))
        self.archive, self.root = archive, root

    def find_class(self, module: str, name: str):
        if module.startswith("__torch__."):
            return type(name, (_Module,), {})
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        if module == "torch.jit._pickle" and name.startswith("build_"):
            return lambda value: value  # build_intlist and friends wrap plain lists
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"unexpected {module}.{name} in a TorchScript archive")

    def persistent_load(self, pid):
        _, storage, key, _, _ = pid  # ("storage", type, key, location, element count)
        raw = self.archive.read(f"{self.root}/data/{key}")
        return np.frombuffer(raw, dtype=np.dtype(_STORAGE_DTYPES[storage]).newbyteorder("<"))


def _tensors(module: _Module, prefix: str = "") -> dict[str, np.ndarray]:
    found = {}
    for name, value in module.state.items():
        if isinstance(value, np.ndarray):
            found[prefix + name] = value
        elif isinstance(value, _Module):
            found.update(_tensors(value, f"{prefix}{name}."))
    return found


def state_dict(path: Path) -> dict[str, np.ndarray]:
    """Every parameter and buffer of the archive's module tree, by its dotted name (as
    `torch.jit.load(path).state_dict()` names them)."""
    with zipfile.ZipFile(path) as archive:
        root = archive.namelist()[0].split("/")[0]
        top = _Unpickler(archive, root).load()
    if not isinstance(top, _Module):
        raise pickle.UnpicklingError(f"{path} does not hold a scripted module")
    return _tensors(top)

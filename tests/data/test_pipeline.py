import os
import subprocess
import sys
import textwrap

import chex
import jax.numpy as jnp
import numpy as np
import pytest

from d2ljax.data import ArrayLoader, epoch_permutation, image_transform


def data(n=103):
    return {
        "x": np.arange(n * 2, dtype=np.float32).reshape(n, 2),
        "y": np.arange(n, dtype=np.int32),
    }


def collect(loader, epoch):
    loader.set_epoch(epoch)
    return [np.asarray(b["y"]) for b in loader]


@pytest.mark.parametrize("on_device", [False, True])
def test_every_example_once_per_epoch(on_device):
    loader = ArrayLoader(data(), 10, seed=3, on_device=on_device)
    ys = collect(loader, 0)
    assert len(ys) == len(loader) == 11
    assert [len(y) for y in ys] == [10] * 10 + [3]
    assert sorted(np.concatenate(ys).tolist()) == list(range(103))


@pytest.mark.parametrize("on_device", [False, True])
def test_shuffle_is_a_function_of_seed_and_epoch(on_device):
    a = ArrayLoader(data(), 10, seed=3, on_device=on_device)
    b = ArrayLoader(data(), 10, seed=3, on_device=not on_device)
    for epoch in (0, 1, 5):
        chex.assert_trees_all_equal(collect(a, epoch), collect(b, epoch))
    assert not np.array_equal(np.concatenate(collect(a, 0)), np.concatenate(collect(a, 1)))
    c = ArrayLoader(data(), 10, seed=4)
    assert not np.array_equal(np.concatenate(collect(a, 0)), np.concatenate(collect(c, 0)))
    np.testing.assert_array_equal(np.concatenate(collect(a, 2)), epoch_permutation(103, 3, 2))


def test_iterating_advances_the_epoch():
    loader = ArrayLoader(data(), 10, seed=0)
    first = np.concatenate([np.asarray(b["y"]) for b in loader])
    second = np.concatenate([np.asarray(b["y"]) for b in loader])
    assert not np.array_equal(first, second)
    assert loader.epoch == 2


def test_no_shuffle_keeps_order_and_rows_stay_together():
    loader = ArrayLoader(data(), 25, shuffle=False)
    batches = list(loader)
    np.testing.assert_array_equal(np.asarray(batches[0]["y"]), np.arange(25))
    for b in ArrayLoader(data(), 25, seed=1):
        np.testing.assert_array_equal(np.asarray(b["x"])[:, 0], 2 * np.asarray(b["y"]))


def test_drop_remainder():
    loader = ArrayLoader(data(), 10, drop_remainder=True)
    assert len(loader) == 10
    assert all(b["y"].shape == (10,) for b in loader)
    with pytest.raises(ValueError, match="no batch"):
        ArrayLoader(data(5), 10, drop_remainder=True)


def test_image_transform_scales_and_resizes():
    imgs = {"x": np.full((4, 28, 28, 1), 255, np.uint8), "y": np.zeros(4, np.int32)}
    loader = ArrayLoader(imgs, 2, transform=image_transform(32), on_device=True)
    b = next(iter(loader))
    chex.assert_shape(b["x"], (2, 32, 32, 1))
    assert b["x"].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(b["x"]), 1.0, rtol=1e-5)
    assert loader.element_spec["x"].shape == (2, 32, 32, 1)


def test_bad_input_errors():
    with pytest.raises(ValueError, match="same number of examples"):
        ArrayLoader({"x": np.zeros(3), "y": np.zeros(4)}, 2)
    with pytest.raises(ValueError, match="positive"):
        ArrayLoader(data(), 0)
    with pytest.raises(ValueError, match="empty"):
        ArrayLoader({"x": np.zeros((0, 2))}, 2)


def test_prefetch_propagates_errors():
    def bad(batch):
        raise RuntimeError("boom")

    loader = ArrayLoader(data(), 10, transform=bad, prefetch=2)
    with pytest.raises(RuntimeError, match="boom"):
        list(loader)


def test_sharded_batches_on_fake_devices():
    code = textwrap.dedent("""
        import numpy as np, jax
        from d2ljax.data import ArrayLoader
        from d2ljax.parallel import make_mesh, batch_sharding
        mesh = make_mesh()
        sh = batch_sharding(mesh)
        d = {"x": np.arange(64, dtype=np.float32).reshape(32, 2), "y": np.arange(32)}
        for on_device in (False, True):
            b = next(iter(ArrayLoader(d, 8, sharding=sh, on_device=on_device, shuffle=False)))
            assert b["x"].sharding.is_equivalent_to(sh, 2), b["x"].sharding
            assert len(b["x"].addressable_shards) == 4
            assert b["x"].addressable_shards[1].data.shape == (2, 2)
            np.testing.assert_array_equal(np.asarray(b["y"]), np.arange(8))
        try:
            ArrayLoader(d, 6, sharding=sh)
        except ValueError as e:
            assert "divisible by the 4 devices" in str(e)
        else:
            raise AssertionError("no error for an indivisible batch")
        print("ok")
    """)
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout

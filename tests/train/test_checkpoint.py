import chex
import jax
import numpy as np
import pytest
from flax import nnx

from d2ljax.models import MLP, DropoutMLP
from d2ljax.train import Checkpointer, load_params, save_params


def test_save_load_params_round_trip(tmp_path):
    """Book §6.6: save a model's parameters, load them into a fresh model, same outputs."""
    model = MLP(num_hiddens=32, rngs=nnx.Rngs(0))
    save_params(tmp_path / "mlp", nnx.state(model))
    clone = MLP(num_hiddens=32, rngs=nnx.Rngs(1))
    x = np.random.default_rng(0).normal(size=(3, 28, 28, 1)).astype(np.float32)
    assert not np.allclose(model(x), clone(x))
    nnx.update(clone, load_params(tmp_path / "mlp", nnx.state(clone)))
    chex.assert_trees_all_equal(model(x), clone(x))


def _is_key(x):
    return jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _raw(tree):
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def test_rng_keys_round_trip(tmp_path):
    state = nnx.state(DropoutMLP(rngs=nnx.Rngs(params=0, dropout=5)))
    save_params(tmp_path / "d", state)
    template = nnx.state(DropoutMLP(rngs=nnx.Rngs(params=1, dropout=9)))
    restored = load_params(tmp_path / "d", template)
    assert any(_is_key(x) for x in jax.tree.leaves(restored))
    chex.assert_trees_all_equal(_raw(state), _raw(restored))


def test_checkpointer_keeps_latest_and_metadata(tmp_path):
    tree = {"w": np.arange(3.0, dtype=np.float32)}
    with Checkpointer(tmp_path, max_to_keep=2) as ck:
        for epoch in (1, 2, 3):
            ck.save(epoch, {"w": tree["w"] * epoch}, {"epoch": epoch})
        ck.wait()
        assert ck.all_epochs() == [2, 3]
        arrays, meta = ck.restore(tree)
    np.testing.assert_array_equal(arrays["w"], tree["w"] * 3)
    assert meta == {"epoch": 3}


def test_restore_without_checkpoint_is_a_clear_error(tmp_path):
    with (
        Checkpointer(tmp_path / "empty") as ck,
        pytest.raises(FileNotFoundError, match="no checkpoint"),
    ):
        ck.restore({"w": np.zeros(1)})

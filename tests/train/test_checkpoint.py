import json
import shutil

import chex
import jax
import numpy as np
import pytest
from flax import nnx

from d2ljax.models import MLP, DropoutMLP
from d2ljax.train import Checkpointer, load_params, save_params
from d2ljax.train.checkpoint import CheckpointDamaged, CheckpointMismatch


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


def test_metadata_is_what_it_was_when_saved(tmp_path):
    """Saving is asynchronous: changing the metadata dict after ``save`` (as ``fit`` does when it
    appends the next epoch to its history) does not change the checkpoint."""
    history = {"train_loss": [1.0]}
    with Checkpointer(tmp_path) as ck:
        for epoch in (1, 2, 3):
            ck.save(epoch, {"w": np.full(100_000, epoch, np.float32)}, {"history": history})
            history["train_loss"].append(float(epoch))
            history["more"] = [0]
        ck.wait()
        metas = [ck.restore({"w": np.zeros(100_000, np.float32)}, epoch)[1] for epoch in (1, 2, 3)]
    assert [m["history"]["train_loss"] for m in metas] == [[1.0], [1.0, 1.0], [1.0, 1.0, 2.0]]
    assert "more" not in metas[0]["history"]


def test_restore_without_checkpoint_is_a_clear_error(tmp_path):
    with (
        Checkpointer(tmp_path / "empty") as ck,
        pytest.raises(FileNotFoundError, match="no checkpoint"),
    ):
        ck.restore({"w": np.zeros(1)})


def _tree(scale=1.0):
    rng = np.random.default_rng(0)
    return {
        "params": {"w": (rng.normal(size=(16, 64)) * scale).astype(np.float32)},
        "step": np.int32(7),
    }


def test_saved_metadata_carries_an_integrity_record_restore_hides_it(tmp_path):
    with Checkpointer(tmp_path) as ck:
        ck.save(1, _tree(), {"epoch": 1})
        ck.wait()
        arrays, meta = ck.restore(_tree())
    assert meta == {"epoch": 1}
    record = json.loads((tmp_path / "1" / "meta" / "metadata").read_text())["integrity"]
    assert record["scheme"] == "blake2b-256"
    assert record["arrays"]["params/w"]["shape"] == [16, 64]
    assert record["arrays"]["params/w"]["dtype"] == "float32"
    assert len(record["arrays"]["params/w"]["digest"]) == 64
    np.testing.assert_array_equal(arrays["params"]["w"], _tree()["params"]["w"])


def test_an_array_that_does_not_match_its_digest_is_damage(tmp_path):
    """Orbax reads a garbled array without complaint; the digest does not match."""
    with Checkpointer(tmp_path) as ck:
        ck.save(1, _tree(), {"epoch": 1})
    path = tmp_path / "1" / "meta" / "metadata"
    meta = json.loads(path.read_text())
    meta["integrity"]["arrays"]["params/w"]["digest"] = "0" * 64
    path.write_text(json.dumps(meta))
    with Checkpointer(tmp_path) as ck:
        for restore in (lambda: ck.restore(_tree()), ck.restore_raw):
            with pytest.raises(CheckpointDamaged, match=r"params/w does not match its digest"):
                restore()


def test_another_structure_is_a_mismatch_naming_the_arrays(tmp_path):
    with Checkpointer(tmp_path) as ck:
        ck.save(1, _tree(), {})
        ck.wait()
        other = {"params": {"w": np.zeros((16, 32), np.float32), "b": np.zeros(3)}, "step": 0}
        with pytest.raises(CheckpointMismatch) as e:
            ck.restore(other)
    assert isinstance(e.value, FileExistsError)
    assert "params/w is float32(16, 64) in the checkpoint, float32(16, 32) here" in str(e.value)
    assert "params/b is not in the checkpoint" in str(e.value)
    assert "step is int32() in the checkpoint, int64() here" in str(e.value)


def test_newest_intact_passes_over_damage_and_set_aside_frees_the_epoch(tmp_path):
    with Checkpointer(tmp_path) as ck:
        for epoch in (1, 2, 3):
            ck.save(epoch, _tree(epoch), {"epoch": epoch})
    (tmp_path / "3" / "state" / "_METADATA").unlink()
    shutil.rmtree(tmp_path / "2" / "state")
    with Checkpointer(tmp_path) as ck:
        found = ck.restore_newest_intact(_tree())
        assert found.epoch == 1 and found.metadata == {"epoch": 1}
        np.testing.assert_array_equal(found.arrays["params"]["w"], _tree(1)["params"]["w"])
        assert [(d.epoch, d.reason) for d in found.damaged] == [
            (3, "state/_METADATA is missing"),
            (2, "state/ is missing"),
        ]
        assert str(found.damaged[0]) == (
            f"checkpoint 3 in {tmp_path} is damaged (state/_METADATA is missing)"
        )
        kept = ck.set_aside(3)
        assert kept == tmp_path.with_name(tmp_path.name + ".damaged") / "3" and kept.is_dir()
        assert ck.all_epochs() == [1, 2]
        ck.save(3, _tree(3), {"epoch": 3})
        ck.wait()
        np.testing.assert_array_equal(
            ck.restore(_tree(), 3)[0]["params"]["w"], _tree(3)["params"]["w"]
        )


def test_nothing_intact(tmp_path):
    with Checkpointer(tmp_path) as ck:
        ck.save(1, _tree(), {})
    (tmp_path / "1" / "meta" / "metadata").write_text("")
    with Checkpointer(tmp_path) as ck:
        found = ck.restore_newest_intact(_tree())
    assert found.epoch is None
    assert "meta/metadata is unreadable" in found.damaged[0].reason


def test_ctrl_c_while_a_save_is_waited_for_lets_the_save_finish(tmp_path, monkeypatch):
    """SIGINT arriving inside Orbax's wait for the save in flight is held until the wait is over:
    the checkpoint is committed, and the KeyboardInterrupt comes after."""
    import os
    import signal
    import time

    ck = Checkpointer(tmp_path)
    ck.save(1, {"w": np.ones(1_000_000, np.float32)}, {"epoch": 1})
    wait, finished = ck._manager.wait_until_finished, []

    def interrupted_wait():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)  # a handler that raises does so here, inside Orbax's wait
        wait()
        finished.append(True)

    monkeypatch.setattr(ck._manager, "wait_until_finished", interrupted_wait)
    with pytest.raises(KeyboardInterrupt):
        ck.wait()
    assert finished, "the wait was broken off"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    monkeypatch.undo()
    ck.close()
    assert Checkpointer(tmp_path).restore({"w": np.zeros(1_000_000, np.float32)})[1] == {"epoch": 1}

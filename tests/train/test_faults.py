"""Fault injection for ``fit`` (issue 14): damaged checkpoints, divergence, two runs on one
workdir, Ctrl-C/SIGTERM, and kill -9 while a checkpoint (with its digest) is being committed.

Every run here is a tiny two-layer MLP on tiny synthetic data (128 points in four Gaussian
blobs, 4 steps an epoch, 3 epochs): the tests check plumbing, not learning. After each fault,
resuming must end with parameters bit-for-bit equal to an uninterrupted run's, or the run must
be refused with the workdir unchanged.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from d2ljax.data import ArrayLoader
from d2ljax.tasks import SupervisedTask
from d2ljax.train import (
    Callback,
    Checkpointer,
    CheckpointMismatch,
    NoIntactCheckpoint,
    TrainingDiverged,
    TrainingInterrupted,
    WorkdirLocked,
    fit,
    make_optimizer,
)
from d2ljax.train.loop import _divergence_hint

EPOCHS = 3
STEPS = 4  # steps per epoch: 128 points in batches of 32
LOCK_PY = Path(__file__).resolve().parents[2] / "d2ljax" / "train" / "lock.py"


class Tiny(nnx.Module):
    def __init__(self, hidden, *, rngs):
        self.l1 = nnx.Linear(5, hidden, rngs=rngs)
        self.l2 = nnx.Linear(hidden, 4, rngs=rngs)

    def __call__(self, x):
        return self.l2(nnx.relu(self.l1(x)))


def blobs(n=128, seed=1):
    centers = np.random.default_rng(123).normal(size=(4, 5)) * 3
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n).astype(np.int32)
    return {"x": (centers[y] + rng.normal(size=(n, 5))).astype(np.float32), "y": y}


def tiny_fit(workdir, epochs=EPOCHS, *, explode_at=None, hidden=256, log=None, **kw):
    """``fit`` of the tiny MLP; ``explode_at=E``: the learning rate becomes 1e29 at the start of
    epoch E (a run that diverges there). Returns ``(result, log lines)``."""
    schedule = None
    if explode_at is not None:
        schedule = {"name": "piecewise", "boundaries_and_scales": {(explode_at - 1) * STEPS: 1e29}}
    task = SupervisedTask(
        Tiny(hidden, rngs=nnx.Rngs(0)), make_optimizer("sgd", 0.1, schedule=schedule)
    )
    lines = []
    with jax.transfer_guard("disallow"):
        res = fit(
            task,
            ArrayLoader(blobs(), 32, seed=0),
            epochs=epochs,
            workdir=workdir,
            progress=False,
            plot=False,
            log=log or lines.append,
            **kw,
        )
    return res, lines


def assert_same_run(got, ref):
    a_leaves, b_leaves = (jax.tree.leaves(r.state.arrays()) for r in (got, ref))
    for a, b in zip(a_leaves, b_leaves, strict=True):
        if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key):
            a, b = jax.random.key_data(a), jax.random.key_data(b)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert got.history["train_loss"] == ref.history["train_loss"]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run and a copy of its workdir (checkpoints 1, 2, 3)."""
    workdir = tmp_path_factory.mktemp("reference") / "run"
    res, _ = tiny_fit(workdir)
    assert not (workdir / ".lock").exists()
    return res, workdir


@pytest.fixture
def finished(reference, tmp_path):
    """A fresh copy of the reference run's workdir."""
    workdir = tmp_path / "run"
    shutil.copytree(reference[1], workdir)
    return workdir


def _largest(step: Path, pattern: str = "**/d/*") -> Path:
    """The largest data file of a checkpoint's array store (Orbax's OCDBT: ``state/**/d/*``);
    with the tiny model's 256-wide layer, the one holding its kernels."""
    files = [p for p in (step / "state").glob(pattern) if p.is_file()]
    return max(files, key=lambda p: p.stat().st_size)


def _garble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes(255 - b for b in data[mid : mid + 64])
    path.write_bytes(bytes(data))


def _rewrite_meta(step: Path, change) -> None:
    path = step / "meta" / "metadata"
    meta = json.loads(path.read_text())
    change(meta)
    path.write_text(json.dumps(meta))


def _wrong_digest(meta):
    entry = meta["integrity"]["arrays"]["params/l1/kernel/value"]
    entry["digest"] = "0" * len(entry["digest"])


FAULTS = {
    # Orbax reads garbled array bytes without complaint: the digest catches them (or, if the
    # bytes hit are ones TensorStore checks, the read fails).
    "garbled": (
        lambda s: _garble(_largest(s)),
        r"(params/\S+ does not match its digest|state/ is unreadable)",
    ),
    "truncated": (
        lambda s: os.truncate(_largest(s), _largest(s).stat().st_size // 2),
        r"state/ is unreadable",
    ),
    "emptied": (lambda s: _largest(s).write_bytes(b""), r"state/ is unreadable"),
    "index garbled": (  # the b-tree of the store's root, read before any array
        lambda s: _garble(_largest(s, "d/*")),
        r"state/ is unreadable: .*b-tree",
    ),
    "meta garbled": (
        lambda s: (s / "meta" / "metadata").write_text('{"epoch": 3, "hist'),
        r"meta/metadata is unreadable",
    ),
    "_METADATA deleted": (lambda s: (s / "state" / "_METADATA").unlink(), r"_METADATA is missing"),
    "state deleted": (lambda s: shutil.rmtree(s / "state"), r"state/ is missing"),
    "digest missing": (
        lambda s: _rewrite_meta(s, lambda m: m.pop("integrity")),
        r"no integrity record",
    ),
    "digest wrong": (
        lambda s: _rewrite_meta(s, _wrong_digest),
        r"params/l1/kernel/value does not match its digest",
    ),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_damaged_checkpoint_is_reported_and_resume_falls_back(fault, finished, reference, capfd):
    damage, reason = FAULTS[fault]
    damage(finished / "checkpoints" / "3")
    res, lines = tiny_fit(finished, resume=True)
    ckpts = finished / "checkpoints"
    first = lines[0]
    assert first.startswith(f"checkpoint 3 in {ckpts} is damaged ("), lines
    assert "; resuming from checkpoint 2" in first
    assert re.search(reason, first), first
    assert not any("nothing to train" in line for line in lines)  # epoch 3 is trained again
    assert_same_run(res, reference[0])
    assert "Traceback" not in capfd.readouterr().err
    # The damaged checkpoint was set aside and epoch 3 saved again, intact.
    assert (finished / "checkpoints.damaged" / "3").is_dir()
    with Checkpointer(ckpts) as ck:
        assert ck.all_epochs() == [1, 2, 3]
        ck.restore_raw(3)


def test_no_intact_checkpoint_is_a_clear_error_and_changes_nothing(finished):
    for epoch in (1, 2, 3):
        (finished / "checkpoints" / str(epoch) / "state" / "_METADATA").unlink()
    before = snapshot(finished)
    with pytest.raises(NoIntactCheckpoint) as e:
        tiny_fit(finished, resume=True)
    msg = str(e.value)
    assert msg.startswith(f"no checkpoint in {finished / 'checkpoints'} is intact: checkpoint 3")
    assert "checkpoint 1 is damaged (state/_METADATA is missing)" in msg
    assert "--overwrite" in msg
    assert isinstance(e.value, FileExistsError)  # what the command line prints cleanly
    assert snapshot(finished) == before


def test_resuming_another_architecture_is_a_mismatch_not_damage(finished):
    before = snapshot(finished)
    with pytest.raises(CheckpointMismatch, match=r"params/l1/kernel/value is float32\(5, 256\)"):
        tiny_fit(finished, hidden=16, resume=True)
    assert snapshot(finished) == before


def test_a_diverging_run_stops_and_keeps_its_last_finite_checkpoint(tmp_path):
    workdir = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as e:
        tiny_fit(workdir, epochs=5, explode_at=3)
    assert str(e.value) == (
        "the loss became non-finite in epoch 3 (lower the learning rate?); "
        "the last finite checkpoint is epoch 2"
    )
    assert (e.value.epoch, e.value.last_checkpoint) == (3, 2)
    history = json.loads((workdir / "metrics.json").read_text())
    assert history["epoch"] == [1, 2, 3] and not np.isfinite(history["train_loss"][2])
    with Checkpointer(workdir / "checkpoints") as ck:
        assert ck.all_epochs() == [1, 2]
        arrays, _ = ck.restore_raw(2)
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(arrays) if x.dtype.kind == "f")
    assert not (workdir / ".lock").exists()


def test_warn_mode_trains_on_but_never_checkpoints_a_non_finite_state(tmp_path):
    """Six epochs, divergent from epoch 3, three checkpoints kept: before, rotation would have
    kept only non-finite ones (4, 5, 6); now the newest checkpoint is the last finite one."""
    workdir = tmp_path / "run"
    res, lines = tiny_fit(workdir, epochs=6, explode_at=3, on_nonfinite="warn")
    assert res.history["epoch"] == [1, 2, 3, 4, 5, 6]
    warnings = [line for line in lines if line.startswith("warning: the loss became non-finite")]
    assert len(warnings) == 4 and "the last finite checkpoint is epoch 2" in warnings[-1]
    assert warnings[0].endswith("this epoch is not checkpointed")
    with Checkpointer(workdir / "checkpoints") as ck:
        assert ck.all_epochs() == [1, 2]


def test_on_nonfinite_must_be_stop_or_warn(tmp_path):
    with pytest.raises(ValueError, match="on_nonfinite must be 'stop' or 'warn'"):
        tiny_fit(tmp_path, on_nonfinite="ignore")


def test_a_huge_or_growing_finite_loss_warns():
    assert "is huge" in _divergence_hint({"train_loss": [8e23]})
    assert "is 50x that of epoch 1" in _divergence_hint({"train_loss": [2.0, 1.0, 100.0]})
    assert _divergence_hint({"train_loss": [2.0, 1.0, 3.0]}) is None


class _InterruptAt(Callback):
    def __init__(self, epoch, signum=None):
        self.epoch, self.signum = epoch, signum

    def on_epoch_end(self, epoch, history, state):
        if epoch + 1 == self.epoch:
            if self.signum is None:
                raise KeyboardInterrupt
            assert signal.getsignal(self.signum) is not signal.SIG_DFL  # fit's handler is in
            os.kill(os.getpid(), self.signum)
            time.sleep(5)  # the handler raises here
        return False


@pytest.mark.parametrize("signum", [None, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_says_where_to_resume_and_resume_is_exact(signum, tmp_path, reference):
    """Interrupted in epoch 2 (before its checkpoint): TrainingInterrupted names the epoch and the
    last checkpoint, the lock is released, and resuming ends as the uninterrupted run."""
    if signum is not None and signal.getsignal(signum) is not signal.SIG_DFL:
        pytest.skip("SIGTERM is handled by the test runner")
    workdir = tmp_path / "run"
    with pytest.raises(TrainingInterrupted) as e:
        tiny_fit(workdir, callbacks=[_InterruptAt(2, signum)])
    assert (e.value.epoch, e.value.last_checkpoint, e.value.workdir) == (2, 1, workdir)
    assert e.value.signum == (signum or signal.SIGINT)
    assert str(e.value) == "interrupted in epoch 2; the last checkpoint is epoch 1"
    assert isinstance(e.value, KeyboardInterrupt)
    assert not (workdir / ".lock").exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    res, lines = tiny_fit(workdir, resume=True)
    assert f"resumed from {workdir / 'checkpoints'} at epoch 1" in lines
    assert_same_run(res, reference[0])


def _hold_lock(workdir: Path) -> subprocess.Popen:
    """Another process (plain Python, the lock module alone) that holds the workdir's lock
    until its stdin closes."""
    code = textwrap.dedent(f"""
        import importlib.util, sys
        spec = importlib.util.spec_from_file_location("lock", {str(LOCK_PY)!r})
        lock = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(lock)
        held = lock.lock_workdir({str(workdir)!r})
        print("locked", flush=True)
        sys.stdin.read()
        held.release()
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_run_on_a_locked_workdir_is_refused_and_changes_nothing(finished, reference):
    holder = _hold_lock(finished)
    try:
        before = snapshot(finished)
        with pytest.raises(WorkdirLocked) as e:
            tiny_fit(finished, resume=True)
        host = socket.gethostname()
        assert f"{finished} is in use by another run: pid {holder.pid} on host {host}" in str(
            e.value
        )
        assert e.value.holder["pid"] == holder.pid
        assert isinstance(e.value, FileExistsError)  # what the command line prints cleanly
        with pytest.raises(WorkdirLocked):  # overwrite does not get past the lock either
            tiny_fit(finished, overwrite=True)
        assert snapshot(finished) == before
    finally:
        holder.communicate("")
    res, _ = tiny_fit(finished, resume=True)  # released: the workdir is free again
    assert_same_run(res, reference[0])


def test_an_experiment_on_a_locked_workdir_is_refused_before_it_writes(tmp_path, monkeypatch):
    """``experiment.run`` takes the lock before its workdir checks and ``config.json``: the
    holder's config survives, and no data is loaded."""
    import d2ljax.experiment as experiment
    from d2ljax.cli import load_config

    workdir = tmp_path / "w"
    workdir.mkdir()
    (workdir / "config.json").write_text('{"the": "holder\'s"}')

    def no_data(*args, **kwargs):
        raise AssertionError("a refused run loads no data")

    monkeypatch.setattr(experiment, "load_dataset", no_data)
    holder = _hold_lock(workdir)
    try:
        before = snapshot(workdir)
        with pytest.raises(WorkdirLocked):
            experiment.run(load_config("mlp:smoke"), workdir, progress=False)
        assert snapshot(workdir) == before
    finally:
        holder.communicate("")


def test_a_stale_lock_is_reported_and_taken_over(finished, reference):
    holder = _hold_lock(finished)  # holds it, then dies by kill -9 without releasing
    holder.kill()
    holder.wait()
    assert (finished / ".lock").exists()
    res, lines = tiny_fit(finished, resume=True)
    assert (
        lines[0]
        == (
            f"{finished}: taking over a stale lock (the run that held it is gone: pid {holder.pid} "
            f"on host {socket.gethostname()} since "
        )
        + lines[0].split(" since ", 1)[1]
    )
    assert not (finished / ".lock").exists()
    assert_same_run(res, reference[0])


def test_a_lock_from_another_host_is_refused_with_what_to_do(finished):
    lock = finished / ".lock"
    lock.write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "2025-01-01 12:00"}))
    with pytest.raises(WorkdirLocked, match=f"if that run is gone, delete {lock}"):
        tiny_fit(finished, resume=True)
    assert lock.exists()


_KILLER = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from orbax.checkpoint._src.path import atomicity
finalize = atomicity.AtomicRenameTemporaryPath.finalize

async def killing_finalize(self, *args, **kwargs):
    # The commit of checkpoint 3's part {part!r}: everything it holds is written.
    final = self._final_path
    if {target!r} in (final.name, final.parent.name.split(".")[0] + "/" + final.name):
        os.kill(os.getpid(), signal.SIGKILL)
    return await finalize(self, *args, **kwargs)

atomicity.AtomicRenameTemporaryPath.finalize = killing_finalize
from test_faults import tiny_fit
tiny_fit({workdir!r}, log=print)
"""


@pytest.mark.parametrize("part", ["meta", "state", "step"])
def test_kill_9_while_committing_a_checkpoint_and_its_digest(part, tmp_path, reference):
    """The digest travels in the checkpoint's metadata, committed with the arrays in one atomic
    rename: a process killed -9 at the commit of the metadata (digest written, arrays maybe
    not), of the arrays, or of the whole step leaves no checkpoint 3, only a temporary folder.
    Resuming (taking over the dead run's lock) restarts from checkpoint 2 and ends identical."""
    workdir = tmp_path / "run"
    target = {"meta": "3/meta", "state": "3/state", "step": "3"}[part]
    script = _KILLER.format(
        tests=str(Path(__file__).parent), part=part, target=target, workdir=str(workdir)
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert "epoch 3/3" in proc.stdout
    assert (workdir / ".lock").exists()
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == [
        "1",
        "2",
        "3.orbax-checkpoint-tmp",
    ]
    res, lines = tiny_fit(workdir, resume=True)
    assert "taking over a stale lock" in lines[0]
    assert f"resumed from {workdir / 'checkpoints'} at epoch 2" in lines
    assert_same_run(res, reference[0])
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir()) == ["1", "2", "3"]

"""Throughput of d2ljax's training loop on real Fashion-MNIST (book chapter 13, "Computational
Performance"), against this machine's float32 matmul peak and against a plain per-step loop.

    python benchmarks/throughput.py [EXPERIMENT ...] [--resnet-batches 8] [--peak-size 2048]

For softmax regression, the MLP, LeNet and ResNet-18 (CPU setting: 28x28) it prints

* ``epoch (s)``: one epoch of ``fit`` (train 60k + validate 10k), compilation excluded (the
  fastest of ``--repeats`` epochs after the first); ResNet-18 trains on ``--resnet-batches``
  batches and validates on as many, and the epoch time is extrapolated to 60k + 10k examples;
* ``train ex/s``: training examples (60k) per second of that epoch (validation included);
* ``GFLOP/s``: the FLOPs XLA counts for the compiled train and eval steps
  (``jax.jit(...).lower(...).compile().cost_analysis()``) times the number of steps, over the
  epoch time; ``% peak``: its fraction of the float32 matmul peak measured first in the same run;
* ``plain (s)`` and ``speed-up``: the same epoch with the loop most code starts with: host NumPy
  batches, a jitted step that is not donated, and ``float(loss)`` after every step (the host
  waits for the device every step, so nothing overlaps). The two loops' epochs alternate (one
  plain epoch after each ``fit`` epoch), so both see the same machine load.

The figures depend on the machine and on what else runs on it; the header says which devices.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from d2ljax.cli import load_config
from d2ljax.config import apply_overrides
from d2ljax.experiment import build, build_model
from d2ljax.tasks import SupervisedTask
from d2ljax.train import Callback, TrainState, fit, get_loss
from d2ljax.train.steps import eval_step, train_step

DEFAULT = ["softmax_regression", "mlp", "lenet", "resnet18:cpu"]
TRAIN, VAL = 60_000, 10_000


def matmul_peak(n: int = 2048, repeats: int = 30) -> float:
    """Best float32 GFLOP/s of an ``n x n`` matmul (``2 n^3`` FLOPs) on the default device."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    b = jax.random.normal(jax.random.key(1), (n, n), jnp.float32)
    f = jax.jit(lambda a, b: a @ b)
    f(a, b).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        f(a, b).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def _flops(compiled) -> float:
    cost = compiled.cost_analysis()
    if isinstance(cost, list | tuple):
        cost = cost[0] if cost else {}
    return float((cost or {}).get("flops", float("nan")))


def step_flops(exp, loss) -> tuple[float, float]:
    """FLOPs of one compiled train step and one eval step on a full batch."""
    state = TrainState.create(exp.model, exp.optimizer, seed=0)
    batch = next(iter(exp.train))
    loss_fn = get_loss(loss)
    t = jax.jit(lambda s, b: train_step(s, b, loss_fn)).lower(state, batch).compile()
    e = jax.jit(lambda s, b: eval_step(s, b, loss_fn)).lower(state, batch).compile()
    return _flops(t), _flops(e)


class _PlainBetweenEpochs(Callback):
    """Runs one plain-loop epoch after each ``fit`` epoch (outside ``fit``'s epoch timer), so the
    two loops are timed alternately under the same machine load."""

    def __init__(self, plain_epoch):
        self.plain_epoch, self.times = plain_epoch, []

    def on_epoch_end(self, epoch, history, state) -> bool:
        t0 = time.perf_counter()
        self.plain_epoch()
        self.times.append(time.perf_counter() - t0)
        return False


def timed_epochs(exp, cfg, max_batches: int | None, repeats: int) -> tuple[float, float, dict]:
    """Fastest epoch of ``fit`` and of the plain loop over ``repeats`` alternating epochs each,
    after one compiling epoch of each."""
    plain = _PlainBetweenEpochs(plain_loop(exp, cfg, max_batches))
    res = fit(
        SupervisedTask(exp.model, exp.optimizer, cfg.loss),
        exp.train,
        val_data=exp.val,
        epochs=1 + repeats,
        seed=cfg.seed,
        mesh=exp.mesh,
        progress=False,
        log=lambda s: None,
        callbacks=[plain],
    )
    return min(res.history["epoch_time"][1:]), min(plain.times[1:]), res.history


def plain_loop(exp, cfg, max_batches: int | None):
    """One epoch of the loop most code starts with: host NumPy batches, a jitted step that is not
    donated, and ``float(loss)`` after every step (returned as a function of no arguments)."""
    loss_fn = get_loss(cfg.loss)
    state = TrainState.create(build_model(cfg, cfg.seed, exp.info), exp.optimizer, seed=cfg.seed)
    step = jax.jit(lambda s, b: train_step(s, b, loss_fn))
    evaluate = jax.jit(lambda s, b: eval_step(s, b, loss_fn))
    transform = exp.train.transform or (lambda b: b)
    prep = jax.jit(transform)
    rng = np.random.default_rng(0)

    def host_batches(loader, n):
        order = rng.permutation(loader.num_examples)
        data = loader._host
        for i in range(min(len(loader), n or len(loader))):
            idx = order[i * loader.batch_size : (i + 1) * loader.batch_size]
            yield prep({k: v[idx] for k, v in data.items()})

    def one_epoch():
        nonlocal state
        losses = []
        for batch in host_batches(exp.train, max_batches):
            state, metrics = step(state, batch)
            losses.append(float(metrics["loss"]) / float(metrics["count"]))
        for batch in host_batches(exp.val, max_batches):
            float(evaluate(state, batch)["loss"])
        return losses

    return one_epoch


def bench(name: str, resnet_batches: int, repeats: int = 3) -> dict:
    cfg = load_config(name)
    limited = name.startswith("resnet")
    if limited:
        bs = cfg.data.batch_size
        cfg = apply_overrides(cfg, [f"data.limit={bs * resnet_batches}"])
    exp = build(cfg)
    n_train, n_val = exp.train.num_examples, exp.val.num_examples
    tflops, eflops = step_flops(exp, cfg.loss)
    reps = 1 if limited else repeats
    epoch, plain, history = timed_epochs(exp, cfg, resnet_batches if limited else None, reps)
    scale = (TRAIN + VAL) / (n_train + n_val)
    epoch_full = epoch * scale
    # FLOPs of one full epoch: per-batch cost, scaled by the number of examples.
    bs = cfg.data.batch_size
    flops = tflops * TRAIN / bs + eflops * VAL / bs
    plain *= scale
    return {
        "experiment": name,
        "epoch_s": epoch_full,
        "train_ex_s": TRAIN / epoch_full,
        "gflops": flops / epoch_full / 1e9,
        "plain_s": plain,
        "speedup": plain / epoch_full,
        "extrapolated": limited,
        "val_accuracy": history.get("val_accuracy", [float("nan")])[-1],
    }


def row(r: dict, peak: float) -> str:
    mark = "*" if r["extrapolated"] else " "
    return (
        f"{r['experiment']:20s} {r['epoch_s']:9.2f}{mark} {r['train_ex_s']:11.0f} "
        f"{r['gflops']:8.1f} {100 * r['gflops'] / peak:6.1f}% {r['plain_s']:10.2f} "
        f"{r['speedup']:8.2f}x"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("experiments", nargs="*", default=DEFAULT)
    p.add_argument("--resnet-batches", type=int, default=8, help="ResNet-18 batches timed")
    p.add_argument("--peak-size", type=int, default=2048, help="matmul size for the peak")
    p.add_argument("--repeats", type=int, default=3, help="timed epochs (the fastest counts)")
    args = p.parse_args()
    dev = jax.devices()[0]
    print(
        f"jax {jax.__version__} on {dev.platform}:{dev.device_kind} x{jax.device_count()}, "
        f"{os.cpu_count()} host CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    peak = matmul_peak(args.peak_size)
    print(f"float32 matmul peak ({args.peak_size}^2): {peak:.1f} GFLOP/s")
    print(
        f"{'experiment':20s} {'epoch (s)':>10s} {'train ex/s':>11s} {'GFLOP/s':>8s} "
        f"{'% peak':>7s} {'plain (s)':>10s} {'speed-up':>9s}"
    )
    rows = []
    for name in args.experiments:
        r = bench(name, args.resnet_batches, args.repeats)
        rows.append(r)
        print(row(r, peak), flush=True)
    # On a shared machine the first peak may be measured under load: measure again, keep the best.
    again = matmul_peak(args.peak_size)
    if again > peak * 1.05:
        peak = again
        print(f"float32 matmul peak re-measured: {peak:.1f} GFLOP/s; % peak against it:")
        for r in rows:
            print(row(r, peak))
    if any(n.startswith("resnet") for n in args.experiments):
        print(f"* extrapolated from {args.resnet_batches} train + val batches to 60k + 10k")


if __name__ == "__main__":
    main()

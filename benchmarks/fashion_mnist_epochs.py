"""Epoch time and throughput of d2ljax's training loop on real Fashion-MNIST.

    python benchmarks/fashion_mnist_epochs.py [EXPERIMENT ...] [--epochs 3] [--host]

For each experiment (default: softmax_regression, mlp, dropout_mlp, lenet, bn_lenet) it builds
the config's model, loaders and optimizer, runs one warm-up epoch (compilation), then times
``--epochs`` epochs of ``fit`` (train 60k + validate 10k) and prints the median epoch time and
training examples/s.
``--host`` gathers batches on the host instead of keeping the dataset on the device.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax

from d2ljax.cli import load_config
from d2ljax.config import apply_overrides
from d2ljax.experiment import build
from d2ljax.tasks import SupervisedTask
from d2ljax.train import fit


def bench(name: str, epochs: int, host: bool) -> dict:
    cfg = load_config(name)
    if host:
        cfg = apply_overrides(cfg, ["data.on_device=false"])
    exp = build(cfg)
    times = []

    def log(line: str) -> None:
        times.append(float(line.rsplit("epoch_time", 1)[1]))

    t0 = time.perf_counter()
    res = fit(
        SupervisedTask(exp.model, exp.optimizer, cfg.loss),
        exp.train,
        val_data=exp.val,
        epochs=epochs + 1,
        seed=cfg.seed,
        progress=False,
        log=log,
    )
    total = time.perf_counter() - t0
    steady = statistics.median(times[1:])
    return {
        "experiment": name,
        "first_epoch_s": times[0],
        "epoch_s": steady,
        "train_examples_per_s": exp.train.num_examples / steady,
        "val_accuracy": res.history["val_accuracy"][-1],
        "total_s": total,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument(
        "experiments",
        nargs="*",
        default=["softmax_regression", "mlp", "dropout_mlp", "lenet", "bn_lenet"],
    )
    p.add_argument("--epochs", type=int, default=3, help="timed epochs after the warm-up one")
    p.add_argument("--host", action="store_true", help="host-side batching instead of on-device")
    args = p.parse_args()
    print(
        f"jax {jax.__version__} on {jax.devices()[0].device_kind} x{jax.device_count()}, "
        f"{'host' if args.host else 'on-device'} batches"
    )
    print(
        f"{'experiment':24s} {'epoch (s)':>10s} {'first (s)':>10s} {'train ex/s':>12s} "
        f"{'val acc':>8s}"
    )
    for name in args.experiments:
        r = bench(name, args.epochs, args.host)
        print(
            f"{r['experiment']:24s} {r['epoch_s']:10.3f} {r['first_epoch_s']:10.3f} "
            f"{r['train_examples_per_s']:12.0f} {r['val_accuracy']:8.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()

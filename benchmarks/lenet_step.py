"""LeNet training-step time on CPU: code variants A/B in one process, XLA flag sets in subprocesses.

    python benchmarks/lenet_step.py [--variants toeplitz,xla] [--rounds 7] [--steps 40]
    python benchmarks/lenet_step.py --flags='|--xla_cpu_multi_thread_eigen=false' [--rounds 5]

Each round times ``--steps`` compiled train steps (``make_steps`` + ``TrainState``, SGD lr 0.1,
batch 128, the state donated as in ``fit``) of every variant in turn, so all variants see the
same machine load; it prints the median and the fastest ms/step per variant. With ``--flags``
every flag set runs in its own subprocess (``XLA_FLAGS`` must be set before JAX starts), one
subprocess per flag set and round, interleaved. ``LENET_STEP_VARIANTS=path/to/module.py`` adds
the variants that module's ``variants() -> {name: model_factory}`` returns (for prototypes).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

BATCH = 128


def variants() -> dict:
    from flax import nnx

    from d2ljax.models.lenet import LeNet

    return {
        "blocked": lambda: LeNet(conv_impl="blocked", rngs=nnx.Rngs(0)),
        "toeplitz": lambda: LeNet(conv_impl="toeplitz", rngs=nnx.Rngs(0)),
        "xla": lambda: LeNet(conv_impl="xla", rngs=nnx.Rngs(0)),
        "reshape": lambda: LeNet(conv_impl="toeplitz", pool_impl="reshape", rngs=nnx.Rngs(0)),
    }


def make_runner(factory, steps: int):
    import jax
    import numpy as np
    import optax

    from d2ljax.train import TrainState
    from d2ljax.train.steps import make_steps

    rng = np.random.default_rng(0)
    batch = {
        "x": jax.numpy.asarray(rng.random((BATCH, 28, 28, 1), np.float32)),
        "y": jax.numpy.asarray(rng.integers(0, 10, BATCH).astype(np.int32)),
    }
    state = TrainState.create(factory(), optax.sgd(0.1), seed=0)
    state = jax.device_put(state, jax.devices()[0])
    fns = make_steps("classification")
    box = {"state": state, "totals": None}

    def run() -> float:
        s, totals = box["state"], box["totals"]
        if totals is None:
            s, totals = fns.train(s, None, batch)
            jax.block_until_ready(totals)
        t0 = time.perf_counter()
        for _ in range(steps):
            s, totals = fns.train(s, totals, batch)
        jax.block_until_ready((s, totals))
        dt = (time.perf_counter() - t0) / steps * 1e3
        box["state"], box["totals"] = s, totals
        return dt

    run()  # compile + warm up
    return run


def time_variants(names, rounds: int, steps: int) -> dict[str, list[float]]:
    table = variants()
    extra = os.environ.get("LENET_STEP_VARIANTS")  # a module with variants() -> more of them
    if extra:
        import importlib.util

        spec = importlib.util.spec_from_file_location("extra_variants", extra)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        table.update(mod.variants())
    runners = {n: make_runner(table[n], steps) for n in names}
    out: dict[str, list[float]] = {n: [] for n in names}
    for _ in range(rounds):
        for n in names:
            out[n].append(runners[n]())
    return out


def report(out: dict[str, list[float]]) -> None:
    for n, ts in out.items():
        med = statistics.median(ts)
        print(
            f"{n:40s} median {med:6.2f} ms/step  min {min(ts):6.2f}  "
            f"(469 steps: {med * 0.469:5.2f} s)",
            flush=True,
        )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--variants", default="blocked,toeplitz")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument(
        "--flags",
        default=None,
        help="XLA_FLAGS sets separated by '|' (write --flags='|--xla_a=1|--xla_b=2'; an empty "
        "set is the default), one subprocess each",
    )
    p.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    names = args.variants.split(",")
    if args.flags is None:
        out = time_variants(names, args.rounds, args.steps)
        if args.json:
            print("JSON" + json.dumps(out))
        else:
            report(out)
        return
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for flags in args.flags.split("|"):
            env = dict(os.environ, XLA_FLAGS=flags)
            cmd = [sys.executable, __file__, "--variants", args.variants, "--rounds", "3"]
            cmd += ["--steps", str(args.steps), "--json"]
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
            line = [ln for ln in proc.stdout.splitlines() if ln.startswith("JSON")]
            if not line:
                print(f"[{flags}] failed:\n{proc.stderr[-2000:]}", flush=True)
                continue
            for n, ts in json.loads(line[0][4:]).items():
                results.setdefault(f"{n} [{flags or 'default'}]", []).append(min(ts))
    report(results)


if __name__ == "__main__":
    main()

"""LeNet training-step time on CPU: code variants A/B in one process, XLA flag sets in subprocesses.

    python benchmarks/lenet_step.py [--variants toeplitz,xla] [--rounds 7] [--steps 48]
        [--steps-per-call 16]
    python benchmarks/lenet_step.py --flags='|--xla_cpu_multi_thread_eigen=false' [--rounds 5]

Each round times ``--steps`` compiled train steps (``make_steps`` + ``TrainState``, SGD lr 0.1,
batch 128 of random uint8 images on the device, the state donated) of every variant in turn, so
all variants see the same machine load; it prints the median and the fastest ms/step per
variant. The steps run as ``fit`` runs them: ``--steps-per-call`` steps per compiled
``lax.scan`` that gathers its own batches (default 16, ``fit``'s default), or with 1 a gather
call and a step call per step (``fit`` on other loaders). With ``--flags`` every flag set runs
in its own subprocess (``XLA_FLAGS`` must be set before JAX starts), one subprocess per flag set
and round, interleaved. ``LENET_STEP_VARIANTS=path/to/module.py`` adds the variants that
module's ``variants() -> {name: model_factory}`` returns (for prototypes).
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


def make_runner(factory, steps: int, steps_per_call: int = 1):
    import jax
    import numpy as np
    import optax

    from d2ljax.data import ArrayLoader, image_transform
    from d2ljax.train import TrainState
    from d2ljax.train.steps import make_steps, scan_steps

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (BATCH * steps, 28, 28, 1), np.uint8)
    loader = ArrayLoader(
        {"x": images, "y": rng.integers(0, 10, BATCH * steps).astype(np.int32)},
        BATCH,
        transform=image_transform(),
        on_device=True,
    )
    data = loader.device_arrays()
    order = rng.permutation(BATCH * steps).astype(np.int32).reshape(-1, BATCH)
    state = TrainState.create(factory(), optax.sgd(0.1), seed=0)
    state = jax.device_put(state, jax.devices()[0])
    fns = make_steps("classification")
    train_many, _ = scan_steps(fns, loader.take)
    gather = jax.jit(loader.take)
    box = {"state": state, "totals": None}
    if steps % steps_per_call:
        raise SystemExit(f"--steps ({steps}) must be a multiple of --steps-per-call")

    def run() -> float:
        s, totals = box["state"], box["totals"]
        if totals is None:
            s, totals = fns.train_accumulate(s, None, loader.take(data, order[0]))
            jax.block_until_ready(totals)
        t0 = time.perf_counter()
        if steps_per_call == 1:  # fit's loop for other loaders: a gather call, a step call
            for idx in order:
                s, totals = fns.train_accumulate(s, totals, gather(data, idx))
        else:  # fit's loop over an on-device loader
            for k in range(0, steps, steps_per_call):
                s, totals = train_many(s, totals, data, order[k : k + steps_per_call])
        jax.block_until_ready((s, totals))
        dt = (time.perf_counter() - t0) / steps * 1e3
        box["state"], box["totals"] = s, totals
        return dt

    run()  # compile + warm up
    return run


def time_variants(
    names, rounds: int, steps: int, steps_per_call: int = 1
) -> dict[str, list[float]]:
    table = variants()
    extra = os.environ.get("LENET_STEP_VARIANTS")  # a module with variants() -> more of them
    if extra:
        import importlib.util

        spec = importlib.util.spec_from_file_location("extra_variants", extra)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        table.update(mod.variants())
    runners = {n: make_runner(table[n], steps, steps_per_call) for n in names}
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
    p.add_argument("--steps", type=int, default=48)
    p.add_argument(
        "--steps-per-call",
        type=int,
        default=16,
        help="train steps per compiled call (fit's default on an on-device loader); 1: a "
        "gather call and a step call per step",
    )
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
        out = time_variants(names, args.rounds, args.steps, args.steps_per_call)
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
            cmd += ["--steps", str(args.steps), "--steps-per-call", str(args.steps_per_call)]
            cmd += ["--json"]
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

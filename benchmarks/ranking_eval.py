"""How long ranking every MovieLens user against every item takes (book §21.6's evaluation).

    python benchmarks/ranking_eval.py [--rounds 5]

The book's ``evaluate_ranking`` scores each user's candidates in a Python loop (~10 users/s).
Here one jitted call scores all 943 x 1,682 (user, item) pairs with the book's NeuMF (10
factors, MLP [10, 10, 10]) and computes every user's Hit@10, Hit@50 and AUC
(:func:`d2ljax.tasks.ranking.hit_and_auc`); the script prints the compile time and the fastest
of ``--rounds`` timed calls. Random interactions (6 % dense, as MovieLens) stand in for the data:
the cost does not depend on them.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from d2ljax.models.recsys import NeuMF
from d2ljax.tasks.ranking import evaluate_ranking


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    num_users, num_items = 943, 1682
    rng = np.random.default_rng(0)
    inter = jnp.asarray(rng.uniform(size=(num_users, num_items)) < 0.06)
    test_item = jnp.asarray(rng.integers(0, num_items, num_users), jnp.int32)
    net = NeuMF(10, num_users, num_items, (10, 10, 10), rngs=nnx.Rngs(0))
    net.eval()
    graphdef, params, rest = nnx.split(net, nnx.Param, ...)

    def call():
        out = evaluate_ranking(graphdef, params, rest, inter, test_item, (10, 50))
        return jax.block_until_ready(out)

    t0 = time.perf_counter()
    call()
    compile_s = time.perf_counter() - t0
    times = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    print(f"{num_users} users x {num_items} items (Hit@10, Hit@50, AUC): first call (compile) "
          f"{compile_s:.2f} s, then {min(times) * 1e3:.0f} ms (fastest of {args.rounds}; "
          f"median {np.median(times) * 1e3:.0f} ms)")


if __name__ == "__main__":
    main()

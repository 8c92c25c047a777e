"""The training state: one pytree holding everything a step reads and writes.

A Flax NNX module is split once into a static ``GraphDef`` (the architecture) and pytrees of arrays:
``params`` (what the optimizer updates) and ``model_state`` (everything else: batch-norm statistics,
dropout RNG streams, ...). Steps are pure functions of this state; ``nnx.merge`` rebuilds the module
inside the trace, so tracing costs nothing at run time.
"""

from __future__ import annotations

from typing import Any

import jax
import optax
from flax import nnx, struct


class TrainState(struct.PyTreeNode):
    """``step``, ``params``, ``model_state``, ``opt_state`` and ``rng`` are arrays (pytree leaves);
    the graph definitions (train and eval mode) and the optimizer are static."""

    step: jax.Array
    params: nnx.State
    model_state: nnx.State
    opt_state: optax.OptState
    rng: jax.Array
    graphdef: nnx.GraphDef = struct.field(pytree_node=False)
    eval_graphdef: nnx.GraphDef = struct.field(pytree_node=False)
    tx: optax.GradientTransformation = struct.field(pytree_node=False)
    rng_streams: tuple[str, ...] = struct.field(pytree_node=False, default=())

    @classmethod
    def create(
        cls,
        model: nnx.Module,
        tx: optax.GradientTransformation,
        *,
        seed: int = 0,
        rng: jax.Array | None = None,
    ):
        """Split ``model`` (in train and in eval mode) and initialise the optimizer; the state's
        RNG key (dropout streams are reseeded from it every step) is ``rng`` or ``key(seed)``."""
        model.eval()
        eval_graphdef, _, _ = nnx.split(model, nnx.Param, ...)
        model.train()
        graphdef, params, model_state = nnx.split(model, nnx.Param, ...)
        streams = sorted(
            {v.tag for _, v in nnx.to_flat_state(model_state) if isinstance(v, nnx.RngKey)}
        )
        return cls(
            step=jax.numpy.zeros((), jax.numpy.int32),
            params=params,
            model_state=model_state,
            opt_state=tx.init(params),
            rng=jax.random.key(seed) if rng is None else rng,
            graphdef=graphdef,
            eval_graphdef=eval_graphdef,
            tx=tx,
            rng_streams=tuple(streams),
        )

    def model(self, *, train: bool = False) -> nnx.Module:
        """The NNX module with this state's weights (eval mode unless ``train``)."""
        graphdef = self.graphdef if train else self.eval_graphdef
        return nnx.merge(graphdef, self.params, self.model_state)

    def arrays(self) -> dict[str, Any]:
        """The leaves to checkpoint, as a plain dict."""
        return {
            "step": self.step,
            "params": self.params,
            "model_state": self.model_state,
            "opt_state": self.opt_state,
            "rng": self.rng,
        }

    def replace_arrays(self, arrays: dict[str, Any]) -> TrainState:
        return self.replace(**arrays)


def num_params(tree) -> int:
    """Number of scalars in a pytree (e.g. ``state.params``) or in an NNX module's parameters."""
    if isinstance(tree, nnx.Module):
        tree = nnx.state(tree, nnx.Param)
    return int(sum(x.size for x in jax.tree.leaves(tree)))

"""Recurrent networks from scratch (book chapter 9 and §10.1-§10.4), pure ``jax.numpy``.

Cells are pure functions of an explicit parameter dict, with the book's parameter names:

- :func:`rnn_step` (§9.5.1): ``H = tanh(X W_xh + H W_hh + b_h)``.
- :func:`gru_step` (§10.2.4): reset gate ``R``, update gate ``Z``, candidate ``H~``,
  ``H = Z * H + (1 - Z) * H~``. ``reset_after=True`` gives the variant cuDNN, PyTorch's
  ``nn.GRU`` and Flax's ``nnx.GRUCell`` compute (the reset gate multiplies ``H W_hh`` instead of
  ``H`` before the product).
- :func:`lstm_step` (§10.1.2): input, forget, output gates and the memory cell ``C``;
  the state is ``(H, C)``.

Every step has the signature ``step(params, state, X_BD) -> (state, H_BH)`` so that
:func:`rnn_scan` runs it over time with :func:`jax.lax.scan` (time-major inputs ``X_TBD``, as in
the book). :func:`stacked_rnn_scan` stacks layers (§10.3), :func:`birnn_scan` runs a forward and
a backward layer (§10.4). :func:`grad_clipping` is §9.5.3's gradient clipping (equal to
``optax.clip_by_global_norm``), :func:`perplexity` §9.3.4's perplexity, and
:func:`bptt_gradient_norms` measures §9.7's vanishing and exploding gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import optax

__all__ = [
    "CELLS",
    "Cell",
    "birnn_scan",
    "bptt_gradient_norms",
    "get_cell",
    "grad_clipping",
    "gru_step",
    "init_gru_params",
    "init_lstm_params",
    "init_rnn_params",
    "init_state",
    "lstm_step",
    "perplexity",
    "rnn_scan",
    "rnn_step",
    "stacked_rnn_scan",
]

Params = dict[str, jax.Array]
State = Any  # H_BH for RNN and GRU, (H_BH, C_BH) for LSTM
Step = Callable[[Params, State, jax.Array], tuple[State, jax.Array]]


def _check_sizes(num_inputs: int, num_hiddens: int) -> None:
    for name, v in (("num_inputs", num_inputs), ("num_hiddens", num_hiddens)):
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")


def _triple(keys, num_inputs: int, num_hiddens: int, sigma: float, names: tuple[str, str, str]):
    """``W_x* ~ N(0, sigma^2)`` of ``(num_inputs, num_hiddens)``, ``W_h*`` likewise, ``b_* = 0``."""
    k1, k2 = keys
    return {
        names[0]: sigma * jax.random.normal(k1, (num_inputs, num_hiddens), jnp.float32),
        names[1]: sigma * jax.random.normal(k2, (num_hiddens, num_hiddens), jnp.float32),
        names[2]: jnp.zeros((num_hiddens,), jnp.float32),
    }


def init_rnn_params(key, num_inputs: int, num_hiddens: int, sigma: float = 0.01) -> Params:
    """``W_xh``, ``W_hh`` drawn from ``N(0, sigma^2)``, ``b_h = 0`` (book §9.5.1)."""
    _check_sizes(num_inputs, num_hiddens)
    names = ("W_xh", "W_hh", "b_h")
    return _triple(jax.random.split(key, 2), num_inputs, num_hiddens, sigma, names)


def init_gru_params(key, num_inputs: int, num_hiddens: int, sigma: float = 0.01) -> Params:
    """Update gate ``W_xz, W_hz, b_z``, reset gate ``W_xr, W_hr, b_r``, candidate ``W_xh, W_hh,
    b_h`` (book §10.2.4.1)."""
    _check_sizes(num_inputs, num_hiddens)
    keys = jax.random.split(key, 6)
    params = {}
    for i, gate in enumerate(("z", "r", "h")):
        names = (f"W_x{gate}", f"W_h{gate}", f"b_{gate}")
        params |= _triple(keys[2 * i : 2 * i + 2], num_inputs, num_hiddens, sigma, names)
    return params


def init_lstm_params(key, num_inputs: int, num_hiddens: int, sigma: float = 0.01) -> Params:
    """Input ``i``, forget ``f``, output ``o`` gates and candidate cell ``c``: ``W_x*``, ``W_h*``,
    ``b_*`` each (book §10.1.2.1)."""
    _check_sizes(num_inputs, num_hiddens)
    keys = jax.random.split(key, 8)
    params = {}
    for i, gate in enumerate(("i", "f", "o", "c")):
        names = (f"W_x{gate}", f"W_h{gate}", f"b_{gate}")
        params |= _triple(keys[2 * i : 2 * i + 2], num_inputs, num_hiddens, sigma, names)
    return params


def rnn_step(params: Params, H_BH: jax.Array, X_BD: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One step of the plain RNN (book eq. 9.4.5): ``H = tanh(X W_xh + H W_hh + b_h)``."""
    H_BH = jnp.tanh(X_BD @ params["W_xh"] + H_BH @ params["W_hh"] + params["b_h"])
    return H_BH, H_BH


def gru_step(
    params: Params, H_BH: jax.Array, X_BD: jax.Array, *, reset_after: bool = False
) -> tuple[jax.Array, jax.Array]:
    """One GRU step (book §10.2, eqs. 10.2.1-10.2.4).

    ``Z = sigmoid(X W_xz + H W_hz + b_z)``, ``R = sigmoid(X W_xr + H W_hr + b_r)``,
    ``H~ = tanh(X W_xh + (R * H) W_hh + b_h)`` and ``H = Z * H + (1 - Z) * H~``. With
    ``reset_after=True`` the candidate is ``tanh(X W_xh + b_h + R * (H W_hh))``: the form of
    cuDNN / ``torch.nn.GRU`` / ``nnx.GRUCell`` (one matmul of ``H`` for all three gates).
    """
    Z = jax.nn.sigmoid(X_BD @ params["W_xz"] + H_BH @ params["W_hz"] + params["b_z"])
    R = jax.nn.sigmoid(X_BD @ params["W_xr"] + H_BH @ params["W_hr"] + params["b_r"])
    if reset_after:
        H_tilde = jnp.tanh(X_BD @ params["W_xh"] + params["b_h"] + R * (H_BH @ params["W_hh"]))
    else:
        H_tilde = jnp.tanh(X_BD @ params["W_xh"] + (R * H_BH) @ params["W_hh"] + params["b_h"])
    H_BH = Z * H_BH + (1.0 - Z) * H_tilde
    return H_BH, H_BH


def lstm_step(
    params: Params, state: tuple[jax.Array, jax.Array], X_BD: jax.Array
) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
    """One LSTM step (book §10.1, eqs. 10.1.1-10.1.4); ``state = (H, C)``.

    Gates ``I, F, O = sigmoid(X W_x* + H W_h* + b_*)``, candidate ``C~ = tanh(X W_xc + H W_hc +
    b_c)``, memory ``C = F * C + I * C~`` and hidden state ``H = O * tanh(C)``.
    """
    H_BH, C_BH = state

    def affine(g):
        return X_BD @ params[f"W_x{g}"] + H_BH @ params[f"W_h{g}"] + params[f"b_{g}"]

    I, F, O = (jax.nn.sigmoid(affine(g)) for g in ("i", "f", "o"))  # noqa: E741
    C_tilde = jnp.tanh(affine("c"))
    C_BH = F * C_BH + I * C_tilde
    H_BH = O * jnp.tanh(C_BH)
    return (H_BH, C_BH), H_BH


class Cell:
    """A scratch cell: its parameter initializer, its step and whether its state is ``(H, C)``."""

    def __init__(self, name: str, init: Callable[..., Params], step: Step, has_memory: bool):
        self.name, self.init, self.step, self.has_memory = name, init, step, has_memory

    def __repr__(self) -> str:
        return f"Cell({self.name!r})"


def _gru_reset_after(params, H_BH, X_BD):
    return gru_step(params, H_BH, X_BD, reset_after=True)


CELLS: dict[str, Cell] = {
    "rnn": Cell("rnn", init_rnn_params, rnn_step, False),
    "gru": Cell("gru", init_gru_params, gru_step, False),
    "gru_reset_after": Cell("gru_reset_after", init_gru_params, _gru_reset_after, False),
    "lstm": Cell("lstm", init_lstm_params, lstm_step, True),
}


def get_cell(name: str) -> Cell:
    """The scratch cell named ``rnn``, ``gru``, ``gru_reset_after`` or ``lstm``."""
    if name not in CELLS:
        raise ValueError(f"unknown recurrent cell {name!r}; known cells: {', '.join(CELLS)}")
    return CELLS[name]


def init_state(cell: str | Cell, batch_size: int, num_hiddens: int, dtype=jnp.float32) -> State:
    """The book's initial state: zeros ``(batch_size, num_hiddens)`` (a pair for the LSTM)."""
    cell = get_cell(cell) if isinstance(cell, str) else cell
    H = jnp.zeros((batch_size, num_hiddens), dtype)
    return (H, jnp.zeros_like(H)) if cell.has_memory else H


def _check_inputs(x_TBD: jax.Array) -> None:
    if x_TBD.ndim != 3:
        raise ValueError(
            f"recurrent layers take time-major inputs (num_steps, batch_size, num_inputs); "
            f"got shape {x_TBD.shape}"
        )


def rnn_scan(step: Step, params: Params, x_TBD: jax.Array, state: State) -> tuple[jax.Array, State]:
    """Run ``step`` over the time axis of ``x_TBD`` from ``state`` with :func:`jax.lax.scan`.

    Returns ``(outputs_TBH, final_state)``, the book's ``forward(inputs, state)`` (§9.5.1).
    """
    _check_inputs(x_TBD)

    def body(carry, X_BD):
        return step(params, carry, X_BD)

    state, outputs_TBH = jax.lax.scan(body, state, x_TBD)
    return outputs_TBH, state


def stacked_rnn_scan(
    step: Step, params_list: Sequence[Params], x_TBD: jax.Array, states: Sequence[State]
) -> tuple[jax.Array, list[State]]:
    """A deep RNN (book §10.3): layer ``l`` reads the outputs of layer ``l - 1`` at every step.

    Returns the last layer's outputs and the list of final states, one per layer.
    """
    if len(params_list) != len(states):
        raise ValueError(f"{len(params_list)} layers of params but {len(states)} states")
    outputs, new_states = x_TBD, []
    for params, state in zip(params_list, states, strict=True):
        outputs, state = rnn_scan(step, params, outputs, state)
        new_states.append(state)
    return outputs, new_states


def birnn_scan(
    step: Step,
    params_fwd: Params,
    params_bwd: Params,
    x_TBD: jax.Array,
    states: tuple[State, State],
) -> tuple[jax.Array, tuple[State, State]]:
    """A bidirectional layer (book §10.4.1): one RNN reads left to right, another right to left;
    their outputs at each time step are concatenated (``2 * num_hiddens`` features)."""
    f_out, f_state = rnn_scan(step, params_fwd, x_TBD, states[0])
    b_out, b_state = rnn_scan(step, params_bwd, x_TBD[::-1], states[1])
    return jnp.concatenate([f_out, b_out[::-1]], axis=-1), (f_state, b_state)


def grad_clipping(grads, theta: float):
    """Gradient clipping (book §9.5.3): if the global norm ``||g||`` of all gradients exceeds
    ``theta``, scale them all by ``theta / ||g||`` (same result as
    ``optax.clip_by_global_norm(theta)``)."""
    if not theta > 0:
        raise ValueError(f"theta must be positive, got {theta!r}")
    norm = optax.tree.norm(grads)
    scale = jnp.where(norm > theta, theta / jnp.maximum(norm, 1e-30), 1.0)
    return jax.tree.map(lambda g: g * scale.astype(g.dtype), grads)


def perplexity(logits_BTV: jax.Array, y_BT: jax.Array) -> jax.Array:
    """Perplexity (book §9.3.4): ``exp`` of the mean next-token cross-entropy."""
    if logits_BTV.shape[:-1] != y_BT.shape:
        raise ValueError(f"logits {logits_BTV.shape} do not match labels {y_BT.shape}")
    return jnp.exp(optax.softmax_cross_entropy_with_integer_labels(logits_BTV, y_BT).mean())


def bptt_gradient_norms(step: Step, params: Params, x_TBD: jax.Array, state: State) -> jax.Array:
    """How much the last hidden state depends on each input (book §9.7): the norm of
    ``d sum(H_T) / d X_t`` for every ``t``, shape ``(T,)``.

    With small recurrent weights the norms shrink geometrically with the distance ``T - t``
    (vanishing gradients); with large ones they can grow (exploding gradients).
    """
    _check_inputs(x_TBD)

    def last_hidden(x):
        outputs, _ = rnn_scan(step, params, x, state)
        return outputs[-1].sum()

    g_TBD = jax.grad(last_hidden)(x_TBD)
    return jnp.sqrt(jnp.sum(g_TBD**2, axis=(1, 2)))

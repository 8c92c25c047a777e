"""Recurrent neural networks and RNN language models (book chapter 9, §10.1-§10.4).

Recurrent layers take time-major inputs ``x_TBD`` and an optional state, and return
``(outputs_TBH, state)``, as in the book:

- Scratch (parameters as ``nnx.Param`` with the book's names, steps from :mod:`d2ljax.nn.rnn`):
  :class:`RNNScratch` (§9.5), :class:`GRUScratch` (§10.2.4), :class:`LSTMScratch` (§10.1.2),
  :class:`StackedRNNScratch` (§10.3.1), :class:`BiRNNScratch` (§10.4.2).
- Concise, on Flax's cells and ``nnx.RNN`` / ``nnx.Bidirectional``: :class:`RNN` (§9.6),
  :class:`GRU` (§10.2.5), :class:`LSTM` (§10.1.3), each with ``num_layers`` (§10.3.2) and
  ``bidirectional`` (§10.4.3). :func:`load_scratch_params` copies scratch weights into a Flax cell
  (gate order and bias placement differ), so tests can prove both compute the same thing.

Language models map token ids ``x_BT`` to next-token logits ``logits_BTV``: :class:`RNNLMScratch`
(§9.5.2: one-hot inputs, output layer ``W_hq, b_q``) and :class:`RNNLM` (§9.6: the same with an
``nnx.Linear`` output layer). The hidden state starts at zero for every batch (the 1.0 edition's
random subsequences). :func:`generate_text` warms up on a prefix and generates greedily (the
book's ``predict``, §9.5.5).

Registered: ``rnn_lm_scratch``, ``gru_lm_scratch``, ``lstm_lm_scratch`` (all
:func:`language_model_scratch`) and ``rnn_lm``, ``gru_lm``, ``lstm_lm`` (all
:func:`language_model`), each name a default ``cell``; arguments ``vocab_size`` (filled from
the dataset), ``num_hiddens``, ``num_layers``, ``bidirectional``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register
from d2ljax.nn import rnn as R

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "BiRNNScratch",
    "GRUScratch",
    "LSTMScratch",
    "RNNLM",
    "RNNLMScratch",
    "RNNScratch",
    "StackedRNNScratch",
    "k_step_ahead_predictions",
    "language_model",
    "language_model_scratch",
    "generate_text",
    "load_scratch_params",
]


# ----------------------------------------------------------------------------- scratch layers


class _ScratchCellLayer(nnx.Module):
    """One recurrent layer from scratch: the cell's parameters as ``nnx.Param`` attributes."""

    cell_name = "rnn"

    def __init__(self, num_inputs: int, num_hiddens: int, sigma: float = 0.01, *, rngs: nnx.Rngs):
        self.num_inputs, self.num_hiddens, self.sigma = num_inputs, num_hiddens, sigma
        params = self.cell.init(rngs.params(), num_inputs, num_hiddens, sigma)
        self.param_names = tuple(params)
        for name, value in params.items():
            setattr(self, name, nnx.Param(value))

    @property
    def cell(self) -> R.Cell:
        return R.get_cell(self.cell_name)

    @property
    def num_outputs(self) -> int:
        return self.num_hiddens

    def params(self) -> dict[str, jax.Array]:
        """The parameters as a plain dict (the form :mod:`d2ljax.nn.rnn` takes)."""
        return {name: getattr(self, name)[...] for name in self.param_names}

    def init_state(self, batch_size: int) -> Any:
        return R.init_state(self.cell, batch_size, self.num_hiddens)

    def __call__(self, inputs_TBD: jax.Array, state: Any = None) -> tuple[jax.Array, Any]:
        if state is None:
            state = self.init_state(inputs_TBD.shape[1])
        return R.rnn_scan(self.cell.step, self.params(), inputs_TBD, state)


class RNNScratch(_ScratchCellLayer):
    """The RNN from scratch (§9.5.1): ``H_t = tanh(X_t W_xh + H_{t-1} W_hh + b_h)``.

    Args:
      num_inputs: input features per step (the vocabulary size for one-hot text).
      num_hiddens: hidden state size.
      sigma: standard deviation of the weights' normal init (biases start at zero).
    """

    cell_name = "rnn"


class GRUScratch(_ScratchCellLayer):
    """The GRU from scratch (§10.2.4). ``reset_after=True`` uses the cuDNN / Flax form of the
    candidate state (see :func:`d2ljax.nn.rnn.gru_step`); the book's scratch GRU is the default."""

    def __init__(
        self,
        num_inputs: int,
        num_hiddens: int,
        sigma: float = 0.01,
        reset_after: bool = False,
        *,
        rngs: nnx.Rngs,
    ):
        self.cell_name = "gru_reset_after" if reset_after else "gru"
        super().__init__(num_inputs, num_hiddens, sigma, rngs=rngs)


class LSTMScratch(_ScratchCellLayer):
    """The LSTM from scratch (§10.1.2); the state is ``(H, C)``."""

    cell_name = "lstm"


_SCRATCH_LAYERS = {"rnn": RNNScratch, "gru": GRUScratch, "lstm": LSTMScratch}


def _scratch_layer(cell: str, num_inputs, num_hiddens, sigma, rngs, **kwargs):
    if cell not in _SCRATCH_LAYERS:
        raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(_SCRATCH_LAYERS)}")
    return _SCRATCH_LAYERS[cell](num_inputs, num_hiddens, sigma, rngs=rngs, **kwargs)


class BiRNNScratch(nnx.Module):
    """Bidirectional RNN from scratch (§10.4.2): a forward and a backward layer; outputs are
    concatenated per time step (``2 * num_hiddens``); the state is ``(forward, backward)``."""

    def __init__(
        self,
        num_inputs: int,
        num_hiddens: int,
        sigma: float = 0.01,
        cell: str = "rnn",
        *,
        rngs: nnx.Rngs,
        **cell_kwargs,
    ):
        self.num_hiddens = num_hiddens
        self.f_rnn = _scratch_layer(cell, num_inputs, num_hiddens, sigma, rngs, **cell_kwargs)
        self.b_rnn = _scratch_layer(cell, num_inputs, num_hiddens, sigma, rngs, **cell_kwargs)

    @property
    def num_outputs(self) -> int:
        return 2 * self.num_hiddens

    def init_state(self, batch_size: int):
        return (self.f_rnn.init_state(batch_size), self.b_rnn.init_state(batch_size))

    def __call__(self, inputs_TBD: jax.Array, state=None):
        if state is None:
            state = self.init_state(inputs_TBD.shape[1])
        step = self.f_rnn.cell.step
        return R.birnn_scan(step, self.f_rnn.params(), self.b_rnn.params(), inputs_TBD, state)


class StackedRNNScratch(nnx.Module):
    """A deep RNN from scratch (§10.3.1): ``num_layers`` layers, each reading the outputs of the
    one below; the state is a list with one entry per layer.

    Args:
      cell: ``"rnn"`` (the book's StackedRNNScratch), ``"gru"`` or ``"lstm"``.
      bidirectional: make every layer a :class:`BiRNNScratch`.
    """

    def __init__(
        self,
        num_inputs: int,
        num_hiddens: int,
        num_layers: int,
        sigma: float = 0.01,
        cell: str = "rnn",
        bidirectional: bool = False,
        *,
        rngs: nnx.Rngs,
        **cell_kwargs,
    ):
        if int(num_layers) != num_layers or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        self.num_hiddens, self.num_layers = num_hiddens, num_layers
        self.bidirectional = bidirectional
        width = 2 * num_hiddens if bidirectional else num_hiddens
        layers = []
        for i in range(num_layers):
            n_in = num_inputs if i == 0 else width
            if bidirectional:
                layer = BiRNNScratch(n_in, num_hiddens, sigma, cell, rngs=rngs, **cell_kwargs)
            else:
                layer = _scratch_layer(cell, n_in, num_hiddens, sigma, rngs, **cell_kwargs)
            layers.append(layer)
        self.rnns = nnx.List(layers)

    @property
    def num_outputs(self) -> int:
        return 2 * self.num_hiddens if self.bidirectional else self.num_hiddens

    def init_state(self, batch_size: int) -> list:
        return [layer.init_state(batch_size) for layer in self.rnns]

    def __call__(self, inputs_TBD: jax.Array, states: list | None = None):
        if states is None:
            states = self.init_state(inputs_TBD.shape[1])
        if len(states) != self.num_layers:
            raise ValueError(f"expected {self.num_layers} layer states, got {len(states)}")
        outputs, new_states = inputs_TBD, []
        for layer, state in zip(self.rnns, states, strict=True):
            outputs, state = layer(outputs, state)
            new_states.append(state)
        return outputs, new_states


# ----------------------------------------------------------------------------- concise layers

_FLAX_CELLS = {"rnn": nnx.SimpleCell, "gru": nnx.GRUCell, "lstm": nnx.LSTMCell}


class RNN(nnx.Module):
    """Concise recurrent layer(s) on Flax's cells (§9.6, §10.1.3, §10.2.5, §10.3.2, §10.4.3).

    ``nnx.SimpleCell`` (``cell="rnn"``), ``nnx.GRUCell`` or ``nnx.LSTMCell``, each run over time by
    ``nnx.RNN`` (``nnx.Bidirectional`` when ``bidirectional``), ``num_layers`` of them stacked.
    The state is a list with one carry per layer (a ``(forward, backward)`` pair per layer when
    bidirectional); the LSTM carry is Flax's ``(C, H)``.
    """

    cell_name = "rnn"

    def __init__(
        self,
        num_inputs: int,
        num_hiddens: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        *,
        rngs: nnx.Rngs,
    ):
        if int(num_layers) != num_layers or num_layers < 1:
            raise ValueError(f"num_layers must be a positive integer, got {num_layers!r}")
        R._check_sizes(num_inputs, num_hiddens)
        self.num_inputs, self.num_hiddens = num_inputs, num_hiddens
        self.num_layers, self.bidirectional = num_layers, bidirectional
        cell_cls = _FLAX_CELLS[self.cell_name]
        width = 2 * num_hiddens if bidirectional else num_hiddens

        def one_direction(n_in):
            cell = cell_cls(n_in, num_hiddens, rngs=rngs)
            return nnx.RNN(cell, time_major=True, return_carry=True, rngs=False)

        layers = []
        for i in range(num_layers):
            n_in = num_inputs if i == 0 else width
            if bidirectional:
                layers.append(
                    nnx.Bidirectional(
                        one_direction(n_in),
                        one_direction(n_in),
                        time_major=True,
                        return_carry=True,
                        rngs=False,
                    )
                )
            else:
                layers.append(one_direction(n_in))
        self.layers = nnx.List(layers)

    @property
    def num_outputs(self) -> int:
        return 2 * self.num_hiddens if self.bidirectional else self.num_hiddens

    def _zero_carry(self, batch_size: int):
        H = jnp.zeros((batch_size, self.num_hiddens), jnp.float32)
        return (H, jnp.zeros_like(H)) if self.cell_name == "lstm" else H

    def init_state(self, batch_size: int) -> list:
        one = self._zero_carry(batch_size)
        return [(one, one) if self.bidirectional else one for _ in range(self.num_layers)]

    def __call__(self, inputs_TBD: jax.Array, state: list | None = None):
        R._check_inputs(inputs_TBD)
        if state is None:
            state = self.init_state(inputs_TBD.shape[1])
        if len(state) != self.num_layers:
            raise ValueError(f"expected {self.num_layers} layer states, got {len(state)}")
        outputs, new_state = inputs_TBD, []
        for layer, carry in zip(self.layers, state, strict=True):
            carry, outputs = layer(outputs, initial_carry=carry)
            new_state.append(carry)
        return outputs, new_state


class GRU(RNN):
    """Concise GRU (§10.2.5, §10.3.2): ``nnx.GRUCell`` layers (the reset-after form)."""

    cell_name = "gru"


class LSTM(RNN):
    """Concise LSTM (§10.1.3): ``nnx.LSTMCell`` layers."""

    cell_name = "lstm"


def load_scratch_params(flax_cell: nnx.Module, params: dict[str, jax.Array]) -> None:
    """Copy scratch parameters (book names) into a Flax cell, in place.

    ``nnx.SimpleCell``: ``dense_i = (W_xh, b_h)``, ``dense_h = W_hh``. ``nnx.GRUCell``: gates
    stacked in the order reset, update, candidate, input biases only (match it with
    ``GRUScratch(reset_after=True)``). ``nnx.LSTMCell``: one ``Linear`` per gate, the bias on the
    hidden-to-hidden one; the book's candidate cell ``c`` is Flax's ``g``.
    """

    def put(linear, kernel, bias=None):
        if linear.kernel[...].shape != kernel.shape:
            raise ValueError(f"kernel shape {linear.kernel[...].shape} != {kernel.shape}")
        linear.kernel[...] = kernel
        if bias is not None:
            linear.bias[...] = bias

    p = params
    if isinstance(flax_cell, nnx.SimpleCell):
        put(flax_cell.dense_i, p["W_xh"], p["b_h"])
        put(flax_cell.dense_h, p["W_hh"])
    elif isinstance(flax_cell, nnx.GRUCell):
        put(
            flax_cell.dense_i,
            jnp.concatenate([p["W_xr"], p["W_xz"], p["W_xh"]], axis=-1),
            jnp.concatenate([p["b_r"], p["b_z"], p["b_h"]]),
        )
        put(flax_cell.dense_h, jnp.concatenate([p["W_hr"], p["W_hz"], p["W_hh"]], axis=-1))
    elif isinstance(flax_cell, nnx.LSTMCell):
        for book, flax_name in (("i", "i"), ("f", "f_"), ("c", "g"), ("o", "o")):
            put(getattr(flax_cell, f"i{flax_name}"), p[f"W_x{book}"])
            put(getattr(flax_cell, f"h{flax_name.rstrip('_')}"), p[f"W_h{book}"], p[f"b_{book}"])
    else:
        raise TypeError(f"no scratch layout for {type(flax_cell).__name__}")


# ----------------------------------------------------------------------------- language models


class RNNLMScratch(nnx.Module):
    """RNN language model from scratch (§9.5.2).

    One-hot token inputs ``x_BT -> X_TBV``, the recurrent layer ``rnn``, then the output layer
    ``O_t = H_t W_hq + b_q`` (``W_hq ~ N(0, sigma^2)``, ``b_q = 0``). ``model(x_BT)`` returns
    ``logits_BTV``; :meth:`forward` also takes and returns the recurrent state.

    Args:
      rnn: a recurrent layer (``__call__(x_TBD, state) -> (outputs_TBH, state)``,
        ``num_outputs``, ``init_state``), e.g. :class:`RNNScratch` built with ``num_inputs =
        vocab_size``.
      vocab_size: the number of tokens.
    """

    def __init__(self, rnn: nnx.Module, vocab_size: int, sigma: float = 0.01, *, rngs: nnx.Rngs):
        _check_vocab_size(vocab_size)
        self.rnn, self.vocab_size = rnn, vocab_size
        self.init_output_layer(sigma, rngs)

    def init_output_layer(self, sigma: float, rngs: nnx.Rngs) -> None:
        shape = (self.rnn.num_outputs, self.vocab_size)
        self.W_hq = nnx.Param(sigma * jax.random.normal(rngs.params(), shape, jnp.float32))
        self.b_q = nnx.Param(jnp.zeros((self.vocab_size,), jnp.float32))

    def one_hot(self, x_BT: jax.Array) -> jax.Array:
        """Token ids ``(B, T)`` to time-major one-hot vectors ``(T, B, V)`` (§9.5.2.1)."""
        if x_BT.ndim != 2 or not jnp.issubdtype(x_BT.dtype, jnp.integer):
            raise ValueError(
                f"a language model takes integer token ids (batch, num_steps); got "
                f"{x_BT.dtype} {x_BT.shape}"
            )
        return jax.nn.one_hot(x_BT.T, self.vocab_size, dtype=jnp.float32)

    def output_layer(self, H_TBH: jax.Array) -> jax.Array:
        return (H_TBH @ self.W_hq[...] + self.b_q[...]).swapaxes(0, 1)

    def forward(self, x_BT: jax.Array, state: Any = None) -> tuple[jax.Array, Any]:
        """``(logits_BTV, state)`` from token ids and an optional state (None: zeros)."""
        outputs_TBH, state = self.rnn(self.one_hot(x_BT), state)
        return self.output_layer(outputs_TBH), state

    def __call__(self, x_BT: jax.Array) -> jax.Array:
        return self.forward(x_BT)[0]


class RNNLM(RNNLMScratch):
    """RNN language model, concise (§9.6): the output layer is an ``nnx.Linear``."""

    def init_output_layer(self, sigma: float, rngs: nnx.Rngs) -> None:
        self.linear = nnx.Linear(self.rnn.num_outputs, self.vocab_size, rngs=rngs)

    def output_layer(self, H_TBH: jax.Array) -> jax.Array:
        return self.linear(H_TBH).swapaxes(0, 1)


def _check_vocab_size(vocab_size) -> None:
    if int(vocab_size) != vocab_size or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive integer, got {vocab_size!r}")


def _scratch_lm(cell, vocab_size, num_hiddens, num_layers, bidirectional, sigma, rngs, **kw):
    _check_vocab_size(vocab_size)
    if num_layers == 1 and not bidirectional:
        rnn = _scratch_layer(cell, vocab_size, num_hiddens, sigma, rngs, **kw)
    else:
        rnn = StackedRNNScratch(
            vocab_size, num_hiddens, num_layers, sigma, cell, bidirectional, rngs=rngs, **kw
        )
    return RNNLMScratch(rnn, vocab_size, sigma, rngs=rngs)


_CONCISE = {"rnn": RNN, "gru": GRU, "lstm": LSTM}


def _concise_lm(cell, vocab_size, num_hiddens, num_layers, bidirectional, rngs):
    _check_vocab_size(vocab_size)
    rnn = _CONCISE[cell](vocab_size, num_hiddens, num_layers, bidirectional, rngs=rngs)
    return RNNLM(rnn, vocab_size, rngs=rngs)


def language_model_scratch(
    vocab_size: int = 28,
    num_hiddens: int = 32,
    num_layers: int = 1,
    bidirectional: bool = False,
    sigma: float = 0.01,
    reset_after: bool = False,
    *,
    cell: str = "rnn",
    rngs: nnx.Rngs,
) -> RNNLMScratch:
    """RNNLMScratch on a scratch ``cell`` layer (``"rnn"`` §9.5, ``"gru"`` §10.2.4, ``"lstm"``
    §10.1.2), or on StackedRNNScratch when ``num_layers > 1`` or ``bidirectional`` (§10.3, §10.4).

    ``reset_after`` (GRU only) applies the reset gate after the hidden-to-hidden product, as
    Flax's ``nnx.GRUCell`` does. Registered as ``rnn_lm_scratch``, ``gru_lm_scratch`` and
    ``lstm_lm_scratch``, which differ only in their default ``cell``.
    """
    kw = {}
    if reset_after:
        if cell != "gru":
            raise ValueError(f"reset_after applies to the GRU only, not to cell {cell!r}")
        kw["reset_after"] = True
    return _scratch_lm(cell, vocab_size, num_hiddens, num_layers, bidirectional, sigma, rngs, **kw)


def language_model(
    vocab_size: int = 28,
    num_hiddens: int = 32,
    num_layers: int = 1,
    bidirectional: bool = False,
    *,
    cell: str = "rnn",
    rngs: nnx.Rngs,
) -> RNNLM:
    """RNNLM on the concise :class:`RNN`, :class:`GRU` or :class:`LSTM` (``cell``; §9.6, §10.2.5,
    §10.1.3; ``num_layers=2`` is §10.3.2's deep GRU). Registered as ``rnn_lm``, ``gru_lm`` and
    ``lstm_lm``, which differ only in their default ``cell``.
    """
    if cell not in _CONCISE:
        raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(_CONCISE)}")
    return _concise_lm(cell, vocab_size, num_hiddens, num_layers, bidirectional, rngs)


# name -> (factory, cell, description): the six registered language models.
_LANGUAGE_MODELS = {
    "rnn_lm_scratch": (
        language_model_scratch, "rnn", "§9.5 RNN language model from scratch (one-hot inputs)"
    ),
    "gru_lm_scratch": (language_model_scratch, "gru", "§10.2.4 GRU language model from scratch"),
    "lstm_lm_scratch": (
        language_model_scratch, "lstm", "§10.1.2 LSTM language model from scratch"
    ),
    "rnn_lm": (
        language_model, "rnn", "§9.6 concise RNN language model (nnx.SimpleCell + nnx.RNN)"
    ),
    "gru_lm": (
        language_model, "gru", "§10.2.5 concise GRU language model (nnx.GRUCell), deep in §10.3"
    ),
    "lstm_lm": (language_model, "lstm", "§10.1.3 concise LSTM language model (nnx.LSTMCell)"),
}  # fmt: skip
for _name, (_factory, _cell, _description) in _LANGUAGE_MODELS.items():
    register(_name, description=_description, defaults={"cell": _cell})(_factory)
del _name, _factory, _cell, _description


# ----------------------------------------------------------------------------- generation


@functools.partial(jax.jit, static_argnames=("graphdef", "num_preds"))
def _generate(graphdef, state, prefix_1P: jax.Array, num_preds: int) -> jax.Array:
    def forward(model_state, x_1T, rnn_state):
        model = nnx.merge(graphdef, model_state, copy=True)
        model.eval()
        logits_1TV, rnn_state = model.forward(x_1T, rnn_state)
        return jnp.argmax(logits_1TV[:, -1], axis=-1).astype(x_1T.dtype), rnn_state

    # Warm-up: run the whole prefix; the logits at its last position give the first prediction.
    first_1, rnn_state = forward(state, prefix_1P, None)

    # The model state travels in the carry: Flax modules must be rebuilt inside the scan body.
    def body(carry, _):
        token_1, rnn_state, model_state = carry
        nxt_1, rnn_state = forward(model_state, token_1[:, None], rnn_state)
        return (nxt_1, rnn_state, model_state), token_1[0]

    carry = (first_1, rnn_state, state)
    (last_1, _, _), tokens = jax.lax.scan(body, carry, None, length=num_preds - 1)
    return jnp.concatenate([tokens, last_1])


def generate_text(model: nnx.Module, prefix: str, num_preds: int, vocab) -> str:
    """Greedy text generation (the book's ``predict``, §9.5.5): feed ``prefix`` to warm the state
    up, then append ``num_preds`` tokens, each the argmax of the next-token distribution fed back
    as input.

    ``model`` is a language model with ``forward(x_BT, state) -> (logits_BTV, state)`` (e.g.
    :class:`RNNLMScratch`); ``vocab`` maps a list of characters to ids (``vocab[list(prefix)]``)
    and back (``vocab.to_tokens(ids)``). Returns the prefix followed by the generated text; the
    whole generation is one jitted call (a ``lax.scan`` over the steps).
    """
    if not prefix:
        raise ValueError("generate_text needs a non-empty prefix to warm up the state")
    if int(num_preds) != num_preds or num_preds < 1:
        raise ValueError(f"num_preds must be a positive integer, got {num_preds!r}")
    ids = vocab[list(prefix)]
    prefix_1P = jnp.asarray([ids], jnp.int32)
    graphdef, state = nnx.split(model)
    out = _generate(graphdef, state, prefix_1P, int(num_preds))
    generated = vocab.to_tokens([int(i) for i in out])
    return prefix + (generated if isinstance(generated, str) else "".join(generated))


def k_step_ahead_predictions(model, series, tau: int, max_steps: int) -> jax.Array:
    """k-step-ahead predictions of an autoregressive model (book §9.1.3), for k = 1..max_steps.

    ``model`` maps ``(N, tau)`` windows to ``(N, 1)`` predictions. Starting from every window of
    ``tau`` observed values of ``series`` (length ``T``), the model predicts the next value, then
    feeds its own predictions back in. Row ``k - 1`` of the result holds the k-step-ahead
    predictions of ``series[tau + k - 1 + j]`` for ``j = 0..N-1``, ``N = T - tau - max_steps + 1``
    (the book's ``features[tau + k - 1]``).
    """
    series = jnp.asarray(series, jnp.float32)
    if series.ndim != 1:
        raise ValueError(f"series must be one-dimensional, got shape {series.shape}")
    n = series.shape[0] - tau - max_steps + 1
    if tau < 1 or max_steps < 1 or n < 1:
        raise ValueError(
            f"need tau >= 1, max_steps >= 1 and len(series) >= tau + max_steps; got tau={tau}, "
            f"max_steps={max_steps}, len(series)={series.shape[0]}"
        )
    graphdef, state = nnx.split(model)

    @jax.jit
    def run(state, window_tN):
        m = nnx.merge(graphdef, state, copy=True)

        def body(window_tN, _):
            pred_N = m(window_tN.T).reshape(-1)
            return jnp.concatenate([window_tN[1:], pred_N[None]]), pred_N

        return jax.lax.scan(body, window_tN, None, length=max_steps)[1]

    window_tN = jnp.stack([series[i : i + n] for i in range(tau)])
    return run(state, window_tN)

"""From-scratch building blocks of chapters 3-5, written in plain ``jax.numpy``.

These are the functions the book writes by hand before switching to the library versions
(``optax``, ``jax.nn``, ``flax.nnx``); the tests check that each one agrees with its library twin.

- :func:`linreg`, :func:`squared_loss` -- §3.4 linear regression from scratch.
- :func:`flatten` -- §4.4 images ``[B, 28, 28, 1]`` to rows ``[B, 784]`` (softmax regression, MLPs).
- :func:`l2_penalty` -- §3.7 weight decay.
- :func:`softmax`, :func:`cross_entropy_from_probs`, :func:`softmax_cross_entropy` -- §4.4 softmax
  regression from scratch (and §4.5's numerically stable log-sum-exp version).
- :func:`relu` -- §5.1 activation functions / §5.2 the MLP from scratch.
- :func:`dropout` -- §5.6 dropout from scratch.

Losses return one value per example (or per element for :func:`squared_loss`); averaging over the
batch is left to the caller, as the book's ``loss`` methods do.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = [
    "cross_entropy_from_probs",
    "dropout",
    "flatten",
    "l2_penalty",
    "linreg",
    "log_softmax",
    "logsumexp",
    "relu",
    "softmax",
    "softmax_cross_entropy",
    "squared_loss",
]


def linreg(X_BD: jax.Array, w_D1: jax.Array, b_1: jax.Array) -> jax.Array:
    """The linear regression model ``X w + b`` (§3.4.2)."""
    return jnp.matmul(X_BD, w_D1) + b_1


def squared_loss(y_hat: jax.Array, y: jax.Array) -> jax.Array:
    """Elementwise squared loss ``(y_hat - y)^2 / 2`` (§3.1.1.2); ``y`` is reshaped like
    ``y_hat``."""
    return (y_hat - jnp.reshape(y, y_hat.shape)) ** 2 / 2


def flatten(x: jax.Array) -> jax.Array:
    """``[B, ...]`` -> ``[B, prod(...)]``, the book's ``X.reshape((-1, num_inputs))`` (§4.4)."""
    return jnp.reshape(x, (x.shape[0], -1))


def l2_penalty(w: jax.Array) -> jax.Array:
    """The weight-decay penalty ``sum(w^2) / 2`` (§3.7.1)."""
    return jnp.sum(w**2) / 2


def _stable_max(x: jax.Array, axis: int) -> jax.Array:
    # The shift cancels out of every result it is used in, so no gradient needs to flow through it;
    # stopping it also avoids the arbitrary tie-breaking of max's gradient.
    return jax.lax.stop_gradient(jnp.max(x, axis=axis, keepdims=True))


def softmax(x: jax.Array, axis: int = -1) -> jax.Array:
    """``exp(x) / sum(exp(x))`` along ``axis`` (§4.4.1).

    The book's version exponentiates ``x`` directly and overflows for logits around 90 in float32;
    subtracting the row maximum first (§4.5.3) leaves the result unchanged and keeps it finite.
    """
    x_exp = jnp.exp(x - _stable_max(x, axis))
    return x_exp / jnp.sum(x_exp, axis=axis, keepdims=True)


def logsumexp(x: jax.Array, axis: int = -1) -> jax.Array:
    """``log(sum(exp(x)))`` along ``axis``, computed without overflow (the trick of §4.5.3)."""
    m = _stable_max(x, axis)
    return jnp.squeeze(m, axis) + jnp.log(jnp.sum(jnp.exp(x - m), axis=axis))


def log_softmax(x: jax.Array, axis: int = -1) -> jax.Array:
    """``log(softmax(x))`` computed as ``x - logsumexp(x)`` (§4.5.3)."""
    return x - jnp.expand_dims(logsumexp(x, axis), axis)


def _pick(values_BC: jax.Array, y_B: jax.Array) -> jax.Array:
    """``values[i, y[i]]`` for every leading index ``i`` (the book's ``y_hat[range(n), y]``)."""
    return jnp.take_along_axis(values_BC, y_B[..., None].astype(jnp.int32), axis=-1)[..., 0]


def cross_entropy_from_probs(probs_BC: jax.Array, y_B: jax.Array) -> jax.Array:
    """Per-example cross-entropy ``-log(probs[i, y[i]])`` from probabilities (§4.4.4).

    This is the book's scratch version: it takes the output of :func:`softmax` and is ``inf`` when a
    probability underflows to zero. Prefer :func:`softmax_cross_entropy` on logits.
    """
    return -jnp.log(_pick(probs_BC, y_B))


def softmax_cross_entropy(logits_BC: jax.Array, y_B: jax.Array) -> jax.Array:
    """Per-example cross-entropy from logits, ``logsumexp(o) - o[y]`` (§4.5.3).

    Equal to ``cross_entropy_from_probs(softmax(logits), y)`` wherever that is finite, and finite
    for any finite logits. Matches ``optax.softmax_cross_entropy_with_integer_labels``.
    """
    return logsumexp(logits_BC, axis=-1) - _pick(logits_BC, y_B)


def relu(x: jax.Array) -> jax.Array:
    """``max(x, 0)`` (§5.1.2.1); its gradient at exactly 0 is 0, as in ``jax.nn.relu``."""
    return jnp.where(x > 0, x, jnp.zeros_like(x))


def dropout(
    x: jax.Array, rate: float, key: jax.Array | None = None, deterministic: bool = False
) -> jax.Array:
    """Inverted dropout (§5.6.2.1): zero each element with probability ``rate``, scale the rest.

    The mask keeps an element when a uniform draw exceeds ``rate``; survivors are divided by
    ``1 - rate`` so the expectation of every element is unchanged. ``rate == 1`` returns zeros,
    ``rate == 0`` or ``deterministic=True`` (evaluation) returns ``x`` unchanged; only the random
    case needs ``key``. ``rate`` and ``deterministic`` are Python values, fixed at trace time.
    """
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"dropout rate must be in [0, 1], got {rate}")
    if deterministic or rate == 0.0:
        return x
    if rate == 1.0:
        return jnp.zeros_like(x)
    if key is None:
        raise ValueError("dropout with 0 < rate < 1 and deterministic=False needs a PRNG key")
    keep = jax.random.uniform(key, x.shape) > rate
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros_like(x))

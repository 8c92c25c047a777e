"""Optimization landscapes (book §12.1-§12.4): test functions, paths, Newton, critical points.

The book studies optimizers on small functions whose shape is known, and plots the path the
iterates take. This module holds those functions and the machinery, written for JAX:

* test functions: :func:`local_minima_1d` (§12.1), :func:`nonconvex_1d` and :func:`cosh_1d`
  (§12.3), :func:`quadratic_2d` (§12.3.2, §12.4), :func:`ill_conditioned_2d` (§12.6-§12.8) and
  :func:`saddle_2d` (§12.1.2);
* :func:`trajectory` / :func:`train_2d` / :func:`gd_1d`: run any optax transformation (or a plain
  ``update(x, g) -> x``) on a function with ``lax.scan`` and return every iterate, optionally
  with Gaussian noise added to the gradient (the book's stand-in for a stochastic gradient, §12.4);
* :func:`newton`: Newton's method (§12.3.3) with the Hessian from ``jax.hessian``;
* beyond the book: :func:`hessian_eigenvalues` and :func:`classify_critical_point`, the
  second-order test of §12.1.2 (all eigenvalues positive: minimum; all negative: maximum; both
  signs: saddle) for any function of a pytree, e.g. a small network's loss;
* :func:`contour_grid`: the values of a 2-D function on a grid, for contour plots.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree

__all__ = [
    "classify_critical_point",
    "contour_grid",
    "cosh_1d",
    "gd_1d",
    "hessian_eigenvalues",
    "ill_conditioned_2d",
    "local_minima_1d",
    "newton",
    "nonconvex_1d",
    "quadratic_2d",
    "saddle_2d",
    "train_2d",
    "trajectory",
]

Update = optax.GradientTransformation | Callable[[jax.Array, jax.Array], jax.Array]


def local_minima_1d(x):
    """``x cos(pi x)`` (§12.1.2.1): a local minimum near -0.3 and the global one near 1.1 on
    ``[-1, 2]``."""
    return x * jnp.cos(jnp.pi * x)


def nonconvex_1d(x, c: float = 0.15 * np.pi):
    """``x cos(c x)`` with ``c = 0.15 pi`` (§12.3.1.3 and §12.3.3.1): gradient descent with a
    large rate lands in a poor local minimum, and plain Newton heads for a maximum."""
    return x * jnp.cos(c * x)


def cosh_1d(x, c: float = 0.5):
    """``cosh(c x)`` (§12.3.3.1): convex with its minimum at 0; Newton converges in a few steps."""
    return jnp.cosh(c * x)


def quadratic_2d(x):
    """``x1**2 + 2 x2**2`` (§12.3.2, §12.4): gradient descent with lr 0.1 reaches 0 smoothly."""
    return x[0] ** 2 + 2 * x[1] ** 2


def ill_conditioned_2d(x):
    """``0.1 x1**2 + 2 x2**2`` (§12.6.1): curvatures 0.2 and 4, a condition number of 20; the
    function on which the book compares momentum, Adagrad and RMSProp, started at (-5, -2)."""
    return 0.1 * x[0] ** 2 + 2 * x[1] ** 2


def saddle_2d(x):
    """``x1**2 - x2**2`` (§12.1.2.2): a minimum along x1 and a maximum along x2 at the origin."""
    return x[0] ** 2 - x[1] ** 2


def trajectory(
    update: Update,
    f: Callable[[jax.Array], jax.Array],
    start,
    steps: int,
    *,
    noise_std: float = 0.0,
    key: jax.Array | None = None,
) -> jax.Array:
    """The iterates ``[x_0, ..., x_steps]`` of an optimizer on ``f``, stacked on axis 0.

    Args:
      update: an ``optax.GradientTransformation`` (scratch or optax), or a function
        ``update(x, g) -> new_x`` (e.g. ``lambda x, g: x - 0.1 * g``).
      f: the scalar function to minimize; its gradient comes from ``jax.grad``.
      start: the first iterate (a scalar or an array).
      steps: the number of updates.
      noise_std: standard deviation of the Gaussian noise added to every gradient entry (the
        book's simulated stochastic gradient, §12.4); needs ``key``.
      key: PRNG key for the noise.
    """
    x0 = jnp.asarray(start, jnp.float32)
    if noise_std and key is None:
        raise ValueError("noise_std > 0 needs a PRNG key")
    keys = jax.random.split(key if key is not None else jax.random.key(0), steps)
    grad_f = jax.grad(f)
    is_optax = isinstance(update, optax.GradientTransformation)
    opt_state = update.init(x0) if is_optax else ()

    def step(carry, key):
        x, opt_state = carry
        g = grad_f(x)
        if noise_std:
            g = g + noise_std * jax.random.normal(key, g.shape, g.dtype)
        if is_optax:
            updates, opt_state = update.update(g, opt_state, x)
            x = optax.apply_updates(x, updates)
        else:
            x = jnp.asarray(update(x, g), x.dtype)
        return (x, opt_state), x

    _, xs = jax.lax.scan(step, (x0, opt_state), keys)
    return jnp.concatenate([x0[None], xs])


def train_2d(
    update: Update,
    steps: int = 20,
    start=(-5.0, -2.0),
    f: Callable[[jax.Array], jax.Array] = ill_conditioned_2d,
    **kwargs,
) -> jax.Array:
    """The book's ``train_2d`` (§12.3.2): ``[steps + 1, 2]`` iterates from ``start`` on ``f``
    (default the ill-conditioned quadratic from (-5, -2)); ``kwargs`` go to :func:`trajectory`."""
    return trajectory(update, f, start, steps, **kwargs)


def gd_1d(f: Callable, x0: float, lr: float, steps: int = 10) -> jax.Array:
    """Gradient descent ``x <- x - lr f'(x)`` on a 1-D function (§12.3.1): ``[steps + 1]``."""
    return trajectory(lambda x, g: x - lr * g, f, x0, steps)


def newton(f: Callable, x0, steps: int = 10, lr: float = 1.0) -> jax.Array:
    """Newton's method (§12.3.3): ``x <- x - lr H(x)^{-1} grad f(x)``, ``H`` from ``jax.hessian``.

    ``x0`` is a scalar or a vector; returns the ``[steps + 1, ...]`` iterates. On a nonconvex
    function the Hessian can be negative and the step then goes *uphill*; ``lr < 1`` damps it
    (the book's fix), it does not cure it.
    """
    x0 = jnp.asarray(x0, jnp.float32)
    grad_f, hess_f = jax.grad(f), jax.hessian(f)

    def step(x, _):
        g, H = grad_f(x), hess_f(x)
        direction = g / H if x.ndim == 0 else jnp.linalg.solve(H, g)
        x = x - lr * direction
        return x, x

    _, xs = jax.lax.scan(step, x0, None, length=steps)
    return jnp.concatenate([x0[None], xs])


def _grad_norm_and_eigenvalues(f: Callable, x) -> tuple[float, np.ndarray]:
    flat, unravel = ravel_pytree(x)

    @jax.jit
    def both(v):
        f_flat = lambda v: f(unravel(v))  # noqa: E731
        H = jax.hessian(f_flat)(v)
        H = (H + H.T) / 2  # symmetric up to rounding; eigvalsh reads one triangle only
        return jnp.linalg.norm(jax.grad(f_flat)(v)), jnp.linalg.eigvalsh(H)

    grad_norm, eig = both(flat)
    return float(grad_norm), np.asarray(eig)


def hessian_eigenvalues(f: Callable, x) -> np.ndarray:
    """The eigenvalues (ascending) of the Hessian of the scalar ``f`` at ``x`` (any pytree)."""
    return _grad_norm_and_eigenvalues(f, x)[1]


def classify_critical_point(
    f: Callable, x, *, grad_tol: float = 1e-5, eig_tol: float = 1e-6
) -> str:
    """The second-order test at ``x`` (any pytree): what kind of point is it for ``f``?

    Returns ``"not critical"`` when the gradient norm exceeds ``grad_tol``; otherwise, from the
    eigenvalues of the Hessian (``jax.hessian`` + ``jnp.linalg.eigvalsh``): ``"minimum"`` (all
    > 0), ``"maximum"`` (all < 0), ``"saddle"`` (some of each sign), or ``"degenerate"`` when
    some are zero (within ``eig_tol`` times the largest magnitude) and the rest share one
    sign -- the test cannot decide then, e.g. for ``x**3`` at 0, which the book calls a saddle
    point, and ``x**4`` at 0, a minimum.
    """
    grad_norm, eig = _grad_norm_and_eigenvalues(f, x)
    if grad_norm > grad_tol:
        return "not critical"
    tol = eig_tol * max(1.0, float(np.abs(eig).max(initial=0.0)))
    positive, negative = bool((eig > tol).any()), bool((eig < -tol).any())
    if positive and negative:
        return "saddle"
    if bool((np.abs(eig) <= tol).any()):
        return "degenerate"
    return "minimum" if positive else "maximum"


def contour_grid(
    f: Callable, xlim=(-5.5, 1.0), ylim=(-3.0, 1.0), num: int = 101
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X1, X2, Z)`` NumPy grids with ``Z = f([X1, X2])``, ready for ``plt.contour`` (the
    default window is the book's for :func:`train_2d`)."""
    x1 = np.linspace(*xlim, num, dtype=np.float32)
    x2 = np.linspace(*ylim, num, dtype=np.float32)
    X1, X2 = np.meshgrid(x1, x2)
    Z = jax.vmap(f, in_axes=1)(jnp.stack([X1.ravel(), X2.ravel()]))
    return X1, X2, np.asarray(Z).reshape(X1.shape)

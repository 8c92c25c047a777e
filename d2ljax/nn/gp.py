"""Gaussian processes from scratch (book §18.1-18.3), in ``jax.numpy``.

Kernels are small callables ``k(x1_ND, x2_MD) -> K_NM`` that compose with ``+`` and ``*`` (a
number times a kernel scales it), so the book's composed kernels read as they are written::

    k = 2.0 * RBF(0.5) + Periodic(lengthscale=1.0, period=1.0) * RBF(10.0)

Their hyperparameters may be numbers or traced arrays: a kernel built inside a traced function
(``jax.grad`` of :func:`log_marginal_likelihood`) carries the gradient to them. Inputs are
``[N, D]`` arrays; a ``[N]`` array is taken as ``N`` points of one dimension.

The GP functions:

* :func:`prior_samples`: functions drawn from the prior ``f ~ GP(0, k)`` at given points (§18.2);
* :func:`posterior`: the posterior mean and covariance of ``f(x_*)`` given noisy observations
  ``y = f(x) + eps``, ``eps ~ N(0, noise_var)``, by a Cholesky factorisation (§18.3, eq. 18.3.1);
* :func:`log_marginal_likelihood`: ``log p(y | x, theta)`` (§18.3, eq. 18.3.4), what the
  hyperparameters are learned by.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.linalg import cho_solve, solve_triangular

__all__ = [
    "Constant",
    "Kernel",
    "Linear",
    "NeuralNetwork",
    "Periodic",
    "RBF",
    "RationalQuadratic",
    "log_marginal_likelihood",
    "posterior",
    "prior_samples",
    "squared_distances",
]


def _points(x, name: str = "x") -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{name} must be [N] or [N, D] points, got shape {x.shape}")
    return x


def squared_distances(x1, x2) -> jax.Array:
    """``[N, M]`` squared Euclidean distances between the rows of ``x1`` and ``x2``."""
    x1, x2 = _points(x1, "x1"), _points(x2, "x2")
    if x1.shape[1] != x2.shape[1]:
        raise ValueError(f"points of different dimension: {x1.shape} and {x2.shape}")
    diff = x1[:, None, :] - x2[None, :, :]
    return jnp.sum(diff * diff, axis=-1)


class Kernel:
    """A covariance function ``k(x1, x2) -> [N, M]``; ``+``, ``*`` and a number times it compose."""

    def __call__(self, x1, x2=None) -> jax.Array:
        x1 = _points(x1, "x1")
        x2 = x1 if x2 is None else _points(x2, "x2")
        if x1.shape[1] != x2.shape[1]:
            raise ValueError(f"points of different dimension: {x1.shape} and {x2.shape}")
        return self.matrix(x1, x2)

    def matrix(self, x1_ND: jax.Array, x2_MD: jax.Array) -> jax.Array:
        raise NotImplementedError

    def __add__(self, other):
        return _Sum(self, _as_kernel(other))

    __radd__ = __add__

    def __mul__(self, other):
        return _Product(self, _as_kernel(other))

    __rmul__ = __mul__


def _as_kernel(value) -> Kernel:
    if isinstance(value, Kernel):
        return value
    try:
        return Constant(jnp.asarray(value, jnp.float32))
    except (TypeError, ValueError):
        raise TypeError(f"cannot combine a kernel with {type(value).__name__} {value!r}") from None


class _Sum(Kernel):
    def __init__(self, a: Kernel, b: Kernel):
        self.a, self.b = a, b

    def matrix(self, x1, x2):
        return self.a.matrix(x1, x2) + self.b.matrix(x1, x2)

    def __repr__(self) -> str:
        return f"({self.a!r} + {self.b!r})"


class _Product(Kernel):
    def __init__(self, a: Kernel, b: Kernel):
        self.a, self.b = a, b

    def matrix(self, x1, x2):
        return self.a.matrix(x1, x2) * self.b.matrix(x1, x2)

    def __repr__(self) -> str:
        return f"{self.a!r} * {self.b!r}"


class Constant(Kernel):
    """``k(x, x') = c`` (``c >= 0``); ``c * kernel`` is ``Constant(c) * kernel`` (an amplitude)."""

    def __init__(self, value):
        self.value = value

    def matrix(self, x1, x2):
        return jnp.full((x1.shape[0], x2.shape[0]), self.value, dtype=x1.dtype)

    def __repr__(self) -> str:
        return f"{self.value}"


class RBF(Kernel):
    """The RBF (squared exponential) kernel ``exp(-||x - x'||^2 / (2 lengthscale^2))`` (§18.2).

    Times an amplitude ``a^2`` it is the book's ``a^2 exp(-||x - x'||^2 / (2 l^2))``; its sample
    functions are smooth and vary on the scale of ``lengthscale``."""

    def __init__(self, lengthscale=1.0):
        self.lengthscale = lengthscale

    def matrix(self, x1, x2):
        return jnp.exp(-0.5 * squared_distances(x1, x2) / jnp.square(self.lengthscale))

    def __repr__(self) -> str:
        return f"RBF({self.lengthscale})"


class RationalQuadratic(Kernel):
    """``(1 + ||x - x'||^2 / (2 alpha lengthscale^2))^(-alpha)``: a scale mixture of RBF kernels
    (many lengthscales at once; ``alpha -> inf`` gives the RBF)."""

    def __init__(self, lengthscale=1.0, alpha=1.0):
        self.lengthscale, self.alpha = lengthscale, alpha

    def matrix(self, x1, x2):
        r2 = squared_distances(x1, x2) / jnp.square(self.lengthscale)
        return (1.0 + 0.5 * r2 / self.alpha) ** (-self.alpha)

    def __repr__(self) -> str:
        return f"RationalQuadratic({self.lengthscale}, alpha={self.alpha})"


class Periodic(Kernel):
    """The periodic kernel ``exp(-2 sin^2(pi ||x - x'|| / period) / lengthscale^2)`` (§18.1):
    sample functions repeat every ``period``; ``lengthscale`` sets how wiggly one period is."""

    def __init__(self, lengthscale=1.0, period=1.0):
        self.lengthscale, self.period = lengthscale, period

    def matrix(self, x1, x2):
        # sqrt of a squared distance has an infinite gradient at 0: guard the diagonal
        d2 = squared_distances(x1, x2)
        d = jnp.sqrt(jnp.where(d2 > 0, d2, 1.0)) * (d2 > 0)
        s = jnp.sin(jnp.pi * d / self.period)
        return jnp.exp(-2.0 * jnp.square(s) / jnp.square(self.lengthscale))

    def __repr__(self) -> str:
        return f"Periodic({self.lengthscale}, period={self.period})"


class Linear(Kernel):
    """``k(x, x') = variance * x . x'``: Bayesian linear regression through the origin (§18.2)."""

    def __init__(self, variance=1.0):
        self.variance = variance

    def matrix(self, x1, x2):
        return self.variance * (x1 @ x2.T)

    def __repr__(self) -> str:
        return f"Linear({self.variance})"


class NeuralNetwork(Kernel):
    """The neural network kernel (§18.2; Williams 1998): the covariance of a one-hidden-layer
    network with infinitely many erf units and Gaussian weights,
    ``(2/pi) asin(2 x~^T S x~' / sqrt((1 + 2 x~^T S x~)(1 + 2 x~'^T S x~')))`` with
    ``x~ = (1, x)`` and ``S = diag(bias_var, weight_var, ..., weight_var)``."""

    def __init__(self, weight_var=1.0, bias_var=1.0):
        self.weight_var, self.bias_var = weight_var, bias_var

    def matrix(self, x1, x2):
        def quad(a, b):
            return self.bias_var + self.weight_var * (a @ b.T)

        q11 = self.bias_var + self.weight_var * jnp.sum(x1 * x1, -1)
        q22 = self.bias_var + self.weight_var * jnp.sum(x2 * x2, -1)
        denom = jnp.sqrt((1.0 + 2.0 * q11)[:, None] * (1.0 + 2.0 * q22)[None, :])
        return (2.0 / jnp.pi) * jnp.arcsin(2.0 * quad(x1, x2) / denom)

    def __repr__(self) -> str:
        return f"NeuralNetwork(weight_var={self.weight_var}, bias_var={self.bias_var})"


# ----------------------------------------------------------------------------------------------
# Prior, posterior, marginal likelihood


def _check_xy(x, y):
    x = _points(x, "x")
    y = jnp.asarray(y)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must be [N] for N = {x.shape[0]} points, got shape {y.shape}")
    return x, y


def prior_samples(key: jax.Array, kernel: Kernel, x, num_samples: int = 1, *, mean=0.0,
                  jitter: float = 1e-5) -> jax.Array:
    """``[num_samples, N]`` functions drawn from the prior ``GP(mean, kernel)`` at the points
    ``x`` (§18.2): ``mean + L z`` with ``L L^T = K + jitter I`` and ``z ~ N(0, I)``."""
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    x = _points(x)
    k_NN = kernel(x) + jitter * jnp.eye(x.shape[0], dtype=x.dtype)
    l_NN = jnp.linalg.cholesky(k_NN)
    z_NS = jax.random.normal(key, (x.shape[0], num_samples), x.dtype)
    return (mean + l_NN @ z_NS).T


def posterior(kernel: Kernel, x_train, y_train, x_test, noise_var, *, mean=0.0,
              full_cov: bool = True):
    """The posterior of ``f(x_test)`` given ``y_train = f(x_train) + eps`` (§18.3, eq. 18.3.1):

    ``mean_* = m + K_*x (K_xx + s^2 I)^-1 (y - m)`` and
    ``cov_* = K_** - K_*x (K_xx + s^2 I)^-1 K_x*``, through the Cholesky factor ``L`` of
    ``K_xx + s^2 I`` (``cho_solve`` for the mean, ``L^-1 K_x*`` for the covariance).

    Returns ``(mean [M], cov [M, M])``, or ``(mean, var [M])`` with ``full_cov=False``. These are
    of the latent ``f``; add ``noise_var`` to the variance for a new observation ``y_*``.
    """
    x_train, y_train = _check_xy(x_train, y_train)
    x_test = _points(x_test, "x_test")
    n = x_train.shape[0]
    l_NN = jnp.linalg.cholesky(kernel(x_train) + noise_var * jnp.eye(n, dtype=x_train.dtype))
    k_NM = kernel(x_train, x_test)
    alpha_N = cho_solve((l_NN, True), y_train - mean)
    mean_M = mean + k_NM.T @ alpha_N
    v_NM = solve_triangular(l_NN, k_NM, lower=True)
    if full_cov:
        return mean_M, kernel(x_test) - v_NM.T @ v_NM
    k_diag_M = jax.vmap(lambda p: kernel(p[None])[0, 0])(x_test)
    return mean_M, k_diag_M - jnp.sum(v_NM * v_NM, axis=0)


def log_marginal_likelihood(kernel: Kernel, x, y, noise_var, *, mean=0.0, mask=None) -> jax.Array:
    """``log p(y | x) = -1/2 (y-m)^T (K + s^2 I)^-1 (y-m) - 1/2 log|K + s^2 I| - n/2 log 2 pi``
    (§18.3, eq. 18.3.4), by a Cholesky factorisation.

    ``mask`` (``[N]``, 0 or 1) leaves out the points where it is 0, exactly: their rows and
    columns of the covariance become those of the identity and their residuals 0, so the result
    equals that of the remaining points alone (how ``fit`` pads a batch)."""
    x, y = _check_xy(x, y)
    n = x.shape[0]
    c_NN = kernel(x) + noise_var * jnp.eye(n, dtype=x.dtype)
    r_N = y - mean
    count = jnp.asarray(n, x.dtype)
    if mask is not None:
        m_N = jnp.asarray(mask, x.dtype)
        c_NN = c_NN * (m_N[:, None] * m_N[None, :]) + jnp.diag(1.0 - m_N)
        r_N = r_N * m_N
        count = m_N.sum()
    l_NN = jnp.linalg.cholesky(c_NN)
    alpha_N = cho_solve((l_NN, True), r_N)
    return (
        -0.5 * r_N @ alpha_N
        - jnp.sum(jnp.log(jnp.diagonal(l_NN)))
        - 0.5 * count * jnp.log(2.0 * jnp.pi)
    )

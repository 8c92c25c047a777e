"""GP regression with learnable hyperparameters (book §18.3), on the kernels of :mod:`d2ljax.nn.gp`.

A :class:`GPRegression` holds no weights, only its hyperparameters (``nnx.Param`` each), stored
unconstrained and made positive by softplus, as GPyTorch does: a raw value 0 is
``softplus(0) = log 2 = 0.693``, GPyTorch's default start. The noise variance is
``noise_floor + softplus(raw)`` (GPyTorch's ``GreaterThan(1e-4)`` constraint), and the constant
mean is learned too (the book's ``ConstantMean``).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.registry import register
from d2ljax.nn import gp

#: Kernel name -> (its hyperparameter names, the builder from their positive values). ``rbf`` is
#: the book's ``ScaleKernel(RBFKernel())``, ``periodic`` its periodic counterpart; ``co2`` a
#: long-term trend, a decaying yearly cycle and medium-term irregularities (a rational quadratic),
#: for the Mauna Loa CO2 series.
KERNELS = {
    "rbf": (
        ("amplitude", "lengthscale"),
        lambda p: p["amplitude"] * gp.RBF(p["lengthscale"]),
    ),
    "periodic": (
        ("amplitude", "lengthscale", "period"),
        lambda p: p["amplitude"] * gp.Periodic(p["lengthscale"], p["period"]),
    ),
    "co2": (
        (
            "trend_amplitude",
            "trend_lengthscale",
            "seasonal_amplitude",
            "seasonal_lengthscale",
            "period",
            "seasonal_decay",
            "medium_amplitude",
            "medium_lengthscale",
            "medium_alpha",
        ),
        lambda p: (
            p["trend_amplitude"] * gp.RBF(p["trend_lengthscale"])
            + p["seasonal_amplitude"]
            * gp.Periodic(p["seasonal_lengthscale"], p["period"])
            * gp.RBF(p["seasonal_decay"])
            + p["medium_amplitude"]
            * gp.RationalQuadratic(p["medium_lengthscale"], p["medium_alpha"])
        ),
    ),
}


def _softplus_inverse(v: float) -> float:
    if not v > 0:
        raise ValueError(f"a GP hyperparameter must be > 0, got {v}")
    return v + math.log(-math.expm1(-v)) if v < 20 else v


@register("gp_regression", description="§18.3 exact GP regression, hyperparameters learned")
class GPRegression(nnx.Module):
    """Exact GP regression ``y = f(x) + eps``, ``f ~ GP(mean, kernel)``, ``eps ~ N(0, noise_var)``.

    Args:
      kernel: a name in :data:`KERNELS` (``"rbf"``: ``amplitude * RBF(lengthscale)``).
      init: starting values (positive) of some hyperparameters (``noise_var`` included); the
        others start at ``softplus(0) = 0.693``. ``mean``: the constant mean's start (learned
        unless ``learn_mean=False``).
      noise_floor: the noise variance is ``noise_floor + softplus(raw_noise)``.

    ``rngs`` is accepted for the registry's sake and unused: the start is deterministic.
    """

    def __init__(self, kernel: str = "rbf", *, init: dict | None = None, mean: float = 0.0,
                 learn_mean: bool = True, noise_floor: float = 1e-4, rngs: nnx.Rngs | None = None):
        if kernel not in KERNELS:
            raise ValueError(f"unknown GP kernel {kernel!r}; known: {', '.join(KERNELS)}")
        names, _ = KERNELS[kernel]
        init = dict(init or {})
        unknown = sorted(set(init) - set(names) - {"noise_var"})
        if unknown:
            raise ValueError(
                f"kernel {kernel!r} has no hyperparameter(s) {unknown}; its hyperparameters: "
                f"{', '.join(names)}, noise_var"
            )
        if noise_floor < 0:
            raise ValueError(f"noise_floor must be >= 0, got {noise_floor}")
        self.kernel_name = kernel
        self.noise_floor = float(noise_floor)
        self.raw = nnx.Dict({
            n: nnx.Param(jnp.asarray(_softplus_inverse(float(init[n])) if n in init else 0.0,
                                     jnp.float32))
            for n in names
        })
        if "noise_var" in init and init["noise_var"] <= noise_floor:
            raise ValueError(f"init noise_var must be > noise_floor {noise_floor}")
        raw_noise = (_softplus_inverse(float(init["noise_var"]) - noise_floor)
                     if "noise_var" in init else 0.0)
        self.raw_noise = nnx.Param(jnp.asarray(raw_noise, jnp.float32))
        m = jnp.asarray(mean, jnp.float32)
        self.mean = nnx.Param(m) if learn_mean else nnx.Variable(m)

    def hyperparameters(self) -> dict[str, jax.Array]:
        """The positive hyperparameters by name, ``noise_var`` and ``mean`` included."""
        out = {n: jax.nn.softplus(p[...]) for n, p in self.raw.items()}
        out["noise_var"] = self.noise_var
        out["mean"] = self.mean[...]
        return out

    @property
    def noise_var(self) -> jax.Array:
        return self.noise_floor + jax.nn.softplus(self.raw_noise[...])

    def kernel(self) -> gp.Kernel:
        """The kernel at the current hyperparameters."""
        _, build = KERNELS[self.kernel_name]
        return build({n: jax.nn.softplus(p[...]) for n, p in self.raw.items()})

    def log_marginal_likelihood(self, x_ND, y_N, mask_N=None) -> jax.Array:
        """``log p(y | x)`` at the current hyperparameters (see :func:`d2ljax.nn.gp.
        log_marginal_likelihood`)."""
        return gp.log_marginal_likelihood(
            self.kernel(), x_ND, y_N, self.noise_var, mean=self.mean[...], mask=mask_N
        )

    def predict(self, x_train, y_train, x_test, *, full_cov: bool = False):
        """The posterior mean and variance (``full_cov``: covariance) of ``f(x_test)``."""
        return gp.posterior(self.kernel(), x_train, y_train, x_test, self.noise_var,
                            mean=self.mean[...], full_cov=full_cov)

    def __call__(self, x_ND) -> jax.Array:
        """The prior mean at ``x`` (a GP predicts only given data: use :meth:`predict`)."""
        x = jnp.asarray(x_ND)
        return jnp.full(x.shape[:1], self.mean[...])

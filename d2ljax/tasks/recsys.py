"""Recommender-system training (book ch 21): rating losses and their RMSE.

Explicit feedback trains a :class:`~d2ljax.tasks.SupervisedTask` on a registered loss:

- ``"rating"`` (§21.3, matrix factorisation): ``model(batch["user"], batch["item"])`` against
  ``batch["rating"]``, the book's ``L2Loss`` ``(r_hat - r)^2 / 2`` averaged over the batch.
- ``"autorec"`` (§21.4): ``model(batch["x"])`` (items' rating vectors) against ``batch["y"]``
  where ``y`` is nonzero: the book's ``L2Loss(pred * sign(y), y)``, a mean over the batch of
  the mean over users (unrated entries count as zero error), differentiated as the book does.

Both report sums over the *observed ratings*: ``loss`` (the halved squared errors) and ``mse``
(the squared errors), ``count`` the number of ratings, so an epoch's ``val_mse`` is the test
MSE and ``sqrt(val_mse)`` the book's test RMSE (:func:`rmse` computes it directly).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from d2ljax.train.losses import example_weights, register_loss

__all__ = ["autorec_loss", "rating_loss", "rmse"]


@register_loss("rating")
def rating_loss(model: nnx.Module, batch: dict):
    """The book's ``L2Loss`` on predicted ratings (see the module docstring)."""
    r_hat_B = model(batch["user"], batch["item"])
    se_B = (r_hat_B - batch["rating"]) ** 2
    w_B = example_weights(batch, se_B.shape[0])
    total = (se_B * w_B).sum()
    n = w_B.sum()
    return 0.5 * total / jnp.maximum(n, 1.0), {"loss": 0.5 * total, "mse": total, "count": n}


@register_loss("autorec")
def autorec_loss(model: nnx.Module, batch: dict):
    """The book's AutoRec loss (see the module docstring)."""
    pred_BU = model(batch["x"])
    y_BU = batch["y"]
    w_B = example_weights(batch, y_BU.shape[0])
    se_BU = (pred_BU * jnp.sign(y_BU) - y_BU) ** 2 * w_B[:, None]
    mean = 0.5 * se_BU.mean(-1).sum() / jnp.maximum(w_B.sum(), 1.0)
    total = se_BU.sum()
    n = (jnp.sign(y_BU) * w_B[:, None]).sum()
    return mean, {"loss": 0.5 * total, "mse": total, "count": n}


def rmse(model: nnx.Module, split: dict, *, batch_size: int = 8192) -> float:
    """The root mean squared error of ``model`` (in eval mode) over the observed ratings of
    ``split``: ``{"user", "item", "rating"}`` for a rating model, ``{"x", "y"}`` for AutoRec (the
    book's ``evaluator``: training rows in, test ratings scored where nonzero)."""
    model.eval()
    graphdef, state = nnx.split(model)
    loss_fn = autorec_loss if "x" in split else rating_loss

    @jax.jit
    def sums(state, batch):
        return loss_fn(nnx.merge(graphdef, state), batch)[1]

    n = len(next(iter(split.values())))
    se = count = 0.0
    for start in range(0, n, batch_size):
        batch = {k: jnp.asarray(v[start : start + batch_size]) for k, v in split.items()}
        s = sums(state, batch)
        se, count = se + float(s["mse"]), count + float(s["count"])
    return float(np.sqrt(se / max(count, 1.0)))

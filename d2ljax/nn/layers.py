"""From-scratch Flax NNX layers built on :mod:`d2ljax.nn.functional`.

- :class:`Dropout` -- §5.6.2 dropout from scratch, as a layer that ``model.train()`` /
  ``model.eval()`` switch on and off like ``nnx.Dropout``.
"""

from __future__ import annotations

import jax
from flax import nnx

from d2ljax.nn import functional as F

__all__ = ["Dropout"]


class Dropout(nnx.Module):
    """Inverted dropout (§5.6.2) wrapping :func:`d2ljax.nn.functional.dropout`.

    NNX conventions, the same as ``nnx.Dropout``:

    - ``deterministic`` is a plain attribute, so ``model.eval()`` (sets it ``True``),
      ``model.train()`` (sets it ``False``) and ``nnx.view(model, deterministic=...)`` control it.
    - The layer owns its random stream: an ``nnx.RngStream`` forked from ``rngs[rng_collection]``
      when built. Its key and count are NNX variables (``RngKey``/``RngCount``), so
      ``nnx.split(model, nnx.Param, ...)`` puts them in the non-parameter state, every call advances
      the count (a fresh mask per call, also inside ``jax.jit`` on split/merged state), and
      ``nnx.reseed(model, dropout=key)`` resets it. Forking, rather than keeping the caller's
      ``Rngs``, means no two modules share one stream object.

    Args:
      rate: probability of zeroing an element (not the keep probability).
      deterministic: initial mode; ``False`` (training) by default, like ``nnx.Dropout``.
      rng_collection: name of the stream to fork from ``rngs`` (``"dropout"``).
      rngs: an ``nnx.Rngs`` or ``nnx.RngStream``; may be ``None`` only if the layer is always
        deterministic or the key is passed at call time.
    """

    def __init__(
        self,
        rate: float,
        *,
        deterministic: bool = False,
        rng_collection: str = "dropout",
        rngs: nnx.Rngs | nnx.RngStream | None = None,
    ):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"dropout rate must be in [0, 1], got {rate}")
        self.rate = rate
        self.deterministic = deterministic
        self.rng_collection = rng_collection
        if isinstance(rngs, nnx.Rngs):
            self.rngs = rngs[rng_collection].fork()
        elif isinstance(rngs, nnx.RngStream):
            self.rngs = rngs.fork()
        elif rngs is None:
            self.rngs = nnx.data(None)
        else:
            raise TypeError(f"rngs must be nnx.Rngs, nnx.RngStream or None, got {type(rngs)}")

    def __call__(
        self, x: jax.Array, *, deterministic: bool | None = None, key: jax.Array | None = None
    ) -> jax.Array:
        """Drop elements of ``x`` unless in eval mode; ``deterministic``/``key`` override the
        layer's own mode and stream for this call."""
        deterministic = self.deterministic if deterministic is None else deterministic
        if deterministic or self.rate == 0.0 or self.rate == 1.0:
            return F.dropout(x, self.rate, None, deterministic)
        if key is None:
            if self.rngs is None:
                raise ValueError(
                    "Dropout is in training mode but has no rng stream: build it with "
                    "rngs=nnx.Rngs(dropout=...), pass key=..., or call model.eval()."
                )
            key = self.rngs()
        return F.dropout(x, self.rate, key, deterministic=False)

    def set_view(self, deterministic: bool | None = None):
        """Hook for ``nnx.view(model, deterministic=...)``."""
        if deterministic is not None:
            self.deterministic = deterministic

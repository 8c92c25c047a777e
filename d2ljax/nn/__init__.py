"""From-scratch building blocks the book's "implementation from scratch" sections teach.

``d2ljax.nn.functional`` holds pure ``jax.numpy`` functions (softmax, cross-entropy, relu, dropout,
...); ``d2ljax.nn.layers`` wraps the stateful ones as Flax NNX modules.
"""

from d2ljax.nn import functional
from d2ljax.nn.functional import (
    cross_entropy_from_probs,
    dropout,
    l2_penalty,
    linreg,
    log_softmax,
    logsumexp,
    relu,
    softmax,
    softmax_cross_entropy,
    squared_loss,
)
from d2ljax.nn.layers import Dropout

__all__ = [
    "Dropout",
    "cross_entropy_from_probs",
    "dropout",
    "functional",
    "l2_penalty",
    "linreg",
    "log_softmax",
    "logsumexp",
    "relu",
    "softmax",
    "softmax_cross_entropy",
    "squared_loss",
]

"""From-scratch building blocks the book's "implementation from scratch" sections teach.

``d2ljax.nn.functional`` holds pure ``jax.numpy`` functions (softmax, cross-entropy, relu, dropout,
...); ``d2ljax.nn.layers`` wraps the stateful ones as Flax NNX modules; ``d2ljax.nn.conv`` is
chapter 7's convolution and pooling; ``d2ljax.nn.batch_norm`` is §8.5's batch normalization;
``d2ljax.nn.rnn`` holds chapters 9-10's recurrent cells on ``lax.scan``; ``d2ljax.nn.attention``
chapter 11's attention functions (the NNX layers in ``d2ljax.models.attention`` call them).
``d2ljax.nn.gp`` holds chapter 18's Gaussian-process kernels, posterior and marginal likelihood.
"""

from d2ljax.nn import attention, batch_norm, conv, functional, gp, rnn
from d2ljax.nn.attention import masked_softmax, positional_encoding
from d2ljax.nn.batch_norm import BatchNormScratch
from d2ljax.nn.conv import Conv2D, avg_pool2d, conv2d, corr2d, max_pool2d, pool2d
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
    "attention",
    "gp",
    "masked_softmax",
    "positional_encoding",
    "rnn",
    "BatchNormScratch",
    "Conv2D",
    "Dropout",
    "avg_pool2d",
    "batch_norm",
    "conv",
    "conv2d",
    "corr2d",
    "max_pool2d",
    "pool2d",
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

"""Scratch optimizers and schedules, each written as an ``optax`` transformation or schedule.

Optimizers (chapter 12; each takes the learning rate first, a constant or a schedule, so
``make_optimizer("scratch_<name>", lr, ...)`` can build it): :func:`sgd` (§12.4),
:func:`momentum` (§12.6), :func:`adagrad` (§12.7), :func:`rmsprop` (§12.8), :func:`adadelta`
(§12.9, its learning rate defaults to 1, the book's rate-free method), :func:`adam` (§12.10) and
:func:`yogi` (§12.10.3). Schedules (§12.11): :func:`factor_schedule`,
:func:`multi_factor_schedule`, :func:`cosine_schedule`. Test functions, trajectories, Newton's
method and the critical-point test live in :mod:`d2ljax.optim.landscape`; the minibatch
noise/throughput measurements in :mod:`d2ljax.optim.minibatch`.
"""

from d2ljax.optim.adadelta import AdadeltaState, adadelta
from d2ljax.optim.adagrad import AdagradState, adagrad
from d2ljax.optim.adam import AdamState, adam
from d2ljax.optim.momentum import MomentumState, momentum
from d2ljax.optim.rmsprop import RMSPropState, rmsprop
from d2ljax.optim.schedules import cosine_schedule, factor_schedule, multi_factor_schedule
from d2ljax.optim.sgd import SGDState, sgd
from d2ljax.optim.yogi import YogiState, yogi

__all__ = [
    "AdadeltaState",
    "AdagradState",
    "AdamState",
    "MomentumState",
    "RMSPropState",
    "SGDState",
    "YogiState",
    "adadelta",
    "adagrad",
    "adam",
    "cosine_schedule",
    "factor_schedule",
    "momentum",
    "multi_factor_schedule",
    "rmsprop",
    "sgd",
    "yogi",
]

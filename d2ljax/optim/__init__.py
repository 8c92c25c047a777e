"""Scratch optimizers and schedules, each written as an ``optax`` transformation or schedule."""

from d2ljax.optim.sgd import SGDState, sgd

__all__ = ["SGDState", "sgd"]

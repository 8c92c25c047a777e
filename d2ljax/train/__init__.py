"""The training core: state, pure steps, the ``fit`` loop, checkpoints, losses, optimizers."""

from d2ljax.train.checkpoint import (
    CheckpointDamaged,
    Checkpointer,
    CheckpointError,
    CheckpointMismatch,
    NoIntactCheckpoint,
    load_params,
    save_params,
)
from d2ljax.train.lock import WorkdirLock, WorkdirLocked, lock_workdir
from d2ljax.train.loop import (
    Callback,
    EarlyStopping,
    FitResult,
    TrainingDiverged,
    TrainingInterrupted,
    evaluate,
    fit,
    predict,
    resolve_mesh,
)
from d2ljax.train.losses import get_loss, list_losses, register_loss
from d2ljax.train.optimizer import (
    Optimizer,
    learning_rate,
    make_optimizer,
    make_schedule,
    register_optimizer,
    set_learning_rate,
)
from d2ljax.train.state import TrainState, num_params
from d2ljax.train.steps import eval_step, make_steps, summarize, train_step
from d2ljax.train.task import Task, TaskState

__all__ = [
    "Callback",
    "CheckpointDamaged",
    "CheckpointError",
    "CheckpointMismatch",
    "Checkpointer",
    "EarlyStopping",
    "FitResult",
    "Optimizer",
    "TrainState",
    "eval_step",
    "evaluate",
    "fit",
    "get_loss",
    "list_losses",
    "load_params",
    "learning_rate",
    "make_optimizer",
    "make_schedule",
    "make_steps",
    "NoIntactCheckpoint",
    "predict",
    "num_params",
    "register_loss",
    "register_optimizer",
    "resolve_mesh",
    "save_params",
    "set_learning_rate",
    "summarize",
    "Task",
    "TaskState",
    "train_step",
    "TrainingDiverged",
    "TrainingInterrupted",
    "WorkdirLock",
    "WorkdirLocked",
    "lock_workdir",
]

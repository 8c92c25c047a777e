"""Tasks: one file per kind of training, each a :class:`d2ljax.train.Task` that ``fit`` trains.

- :class:`SupervisedTask` -- one model, one optimizer, a loss ``loss_fn(model, batch)`` (chapters
  3-16: regression, classification, language models, seq2seq, BERT).
- :class:`GANTask` -- a generator and a discriminator, two optimizers (chapter 20).
- :class:`GPTask` -- a Gaussian process's hyperparameters by its marginal likelihood (chapter 18).
- :mod:`d2ljax.tasks.recsys` -- recommender systems' losses (``rating``, ``autorec``; chapter 21).
- :class:`RankingTask` -- ranking: pairwise losses, sampled negatives, Hit@k and AUC (§21.5-21.6).
"""

from d2ljax.tasks.gan import GANState, GANTask
from d2ljax.tasks.gp import GPTask, learn_hyperparameters
from d2ljax.tasks.ranking import RankingTask
from d2ljax.tasks.recsys import rmse
from d2ljax.tasks.supervised import SupervisedTask

__all__ = [
    "GANState",
    "GANTask",
    "GPTask",
    "RankingTask",
    "SupervisedTask",
    "learn_hyperparameters",
    "rmse",
]

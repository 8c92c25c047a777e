"""Personalized ranking from implicit feedback (book §21.5-21.6): pairwise losses, negative
sampling, Hit@k and AUC.

- :func:`bpr_loss` and :func:`hinge_loss`: the book's ``BPRLoss`` (``-log sigmoid(s+ - s-)``)
  and ``HingeLossbRec`` (``max(margin - (s+ - s-), 0)``), per pair.
- :func:`sample_negatives`: for each (user, positive item) an item drawn uniformly from those
  the user has *not* interacted with (the book's ``PRDataset``), on the device.
- :func:`hit_and_auc`: every user's held-out item ranked against all items the user has not
  interacted with in training, as the book's ``evaluate_ranking``/``hit_and_auc`` do (ties in
  item order, like Python's stable sort), for all users in one jitted computation. The book's
  code ranks against ``set(range(num_users))`` where items are meant; this ranks all items.
- :class:`RankingTask`: a model ``score(user_B, item_B) -> [B]`` trained on a pairwise loss
  with fresh negatives each step (drawn from the state's key and step: resumable), and Hit@k /
  AUC reported as host-side epoch metrics on the validation data ``{"user", "item"}`` (each
  user's held-out item).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from d2ljax.tasks.supervised import init_train_state
from d2ljax.train.losses import example_weights
from d2ljax.train.state import TrainState
from d2ljax.train.steps import train_step
from d2ljax.train.task import Task

__all__ = [
    "PAIRWISE_LOSSES",
    "RankingTask",
    "bpr_loss",
    "evaluate_ranking",
    "hinge_loss",
    "hit_and_auc",
    "interaction_matrix",
    "sample_negatives",
    "score_all",
]


def bpr_loss(positive_B: jax.Array, negative_B: jax.Array) -> jax.Array:
    """The book's ``BPRLoss`` per pair: ``-log sigmoid(positive - negative)``."""
    return jax.nn.softplus(negative_B - positive_B)


def hinge_loss(positive_B: jax.Array, negative_B: jax.Array, margin: float = 1.0) -> jax.Array:
    """The book's ``HingeLossbRec`` per pair: ``max(margin - (positive - negative), 0)``."""
    return jnp.maximum(margin - (positive_B - negative_B), 0.0)


PAIRWISE_LOSSES: dict[str, Callable[..., jax.Array]] = {"bpr": bpr_loss, "hinge": hinge_loss}


def interaction_matrix(users, items, num_users: int, num_items: int) -> np.ndarray:
    """``[num_users, num_items]`` bool: True where the user interacted with the item."""
    out = np.zeros((num_users, num_items), bool)
    out[np.asarray(users), np.asarray(items)] = True
    return out


def sample_negatives(
    key: jax.Array, interacted_UI: jax.Array, user_B: jax.Array, *, tries: int = 32
) -> jax.Array:
    """One item per user of ``user_B``, uniform over the items that user has not interacted
    with (``interacted_UI[user]`` False). By rejection: ``tries`` uniform draws per user, the
    first one accepted; in the rare batch where some user's draws are all rejected, every
    user's item is drawn exactly instead (a categorical over the user's candidates)."""
    num_items = interacted_UI.shape[1]
    k_try, k_exact = jax.random.split(key)
    draws_BT = jax.random.randint(k_try, (user_B.shape[0], tries), 0, num_items)
    ok_BT = ~interacted_UI[user_B[:, None], draws_BT]
    first_B = jnp.argmax(ok_BT, axis=1)
    picked_B = jnp.take_along_axis(draws_BT, first_B[:, None], axis=1)[:, 0]

    def exact(_):
        logits_BI = jnp.where(interacted_UI[user_B], -jnp.inf, 0.0)
        return jax.random.categorical(k_exact, logits_BI, axis=-1)

    out_B = jax.lax.cond(ok_BT.any(1).all(), lambda _: picked_B, exact, None)
    return out_B.astype(user_B.dtype)


def score_all(
    model, num_users: int, num_items: int, *, seq_UL: jax.Array | None = None, chunk: int = 64
) -> jax.Array:
    """``[num_users, num_items]``: ``model(user, item)`` for every pair (``model(user,
    seq_UL[user], item)`` for a sequence-aware model), ``chunk`` users at a time
    (``lax.map``); call it inside ``jax.jit``."""
    padded = -(-num_users // chunk) * chunk
    users_NC = jnp.minimum(jnp.arange(padded), num_users - 1).reshape(-1, chunk)
    items = jnp.arange(num_items)

    def block(u_C):
        u_P, i_P = jnp.repeat(u_C, num_items), jnp.tile(items, chunk)
        out_P = model(u_P, i_P) if seq_UL is None else model(u_P, seq_UL[u_P], i_P)
        return out_P.reshape(chunk, num_items)

    return jax.lax.map(block, users_NC).reshape(padded, num_items)[:num_users]


def hit_and_auc(
    scores_UI: jax.Array,
    interacted_UI: jax.Array,
    test_item_U: jax.Array,
    ks: Sequence[int] = (10, 50),
) -> dict[str, jax.Array]:
    """Per user: ``hit@k`` (1.0 if the held-out item ``test_item_U[u]`` is among the top ``k``
    of the user's candidates, the items not interacted with in training) and ``auc`` (``(n - 1
    - rank) / (n - 1)``, ``rank`` its 0-based place among the ``n`` candidates): the book's
    ``hit_and_auc``. Ties rank in item order. A held-out item that is not a candidate scores
    0, as in the book."""
    num_items = scores_UI.shape[1]
    users = jnp.arange(scores_UI.shape[0])
    candidate_UI = ~interacted_UI
    s_U = scores_UI[users, test_item_U]
    item_I = jnp.arange(num_items)
    ahead_UI = (scores_UI > s_U[:, None]) | (
        (scores_UI == s_U[:, None]) & (item_I[None, :] < test_item_U[:, None])
    )
    rank_U = (ahead_UI & candidate_UI).sum(1)
    n_U = candidate_UI.sum(1)
    valid_U = candidate_UI[users, test_item_U]
    out = {
        f"hit@{k}": jnp.where(valid_U, rank_U < k, False).astype(jnp.float32) for k in ks
    }
    auc_U = (n_U - 1 - rank_U) / jnp.maximum(n_U - 1, 1)
    out["auc"] = jnp.where(valid_U, auc_U, 0.0).astype(jnp.float32)
    return out


@functools.partial(jax.jit, static_argnames=("graphdef", "ks"))
def evaluate_ranking(
    graphdef, params, model_state, interacted_UI, test_item_U, ks=(10, 50), seq_UL=None
):
    """Mean ``hit@k`` and ``auc`` over all users of the model ``nnx.merge(graphdef, params,
    model_state)``: :func:`score_all` then :func:`hit_and_auc`, one compiled call (943 users x
    1,682 items with NeuMF: ~65 ms on a 2-core CPU, ``benchmarks/ranking_eval.py``)."""
    model = nnx.merge(graphdef, params, model_state)
    num_users, num_items = interacted_UI.shape
    scores_UI = score_all(model, num_users, num_items, seq_UL=seq_UL)
    return {k: v.mean() for k, v in hit_and_auc(scores_UI, interacted_UI, test_item_U, ks).items()}


class RankingTask(Task):
    """Train ``model`` (``score(user_B, item_B) -> [B]``) with ``optimizer`` on a pairwise
    loss (``"bpr"`` or ``"hinge"`` with ``margin``) over batches ``{"user", "item"}`` of
    observed (positive) pairs; each step draws one negative item per pair from the items that
    user has not interacted with in ``interactions`` (``[num_users, num_items]`` bool, the
    training set's, see :func:`interaction_matrix`).

    ``epoch_metrics(state, data)``: ``data`` is ``{"user", "item"}`` with one held-out item per
    user (the seq-aware test split): mean ``hit@k`` for ``ks`` and ``auc`` over those users.
    A sequence-aware model (Caser, §21.7) is called ``model(user, seq, item)``: its batches and
    ``data`` carry ``"seq"`` too (``[B, L]`` previous items; in ``data`` each user's last L).
    ``model`` is a module or a function ``rngs -> module`` (as :class:`SupervisedTask` takes).
    """

    def __init__(
        self,
        model: nnx.Module | Callable[[nnx.Rngs], nnx.Module],
        optimizer,
        interactions: np.ndarray,
        *,
        loss: str = "bpr",
        margin: float = 1.0,
        ks: Sequence[int] = (10, 50),
    ):
        if loss not in PAIRWISE_LOSSES:
            raise ValueError(f"unknown ranking loss {loss!r}; known: {', '.join(PAIRWISE_LOSSES)}")
        interactions = np.asarray(interactions, bool)
        if interactions.ndim != 2 or (~interactions).sum(1).min() == 0:
            raise ValueError("interactions must be [num_users, num_items], with at least one "
                             "item each user has not interacted with")
        self._model, self.optimizer = model, optimizer
        self.loss, self.margin, self.ks = loss, float(margin), tuple(int(k) for k in ks)
        self.interactions = interactions

    def init(self, rng: jax.Array, spec: Any = None) -> TrainState:
        return init_train_state(self._model, self.optimizer, rng)

    def _pair_loss(self, model, batch):
        if "seq" in batch:  # a sequence-aware model (Caser): the user's previous items too
            pos_B = model(batch["user"], batch["seq"], batch["item"])
            neg_B = model(batch["user"], batch["seq"], batch["negative"])
        else:
            pos_B = model(batch["user"], batch["item"])
            neg_B = model(batch["user"], batch["negative"])
        if self.loss == "hinge":
            l_B = hinge_loss(pos_B, neg_B, self.margin)
        else:
            l_B = bpr_loss(pos_B, neg_B)
        w_B = example_weights(batch, l_B.shape[0])
        total, n = (l_B * w_B).sum(), w_B.sum()
        return total / jnp.maximum(n, 1.0), {"loss": total, "count": n}

    def train_step(self, state, batch):
        key = jax.random.fold_in(jax.random.fold_in(state.rng, state.step), 0x6E6567)
        negative = sample_negatives(key, jnp.asarray(self.interactions), batch["user"])
        return train_step(state, {**batch, "negative": negative}, self._pair_loss)

    def epoch_metrics(self, state, data) -> dict[str, float]:
        users = np.asarray(data["user"])
        test_item = np.zeros(self.interactions.shape[0], np.int32)
        has = np.zeros(self.interactions.shape[0], bool)
        test_item[users], has[users] = np.asarray(data["item"]), True
        if not has.all():
            raise ValueError("the ranking evaluation needs one held-out item for every user")
        seq = None
        if "seq" in data:
            seq = np.zeros((len(has), np.shape(data["seq"])[1]), np.int32)
            seq[users] = np.asarray(data["seq"])
            seq = jnp.asarray(seq)
        out = evaluate_ranking(state.eval_graphdef, state.params, state.model_state,
                               jnp.asarray(self.interactions), jnp.asarray(test_item), self.ks,
                               seq)
        return {k: float(v) for k, v in out.items()}

"""Models built from trained weights: the glue between a saved run and a model constructor.

:func:`load_pretrained_bert` rebuilds the BERT of a ``bert_pretrain`` run (book 1.0 §15.10)
from its ``config.json`` and latest checkpoint, for fine-tuning (§16.7). It sits above
:mod:`d2ljax.models` and :mod:`d2ljax.train`: models know no checkpoints, checkpoints know no
models.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.bert import SMALL_BERT, BERTModel
from d2ljax.train.checkpoint import Checkpointer

__all__ = ["load_pretrained_bert", "pretrained_bert_arch"]


def pretrained_bert_arch(workdir: str | os.PathLike) -> dict:
    """The BERT architecture (``num_hiddens``, ``ffn_num_hiddens``, ``num_heads``, ``num_blks``,
    ``max_len``) of the ``bert_pretrain`` run in ``workdir``, from its ``config.json``."""
    workdir = Path(workdir)
    path = workdir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{workdir} is not a pretraining workdir: it has no config.json (run e.g. "
            f"`d2ljax train bert_pretrain:cpu --workdir {workdir}` first)"
        )
    cfg = json.loads(path.read_text())
    kwargs = dict(cfg.get("model", {}).get("kwargs", {}))
    return {k: kwargs.get(k, SMALL_BERT[k]) for k in SMALL_BERT}


def load_pretrained_bert(
    workdir: str | os.PathLike,
    vocab_size: int,
    *,
    dropout: float = 0.1,
    epoch: int | None = None,
    rngs: nnx.Rngs | None = None,
) -> BERTModel:
    """A :class:`BERTModel` with the parameters of a pretraining run (``d2ljax train
    bert_pretrain --workdir WORKDIR``): its architecture from ``WORKDIR/config.json``, its
    parameters from the checkpoint of ``epoch`` (default: the latest) in
    ``WORKDIR/checkpoints``. ``vocab_size`` must be the pretraining vocabulary's size (rebuild it
    with :func:`d2ljax.data.wikitext.build_wiki_vocab` from the run's ``data.kwargs``);
    ``dropout`` is the fine-tuning dropout (the book's §16.7: 0.1)."""
    workdir = Path(workdir)
    arch = pretrained_bert_arch(workdir)
    bert = BERTModel(vocab_size, dropout=dropout, rngs=rngs or nnx.Rngs(0), **arch)
    params = nnx.state(bert, nnx.Param)
    ckpt_dir = workdir / "checkpoints"
    if not ckpt_dir.is_dir():
        raise FileNotFoundError(f"{workdir} has no checkpoints/ folder: did the pretraining run?")
    with Checkpointer(ckpt_dir) as ckpt:
        epoch = ckpt.latest_epoch() if epoch is None else epoch
        if epoch is None:
            raise FileNotFoundError(f"no checkpoint in {ckpt_dir}")
        restored = _restore_params(ckpt, epoch)
    flat = dict(nnx.to_flat_state(params))
    for path, var in flat.items():
        key = tuple(str(p) for p in path)
        if key not in restored:
            raise ValueError(f"the checkpoint in {ckpt_dir} has no parameter {'/'.join(key)}")
        value = restored[key]
        if tuple(value.shape) != tuple(var.shape):
            raise ValueError(
                f"parameter {'/'.join(key)} is {tuple(value.shape)} in the checkpoint but "
                f"{tuple(var.shape)} here (vocab_size={vocab_size}: is it the pretraining "
                "vocabulary's size?)"
            )
        var[...] = jnp.asarray(value, var.dtype)
    nnx.update(bert, params)
    return bert


def _restore_params(ckpt, epoch: int) -> dict:
    """The ``params`` subtree of a :func:`d2ljax.train.fit` checkpoint, keyed by path tuple."""
    tree = ckpt.restore_raw(epoch)[0]["params"]
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        key = tuple(str(getattr(p, "key", getattr(p, "idx", p))) for p in path)
        if key and key[-1] == "value":  # a Variable saved as {"value": array}
            key = key[:-1]
        out[key] = leaf
    return out

"""Sentences in, sentences out: the course's models applied to raw text.

:func:`translate` (book 1.0 §10.7.6, §10.8) encodes source sentences as the machine-translation
data pipeline does (:mod:`d2ljax.data.translation`) and decodes them with greedy or beam search
(:mod:`d2ljax.models.decoding`). It sits above both layers: the models know no vocabulary
conventions, the data pipeline knows no model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from flax import nnx

from d2ljax.data.translation import BOS, EOS, build_src
from d2ljax.models.decoding import beam_search, greedy_decode, tokens_to_text

__all__ = ["translate"]


def translate(
    model: nnx.Module,
    sentences: Sequence[str],
    src_vocab,
    tgt_vocab,
    num_steps: int,
    beam_size: int = 1,
    alpha: float = 0.75,
) -> list[str]:
    """Translate raw source sentences (§10.7.6): encode them like the training sources
    (:func:`d2ljax.data.translation.build_src`, ``num_steps`` tokens), generate ``num_steps``
    tokens greedily (``beam_size=1``) or by beam search, and return each translation as text
    (the tokens before ``<eos>``, space-separated)."""
    x, x_len = build_src(list(sentences), src_vocab, num_steps)
    bos, eos = tgt_vocab[BOS], tgt_vocab[EOS]
    if beam_size == 1:
        tokens, _ = greedy_decode(model, x, x_len, bos=bos, eos=eos, max_len=num_steps)
    else:
        tokens, _ = beam_search(
            model, x, x_len, bos=bos, eos=eos, max_len=num_steps, beam_size=beam_size, alpha=alpha
        )
    return [tokens_to_text(row, tgt_vocab, EOS) for row in np.asarray(tokens)]

"""Evaluation metrics for generated sequences.

- :func:`bleu` -- BLEU as the book defines it for one predicted and one label sequence (§10.7.6).
"""

from __future__ import annotations

import collections
import math

__all__ = ["bleu"]


def bleu(pred_seq: str, label_seq: str, k: int) -> float:
    """BLEU of a predicted sequence against one label sequence (book §10.7.6, eq. 10.7.4).

    Both are space-separated token strings. With ``p_n`` the clipped ``n``-gram precision (each
    label ``n``-gram can be matched at most as often as it occurs in the label) and ``len`` the
    token counts::

        exp(min(0, 1 - len_label / len_pred)) * prod_{n=1}^{k} p_n ** (1 / 2**n)

    As in the book's code, ``n`` only runs up to ``min(k, len_pred)``: a prediction shorter than
    ``k`` is not scored on ``n``-grams it cannot have (the brevity penalty covers it). An empty
    prediction (``""``) scores 0.

    >>> bleu("A B C D E F", "A B C D E F", k=2)
    1.0
    """
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k (longest n-gram) must be a positive integer, got {k!r}")
    if not isinstance(pred_seq, str) or not isinstance(label_seq, str):
        raise TypeError("bleu takes the predicted and label sequences as space-separated strings")
    pred_tokens, label_tokens = pred_seq.split(), label_seq.split()
    len_pred, len_label = len(pred_tokens), len(label_tokens)
    if len_label == 0:
        raise ValueError("the label sequence is empty")
    if len_pred == 0:
        return 0.0
    score = math.exp(min(0.0, 1.0 - len_label / len_pred))
    for n in range(1, min(k, len_pred) + 1):
        label_counts = collections.Counter(
            tuple(label_tokens[i : i + n]) for i in range(len_label - n + 1)
        )
        matches = 0
        for i in range(len_pred - n + 1):
            gram = tuple(pred_tokens[i : i + n])
            if label_counts[gram] > 0:
                matches += 1
                label_counts[gram] -= 1
        score *= (matches / (len_pred - n + 1)) ** (0.5**n)
    return score

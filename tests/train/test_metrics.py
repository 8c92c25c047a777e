"""§10.7.6 BLEU, on cases worked out by hand from eq. 10.7.4."""

import math

import pytest

from d2ljax.train.metrics import bleu


def test_exact_match_is_one():
    assert bleu("je suis chez moi .", "je suis chez moi .", k=2) == 1.0
    assert bleu("va !", "va !", k=4) == 1.0  # n only runs to len_pred = 2


def test_book_example_precisions():
    # Label A B C D E F, prediction A B B C D: p1 = 4/5, p2 = 3/4, p3 = 1/3, p4 = 0 (§10.7.6);
    # brevity penalty exp(1 - 6/5).
    bp = math.exp(1 - 6 / 5)
    pred, label = "A B B C D", "A B C D E F"
    assert bleu(pred, label, k=1) == pytest.approx(bp * (4 / 5) ** 0.5)
    assert bleu(pred, label, k=2) == pytest.approx(bp * (4 / 5) ** 0.5 * (3 / 4) ** 0.25)
    k3 = bp * (4 / 5) ** 0.5 * (3 / 4) ** 0.25 * (1 / 3) ** 0.125
    assert bleu(pred, label, k=3) == pytest.approx(k3)
    assert bleu(pred, label, k=4) == 0.0


def test_short_prediction_is_penalised():
    # The book: label A..F, prediction A B, k = 2: p1 = p2 = 1, penalty exp(1 - 6/2) ~ 0.14.
    assert bleu("A B", "A B C D E F", k=2) == pytest.approx(math.exp(-2))


def test_repeated_ngrams_are_clipped_and_longer_predictions_not_penalised():
    # "il il il" vs "il est calme": one "il" matches, p1 = 1/3; no bigram matches.
    assert bleu("il il il", "il est calme", k=1) == pytest.approx((1 / 3) ** 0.5)
    assert bleu("il il il", "il est calme", k=2) == 0.0
    # A longer prediction: no brevity penalty; p1 = 3/4, p2 = 2/3.
    assert bleu("il est calme !", "il est calme", k=2) == pytest.approx(
        (3 / 4) ** 0.5 * (2 / 3) ** 0.25
    )


def test_translations_of_the_book():
    assert bleu("il est mouillé .", "il est calme .", k=2) == pytest.approx(
        (3 / 4) ** 0.5 * (1 / 3) ** 0.25
    )
    assert bleu("j'ai perdu .", "j'ai perdu .", k=2) == 1.0


def test_empty_prediction_and_bad_arguments():
    assert bleu("", "va !", k=2) == 0.0
    with pytest.raises(ValueError, match="label sequence is empty"):
        bleu("va !", "", k=2)
    with pytest.raises(ValueError, match="positive integer"):
        bleu("va !", "va !", k=0)
    with pytest.raises(TypeError):
        bleu(["va", "!"], "va !", k=2)

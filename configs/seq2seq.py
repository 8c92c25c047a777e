"""RNN encoder-decoder (GRU) for English-French translation (book §10.7).

    d2ljax train seq2seq

Book settings (1.0 edition, §10.7.3 "Training"): ``MTFraEng(batch_size=128)`` (the first 512
pairs of fra.txt for training, the next 128 for validation, 9 tokens per sequence),
``Seq2SeqEncoder``/``Seq2SeqDecoder`` with ``embed_size=256, num_hiddens=256, num_layers=2,
dropout=0.2``, ``Seq2Seq(lr=0.005)`` (Adam), ``Trainer(max_epochs=30, gradient_clip_val=1)``;
the loss ignores padding. Small enough to run as it is on a CPU.

The book then translates ``go . / i lost . / he's calm . / i'm home .`` greedily and reports
BLEU (k=2) against ``va ! / j'ai perdu . / il est calme . / je suis chez moi .``
(``d2ljax.models.decoding.translate``, ``d2ljax.train.metrics.bleu``; §10.8 beam search with
``beam_size=2..4``; the notebook ``ch10_5_machine_translation`` prints the table).

Measured results, with their commands: ``benchmarks/RESULTS.md``.
"""

from d2ljax.configs.common import fra_eng_translation


def get_config(variant=None):
    return fra_eng_translation(
        description=__doc__.splitlines()[0],
        model="seq2seq",
        model_kwargs=dict(embed_size=256, num_hiddens=256, num_layers=2, dropout=0.2),
        lr=0.005,
        variant=variant,
    )

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
``beam_size=2..4``; the notebook ``ch10_machine_translation`` prints the table).

Measured (CPU, 2 shared cores, seed 0; 1,935,062 parameters, the PyTorch model's count; 30
epochs in 93 s wall): train loss 0.204 (perplexity 1.23), val loss 3.67 (perplexity 39, token
accuracy 0.565; the val loss is lowest, 2.81, at epoch 6 and rises after: 512 pairs are
memorised). Greedy: ``va !``, ``j'ai perdu .``, ``<unk> .``, ``je suis chez moi .`` -- BLEU 1, 1,
0, 1 (seed 1: ``il est mouillé .`` for the third, BLEU 0.658). Beam sizes 2, 3, 4 give the same
four translations; on the 128 validation pairs beam 4 changes 14 translations and raises the
mean normalised log-probability from -0.394 to -0.382, with mean BLEU 0.273 (greedy) vs 0.270.
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

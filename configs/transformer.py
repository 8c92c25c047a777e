"""Transformer encoder-decoder for English-French translation (book §11.7.6).

    d2ljax train transformer

Book settings (1.0 edition), §11.7.6: ``MTFraEng(batch_size=128)`` (the first 512 pairs for
training, the next 128 for validation, 9 tokens per sequence), ``TransformerEncoder`` and
``TransformerDecoder`` with ``num_hiddens=256, ffn_num_hiddens=64, num_heads=4, num_blks=2,
dropout=0.2``, ``Seq2Seq(lr=0.0015)`` (Adam), ``Trainer(max_epochs=30, gradient_clip_val=1)``;
the loss ignores padding. Small enough to run as it is on a CPU.

The book then translates ``go . / i lost . / he's calm . / i'm home .`` greedily and reports
BLEU (k=2) against ``va ! / j'ai perdu . / il est calme . / je suis chez moi .``.

Measured results, with their commands: ``benchmarks/RESULTS.md``.
"""

from d2ljax.configs.common import fra_eng_translation


def get_config(variant=None):
    return fra_eng_translation(
        description=__doc__.splitlines()[0],
        model="transformer",
        model_kwargs=dict(
            num_hiddens=256, ffn_num_hiddens=64, num_heads=4, num_blks=2, dropout=0.2
        ),
        lr=0.0015,
        variant=variant,
    )

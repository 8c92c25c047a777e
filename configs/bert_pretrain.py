"""BERT pretraining (book 1.0 §15.10): small BERT, masked LM + next sentence prediction, WikiText-2.

    d2ljax train bert_pretrain       # the book: wiki.train.tokens (downloads wikitext-2-v1.zip)
    d2ljax train bert_pretrain:cpu   # offline: wiki.valid.tokens, the course copy's only file

Book settings: max_len 64, batch 512, BERT with 128 hidden, FFN 256, 2 heads, 2 blocks, dropout
0.2, Adam lr 0.01, 50 steps; loss = MLM cross-entropy (mean over the real predictions) + NSP
cross-entropy. The book counts steps, the trainer counts epochs: the default setting trains one
epoch over the first 50 * 512 = 25,600 examples (``data.limit``), i.e. exactly 50 steps (not
run here: wiki.train.tokens is not in the offline course data).

``cpu``: ``split="valid"`` (3,760 lines -> 4,208 train / 417 val examples with seed 0,
vocabulary 4,008), 6 epochs of 9 steps = 54 steps, about the book's 50. Measured results,
with their commands: ``benchmarks/RESULTS.md``.
``smoke``: 4 steps of 64 examples.

The run's workdir (default ``runs/bert_pretrain[-cpu]``) is what ``bert_snli`` fine-tunes
(``data.kwargs.pretrained``). The held-out "val" split is evaluated after every epoch
(``val_mlm_loss``, ``val_nsp_loss``, ``val_nsp_accuracy``).
"""

from d2ljax.configs.common import experiment

BOOK_STEPS, BOOK_BATCH = 50, 512


def get_config(variant=None):
    cfg = experiment(
        description=__doc__.splitlines()[0],
        model="bert",
        model_kwargs=dict(
            num_hiddens=128, ffn_num_hiddens=256, num_heads=2, num_blks=2, dropout=0.2
        ),
        dataset="wikitext2_bert",
        data_kwargs=dict(max_len=64, split="train", seed=0, val_fraction=0.1),
        batch_size=BOOK_BATCH,
        loss="bert_pretrain",
        optimizer="adam",
        lr=0.01,
        epochs=1,
        val_split="val",
        variant=variant,
        smoke_limit=256,
        cpu={"data.kwargs.split": "valid", "epochs": 6},
    )
    if variant in (None, "", "default"):
        cfg.data.limit = BOOK_STEPS * BOOK_BATCH  # one epoch = the book's 50 steps
    if variant == "smoke":
        cfg.data.batch_size = 64  # 4 small steps: seconds, for notebooks and tests
    return cfg

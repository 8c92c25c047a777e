"""BERT fine-tuned on SNLI (book 1.0 §16.7): the pretrained small BERT + Linear(3) on <cls>.

    d2ljax train bert_pretrain --workdir runs/bert_pretrain     # first: pretrain (§15.10)
    d2ljax train bert_snli                                      # fine-tunes runs/bert_pretrain
    d2ljax train bert_snli --set data.kwargs.pretrained=DIR     # another pretraining run
    d2ljax train bert_snli:smoke                                # the 9-example SNLI fixture

Book settings: max_len 128, batch 512, Adam lr 1e-4, 5 epochs, dropout 0.1, on the full SNLI
(550,152 train / 9,824 test pairs), starting from the authors' pretrained ``bert.small`` (256
hidden, FFN 512, 4 heads, 2 blocks, pretrained on WikiText-103); the book reaches test accuracy
~0.78 (PyTorch). Here the starting point is *our* pretraining run: ``data.kwargs.pretrained`` is
its workdir; the loader rebuilds that run's WikiText-2 vocabulary from its ``config.json`` and
:class:`~d2ljax.models.bert.BERTClassifier` loads the encoder and <cls> hidden layer from its
latest checkpoint (architecture from its config). ``pretrained=None`` trains a BERT from
scratch on SNLI's own vocabulary.

``cpu``: fine-tunes ``runs/bert_pretrain-cpu`` (the offline pretraining run) for 1 epoch on the
first 20,000 training pairs (needs the real SNLI: snli_1.0.zip). Not measured here: the full
SNLI is not in the offline course data.
``smoke``: the SNLI fixture (``snli_1.0_sample``: the first 9 dev pairs for training, the first
9 test pairs for validation), from scratch; add ``--set data.kwargs.pretrained=DIR`` to start
from a pretraining run (e.g. ``d2ljax train bert_pretrain:smoke --workdir DIR`` first).
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    cfg = experiment(
        description=__doc__.splitlines()[0],
        model="bert_classifier",
        model_kwargs=dict(dropout=0.1, num_classes=3),
        dataset="snli_bert",
        data_kwargs=dict(max_len=128, pretrained="runs/bert_pretrain"),
        batch_size=512,
        loss="bert_classification",
        optimizer="adam",
        lr=1e-4,
        epochs=5,
        val_split="val",
        variant=variant,
        cpu={"data.kwargs.pretrained": "runs/bert_pretrain-cpu", "data.limit": 20000, "epochs": 1},
    )
    if variant == "smoke":
        cfg.data.kwargs = type(cfg)(
            max_len=128,
            pretrained=None,
            folder="snli_1.0_sample",
            train_split="dev",
            val_split="test",
        )
        cfg.data.batch_size = 16  # the fixture's pairs in one batch
    return cfg

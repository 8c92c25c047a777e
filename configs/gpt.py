"""Decoder-only GPT-style character LM (book §11.9) on The Time Machine, vs the §10.1 LSTM.

    d2ljax train gpt
    d2ljax train gpt:smoke      # 1 epoch on 2048 windows, for tests and notebooks

The data are the §10.1 LSTM's: ``TimeMachine(num_steps=32)``, 10000 training and 5000
validation character windows, vocabulary 28. The model is sized to the book's LSTM LM
(``configs/lstm.py``: LSTM 28 -> 32 hidden + dense 32 -> 28, 8,732 parameters): width 32,
4 heads, 1 pre-norm causal block with an MLP of 32, learned positions (32 x 32), output layer
tied to the embedding, no dropout: 8,348 parameters. Adam lr 1e-2, 50 warm-up steps, cosine to
1e-4 over the 20 epochs (800 steps at batch 256), global-norm clipping at 1.

Measured results, with their commands: ``benchmarks/RESULTS.md``.
"""

import math

from d2ljax.configs.common import experiment

NUM_TRAIN = 10000
BATCH_SIZE = 256
EPOCHS = 20


def get_config(variant=None):
    steps = math.ceil(NUM_TRAIN / BATCH_SIZE) * EPOCHS
    cfg = experiment(
        description=__doc__.splitlines()[0],
        model="gpt",
        model_kwargs=dict(
            num_hiddens=32,
            num_heads=4,
            num_blks=1,
            mlp_num_hiddens=32,
            max_len=32,
            dropout=0.0,
            positions="learned",
            tie_weights=True,
        ),
        dataset="timemachine",
        data_kwargs=dict(num_steps=32, num_train=NUM_TRAIN, num_val=5000),
        loss="lm",
        val_split="val",
        batch_size=BATCH_SIZE,
        optimizer="adam",
        lr=1e-2,
        grad_clip=1.0,
        schedule=dict(name="cosine", warmup_steps=50, decay_steps=steps, final_lr=1e-4),
        epochs=EPOCHS,
        variant=variant,
    )
    if variant == "smoke":  # 2048 windows, 1 epoch of 8 steps: warm up 2, decay over the rest
        cfg.optimizer.schedule = dict(name="cosine", warmup_steps=2, decay_steps=8, final_lr=1e-4)
    return cfg

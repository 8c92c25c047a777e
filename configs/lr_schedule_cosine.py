"""Warm-up + cosine learning-rate schedule (book §12.11.3.3-4) on the MLP, Fashion-MNIST.

    d2ljax train lr_schedule_cosine
    d2ljax train lr_schedule_cosine --set optimizer.schedule=none        # constant lr 0.3

The book's §12.11 schedule, ``CosineScheduler(max_update=20, base_lr=0.3, final_lr=0.01,
warmup_steps=5)`` in epochs over 30 epochs, applied per *step* here: a linear warm-up from 0 to
0.3 over 5 epochs (5 x 235 steps at batch 256), a cosine decay to 0.01 at epoch 20 (4700 steps),
then 0.01 to the end. It is optax's ``warmup_cosine_decay_schedule`` (``make_schedule``'s
``cosine``), which equals ``d2ljax.optim.cosine_schedule(0.3, 4700, 0.01, 1175)``. Model: the
concise MLP (one hidden layer of 256 ReLU units, §5.2) with SGD, batch 256 (the book uses a LeNet
variant; the schedule is the lesson).

Measured results, with their commands: ``benchmarks/RESULTS.md``.
"""

from d2ljax.configs.common import experiment

STEPS_PER_EPOCH = 235  # ceil(60000 / 256)


def get_config(variant=None):
    cfg = experiment(
        description=__doc__.splitlines()[0],
        model="mlp",
        model_kwargs=dict(num_hiddens=256),
        dataset="fashion_mnist",
        batch_size=256,
        lr=0.3,
        epochs=30,
        schedule=dict(
            name="cosine",
            warmup_steps=5 * STEPS_PER_EPOCH,
            decay_steps=20 * STEPS_PER_EPOCH,
            final_lr=0.01,
            init_lr=0.0,
        ),
        variant=variant,
    )
    if variant == "smoke":  # 1 epoch of 8 steps: warm up for 2, decay over the rest
        cfg.optimizer.schedule = dict(
            name="cosine", warmup_steps=2, decay_steps=8, final_lr=0.01, init_lr=0.0
        )
    return cfg

"""Deep GRU language model (book §10.3.2): two stacked nnx.GRUCell layers.

    d2ljax train deep_gru

Book settings (1.0 edition), §10.3: ``GRU(num_hiddens=32, num_layers=2)``, ``RNNLM(lr=2)``,
``Trainer(max_epochs=100, gradient_clip_val=1)``: ``TimeMachine(batch_size=1024, num_steps=32)``
(10000 training and 5000 validation subsequences), SGD, global-norm gradient clipping at 1, hidden
state zero at the start of every batch. They run as they are on a CPU.

Measured results, with their commands: ``benchmarks/RESULTS.md``.
"""

from d2ljax.configs.common import timemachine_lm


def get_config(variant=None):
    return timemachine_lm(
        description=__doc__.splitlines()[0],
        model="gru_lm",
        lr=2,
        epochs=100,
        num_layers=2,
        variant=variant,
    )

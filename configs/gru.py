"""GRU language model, concise (book §10.2.5): nnx.GRUCell + nnx.RNN.

    d2ljax train gru

Book settings (1.0 edition), §10.2.5: ``GRU(num_hiddens=32)``, ``RNNLM(lr=4)``, the §10.2.4 trainer
(``max_epochs=50, gradient_clip_val=1``): ``TimeMachine(batch_size=1024, num_steps=32)`` (10000
training and 5000 validation subsequences), SGD, global-norm gradient clipping at 1, hidden state
zero at the start of every batch. They run as they are on a CPU.

Measured results, with their commands: ``benchmarks/RESULTS.md``.
"""

from d2ljax.configs.common import timemachine_lm


def get_config(variant=None):
    return timemachine_lm(
        description=__doc__.splitlines()[0],
        model="gru_lm",
        lr=4,
        epochs=50,
        variant=variant,
    )

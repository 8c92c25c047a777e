"""RNN language model, concise (book §9.6): nnx.SimpleCell + nnx.RNN, nnx.Linear output.

    d2ljax train rnn

Book settings (1.0 edition), §9.6.2: ``RNN(num_hiddens=32)``, ``RNNLM(lr=1)``, the §9.5 trainer
(``max_epochs=100, gradient_clip_val=1``): ``TimeMachine(batch_size=1024, num_steps=32)`` (10000
training and 5000 validation subsequences), SGD, global-norm gradient clipping at 1, hidden state
zero at the start of every batch. They run as they are on a CPU.

Measured results, with their commands: ``benchmarks/RESULTS.md``.
"""

from d2ljax.configs.common import timemachine_lm


def get_config(variant=None):
    return timemachine_lm(
        description=__doc__.splitlines()[0],
        model="rnn_lm",
        lr=1,
        epochs=100,
        variant=variant,
    )

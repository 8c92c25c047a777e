"""LSTM language model from scratch (book §10.1.2) on The Time Machine.

    d2ljax train lstm_scratch

Book settings (1.0 edition), §10.1.2.2: ``LSTMScratch(num_hiddens=32)``, ``RNNLMScratch(lr=4)``,
``Trainer(max_epochs=50, gradient_clip_val=1)``: ``TimeMachine(batch_size=1024, num_steps=32)``
(10000 training and 5000 validation subsequences), SGD, global-norm gradient clipping at 1, hidden
state zero at the start of every batch. They run as they are on a CPU.

Measured results, with their commands: ``benchmarks/RESULTS.md``.
"""

from d2ljax.configs.common import timemachine_lm


def get_config(variant=None):
    return timemachine_lm(
        description=__doc__.splitlines()[0],
        model="lstm_lm_scratch",
        lr=4,
        epochs=50,
        variant=variant,
    )

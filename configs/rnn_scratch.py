"""RNN language model from scratch (book §9.5) on The Time Machine, characters.

    d2ljax train rnn_scratch

Book settings (1.0 edition), §9.5.4: ``RNNScratch(num_hiddens=32)``, ``RNNLMScratch(lr=1)``,
``Trainer(max_epochs=100, gradient_clip_val=1)``: ``TimeMachine(batch_size=1024, num_steps=32)``
(10000 training and 5000 validation subsequences), SGD, global-norm gradient clipping at 1, hidden
state zero at the start of every batch. They run as they are on a CPU.

Measured results, with their commands: ``benchmarks/RESULTS.md``.
"""

from d2ljax.configs.common import timemachine_lm


def get_config(variant=None):
    return timemachine_lm(
        description=__doc__.splitlines()[0],
        model="rnn_lm_scratch",
        lr=1,
        epochs=100,
        variant=variant,
    )

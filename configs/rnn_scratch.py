"""RNN language model from scratch (book §9.5) on The Time Machine, characters.

    d2ljax train rnn_scratch

Book settings (1.0 edition), §9.5.4: ``RNNScratch(num_hiddens=32)``, ``RNNLMScratch(lr=1)``,
``Trainer(max_epochs=100, gradient_clip_val=1)``: ``TimeMachine(batch_size=1024, num_steps=32)``
(10000 training and 5000 validation subsequences), SGD, global-norm gradient clipping at 1, hidden
state zero at the start of every batch. They run as they are on a CPU.

Measured on a shared 2-core CPU (load ~15; ``nice -n 5 d2ljax train rnn_scratch --no-progress``):
val perplexity 7.30 after 100 epochs (lowest 7.19 at epoch 98; train 6.12); 49 s in all, median
epoch 0.31 s (train + val), i.e. 1038k training tokens/s. ``predict(model, 'it has', 20, vocab)``:
'it has it the that and the'. Compiled train step alone (B=1024, T=32, fastest of 15): 19 ms, 1753k
tokens/s.
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

"""LSTM language model, concise (book §10.1.3): nnx.LSTMCell + nnx.RNN.

    d2ljax train lstm

Book settings (1.0 edition), §10.1.3: ``LSTM(num_hiddens=32)``, ``RNNLM(lr=4)``, the §10.1.2
trainer (``max_epochs=50, gradient_clip_val=1``): ``TimeMachine(batch_size=1024, num_steps=32)``
(10000 training and 5000 validation subsequences), SGD, global-norm gradient clipping at 1, hidden
state zero at the start of every batch. They run as they are on a CPU.

Measured on a shared 2-core CPU (load ~15; ``nice -n 5 d2ljax train lstm --no-progress``): val
perplexity 6.75 after 50 epochs (lowest 6.52 at epoch 48; train 5.32); 162 s in all, median epoch
2.68 s (train + val), i.e. 119k training tokens/s. ``predict(model, 'it has', 20, vocab)``: 'it has
in the time the tim'. Compiled train step alone (B=1024, T=32, fastest of 15): 120 ms, 274k
tokens/s. Lower than the plain RNN's 7.39 after 100 epochs, in half the epochs.
"""

from d2ljax.configs.common import timemachine_lm


def get_config(variant=None):
    return timemachine_lm(
        description=__doc__.splitlines()[0],
        model="lstm_lm",
        lr=4,
        epochs=50,
        variant=variant,
    )

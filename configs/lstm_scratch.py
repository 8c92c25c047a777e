"""LSTM language model from scratch (book §10.1.2) on The Time Machine.

    d2ljax train lstm_scratch

Book settings (1.0 edition), §10.1.2.2: ``LSTMScratch(num_hiddens=32)``, ``RNNLMScratch(lr=4)``,
``Trainer(max_epochs=50, gradient_clip_val=1)``: ``TimeMachine(batch_size=1024, num_steps=32)``
(10000 training and 5000 validation subsequences), SGD, global-norm gradient clipping at 1, hidden
state zero at the start of every batch. They run as they are on a CPU.

Measured on a shared 2-core CPU (load ~15; ``nice -n 5 d2ljax train lstm_scratch --no-progress``):
val perplexity 7.17 after 50 epochs (lowest 7.16 at epoch 48; train 6.66); 145 s in all, median
epoch 2.37 s (train + val), i.e. 135k training tokens/s. ``predict(model, 'it has', 20, vocab)``:
'it has the time time time '. Compiled train step alone (B=1024, T=32, fastest of 15): 120 ms, 273k
tokens/s. Only just below the plain RNN's 7.30 (100 epochs), in half the epochs; still falling at
epoch 50.
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

"""RNN language model, concise (book §9.6): nnx.SimpleCell + nnx.RNN, nnx.Linear output.

    d2ljax train rnn

Book settings (1.0 edition), §9.6.2: ``RNN(num_hiddens=32)``, ``RNNLM(lr=1)``, the §9.5 trainer
(``max_epochs=100, gradient_clip_val=1``): ``TimeMachine(batch_size=1024, num_steps=32)`` (10000
training and 5000 validation subsequences), SGD, global-norm gradient clipping at 1, hidden state
zero at the start of every batch. They run as they are on a CPU.

Measured on a shared 2-core CPU (load ~15; ``nice -n 5 d2ljax train rnn --no-progress``): val
perplexity 7.39 after 100 epochs (lowest 7.13 at epoch 95; train 5.74); 125 s in all, median epoch
0.94 s (train + val), i.e. 339k training tokens/s. ``predict(model, 'it has', 20, vocab)``: 'it has
and the that of the'. Compiled train step alone (B=1024, T=32, fastest of 15): 18 ms, 1779k
tokens/s. Same function as the scratch model (tests/models/test_rnn.py), Flax's default init.
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

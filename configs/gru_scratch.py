"""GRU language model from scratch (book §10.2.4) on The Time Machine.

    d2ljax train gru_scratch

Book settings (1.0 edition), §10.2.4.3: ``GRUScratch(num_hiddens=32)``, ``RNNLMScratch(lr=4)``,
``Trainer(max_epochs=50, gradient_clip_val=1)``: ``TimeMachine(batch_size=1024, num_steps=32)``
(10000 training and 5000 validation subsequences), SGD, global-norm gradient clipping at 1, hidden
state zero at the start of every batch. They run as they are on a CPU.

Measured on a shared 2-core CPU (load ~15; ``nice -n 5 d2ljax train gru_scratch --no-progress``):
val perplexity 6.74 after 50 epochs (lowest 6.74 at epoch 50; train 5.77); 135 s in all, median
epoch 1.70 s (train + val), i.e. 188k training tokens/s. ``predict(model, 'it has', 20, vocab)``:
'it has i the the the the t'. Compiled train step alone (B=1024, T=32, fastest of 15): 88 ms, 373k
tokens/s. Lower than the plain RNN's 7.30 after 100 epochs, in half the epochs.
"""

from d2ljax.configs.common import timemachine_lm


def get_config(variant=None):
    return timemachine_lm(
        description=__doc__.splitlines()[0],
        model="gru_lm_scratch",
        lr=4,
        epochs=50,
        variant=variant,
    )

"""Deep GRU language model (book §10.3.2): two stacked nnx.GRUCell layers.

    d2ljax train deep_gru

Book settings (1.0 edition), §10.3: ``GRU(num_hiddens=32, num_layers=2)``, ``RNNLM(lr=2)``,
``Trainer(max_epochs=100, gradient_clip_val=1)``: ``TimeMachine(batch_size=1024, num_steps=32)``
(10000 training and 5000 validation subsequences), SGD, global-norm gradient clipping at 1, hidden
state zero at the start of every batch. They run as they are on a CPU.

Measured on a shared 2-core CPU (load ~15; ``nice -n 5 d2ljax train deep_gru --no-progress``): val
perplexity 6.75 after 100 epochs (lowest 6.21 at epoch 70; train 3.77); 448 s in all, median epoch
3.74 s (train + val), i.e. 86k training tokens/s. ``predict(model, 'it has', 20, vocab)``: 'it has
to the time travell'. Compiled train step alone (B=1024, T=32, fastest of 15): 212 ms, 155k
tokens/s. The two-layer GRU overfits in the second half (train 3.77 vs val 6.75): its best val
perplexity, 6.21 at epoch 70, is the lowest of all the chapter 9/10 models here.
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

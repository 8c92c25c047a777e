"""word2vec skip-gram with negative sampling on PTB (book §15.4): embed 100, Adam 0.002, 5 epochs.

    d2ljax train word2vec_ptb        # the book's setting
    d2ljax train word2vec_ptb:cpu    # the same setting (it fits a laptop CPU), named for symmetry
    d2ljax train word2vec_ptb:smoke  # seconds: 1 epoch on 2,048 centre words

Book settings (§15.3-§15.4): PTB training file, vocabulary of the tokens seen at least 10 times
(6,719), subsampling with t = 1e-4, context windows drawn from 1..5, 5 noise words per context
word from count ** 0.75, batches of 512 centre words padded to 60 contexts-and-noise words;
:class:`~d2ljax.models.word2vec.SkipGram` with two 6,719 x 100 embeddings (1,343,800
parameters, Xavier-uniform), the masked sigmoid BCE (loss ``word2vec``), Adam with learning
rate 0.002, 5 epochs. The book's PyTorch run prints loss 0.410 (its running mean over all 5
epochs). The data is drawn once from the seed (``data.kwargs.seed``) and shuffled every epoch.

The trained vectors are the model's ``word_vectors`` (the centre embedding);
``d2ljax.data.embeddings.get_similar_tokens`` gives a word's nearest neighbours by cosine
(the book queries "chip"). Measured results, with their commands: ``benchmarks/RESULTS.md``.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        model="skip_gram",
        model_kwargs=dict(embed_size=100),
        dataset="ptb_word2vec",
        data_kwargs=dict(max_window_size=5, num_noise_words=5, min_freq=10, seed=0),
        batch_size=512,
        loss="word2vec",
        optimizer="adam",
        lr=0.002,
        epochs=5,
        val_split=None,
        variant=variant,
    )

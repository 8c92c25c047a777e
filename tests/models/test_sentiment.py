"""The §16.2 BiRNN sentiment model: the book's parameter count, a frozen GloVe embedding that
training leaves untouched, and the IMDb loader on the 40 real reviews of the offline sample
(which it overfits; 20 test reviews are too few for an accuracy figure)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from d2ljax.data import hub
from d2ljax.models import get_model
from d2ljax.models.sentiment import BiRNN


def num_params(model) -> int:
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def test_birnn_parameter_count_and_shapes():
    # the book's net on the full IMDb vocabulary (49,346 tokens): 5,338,602 parameters in
    # PyTorch, whose nn.LSTM has two bias vectors per gate set (Flax one: 4 * 100 fewer for each
    # of the 2 layers x 2 directions)
    model = get_model("birnn_sentiment", vocab_size=49346, embed_size=100, num_hiddens=100,
                      num_layers=2, rngs=nnx.Rngs(0))
    assert num_params(model) == 5_338_602 - 2 * 2 * 4 * 100
    assert model(jnp.zeros((2, 6), jnp.int32)).shape == (2, 2)
    glove = np.random.default_rng(0).normal(size=(30, 8)).astype(np.float32)
    frozen = BiRNN(30, 8, 16, 2, embedding=glove, freeze_embedding=True, rngs=nnx.Rngs(0))
    # only the LSTM and the decoder train: 4 * (8*16 + 16*16 + 16) * 2 + 4 * (32*16 + 16*16 + 16)
    # * 2 + 64 * 2 + 2
    assert num_params(frozen) == 3200 + 6272 + 130
    np.testing.assert_array_equal(frozen.embedding[...], glove)
    with pytest.raises(ValueError, match="embedding has shape"):
        BiRNN(31, 8, rngs=nnx.Rngs(0), embedding=glove)


@pytest.fixture(scope="module")
def tiny_imdb(shared_data):
    from d2ljax.data.imdb import load_imdb

    try:
        return load_imdb(source="tiny", pretrained="glove.6b.50d")
    except hub.DataNotFoundError as e:
        pytest.skip(f"the IMDb sample or GloVe 6B 50d is not available: {e}")


def test_imdb_tiny_sample_is_read_as_the_book_does(tiny_imdb):
    from d2ljax.data.embeddings import load_glove

    train, test, info = tiny_imdb["train"], tiny_imdb["test"], tiny_imdb["_info"]
    assert train["x"].shape == test["x"].shape == (20, 500)
    np.testing.assert_array_equal(train["y"], [1] * 10 + [0] * 10)  # pos first, as the book
    vocab = info["vocab"]
    assert "<pad>" in vocab and info["vocab_size"] == len(vocab)
    assert (train["x"] == vocab["<pad>"]).any(1).sum() > 0  # short reviews are padded
    glove = load_glove("glove.6b.50d")
    np.testing.assert_array_equal(info["embedding"][vocab["movie"]], glove["movie"])
    assert not info["embedding"][vocab["<pad>"]].any()  # unknown to GloVe: zero


@pytest.mark.slow
def test_birnn_with_frozen_glove_overfits_the_sample(tiny_imdb):
    """The book's model (2 x 100 bidirectional LSTM, Adam 0.01) on the first 50 tokens of each
    review (500 take 10 times longer) with frozen GloVe 6B 50d fits the 20 training reviews."""
    from d2ljax.data import ArrayLoader
    from d2ljax.data.imdb import load_imdb
    from d2ljax.tasks import SupervisedTask
    from d2ljax.train import fit, make_optimizer

    tiny_imdb = load_imdb(num_steps=50, source="tiny", pretrained="glove.6b.50d")
    info = tiny_imdb["_info"]
    model = BiRNN(info["vocab_size"], 50, 100, 2, embedding=info["embedding"],
                  freeze_embedding=True, rngs=nnx.Rngs(0))
    loader = ArrayLoader(tiny_imdb["train"], 64, seed=0, on_device=True)
    val = ArrayLoader(tiny_imdb["test"], 64, shuffle=False, on_device=True)
    task = SupervisedTask(model, make_optimizer("adam", 0.01), "classification")
    res = fit(task, loader, val_data=val, epochs=EPOCHS, progress=False)
    acc = res.history["train_accuracy"]
    assert acc[0] <= 0.75 and acc[-1] == 1.0
    np.testing.assert_array_equal(res.model.embedding[...], info["embedding"])  # frozen
    assert np.isfinite(res.history["val_accuracy"][-1])


EPOCHS = 40


@pytest.mark.slow
def test_sentiment_birnn_config_runs_offline(shared_data, tmp_path):
    """``d2ljax train sentiment_birnn:smoke`` (the offline sample, GloVe 50d frozen), shortened to
    50 tokens a review: the config builds the book's model with the loader's GloVe rows."""
    from d2ljax.cli import load_config
    from d2ljax.config import apply_overrides
    from d2ljax.experiment import run

    cfg = apply_overrides(load_config("sentiment_birnn:smoke"), ["data.kwargs.num_steps=50"])
    try:
        res = run(cfg, tmp_path, progress=False)
    except hub.DataNotFoundError as e:
        pytest.skip(f"the IMDb sample or GloVe 6B 50d is not available: {e}")
    assert res.history["epoch"][-1] == 1
    assert res.model.embedding[...].shape[1] == 50
    assert np.isfinite(res.history["val_accuracy"][-1])

"""The skip-gram model and its loss (book §15.4): shapes and parameter count, the masked sigmoid
BCE against the book's numbers, and the config ``word2vec_ptb`` trained at the book's setting
on the real PTB (loss and the neighbours of "chip")."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from d2ljax.models import get_model
from d2ljax.models.word2vec import SkipGram, skip_gram
from d2ljax.train.losses import get_loss, masked_sigmoid_bce


def num_params(model) -> int:
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def test_skip_gram_shapes_and_parameter_count():
    # the book's toy check: embed = nn.Embedding(20, 4); skip_gram(ones(2, 1), ones(2, 4)) -> 2x1x4
    embed = nnx.Embed(20, 4, rngs=nnx.Rngs(0))
    assert embed.embedding.shape == (20, 4)
    out = skip_gram(jnp.ones((2, 1), jnp.int32), jnp.ones((2, 4), jnp.int32), embed, embed)
    assert out.shape == (2, 1, 4)
    model = get_model("skip_gram", vocab_size=6719, embed_size=100, rngs=nnx.Rngs(0))
    assert isinstance(model, SkipGram)
    assert num_params(model) == 1_343_800  # the book's net: 2 x nn.Embedding(6719, 100)
    assert model(jnp.zeros((512, 1), jnp.int32), jnp.zeros((512, 60), jnp.int32)).shape == (
        512, 1, 60)
    # Xavier uniform, as the book's init_weights: bound sqrt(6 / (6719 + 100))
    w = np.asarray(model.word_vectors)
    bound = np.sqrt(6 / (6719 + 100))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    with pytest.raises(ValueError, match="vocab_size"):
        SkipGram(0, rngs=nnx.Rngs(0))


def test_masked_sigmoid_bce_equals_the_books_numbers():
    # book §15.4.1.3: tensor([0.9352, 1.8462])
    pred = jnp.array([[1.1, -2.2, 3.3, -4.4]] * 2)
    label = jnp.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]])
    mask = jnp.array([[1, 1, 1, 1], [1, 1, 0, 0]])
    got = masked_sigmoid_bce(pred, label, mask)
    sigmd = lambda x: -np.log(1 / (1 + np.exp(-x)))  # the book's by-hand check
    ref = [
        (sigmd(1.1) + sigmd(2.2) + sigmd(-3.3) + sigmd(4.4)) / 4,
        (sigmd(-1.1) + sigmd(-2.2)) / 2,
    ]
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    np.testing.assert_allclose(got, [0.9352, 1.8462], atol=5e-5)


def test_word2vec_loss_weights_padded_rows_out():
    model = SkipGram(10, 4, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    batch = {
        "centers": jnp.asarray(rng.integers(0, 10, (3, 1)), jnp.int32),
        "contexts_negatives": jnp.asarray(rng.integers(0, 10, (3, 6)), jnp.int32),
        "masks": jnp.array([[1, 1, 1, 1, 0, 0], [1] * 6, [1, 0, 0, 0, 0, 0]], jnp.uint8),
        "labels": jnp.array([[1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1] + [0] * 5], jnp.uint8),
    }
    loss_fn = get_loss("word2vec")
    full, sums = loss_fn(model, batch)
    two = {k: v[:2] for k, v in batch.items()}
    padded = {**batch, "mask": jnp.array([1.0, 1.0, 0.0])}
    loss2, sums2 = loss_fn(model, two)
    lossp, sumsp = loss_fn(model, padded)
    np.testing.assert_allclose(lossp, loss2, rtol=1e-6)
    np.testing.assert_allclose(sumsp["loss"], sums2["loss"], rtol=1e-6)
    assert float(sums["count"]) == 3 and float(sumsp["count"]) == 2
    scores = model(batch["centers"], batch["contexts_negatives"])[:, 0]
    ref = masked_sigmoid_bce(scores, batch["labels"], batch["masks"]).mean()
    np.testing.assert_allclose(full, ref, rtol=1e-6)


@pytest.mark.slow
def test_word2vec_ptb_config_trains_to_the_books_loss(shared_data, tmp_path):
    """``d2ljax train word2vec_ptb`` (the book's setting: 5 epochs, Adam 0.002, batch 512) on the
    real PTB. The book's PyTorch code prints 0.410, the running mean of the loss over its 5
    epochs; measured here: 0.481, 0.427, 0.404, 0.380, 0.360 (mean 0.410). The centre vectors
    then place "chip" among computer words: the book lists microprocessor 0.702, mips 0.649,
    intel 0.643; measured here microprocessor 0.743, intel 0.737, desktop 0.681, laptop 0.677,
    memory 0.637, while two random words have cosine 0.18 on average (99th percentile 0.50)."""
    from d2ljax.cli import load_config
    from d2ljax.data.embeddings import get_similar_tokens
    from d2ljax.data.text import Vocab
    from d2ljax.data.word2vec import read_ptb
    from d2ljax.experiment import run

    res = run(load_config("word2vec_ptb"), tmp_path, progress=False)
    losses = res.history["train_loss"]
    assert len(losses) == 5 and all(b < a for a, b in zip(losses, losses[1:], strict=False))
    assert np.mean(losses) <= 0.415 and losses[-1] < 0.37
    vocab = Vocab(read_ptb(), min_freq=10)
    W = np.asarray(res.model.word_vectors)
    assert W.shape == (len(vocab), 100)
    near = get_similar_tokens("chip", 5, W, vocab)
    tokens = [t for t, _ in near]
    assert {"microprocessor", "mips", "intel"} & set(tokens[:3])  # one of the book's three
    assert near[0][1] > 0.65
    # far above two random words' similarity
    rng = np.random.default_rng(1)
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    i, j = rng.integers(0, len(vocab), (2, 2000))
    assert near[0][1] > np.percentile((Wn[i] * Wn[j]).sum(1), 99)

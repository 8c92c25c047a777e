"""§15.8 BERT, §15.10 pretraining loss, §16.6 heads, §16.7 fine-tuning: shapes, parameter count,
masking of padding, the losses against hand computations, pretrained parameters loaded into
the classifier, and the pretrain -> fine-tune path end to end (tiny sizes, SNLI fixture)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from layer_counts import dense

from d2ljax.data.wikitext import get_tokens_and_segments
from d2ljax.models import get_model, list_models
from d2ljax.models.bert import (
    BERTClassifier,
    BERTEncoder,
    BERTModel,
    MaskLM,
    NextSentencePred,
    QuestionAnsweringHead,
    SingleTextClassificationHead,
    TextPairClassificationHead,
    TokenTaggingHead,
    num_params_formula,
)
from d2ljax.pretrained import load_pretrained_bert
from d2ljax.train import get_loss, num_params

V, D, F, H, L, T = 50, 16, 32, 2, 2, 12
TINY = dict(num_hiddens=D, ffn_num_hiddens=F, num_heads=H, num_blks=L, dropout=0.0, max_len=T)


def _inputs(b=3, seed=0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    tokens = jax.random.randint(k1, (b, T), 0, V)
    segments = (jnp.arange(T)[None, :] >= 5).astype(jnp.int32).repeat(b, 0)
    valid = jnp.array([T, 8, 6][:b])
    positions = jax.random.randint(k2, (b, 3), 0, 6)
    return tokens, segments, valid, positions


def test_tokens_and_segments():
    tokens, segments = get_tokens_and_segments(["this", "movie", "is", "great"])
    assert tokens == ["<cls>", "this", "movie", "is", "great", "<sep>"]
    assert segments == [0] * 6
    tokens, segments = get_tokens_and_segments(["hello", "world"], ["!"])
    assert tokens == ["<cls>", "hello", "world", "<sep>", "!", "<sep>"]
    assert segments == [0, 0, 0, 0, 1, 1]


class BERTShapesTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_encoder_and_heads(self):
        model = BERTModel(V, rngs=nnx.Rngs(0), **TINY)
        model.eval()
        tokens, segments, valid, positions = _inputs()
        mlm, nsp = self.variant(lambda *a: model(*a))(tokens, segments, valid, positions)
        chex.assert_shape(mlm, (3, 3, V))
        chex.assert_shape(nsp, (3, 2))
        chex.assert_tree_all_finite((mlm, nsp))
        enc = self.variant(lambda *a: model.encode(*a))(tokens, segments, valid)
        chex.assert_shape(enc, (3, T, D))
        none_mlm, nsp2 = model(tokens, segments, valid)
        assert none_mlm is None
        np.testing.assert_allclose(nsp2, nsp, rtol=1e-5, atol=1e-6)

    def test_mask_lm_predicts_from_the_gathered_positions(self):
        mlm = MaskLM(V, D, rngs=nnx.Rngs(0))
        x = jax.random.normal(jax.random.key(1), (2, T, D))
        pos = jnp.array([[1, 5, 7], [0, 0, 11]])
        manual = jnp.stack([x[b, pos[b]] for b in range(2)])
        expected = mlm.dense2(mlm.ln(jax.nn.relu(mlm.dense1(manual))))
        chex.assert_trees_all_close(mlm(x, pos), expected, rtol=1e-6)
        nsp = NextSentencePred(D, rngs=nnx.Rngs(0))
        chex.assert_shape(nsp(x[:, 0]), (2, 2))


def test_padding_does_not_change_the_valid_positions():
    """valid_lens hides the padding from attention: changing padded tokens changes nothing."""
    enc = BERTEncoder(V, D, F, H, L, 0.0, max_len=T, rngs=nnx.Rngs(0))
    tokens, segments, valid, _ = _inputs()
    out = enc(tokens, segments, valid)
    pad_mask = jnp.arange(T)[None, :] >= valid[:, None]
    other = jnp.where(pad_mask, (tokens + 7) % V, tokens)
    out2 = enc(other, segments, valid)
    keep = ~np.asarray(pad_mask)
    np.testing.assert_allclose(np.asarray(out)[keep], np.asarray(out2)[keep], atol=1e-5)
    assert not np.allclose(np.asarray(enc(other, segments, None)), np.asarray(out))
    with pytest.raises(ValueError, match="max_len"):
        enc(jnp.zeros((1, T + 1), jnp.int32), jnp.zeros((1, T + 1), jnp.int32))


def test_parameter_count_matches_the_formulas():
    for vocab, d, f, blocks, max_len in [(V, D, F, L, T), (4008, 128, 256, 2, 1000)]:
        model = BERTModel(vocab, d, f, 2, blocks, 0.2, max_len, rngs=nnx.Rngs(0))
        embeddings = vocab * d + 2 * d + max_len * d
        block = 4 * dense(d, d) + 2 * (2 * d) + dense(d, f) + dense(f, d)
        heads = dense(d, d) + (dense(d, d) + 2 * d + dense(d, vocab)) + dense(d, 2)
        expected = embeddings + blocks * block + heads
        assert num_params(model) == expected == num_params_formula(vocab, d, f, blocks, max_len)


def test_registered_with_the_book_small_bert_defaults():
    assert {"bert", "bert_classifier"} <= set(list_models())
    model = get_model("bert", vocab_size=V, rngs=nnx.Rngs(0))
    assert model.encoder.pos_embedding.shape == (1, 1000, 128)
    assert len(model.encoder.blks) == 2
    assert model.encoder.blks[0].attention.num_heads == 2
    assert model.encoder.blks[0].attention.use_bias  # BERT's blocks use biases
    with pytest.raises(ValueError, match="divisible"):
        BERTModel(V, num_hiddens=10, num_heads=3, rngs=nnx.Rngs(0))


def test_fine_tuning_heads():
    x = jax.random.normal(jax.random.key(0), (2, T, D))
    single = SingleTextClassificationHead(D, 5, rngs=nnx.Rngs(0))
    chex.assert_shape(single(x), (2, 5))
    # only the <cls> position matters
    np.testing.assert_allclose(single(x), single(x.at[:, 1:].set(0.0)), atol=1e-6)
    pair = TextPairClassificationHead(D, 3, num_hiddens=8, rngs=nnx.Rngs(0))
    chex.assert_shape(pair(x), (2, 3))
    chex.assert_shape(TextPairClassificationHead(D, 1, rngs=nnx.Rngs(0))(x), (2, 1))
    tagger = TokenTaggingHead(D, 7, rngs=nnx.Rngs(0))
    tags = tagger(x)
    chex.assert_shape(tags, (2, T, 7))
    np.testing.assert_allclose(tags[:, 3], tagger.output(x[:, 3]), atol=1e-6)
    qa = QuestionAnsweringHead(D, rngs=nnx.Rngs(0))
    segments = (jnp.arange(T)[None, :] >= 4).astype(jnp.int32).repeat(2, 0)
    start, end = qa(x, segments, jnp.array([T, 9]))
    chex.assert_shape((start, end), ((2, T), (2, T)))
    p = jax.nn.softmax(start, axis=-1)
    # the passage: segment 1 up to (not including) the last <sep>
    np.testing.assert_allclose(p[0, 4 : T - 1].sum(), 1.0, atol=1e-5)
    np.testing.assert_allclose(p[1, 4:8].sum(), 1.0, atol=1e-5)


def _batch(seed=0, b=3):
    tokens, segments, valid, positions = _inputs(b, seed)
    k = jax.random.key(seed + 10)
    return {
        "tokens": tokens,
        "segments": segments,
        "valid_len": valid,
        "mlm_positions": positions,
        "mlm_weights": jnp.array([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 1.0, 1.0]]),
        "mlm_labels": jax.random.randint(k, (b, 3), 0, V),
        "nsp_label": jnp.array([1, 0, 1]),
    }


def test_pretrain_loss_against_hand_computation():
    model = BERTModel(V, rngs=nnx.Rngs(0), **TINY)
    model.eval()
    batch = _batch()
    loss, m = get_loss("bert_pretrain")(model, batch)
    mlm, nsp = model(batch["tokens"], batch["segments"], batch["valid_len"], batch["mlm_positions"])
    logp = np.asarray(jax.nn.log_softmax(mlm))
    w, y = np.asarray(batch["mlm_weights"]), np.asarray(batch["mlm_labels"])
    ce = [-logp[b, p, y[b, p]] for b in range(3) for p in range(3) if w[b, p]]
    mlm_ref = np.mean(ce)
    nsp_ref = optax.softmax_cross_entropy_with_integer_labels(nsp, batch["nsp_label"]).mean()
    np.testing.assert_allclose(loss, mlm_ref + nsp_ref, rtol=1e-5)
    np.testing.assert_allclose(m["mlm_loss"] / m["count"], mlm_ref, rtol=1e-5)
    np.testing.assert_allclose(m["nsp_loss"] / m["count"], nsp_ref, rtol=1e-5)
    acc = (np.argmax(nsp, -1) == np.asarray(batch["nsp_label"])).sum()
    assert float(m["nsp_accuracy"]) == acc and float(m["count"]) == 3
    # labels at weight-0 (padding) predictions do not count
    padded = dict(batch, mlm_labels=jnp.where(batch["mlm_weights"] > 0, batch["mlm_labels"], 3))
    np.testing.assert_allclose(get_loss("bert_pretrain")(model, padded)[0], loss, rtol=1e-6)


def test_classification_loss():
    model = BERTClassifier(V, rngs=nnx.Rngs(0), **TINY)
    b = _batch()
    batch = {k: b[k] for k in ("tokens", "segments", "valid_len")} | {"y": jnp.array([0, 2, 1])}
    loss, m = get_loss("bert_classification")(model, batch)
    logits = model(batch["tokens"], batch["segments"], batch["valid_len"])
    chex.assert_shape(logits, (3, 3))
    ref = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
    np.testing.assert_allclose(loss, ref, rtol=1e-6)
    assert float(m["count"]) == 3


@pytest.fixture(scope="module")
def pretrained_run(shared_data, tmp_path_factory):
    """bert_pretrain:smoke at tiny sizes on the real wiki.valid.tokens (2 steps)."""
    from d2ljax.cli import load_config
    from d2ljax.config import apply_overrides
    from d2ljax.experiment import run

    workdir = tmp_path_factory.mktemp("bert_pretrain")
    cfg = apply_overrides(
        load_config("bert_pretrain:smoke"),
        [
            "model.kwargs.num_hiddens=16",
            "model.kwargs.ffn_num_hiddens=32",
            "model.kwargs.num_blks=1",
            "model.kwargs.max_len=128",
            "data.kwargs.max_len=32",
            "data.limit=128",
            "data.batch_size=64",
        ],
    )
    res = run(cfg, workdir, progress=False)
    return workdir, res


def test_pretrain_then_fine_tune_end_to_end(pretrained_run):
    from d2ljax.cli import load_config
    from d2ljax.config import apply_overrides
    from d2ljax.data.wikitext import build_wiki_vocab
    from d2ljax.experiment import build, train

    workdir, res = pretrained_run
    h = res.history
    assert {"train_mlm_loss", "train_nsp_loss", "train_nsp_accuracy"} <= set(h)
    assert {"val_mlm_loss", "val_nsp_loss", "val_nsp_accuracy"} <= set(h)  # held-out split
    assert np.isfinite(h["train_loss"]).all()

    vocab = build_wiki_vocab(split="valid", seed=0, val_fraction=0.1)
    bert = load_pretrained_bert(workdir, len(vocab))
    trained = res.state.params
    chex.assert_trees_all_close(
        nnx.state(bert, nnx.Param)["encoder"], trained["encoder"], rtol=1e-6
    )
    with pytest.raises(ValueError, match="vocab_size"):
        load_pretrained_bert(workdir, len(vocab) + 1)

    cfg = apply_overrides(
        load_config("bert_snli:smoke"),
        [f"data.kwargs.pretrained={workdir}", "data.kwargs.max_len=32", "epochs=3"]
        + ["optimizer.learning_rate=0.01"],
    )
    exp = build(cfg)
    assert exp.info["vocab_size"] == len(vocab)
    assert isinstance(exp.model, BERTClassifier)
    # the classifier starts from the pretrained encoder and <cls> hidden layer
    chex.assert_trees_all_close(
        nnx.state(exp.model, nnx.Param)["encoder"], trained["encoder"], rtol=1e-6
    )
    chex.assert_trees_all_close(
        nnx.state(exp.model, nnx.Param)["hidden"], trained["hidden"], rtol=1e-6
    )
    out = train(exp, None, quiet=True, progress=False)
    loss = out.history["train_loss"]
    assert np.isfinite(loss).all() and loss[-1] < loss[0]  # it fits the 10 fixture pairs
    assert "val_accuracy" in out.history
    with pytest.raises(ValueError, match="disagree"):
        BERTClassifier(len(vocab), num_hiddens=64, bert=bert, rngs=nnx.Rngs(0))

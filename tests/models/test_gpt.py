"""§11.9 decoder-only GPT: causal masking, shapes, parameter count, sampling (length,
determinism, greedy = a step-by-step reference, sliding window), a tiny learning run."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx
from layer_counts import dense

from d2ljax.data import ArrayLoader
from d2ljax.data.text import Vocab
from d2ljax.models import get_model, list_models
from d2ljax.models.gpt import GPT, generate, num_params_formula
from d2ljax.tasks import SupervisedTask
from d2ljax.train import fit

V = 11
TINY = dict(num_hiddens=8, num_heads=2, num_blks=2, mlp_num_hiddens=16, max_len=8)


def _num_params(model):
    return sum(p.size for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


def _tokens(shape, seed=0):
    return jax.random.randint(jax.random.key(seed), shape, 0, V)


class GPTTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    def test_causal_masking(self):
        """Changing tokens at positions >= t leaves the logits before t unchanged, and a
        changed token does change the logits at its own position."""
        for positions in ("learned", "sinusoidal"):
            model = GPT(V, **TINY, positions=positions, rngs=nnx.Rngs(0))
            forward = self.variant(lambda x, m=model: m(x))
            x = _tokens((2, 8))
            t = 5
            y = x.at[:, t:].set((x[:, t:] + 1 + jnp.arange(3)) % V)
            a, b = forward(x), forward(y)
            chex.assert_trees_all_close(a[:, :t], b[:, :t], atol=1e-6)
            assert np.abs(np.asarray(a[:, t] - b[:, t])).max() > 1e-4

    def test_shapes_and_input_errors(self):
        model = GPT(V, **TINY, rngs=nnx.Rngs(0))
        chex.assert_shape(model(_tokens((3, 8))), (3, 8, V))
        chex.assert_shape(model(_tokens((1, 3))), (1, 3, V))  # shorter than max_len
        with pytest.raises(ValueError, match="exceeds max_len=8"):
            model(_tokens((1, 9)))
        with pytest.raises(ValueError, match="integer dtype"):
            model(jnp.zeros((2, 4)))
        with pytest.raises(ValueError, match=r"\[B, T\]"):
            model(jnp.zeros((4,), jnp.int32))
        with pytest.raises(ValueError, match="divisible"):
            GPT(V, num_hiddens=10, num_heads=4, rngs=nnx.Rngs(0))
        with pytest.raises(ValueError, match="positions"):
            GPT(V, positions="rotary", rngs=nnx.Rngs(0))

    def test_parameter_count(self):
        # The config's setting written out: 28 x 32 embedding, 32 x 32 positions, one block of
        # 2 LayerNorms + 4 bias-free 32 x 32 projections + MLP 32 -> 64 -> 32, final LN, and the
        # tied head's bias.
        D = 32
        block = 2 * 2 * D + 4 * D * D + dense(D, 64) + dense(64, D)
        expected = 28 * D + 32 * D + block + 2 * D + 28
        model = GPT(28, D, 4, 1, 64, max_len=32, rngs=nnx.Rngs(0))
        assert _num_params(model) == expected == num_params_formula(28, D, 1, 64, 32)
        for kw in (
            dict(positions="sinusoidal"),
            dict(tie_weights=False),
            dict(use_bias=True, mlp_num_hiddens=None),
        ):
            args = {**TINY, **kw}
            model = GPT(V, **args, rngs=nnx.Rngs(0))
            args.pop("num_heads")
            assert _num_params(model) == num_params_formula(V, **args), kw
        untied = GPT(V, **TINY, tie_weights=False, rngs=nnx.Rngs(0))
        tied = GPT(V, **TINY, rngs=nnx.Rngs(0))
        assert _num_params(untied) - _num_params(tied) == 8 * V  # the V x D output matrix

    def test_tied_head_uses_the_embedding(self):
        model = GPT(V, **TINY, rngs=nnx.Rngs(0))
        x = jnp.array([[0, 1, 2, 3]])
        before = model(x)
        emb = model.embedding.embedding
        emb.set_value(emb[...].at[10].multiply(2.0))  # token 10 is not in x
        after = model(x)
        # Only the logit of token 10 changes: it is h . E[10] + b[10].
        chex.assert_trees_all_close(after[..., :10], before[..., :10])
        assert np.abs(np.asarray(after[..., 10] - before[..., 10])).max() > 1e-4

    def test_registry_and_dataset_info(self):
        assert "gpt" in list_models()
        model = get_model("gpt", vocab_size=V, **TINY, rngs=nnx.Rngs(0))
        assert isinstance(model, GPT)


def _vocab():
    return Vocab(list("abcdefghij"))  # 10 letters + <unk> = V


def _greedy_reference(model, prefix, num_preds, vocab):
    """The book's predict loop (§9.5) without jit: feed the last max_len tokens, take argmax."""
    ids = [vocab[c] for c in prefix]
    for _ in range(num_preds):
        ctx = jnp.asarray(ids[-model.max_len :])[None]
        ids.append(int(jnp.argmax(model(ctx)[0, -1])))
    return "".join(vocab.to_tokens(i) for i in ids)


class GenerateTest(chex.TestCase):
    def test_length_determinism_and_greedy_reference(self):
        model = GPT(V, **{**TINY, "num_blks": 1}, dropout=0.5, rngs=nnx.Rngs(params=0, dropout=1))
        vocab = _vocab()
        out = generate(model, "abcdef", 5, vocab, seed=3)
        chars = out.replace("<unk>", "?")  # the model may sample <unk>, one token
        assert len(chars) == 11 and out.startswith("abcdef")
        assert set(chars) <= set("abcdefghij?")
        assert generate(model, "abcdef", 5, vocab, seed=3) == out  # same seed, same text
        others = {generate(model, "abcdef", 5, vocab, seed=s) for s in range(4, 8)}
        assert others - {out}  # other seeds sample other text
        # Greedy: 6 + 5 tokens > max_len 8, so the window slides; dropout is off in generate.
        greedy = generate(model, "abcdef", 5, vocab, temperature=0.0)
        model.eval()
        assert greedy == _greedy_reference(model, "abcdef", 5, vocab)
        # top_k=1 is greedy at any temperature.
        assert generate(model, "abcdef", 5, vocab, temperature=2.0, top_k=1, seed=9) == greedy
        assert generate(model, "abc", 0, vocab) == "abc"

    def test_bad_arguments(self):
        model, vocab = GPT(V, **TINY, rngs=nnx.Rngs(0)), _vocab()
        with pytest.raises(ValueError, match="prefix"):
            generate(model, "", 5, vocab)
        with pytest.raises(ValueError, match="temperature"):
            generate(model, "ab", 5, vocab, temperature=-1.0)
        with pytest.raises(ValueError, match="top_k"):
            generate(model, "ab", 5, vocab, top_k=V + 1)


def test_learns_repeating_text():
    """Loss on a repeating 7-character text falls well below log(V) within 40 Adam steps."""
    vocab = _vocab()
    corpus = np.array(vocab[list("abcdefg" * 20)], np.int32)
    windows = np.lib.stride_tricks.sliding_window_view(corpus, 9)[:64]
    data = {"x": windows[:, :-1].copy(), "y": windows[:, 1:].copy()}
    model = GPT(V, **TINY, rngs=nnx.Rngs(0))
    res = fit(
        SupervisedTask(model, optax.adam(3e-2), "lm"),
        ArrayLoader(data, 32, seed=0),
        epochs=20,
        plot=False,
        log=lambda line: None,
    )
    losses = res.history["train_loss"]
    assert losses[0] > 1.5 and losses[-1] < 0.3, losses
    assert generate(res.model, "abc", 11, vocab, temperature=0.0) == "abcdefgabcdefg"


def test_gpt_smoke_experiment(shared_data, tmp_path):
    """The ``gpt:smoke`` config trains end to end on The Time Machine."""
    from d2ljax.cli import load_config
    from d2ljax.experiment import run

    res = run(load_config("gpt:smoke"), tmp_path, progress=False)
    assert np.isfinite(res.history["train_loss"][-1])
    assert res.history["val_perplexity"][-1] > 1.0

"""A decoder-only, GPT-style causal language model (book §11.9, as running code).

§11.9 ("Large-Scale Pretraining with Transformers") describes three ways to use the Transformer:
encoder-only (BERT), encoder-decoder (T5) and decoder-only (GPT). The book shows the decoder-only
one in figures only; this module makes it a model that trains on the course's language-model
data (the ``"lm"`` loss: ``model(x_BT) -> logits_BTV``) and samples text.

- :class:`GPT` (registered ``"gpt"``) -- token embedding + positions (learned or the sinusoidal
  :class:`~d2ljax.models.attention.PositionalEncoding` of §11.6), ``num_blks`` pre-norm decoder
  blocks, a final ``LayerNorm`` and an output layer. A decoder block is the pre-norm block of the
  Vision Transformer (§11.8; :class:`~d2ljax.nn.prenorm.PreNormBlock`) with a causal attention mask:
  position ``t`` attends to positions ``<= t`` only, so the logits at ``t`` depend on tokens
  ``0..t`` and one forward pass trains all ``T`` next-token predictions at once.
- Output layer: ``tie_weights=True`` (default) reuses the token embedding matrix ``E [V, D]``:
  ``logits = h @ E.T + b`` (GPT-2 does this; it saves ``V * D`` parameters). ``False`` gives a
  separate ``nnx.Linear(D, V)``.
- :func:`generate` -- sampling (temperature, top-k, greedy at temperature 0) with a fixed-size
  context window, compiled once: the steps run in ``lax.scan``.
- :func:`num_params_formula` -- the parameter count, written out.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from d2ljax.models.attention import MultiHeadAttention, PositionalEncoding
from d2ljax.models.registry import register
from d2ljax.nn.prenorm import LN_EPS, PreNormBlock

__all__ = ["GPT", "GPTBlock", "generate", "num_params_formula"]

POSITIONS = ("learned", "sinusoidal")


class GPTBlock(PreNormBlock):
    """Pre-norm decoder block: ``x + CausalMHA(LN(x))`` then ``x + MLP(LN(x))`` (§11.9).

    The ViT's block (:class:`~d2ljax.nn.prenorm.PreNormBlock` with §11.5's
    :class:`~d2ljax.models.attention.MultiHeadAttention`) with ``causal=True``; its arguments
    otherwise.
    """

    attention_cls = MultiHeadAttention

    def __init__(self, *args, **kwargs):
        super().__init__(*args, causal=True, **kwargs)


@register("gpt", description="§11.9 decoder-only (GPT-style) causal Transformer language model")
class GPT(nnx.Module):
    """Decoder-only causal Transformer LM: ``__call__(x_BT int) -> logits_BTV`` (§11.9).

    Args:
      vocab_size: ``V`` (the dataset's ``_info`` supplies it in an experiment).
      num_hiddens: width ``D``.
      num_heads: attention heads per block (``D`` divisible by it).
      num_blks: decoder blocks.
      mlp_num_hiddens: hidden width of each block's MLP (default ``4 * D``).
      max_len: the longest input (the context window); learned positions have this many rows.
      dropout: dropout on the embeddings and inside the blocks.
      positions: ``"learned"`` (a ``[max_len, D]`` parameter, as GPT) or ``"sinusoidal"``
        (§11.6's fixed encoding, added to the embedding scaled by ``sqrt(D)`` as in §11.7).
      tie_weights: output layer = the token embedding transposed (plus a bias); see the module
        docstring.
      use_bias: biases in the attention projections.
      rngs: ``params`` and ``dropout`` streams.

    Token and position embeddings start from ``N(0, 1/D)``, so tied logits start near unit scale.
    """

    def __init__(
        self,
        vocab_size: int,
        num_hiddens: int = 32,
        num_heads: int = 2,
        num_blks: int = 2,
        mlp_num_hiddens: int | None = None,
        max_len: int = 128,
        dropout: float = 0.0,
        positions: str = "learned",
        tie_weights: bool = True,
        use_bias: bool = False,
        *,
        rngs: nnx.Rngs,
    ):
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")
        if num_hiddens % num_heads:
            raise ValueError(
                f"num_hiddens ({num_hiddens}) must be divisible by num_heads ({num_heads})"
            )
        if min(vocab_size, num_hiddens, num_blks, max_len) <= 0:
            raise ValueError("vocab_size, num_hiddens, num_blks and max_len must be positive")
        D = num_hiddens
        M = 4 * D if mlp_num_hiddens is None else mlp_num_hiddens
        self.vocab_size, self.num_hiddens, self.max_len = vocab_size, D, max_len
        self.positions, self.tie_weights = positions, tie_weights
        init = nnx.initializers.normal(stddev=D**-0.5)
        self.embedding = nnx.Embed(vocab_size, D, embedding_init=init, rngs=rngs)
        if positions == "learned":
            self.pos_embedding = nnx.Param(init(rngs.params(), (max_len, D)))
            self.dropout = nnx.Dropout(dropout, rngs=rngs)
        else:
            self.pos_encoding = PositionalEncoding(D, dropout, max_len, rngs=rngs)
        self.blks = nnx.List(
            [GPTBlock(D, M, num_heads, dropout, use_bias, rngs=rngs) for _ in range(num_blks)]
        )
        self.ln_f = nnx.LayerNorm(D, epsilon=LN_EPS, rngs=rngs)
        if tie_weights:
            self.head_bias = nnx.Param(jnp.zeros((vocab_size,)))
        else:
            self.head = nnx.Linear(D, vocab_size, rngs=rngs)

    def check_input(self, x_BT) -> None:
        """Raise a ``ValueError`` unless ``x_BT`` is ``[B, T]`` integer ids, ``T <= max_len``."""
        x = x_BT if hasattr(x_BT, "dtype") else np.asarray(x_BT)
        shape, dtype = tuple(x.shape), x.dtype
        if len(shape) != 2 or not jnp.issubdtype(dtype, jnp.integer):
            raise ValueError(
                f"GPT expects token ids [B, T] of an integer dtype, got shape {list(shape)} "
                f"dtype {dtype}"
            )
        if shape[1] > self.max_len:
            raise ValueError(
                f"sequence length {shape[1]} exceeds max_len={self.max_len}; build the model "
                f"with a larger max_len or feed shorter windows"
            )

    def __call__(self, x_BT: jax.Array) -> jax.Array:
        self.check_input(x_BT)
        T = x_BT.shape[1]
        e_BTD = self.embedding(x_BT)
        if self.positions == "learned":
            h_BTD = self.dropout(e_BTD + self.pos_embedding[...][:T])
        else:
            h_BTD = self.pos_encoding(e_BTD * jnp.sqrt(jnp.float32(self.num_hiddens)))
        for blk in self.blks:
            h_BTD = blk(h_BTD)
        h_BTD = self.ln_f(h_BTD)
        if self.tie_weights:
            return h_BTD @ self.embedding.embedding[...].T + self.head_bias[...]
        return self.head(h_BTD)


def num_params_formula(
    vocab_size: int,
    num_hiddens: int = 32,
    num_blks: int = 2,
    mlp_num_hiddens: int | None = None,
    max_len: int = 128,
    positions: str = "learned",
    tie_weights: bool = True,
    use_bias: bool = False,
) -> int:
    """The parameter count of :class:`GPT` (the number of heads does not change it)."""
    V, D = vocab_size, num_hiddens
    M = 4 * D if mlp_num_hiddens is None else mlp_num_hiddens
    emb = V * D + (max_len * D if positions == "learned" else 0)
    attention = 4 * D * D + (4 * D if use_bias else 0)
    block = 2 * (2 * D) + attention + (D * M + M) + (M * D + D)
    head = V if tie_weights else D * V + V
    return emb + num_blks * block + 2 * D + head


@functools.partial(jax.jit, static_argnames=("graphdef", "num_preds", "window", "top_k"))
def _sample_ids(graphdef, state, buf_L, num_prefix, key, temperature, *, num_preds, window, top_k):
    """Extend ``buf_L[:num_prefix]`` by ``num_preds`` sampled ids; ``buf_L`` is long enough."""
    model = nnx.merge(graphdef, state, copy=True)

    def step(carry, i):
        buf_L, key = carry
        pos = num_prefix - 1 + i  # the last known token
        start = jnp.clip(pos + 1 - window, 0, buf_L.shape[0] - window)
        ctx_W = jax.lax.dynamic_slice(buf_L, (start,), (window,))
        logits_V = model(ctx_W[None])[0, pos - start].astype(jnp.float32)
        if top_k is not None:
            kth = jax.lax.top_k(logits_V, top_k)[0][-1]
            logits_V = jnp.where(logits_V < kth, -jnp.inf, logits_V)
        key, sub = jax.random.split(key)
        greedy = jnp.argmax(logits_V)
        sampled = jax.random.categorical(sub, logits_V / jnp.maximum(temperature, 1e-6))
        nxt = jnp.where(temperature > 0, sampled, greedy).astype(buf_L.dtype)
        return (buf_L.at[pos + 1].set(nxt), key), nxt

    (buf_L, _), _ = jax.lax.scan(step, (buf_L, key), jnp.arange(num_preds))
    return buf_L


def generate(
    model: GPT,
    prefix: str,
    num_preds: int,
    vocab,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> str:
    """``prefix`` followed by ``num_preds`` sampled characters (the book's ``predict``, §9.5).

    Each step feeds the last ``model.max_len`` tokens (a fixed-size window, so the step compiles
    once) and samples the next token from ``softmax(logits / temperature)``, restricted to the
    ``top_k`` most likely tokens if given; ``temperature=0`` is greedy (argmax). The whole loop is
    one ``jax.jit``-compiled ``lax.scan``; dropout is off (an eval-mode copy; ``model`` itself is
    not changed). Tokens are characters: ``vocab[ch]`` maps each prefix character to its id and
    ``vocab.to_tokens(ids)`` maps ids back; the result joins them with ``""``.
    """
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix must be a non-empty string, got {prefix!r}")
    if num_preds < 0:
        raise ValueError(f"num_preds must be >= 0, got {num_preds}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0 (0 = greedy), got {temperature}")
    if top_k is not None and not 1 <= top_k <= model.vocab_size:
        raise ValueError(f"top_k must be in [1, {model.vocab_size}], got {top_k}")
    if num_preds == 0:
        return prefix
    ids = [int(vocab[ch]) for ch in prefix]
    window = model.max_len
    buf_L = np.zeros(max(window, len(ids) + num_preds), np.int32)
    buf_L[: len(ids)] = ids
    graphdef, state = nnx.split(model)
    eval_model = nnx.merge(graphdef, state, copy=True)
    eval_model.eval()
    graphdef, state = nnx.split(eval_model)
    out_L = _sample_ids(
        graphdef,
        state,
        jnp.asarray(buf_L),
        jnp.int32(len(ids)),
        jax.random.key(seed),
        jnp.float32(temperature),
        num_preds=int(num_preds),
        window=window,
        top_k=top_k,
    )
    new = np.asarray(out_L[len(ids) : len(ids) + num_preds]).tolist()
    return prefix + "".join(_to_token(vocab, i) for i in new)


def _to_token(vocab, idx: int) -> str:
    tok = vocab.to_tokens(idx)
    return tok if isinstance(tok, str) else "".join(tok)

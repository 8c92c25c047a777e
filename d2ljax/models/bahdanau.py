"""RNN encoder–decoder with Bahdanau attention (book §11.4), as Flax NNX modules.

- :class:`Seq2SeqAttentionDecoder` -- at every step the decoder's previous top-layer hidden state
  queries the encoder outputs with :class:`~d2ljax.models.attention.AdditiveAttention`; the
  context is concatenated to the token embedding and fed to a multi-layer GRU.
- :class:`Seq2SeqAttention` -- the book's :class:`~d2ljax.models.seq2seq.Seq2SeqEncoder` with
  that decoder, registered as ``"bahdanau_seq2seq"``.

The time loop is a ``jax.lax.scan``. In train mode dropout inside the loop draws from the
module's RNG streams, so the scan carries their state (``nnx.split(self, nnx.RngState, ...)``)
instead of mutating it from inside the loop; ``decode_step`` runs one step without a loop, so
it can itself sit inside a caller's scan (greedy and beam search).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from d2ljax.models.attention import AdditiveAttention
from d2ljax.models.registry import register
from d2ljax.models.seq2seq import Decoder, Seq2Seq, StackedGRU

__all__ = ["Seq2SeqAttention", "Seq2SeqAttentionDecoder"]

_xavier = nnx.initializers.xavier_uniform()


class Seq2SeqAttentionDecoder(Decoder):
    """The RNN decoder with Bahdanau attention (§11.4.2).

    Decode state (:meth:`init_state`, batch-major, fixed shape): ``enc_outputs_BSH`` (keys and
    values of the attention), ``enc_valid_len_B`` (padding excluded from the attention) and
    ``hidden_BLH`` (the GRU state of every layer, initialised with the encoder's final state).

    ``__call__(dec_x_BT, state, *, return_weights=False)`` returns ``(logits_BTV, state)`` (and
    the attention weights ``(B, T, S)`` of every step when ``return_weights``).
    """

    def __init__(
        self,
        vocab_size: int,
        embed_size: int,
        num_hiddens: int,
        num_layers: int,
        dropout: float = 0.0,
        *,
        rngs: nnx.Rngs,
    ):
        # The book re-initialises every linear layer of the decoder with Xavier (init_seq2seq).
        self.attention = AdditiveAttention(
            num_hiddens, num_hiddens, num_hiddens, dropout, rngs=rngs, kernel_init=_xavier
        )
        self.embedding = nnx.Embed(
            vocab_size, embed_size, embedding_init=nnx.initializers.normal(1.0), rngs=rngs
        )
        self.rnn = StackedGRU(embed_size + num_hiddens, num_hiddens, num_layers, dropout, rngs=rngs)
        self.dense = nnx.Linear(num_hiddens, vocab_size, kernel_init=_xavier, rngs=rngs)
        self.num_hiddens = num_hiddens
        self.num_layers = num_layers

    def init_state(self, enc_outputs: dict, enc_valid_len_B=None, max_len: int = 0) -> dict:
        outputs_BSH, state_LBH = enc_outputs["outputs_BSH"], enc_outputs["state_LBH"]
        B, S, _ = outputs_BSH.shape
        if enc_valid_len_B is None:
            enc_valid_len_B = jnp.full((B,), S, jnp.int32)
        return {
            "enc_outputs_BSH": outputs_BSH,
            "enc_valid_len_B": jnp.asarray(enc_valid_len_B, jnp.int32),
            "hidden_BLH": jnp.swapaxes(state_LBH, 0, 1),
        }

    def _step(self, emb_BE, state):
        """One step: query the encoder with the top layer's state, then run the GRU."""
        query_B1H = state["hidden_BLH"][:, -1][:, None]
        enc_BSH = state["enc_outputs_BSH"]
        context_B1H, w_B1S = self.attention(
            query_B1H, enc_BSH, enc_BSH, state["enc_valid_len_B"], return_weights=True
        )
        x_B1D = jnp.concatenate([context_B1H, emb_BE[:, None]], axis=-1)
        out_B1H, h_LBH = self.rnn(x_B1D, jnp.swapaxes(state["hidden_BLH"], 0, 1))
        return out_B1H[:, 0], {**state, "hidden_BLH": jnp.swapaxes(h_LBH, 0, 1)}, w_B1S[:, 0]

    def step(self, token_B, state: dict):
        """One decoding step (no loop): ``(logits_BV, new_state)``."""
        out_BH, state, _ = self._step(self.embedding(token_B), state)
        return self.dense(out_BH), state

    def __call__(self, dec_x_BT, state: dict, *, return_weights: bool = False):
        embs_TBE = jnp.swapaxes(self.embedding(dec_x_BT), 0, 1)
        if _dropout_active(self):
            # Dropout draws from the RNG streams at every step: carry their state through the
            # scan rather than mutating it from inside the loop.
            graphdef, rng_state, rest = nnx.split(self, nnx.RngState, ...)

            def body(carry, emb_BE):
                rng_state, dec_state = carry
                module = nnx.merge(graphdef, rng_state, rest, copy=True)
                out_BH, dec_state, w_BS = module._step(emb_BE, dec_state)
                return (nnx.state(module, nnx.RngState), dec_state), (out_BH, w_BS)

            (rng_state, state), (outs_TBH, w_TBS) = jax.lax.scan(
                body, (rng_state, state), embs_TBE
            )
            nnx.update(self, rng_state)
        else:  # nothing is mutated: a plain scan (also inside an outer scan or jit)

            def body(dec_state, emb_BE):
                out_BH, dec_state, w_BS = self._step(emb_BE, dec_state)
                return dec_state, (out_BH, w_BS)

            state, (outs_TBH, w_TBS) = jax.lax.scan(body, state, embs_TBE)
        logits_BTV = self.dense(jnp.swapaxes(outs_TBH, 0, 1))
        if return_weights:
            return logits_BTV, state, jnp.swapaxes(w_TBS, 0, 1)
        return logits_BTV, state


def _dropout_active(module: nnx.Module) -> bool:
    """Whether any dropout layer in ``module`` would draw random numbers (train mode, rate > 0)."""
    return any(
        isinstance(node, nnx.Dropout) and not node.deterministic and node.rate > 0
        for _, node in nnx.iter_graph(module)
    )


@register("bahdanau_seq2seq", description="§11.4 RNN encoder-decoder with Bahdanau attention")
class Seq2SeqAttention(Seq2Seq):
    """RNN encoder–decoder with Bahdanau attention (§11.4): the §10.7
    :class:`~d2ljax.models.seq2seq.Seq2SeqEncoder` and a :class:`Seq2SeqAttentionDecoder`, defaults
    as the book trains it on English–French (embed 256, hidden 256, 2 GRU layers, dropout 0.2).
    The constructor is :class:`~d2ljax.models.seq2seq.Seq2Seq`'s (same arguments); only the
    decoder differs.

    :meth:`attention_weights` returns the decoder's attention over the source at every step.
    """

    decoder_class = Seq2SeqAttentionDecoder

    def attention_weights(self, enc_x_BS, dec_x_BT, enc_valid_len_B=None) -> jax.Array:
        """Attention weights ``(B, T, S)`` of a teacher-forced pass over ``dec_x_BT``."""
        enc_outputs = self.encoder(enc_x_BS, enc_valid_len_B)
        state = self.decoder.init_state(enc_outputs, enc_valid_len_B, dec_x_BT.shape[1])
        return self.decoder(dec_x_BT, state, return_weights=True)[2]

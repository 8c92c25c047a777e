"""Scratch recurrent cells, scans, clipping and perplexity (§9.5, §9.7, §10.1-§10.4)."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from absl.testing import parameterized

from d2ljax.nn import rnn as R

T, B, D, H = 5, 3, 4, 6


def _x(seed=0, shape=(T, B, D)):
    return jax.random.normal(jax.random.key(seed), shape, jnp.float32)


def _params(cell, seed=1, sigma=0.5, num_inputs=D):
    return R.get_cell(cell).init(jax.random.key(seed), num_inputs, H, sigma)


def _python_loop(step, params, x_TBD, state):
    outs = []
    for t in range(x_TBD.shape[0]):
        state, out = step(params, state, x_TBD[t])
        outs.append(out)
    return jnp.stack(outs), state


class CellTest(chex.TestCase):
    def test_param_names_shapes_and_init(self):
        p = _params("lstm", sigma=0.01)
        assert sorted(p) == sorted(f"{w}{g}" for g in "ifoc" for w in ("W_x", "W_h", "b_"))
        chex.assert_shape([p["W_xi"], p["W_hc"], p["b_o"]], [(D, H), (H, H), (H,)])
        assert float(jnp.abs(p["b_f"]).max()) == 0.0
        assert 0.003 < float(p["W_xf"].std()) < 0.03
        assert sorted(_params("gru")) == sorted(
            f"{w}{g}" for g in "zrh" for w in ("W_x", "W_h", "b_")
        )
        assert sorted(_params("rnn")) == ["W_hh", "W_xh", "b_h"]

    def test_rnn_step_formula(self):
        p, x, h = _params("rnn"), _x()[0], _x(2, (B, H))
        new, out = R.rnn_step(p, h, x)
        chex.assert_trees_all_close(new, jnp.tanh(x @ p["W_xh"] + h @ p["W_hh"] + p["b_h"]))
        chex.assert_trees_all_equal(new, out)

    def test_gru_reset_before_and_after_differ_only_through_the_reset_gate(self):
        p, x, h = _params("gru"), _x()[0], _x(2, (B, H))
        before, _ = R.gru_step(p, h, x)
        after, _ = R.gru_step(p, h, x, reset_after=True)
        assert float(jnp.abs(before - after).max()) > 1e-3
        # With the reset gate forced open (R = 1) the two forms coincide.
        p_open = dict(p, b_r=jnp.full((H,), 50.0))
        chex.assert_trees_all_close(
            R.gru_step(p_open, h, x)[0], R.gru_step(p_open, h, x, reset_after=True)[0], atol=1e-5
        )

    def test_gru_update_gate_one_keeps_the_state(self):
        p, x, h = _params("gru"), _x()[0], _x(2, (B, H))
        p_keep = dict(p, b_z=jnp.full((H,), 50.0))
        chex.assert_trees_all_close(R.gru_step(p_keep, h, x)[0], h, atol=1e-5)

    def test_lstm_forget_gate_closed_input_closed_zeroes_memory(self):
        p, x = _params("lstm"), _x()[0]
        p0 = dict(p, b_f=jnp.full((H,), -50.0), b_i=jnp.full((H,), -50.0))
        (h, c), out = R.lstm_step(p0, (_x(2, (B, H)), _x(3, (B, H))), x)
        chex.assert_trees_all_close(c, jnp.zeros((B, H)), atol=1e-6)
        chex.assert_trees_all_close(h, out)

    def test_unknown_cell(self):
        with pytest.raises(ValueError, match="known cells: rnn, gru"):
            R.get_cell("transformer")

    def test_bad_sizes(self):
        with pytest.raises(ValueError, match="num_hiddens must be a positive integer"):
            R.init_rnn_params(jax.random.key(0), 3, 0)


class ScanTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters("rnn", "gru", "gru_reset_after", "lstm")
    def test_scan_equals_python_loop(self, cell):
        c, p, x = R.get_cell(cell), _params(cell), _x()
        state = R.init_state(c, B, H)
        out, final = self.variant(lambda p, x, s: R.rnn_scan(c.step, p, x, s))(p, x, state)
        ref_out, ref_final = _python_loop(c.step, p, x, state)
        chex.assert_shape(out, (T, B, H))
        chex.assert_trees_all_close(out, ref_out, atol=1e-5)
        chex.assert_trees_all_close(final, ref_final, atol=1e-5)

    def test_init_state(self):
        assert R.init_state("rnn", 2, 3).shape == (2, 3)
        hc = R.init_state("lstm", 2, 3)
        assert isinstance(hc, tuple) and hc[0].shape == hc[1].shape == (2, 3)

    def test_scan_rejects_batch_major_2d_input(self):
        with pytest.raises(ValueError, match="time-major"):
            R.rnn_scan(R.rnn_step, _params("rnn"), jnp.ones((B, D)), jnp.zeros((B, H)))

    @chex.variants(with_jit=True, without_jit=True)
    def test_stacked_feeds_each_layer_the_one_below(self):
        p1, p2 = _params("gru", 1), _params("gru", 2, num_inputs=H)
        s = [R.init_state("gru", B, H)] * 2
        out, states = self.variant(lambda x: R.stacked_rnn_scan(R.gru_step, [p1, p2], x, s))(_x())
        mid, s1 = R.rnn_scan(R.gru_step, p1, _x(), s[0])
        ref, s2 = R.rnn_scan(R.gru_step, p2, mid, s[1])
        chex.assert_trees_all_close(out, ref, atol=1e-6)
        chex.assert_trees_all_close(states, [s1, s2], atol=1e-6)
        with pytest.raises(ValueError, match="2 layers of params but 1 states"):
            R.stacked_rnn_scan(R.gru_step, [p1, p2], _x(), s[:1])

    @chex.variants(with_jit=True, without_jit=True)
    def test_birnn_backward_half_reads_right_to_left(self):
        pf, pb, x = _params("rnn", 1), _params("rnn", 2), _x()
        s = (R.init_state("rnn", B, H), R.init_state("rnn", B, H))
        out, (sf, sb) = self.variant(lambda x: R.birnn_scan(R.rnn_step, pf, pb, x, s))(x)
        chex.assert_shape(out, (T, B, 2 * H))
        fwd, _ = R.rnn_scan(R.rnn_step, pf, x, s[0])
        chex.assert_trees_all_close(out[..., :H], fwd, atol=1e-6)
        # The backward output at the first step has read the whole sequence (from the end).
        bwd_rev, sb_ref = R.rnn_scan(R.rnn_step, pb, x[::-1], s[1])
        chex.assert_trees_all_close(out[0, :, H:], bwd_rev[-1], atol=1e-6)
        chex.assert_trees_all_close(sb, sb_ref, atol=1e-6)
        # Changing the last input changes the backward output at step 0 but not the forward one.
        x2 = x.at[-1].add(1.0)
        out2, _ = R.birnn_scan(R.rnn_step, pf, pb, x2, s)
        chex.assert_trees_all_close(out2[0, :, :H], out[0, :, :H])
        assert float(jnp.abs(out2[0, :, H:] - out[0, :, H:]).max()) > 1e-4


class ClippingAndPerplexityTest(chex.TestCase):
    @chex.variants(with_jit=True, without_jit=True)
    @parameterized.parameters(0.1, 1.0, 100.0)
    def test_grad_clipping_equals_optax(self, theta):
        grads = {"a": _x(1, (3, 4)), "b": [_x(2, (5,)), _x(3, (2, 2))]}
        ours = self.variant(R.grad_clipping, static_argnums=1)(grads, theta)
        ref, _ = optax.clip_by_global_norm(theta).update(grads, optax.EmptyState())
        chex.assert_trees_all_close(ours, ref, rtol=1e-6)
        norm = float(optax.tree.norm(ours))
        assert norm == pytest.approx(min(theta, float(optax.tree.norm(grads))), rel=1e-5)

    def test_grad_clipping_bad_theta(self):
        with pytest.raises(ValueError, match="theta must be positive"):
            R.grad_clipping({"a": jnp.ones(2)}, 0.0)

    def test_perplexity(self):
        V = 7
        uniform = jnp.zeros((2, 3, V))
        assert float(R.perplexity(uniform, jnp.zeros((2, 3), jnp.int32))) == pytest.approx(V)
        sure = jax.nn.one_hot(jnp.array([[1, 2, 3]]), V) * 100.0
        assert float(R.perplexity(sure, jnp.array([[1, 2, 3]]))) == pytest.approx(1.0, abs=1e-4)
        with pytest.raises(ValueError, match="do not match"):
            R.perplexity(uniform, jnp.zeros((2, 4), jnp.int32))


def test_bptt_gradients_vanish_with_small_weights_and_grow_with_large_ones():
    x = _x(0, (30, 2, D))
    state = R.init_state("rnn", 2, H)
    small = np.asarray(R.bptt_gradient_norms(R.rnn_step, _params("rnn", sigma=0.2), x, state))
    assert small.shape == (30,)
    assert small[0] < 1e-6 * small[-1]  # 29 steps back: vanished
    assert small[:10].mean() < 1e-3 * small[-10:].mean()  # the nearer, the larger
    # Large orthogonal-ish recurrent weights, inputs small enough to stay in tanh's linear range.
    p = dict(_params("rnn", sigma=0.01), W_hh=1.5 * jnp.eye(H))
    big = np.asarray(R.bptt_gradient_norms(R.rnn_step, p, 1e-4 * x, state))
    assert big[0] > 100 * big[-1]  # 1.5^29: exploding

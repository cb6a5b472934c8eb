"""Truncated BPTT: window bounds, k >= T equals full BPTT, no gradient crosses a window boundary,
k1/k2 overlap semantics, carried state, training with an optimizer."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.nn import functional as F
from minigrad.optim import SGD
from rnn import GRU, LSTM
from rnn.tbptt import detach_state, tbptt, tbptt_windows, window_bounds


def mse(out, target):
    return ((out - target) ** 2).mean()


def data(rng, T=12, B=2, n_in=2, H=3):
    return rng.standard_normal((T, B, n_in)), rng.standard_normal((T, B, H))


def test_window_bounds():
    assert window_bounds(10, 3) == [(0, 3, 0, 3), (3, 6, 3, 6), (6, 9, 6, 9), (9, 10, 9, 10)]
    assert window_bounds(4, 10) == [(0, 4, 0, 4)]
    # k1=2, k2=5: every 2 steps, backpropagate through the last (up to) 5 steps
    assert window_bounds(7, 2, 5) == [(0, 0, 0, 2), (0, 1, 2, 4), (1, 3, 4, 6), (3, 7, 6, 7)]
    with pytest.raises(ValueError, match="k2"):
        window_bounds(7, 3, 2)
    with pytest.raises(ValueError, match="k1"):
        window_bounds(7, 0)


@pytest.mark.parametrize("k", [12, 20])
def test_k_at_least_T_equals_full_bptt(k, rng):
    x, y = data(rng)
    layer = LSTM(2, 3, num_layers=2, dtype="float64", rng=np.random.default_rng(0))
    out, _ = layer(x)
    mse(out, y).backward()
    full = {n: p.grad.copy() for n, p in layer.named_parameters()}
    layer.zero_grad()
    res = tbptt(layer, x, y, mse, k1=k)
    assert len(res.losses) == 1
    for n, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, full[n], rtol=1e-12, atol=1e-15)


def test_k_less_than_T_sums_truncated_window_gradients(rng):
    """With k1 < T the accumulated gradient is the sum over windows of each window's gradient computed
    from the (detached) true state at the window start -- and differs from full BPTT."""
    x, y = data(rng)
    layer = GRU(2, 3, dtype="float64", rng=np.random.default_rng(0))
    res = tbptt(layer, x, y, mse, k1=5)
    got = {n: p.grad.copy() for n, p in layer.named_parameters()}
    assert res.steps == [5, 5, 2]
    layer.zero_grad()
    with mg.no_grad():
        _, h5 = layer(x[:5])
        _, h10 = layer(x[:10])
    for (a, b), h in zip([(0, 5), (5, 10), (10, 12)], [None, h5, h10]):
        out, _ = layer(x[a:b], None if h is None else mg.tensor(h.data))
        mse(out, y[a:b]).backward()
    want = {n: p.grad.copy() for n, p in layer.named_parameters()}
    layer.zero_grad()
    out, _ = layer(x)
    mse(out, y).backward()
    for n, p in layer.named_parameters():
        np.testing.assert_allclose(got[n], want[n], rtol=1e-12, atol=1e-15)
        assert not np.allclose(got[n], p.grad)  # truncation changes the gradient
    np.testing.assert_allclose(res.state.data, layer(x)[1].data, rtol=1e-12)  # carried state is exact


def test_no_gradient_crosses_a_window_boundary(rng):
    x_np, y = data(rng, T=9)
    layer = LSTM(2, 3, dtype="float64", rng=np.random.default_rng(1))
    x = mg.tensor(x_np, requires_grad=True)
    seen = []
    for w in tbptt_windows(layer, x, y, k1=3):
        h_in = w.state_in
        if w.index == 0:
            assert h_in is None
        else:
            assert all(s.is_leaf and not s.requires_grad for s in h_in)
        x.grad = None
        mse(w.outputs, w.targets).backward()
        inside = np.zeros(9, bool)
        inside[w.start:w.stop] = True
        assert np.abs(x.grad[inside]).sum() > 0
        assert not x.grad[~inside].any()  # nothing reaches an earlier (or later) window's inputs
        seen.append((w.start, w.stop))
    assert seen == [(0, 3), (3, 6), (6, 9)]


def test_k2_greater_than_k1(rng):
    """TBPTT(k1=2, k2=5): each window's gradient equals backpropagating the 2 newest steps' losses
    through at most 5 steps from the exact state at the window start."""
    x, y = data(rng, T=9)
    layer = LSTM(2, 3, dtype="float64", rng=np.random.default_rng(2))
    with mg.no_grad():
        states = [None] + [layer(x[:t])[1] for t in range(1, 10)]  # exact state after t steps
    for w in tbptt_windows(layer, x, y, k1=2, k2=5):
        assert w.stop - w.start <= 5 and w.stop - w.loss_start <= 2
        layer.zero_grad()
        mse(w.outputs, w.targets).backward()
        got = [p.grad.copy() for p in layer.parameters()]
        if w.start:
            for a, b in zip(w.state_in, states[w.start]):
                np.testing.assert_allclose(a.data, b.data, rtol=1e-12)
        layer.zero_grad()
        h = states[w.start]
        out, _ = layer(x[w.start:w.stop], None if h is None else tuple(mg.tensor(s.data) for s in h))
        mse(out[w.loss_start - w.start:], y[w.loss_start:w.stop]).backward()
        for g, p in zip(got, layer.parameters()):
            np.testing.assert_allclose(g, p.grad, rtol=1e-12, atol=1e-15)


def test_tbptt_trains_with_optimizer_clip_batch_first_and_t0_scopes(rng):
    T = 40
    t = np.arange(T + 1) * 0.3
    x = np.sin(t[:-1])[None, :, None].repeat(2, 0).astype(np.float32)  # (B, T, 1) batch-first
    y = np.sin(t[1:])[None, :, None].repeat(2, 0).astype(np.float32)

    class Model(mg.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = GRU(1, 8, batch_first=True, rng=np.random.default_rng(0))
            self.head = mg.nn.Linear(8, 1, rng=np.random.default_rng(1))
            self.t0s = []

        def forward(self, x, state=None, t0=0):
            out, state = self.rnn(x, state, t0=t0)
            self.t0s.append(t0)
            return self.head(out), state

    model = Model()
    opt = SGD(model.parameters(), lr=0.2)
    first = tbptt(model, x, y, F.mse_loss, opt, k1=10, clip=1.0, time_axis=1)
    for _ in range(15):
        last = tbptt(model, x, y, F.mse_loss, opt, k1=10, clip=1.0, time_axis=1, state=None)
    assert len(first.losses) == 4 and len(first.grad_norms) == 4
    assert model.t0s[:4] == [0, 10, 20, 30]  # steps keep their position in the sequence (t=... scopes)
    assert last.mean_loss < 0.5 * first.mean_loss
    assert last.state.shape == (1, 2, 8) and last.state.is_leaf


def test_detach_state_and_errors(rng):
    h = mg.tensor(np.ones(2), requires_grad=True) * 2
    d = detach_state((h, [h]))
    assert isinstance(d, tuple) and d[0].is_leaf and isinstance(d[1], list) and d[1][0].is_leaf
    with pytest.raises(TypeError, match="detach_state"):
        detach_state(3)
    layer = GRU(2, 3)
    with pytest.raises(mg.ShapeError, match="targets"):
        tbptt(layer, np.zeros((5, 1, 2)), np.zeros((4, 1, 3)), mse, k1=2)
    with pytest.raises(TypeError, match="scalar"):
        tbptt(layer, np.zeros((5, 1, 2)), np.zeros((5, 1, 3)), lambda o, t: o, k1=2)

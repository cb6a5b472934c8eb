"""hidden_grad_norms / record_hiddens: dL/dh_t from the graph, checked against an independent
computation, and showing vanishing and exploding gradients."""

import numpy as np
import pytest

import minigrad as mg
from rnn import GRU, LSTM, RNN
from rnn.diagnostics import hidden_grad_norms, record_hiddens


@pytest.mark.parametrize("cls", [RNN, GRU, LSTM])
def test_recorded_grads_equal_gradient_of_the_rest_of_the_sequence(cls, rng):
    """dL/dh_t = w_t + d/dh_t sum_{s>t} <w_s, out_s>, the latter being the gradient w.r.t. the initial
    state of the layer run on x[t+1:] from h_t."""
    T, B, H = 6, 2, 3
    layer = cls(2, H, dtype="float64", rng=np.random.default_rng(0))
    x = rng.standard_normal((T, B, 2))
    w = rng.standard_normal((T, B, H))
    with record_hiddens(layer) as rec:
        out, _ = layer(x)
    assert not layer._step_hooks  # the recording hook is removed on exit
    (out * w).sum().backward()
    g = rec.grads()
    assert g.shape == (T, B, H) and rec.steps() == list(range(T))
    for t in (0, 2, 4):
        h_t = rec.hiddens[(layer, 0, 0)][t]
        if cls is LSTM:  # the carried state is (h, c); perturb h only
            _, (_, c_all) = layer(x[:t + 1])
            h0 = mg.tensor(h_t.data[None], requires_grad=True)
            rest, _ = layer(x[t + 1:], (h0, mg.tensor(c_all.data)))
        else:
            h0 = mg.tensor(h_t.data[None], requires_grad=True)
            rest, _ = layer(x[t + 1:], h0)
        (rest * w[t + 1:]).sum().backward()
        np.testing.assert_allclose(g[t], w[t] + h0.grad[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(rec.grad_norms(), np.sqrt((g ** 2).sum(axis=(1, 2))))
    assert rec.grad_norms(per_example=True).shape == (T, B)


def test_vanishing_and_exploding_gradients_are_visible(rng):
    T = 30
    x = rng.standard_normal((T, 2, 4))

    def last_step_loss(res):
        return (res[0][-1] ** 2).sum()

    small = RNN(4, 8, dtype="float64", rng=np.random.default_rng(0))
    small.weight_hh_l0.data *= 0.2
    v = hidden_grad_norms(small, x, last_step_loss)
    assert v.shape == (T,)
    assert v[0] < 1e-6 * v[-1]  # vanishing: the gradient dies going back in time
    big = RNN(4, 8, nonlinearity="relu", dtype="float64", rng=np.random.default_rng(0))
    big.weight_hh_l0.data = 1.5 * np.eye(8)  # relu in its linear regime: dh_t/dh_{t-1} = 1.5 I
    big.weight_ih_l0.data *= 0.1
    big.bias_ih_l0.data[:] = 1.0
    e = hidden_grad_norms(big, x, last_step_loss)
    assert e[0] > 1e4 * e[-1]  # exploding: 1.5^29 ~ 1.3e5


def test_layers_directions_models_and_side_effects(rng):
    lstm = LSTM(2, 3, num_layers=2, bidirectional=True, dtype="float64")
    x = rng.standard_normal((5, 1, 2))
    for p in lstm.parameters():
        p.grad = np.ones_like(p.data)
    n_top_rev = hidden_grad_norms(lstm, x, lambda r: r[0].sum(), layer=-1, direction=1)
    n_bottom = hidden_grad_norms(lstm, x, lambda r: r[0].sum(), layer=0)
    assert n_top_rev.shape == n_bottom.shape == (5,)
    assert not np.allclose(n_top_rev, n_bottom)
    assert all((p.grad == 1).all() for p in lstm.parameters())  # grads restored

    class Wrapper(mg.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = GRU(2, 3, dtype="float64")

        def forward(self, x):
            return self.enc(x)[0]

    m = Wrapper()
    assert hidden_grad_norms(m, x, lambda out: out[-1].sum()).shape == (5,)
    with pytest.raises(ValueError, match="direction"):
        hidden_grad_norms(m, x, lambda out: out.sum(), direction=1)
    with pytest.raises(TypeError, match="no recurrent layer"):
        with record_hiddens(mg.nn.Linear(2, 2)):
            pass
    with record_hiddens(m) as rec, mg.no_grad():
        m(x)
    with pytest.raises(RuntimeError, match="backward"):
        rec.grad_norms()


def test_t0_and_stepwise_calls_are_recorded_by_position(rng):
    gru = GRU(2, 3, dtype="float64")
    x = rng.standard_normal((4, 1, 2))
    with record_hiddens(gru) as rec:
        h = None
        outs = []
        for t in range(4):
            o, h = gru(x[t:t + 1], h, t0=t)
            outs.append(o)
    mg.stack(outs).sum().backward()
    assert rec.steps() == [0, 1, 2, 3]
    full = hidden_grad_norms(gru, x, lambda r: r[0].sum())
    np.testing.assert_allclose(rec.grad_norms(), full, rtol=1e-12)

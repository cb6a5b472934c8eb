"""The cell zoo (rnn/cells/zoo.py: MGU, IndRNN, peephole LSTM, layer-normalised RNN) through
``rnn.Recurrent`` with every option: forward values against NumPy implementations of the equations,
gradients against float64 central differences (every parameter, the input, the initial state),
stacking, directions, dropout, batch_first, unbatched input, initial state, ``lengths``, ``t0`` and the
``t=`` scopes, truncated BPTT, the gradient diagnostics, every model in ``rnn.models`` and the drawings."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
import rnn
from minigrad.autograd import toposort
from minigrad.nn import functional as F
from rnn.cells import MGU, IndRNN, LayerNormRNN, PeepholeLSTM

ZOO = {"mgu": MGU, "indrnn": IndRNN, "peephole_lstm": PeepholeLSTM, "ln_rnn": LayerNormRNN}
N_STATE = {"mgu": 1, "indrnn": 1, "peephole_lstm": 2, "ln_rnn": 1}
HOISTED = {"mgu": False, "indrnn": True, "peephole_lstm": True, "ln_rnn": False}
names = pytest.mark.parametrize("name", ZOO)


# ------------------------------------------------------------------ NumPy references of the equations
def _sig(a):
    return 1.0 / (1.0 + np.exp(-a))


def np_step(cell, x, state):
    """One step of ``cell``'s equations in NumPy (float64)."""
    P = {n: p.data.astype(np.float64) for n, p in cell.named_parameters()}
    h = state[0]
    if isinstance(cell, MGU):
        f = _sig(x @ P["w_f"].T + h @ P["u_f"].T + P["b_f"])
        n = np.tanh(x @ P["w_n"].T + (f * h) @ P["u_n"].T + P["b_n"])
        return ((1 - f) * h + f * n,)
    if isinstance(cell, IndRNN):
        a = x @ P["w"].T + P["b"] + P["u"] * h
        return (np.maximum(a, 0.0) if cell.nonlinearity == "relu" else np.tanh(a),)
    if isinstance(cell, PeepholeLSTM):
        c = state[1]
        a_i, a_f, a_g, a_o = np.split(x @ P["w"].T + h @ P["u"].T + P["b"], 4, axis=-1)
        i, f = _sig(a_i + P["p_i"] * c), _sig(a_f + P["p_f"] * c)
        c = f * c + i * np.tanh(a_g)
        return (_sig(a_o + P["p_o"] * c) * np.tanh(c), c)
    a = x @ P["w"].T + h @ P["u"].T
    a_hat = (a - a.mean(-1, keepdims=True)) / np.sqrt(a.var(-1, keepdims=True) + cell.eps)
    return (np.tanh(P["gain"] * a_hat + P["bias"]),)


def np_layer(layer, x, h0=None, lengths=None):
    """The whole stacked, bidirectional layer in NumPy, time-first x (T, B, I), with PyTorch's packed
    semantics for ``lengths`` (padded steps hold the state and output 0): (output, final states)."""
    T, B, _ = x.shape
    L, D, H = layer.num_layers, layer.num_directions, layer.hidden_size
    n_state = len(layer.cell(0).init_state(1, np.float64))
    lengths = np.full(B, T) if lengths is None else np.asarray(lengths)
    finals = [[None] * (L * D) for _ in range(n_state)]
    inp = x
    for layer_i in range(L):
        outs = []
        for d in range(D):
            k = layer_i * D + d
            s = tuple(np.zeros((B, H)) for _ in range(n_state)) if h0 is None else tuple(h[k] for h in h0)
            o = np.zeros((T, B, H))
            for t in (range(T - 1, -1, -1) if d else range(T)):
                new = np_step(layer.cell(layer_i, d), inp[t], s)
                m = (t < lengths)[:, None]
                s = tuple(np.where(m, a, b) for a, b in zip(new, s))
                o[t] = np.where(m, new[0], 0.0)
            outs.append(o)
            for i in range(n_state):
                finals[i][k] = s[i]
        inp = np.concatenate(outs, axis=2)
    return inp, [np.stack(f) for f in finals]


# ------------------------------------------------------------------ helpers
def make(name, n_in=2, H=3, L=1, bi=False, seed=0, dtype="float64", perturb=True, **kw):
    """A Recurrent of zoo cells; the layer norm's gain and bias are moved off 1 and 0 so they matter."""
    rng = np.random.default_rng(seed)
    layer = rnn.Recurrent(lambda n: rnn.CELLS[name](n, H, rng=rng, dtype=dtype), n_in, num_layers=L,
                          bidirectional=bi, **kw)
    for c in layer.cells():
        if isinstance(c, LayerNormRNN) and perturb:
            c.gain.data = (1 + 0.5 * rng.standard_normal(H)).astype(dtype)
            c.bias.data = (0.5 * rng.standard_normal(H)).astype(dtype)
    return layer


def states(name, n, B, H, rng, requires_grad=True):
    shape = (n, B, H) if B else (n, H)
    return tuple(mg.tensor(0.5 * rng.standard_normal(shape), requires_grad=requires_grad)
                 for _ in range(N_STATE[name]))


def nodes_of(*roots):
    """Every node the roots depend on, once each."""
    return list({id(n): n for r in roots if r.node is not None for n in toposort(r.node)}.values())


# ------------------------------------------------------------------ registry, construction, names
def test_registry_has_the_zoo():
    for name, cls in ZOO.items():
        assert rnn.CELLS[name] is cls and rnn.cell_factory(name) is cls
        assert issubclass(cls, rnn.Cell)
        assert cls(2, 3).hoists_input() is HOISTED[name]
    assert not all(HOISTED.values()) and any(HOISTED.values())  # both paths of Recurrent are exercised


@names
def test_parameters_named_by_layer_and_direction_with_pytorch_init(name):
    layer = make(name, n_in=5, H=3, L=2, bi=True, dtype="float32", perturb=False)
    own = [n for n, _ in layer.cell(0).named_parameters()]
    want = [f"{p}_l{k}{sfx}" for k in range(2) for sfx in ("", "_reverse") for p in own]
    assert [n for n, _ in layer.named_parameters()] == want
    assert layer.cell(1).input_size == 6
    assert getattr(layer, f"{own[0]}_l1_reverse") is getattr(layer.cell(1, 1), own[0])
    for n, p in layer.named_parameters():
        assert p.dtype == np.float32
        if n.startswith("gain"):
            assert (p.data == 1).all()
        elif n.startswith("bias"):
            assert not p.data.any()
        else:
            assert np.abs(p.data).max() <= 1 / np.sqrt(3)
    with pytest.raises(TypeError, match="float32 or float64"):
        ZOO[name](2, 3, dtype="int64")
    with pytest.raises(ValueError, match="hidden_size must be a positive int"):
        ZOO[name](2, 0)


@names
def test_reset_parameters_redraws_in_place(name):
    layer = make(name, L=2, bi=True, seed=5, perturb=False)
    twin = make(name, L=2, bi=True, seed=7, perturb=False)
    before = [id(p) for p in twin.parameters()]
    for p in twin.parameters():
        p.grad = np.ones_like(p.data)
    twin.reset_parameters(np.random.default_rng(5))
    assert [id(p) for p in twin.parameters()] == before
    for p, q in zip(layer.parameters(), twin.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
        assert q.grad is None
    twin.reset_parameters(dtype="float32")
    assert twin.dtype == np.float32


def test_cell_options():
    assert "nonlinearity='tanh'" in repr(IndRNN(2, 3, nonlinearity="tanh"))
    with pytest.raises(ValueError, match="nonlinearity must be 'relu' or 'tanh'"):
        IndRNN(2, 3, nonlinearity="gelu")
    assert LayerNormRNN(2, 3, eps=1e-3).eps == 1e-3
    cell = PeepholeLSTM(2, 3)
    cell.set_forget_bias(1.0)
    np.testing.assert_array_equal(cell.b.data[3:6], 1.0)
    assert np.abs(cell.b.data[:3]).max() < 1 and np.abs(cell.b.data[6:]).max() < 1


# ------------------------------------------------------------------ forward values
@pytest.mark.parametrize(("name", "kw"), [(n, {}) for n in ZOO] + [("indrnn", {"nonlinearity": "tanh"})])
def test_one_step_matches_numpy(name, kw, rng):
    cell = ZOO[name](3, 4, rng=rng, dtype="float64", **kw)
    x = rng.standard_normal((5, 3))
    s = tuple(rng.standard_normal((5, 4)) for _ in range(N_STATE[name]))
    got = cell(mg.tensor(x), tuple(mg.tensor(v) for v in s))
    assert type(got) is tuple and len(got) == N_STATE[name]
    for g, w in zip(got, np_step(cell, x, s)):
        np.testing.assert_allclose(g.data, w, rtol=1e-12, atol=1e-14)
    if cell.hoists_input():  # forward = step after project
        for g, w in zip(cell.step(cell.project(mg.tensor(x)), tuple(mg.tensor(v) for v in s)), got):
            np.testing.assert_array_equal(g.data, w.data)


@names
def test_layer_matches_numpy_stacked_bidirectional_lengths_initial_state(name, rng):
    layer = make(name, n_in=2, H=3, L=2, bi=True)
    x = rng.standard_normal((5, 3, 2))
    h0 = states(name, 4, 3, 3, rng, requires_grad=False)
    out, fin = layer(x, h0, lengths=[2, 5, 0])
    want, wfin = np_layer(layer, x, [h.data for h in h0], lengths=[2, 5, 0])
    np.testing.assert_allclose(out.data, want, rtol=1e-12, atol=1e-13)
    assert isinstance(fin, tuple) and len(fin) == N_STATE[name]
    for f, w in zip(fin, wfin):
        np.testing.assert_allclose(f.data, w, rtol=1e-12, atol=1e-13)


@settings(max_examples=12)
@given(name=st.sampled_from(sorted(ZOO)), T=st.integers(1, 4), B=st.integers(0, 3), L=st.integers(1, 2),
       bi=st.booleans(), batch_first=st.booleans(), with_h0=st.booleans(), with_lengths=st.booleans(),
       seed=st.integers(0, 2**16))
def test_layer_matches_numpy_hypothesis(name, T, B, L, bi, batch_first, with_h0, with_lengths, seed):
    """B == 0 means unbatched input (T, I)."""
    rng = np.random.default_rng(seed)
    layer = make(name, n_in=2, H=2, L=L, bi=bi, seed=seed, batch_first=batch_first)
    D = 2 if bi else 1
    x = rng.standard_normal((T, max(B, 1), 2))
    h0 = [rng.standard_normal((D * L, max(B, 1), 2)) for _ in range(N_STATE[name])] if with_h0 else None
    lengths = rng.integers(0, T + 1, max(B, 1)) if with_lengths else None
    want, wfin = np_layer(layer, x, h0, lengths)
    if B == 0:
        arg_x, arg_h = x[:, 0], None if h0 is None else tuple(h[:, 0] for h in h0)
        want, wfin = want[:, 0], [w[:, 0] for w in wfin]
        arg_len = None if lengths is None else int(lengths[0])
    else:
        arg_x, arg_h, arg_len = x, None if h0 is None else tuple(h0), lengths
        if batch_first:
            arg_x, want = arg_x.transpose(1, 0, 2), want.transpose(1, 0, 2)
    out, fin = layer(arg_x, arg_h, lengths=arg_len)
    np.testing.assert_allclose(out.data, want, rtol=1e-12, atol=1e-13)
    for f, w in zip(fin, wfin):
        np.testing.assert_allclose(f.data, w, rtol=1e-12, atol=1e-13)


@names
def test_float32_stays_float32_and_dtype_follows_to(name, rng):
    layer = make(name, dtype="float32", L=2)
    out, fin = layer(rng.standard_normal((4, 2, 2)).astype(np.float32), lengths=[4, 2])
    assert out.dtype == np.float32 and all(f.dtype == np.float32 for f in fin)
    layer.to("float64")
    assert layer.dtype == np.float64 and layer(rng.standard_normal((4, 2, 2)))[0].dtype == np.float64
    with pytest.raises(TypeError, match="float32"):
        layer(mg.tensor(np.zeros((3, 1, 2), np.float32)))


# ------------------------------------------------------------------ gradients
@names
def test_gradcheck_full_jacobian(name, rng):
    """Every parameter, the input and the initial state, full Jacobians (float64)."""
    layer = make(name, n_in=2, H=2)
    x = mg.tensor(rng.standard_normal((3, 2, 2)), requires_grad=True)
    h0 = states(name, 1, 2, 2, rng)

    def run(x, *rest):
        out, fin = layer(x, h0)
        return [out, *fin]

    assert mg.gradcheck(run, [x, *h0, *layer.parameters()], atol=1e-7, rtol=1e-5)


@names
def test_gradcheck_stacked_bidirectional_batch_first_lengths(name, rng):
    layer = make(name, n_in=2, H=2, L=2, bi=True, batch_first=True)
    x = mg.tensor(rng.standard_normal((3, 4, 2)), requires_grad=True)  # (B, T, I)
    h0 = states(name, 4, 3, 2, rng)

    def run(x, *rest):
        out, fin = layer(x, h0, lengths=[4, 1, 3])
        return [out, *fin]

    assert mg.gradcheck(run, [x, *h0, *layer.parameters()], fast=True, n_probes=4, atol=1e-7, rtol=1e-5)


@names
@pytest.mark.parametrize("bi", [False, True])
def test_padded_batch_equals_each_sequence_alone(name, bi, rng):
    """Padded steps hold the state and get NO gradient: outputs, final states and every gradient equal
    running each sequence on its own."""
    lengths, T, B, H = [3, 5, 1, 4], 5, 4, 3
    D = 2 if bi else 1
    x_np = rng.standard_normal((T, B, 2))
    x_np[np.arange(T)[:, None] >= np.array(lengths)[None, :]] = 123.0  # padding garbage must not leak
    h_np = [0.5 * rng.standard_normal((2 * D, B, H)) for _ in range(N_STATE[name])]
    w_out = rng.standard_normal((T, B, D * H))
    w_fin = [rng.standard_normal((2 * D, B, H)) for _ in h_np]
    layer = make(name, n_in=2, H=H, L=2, bi=bi)
    x = mg.tensor(x_np, requires_grad=True)
    hs = tuple(mg.tensor(h, requires_grad=True) for h in h_np)
    out, fin = layer(x, hs, lengths=lengths)
    ((out * w_out).sum() + sum((f * w).sum() for f, w in zip(fin, w_fin))).backward()
    grads = {n: p.grad.copy() for n, p in layer.named_parameters()}
    layer.zero_grad()
    for b, n in enumerate(lengths):
        xb = mg.tensor(x_np[:n, b:b + 1], requires_grad=True)
        hb = tuple(mg.tensor(h[:, b:b + 1], requires_grad=True) for h in h_np)
        ob, fb = layer(xb, hb)
        np.testing.assert_allclose(out.data[:n, b:b + 1], ob.data, rtol=1e-12, atol=1e-13)
        assert not out.data[n:, b].any()  # outputs at padded steps are zero
        for f, g in zip(fin, fb):
            np.testing.assert_allclose(f.data[:, b:b + 1], g.data, rtol=1e-12, atol=1e-13)
        lb = (ob * w_out[:n, b:b + 1]).sum() + sum((f * w[:, b:b + 1]).sum() for f, w in zip(fb, w_fin))
        lb.backward()
        np.testing.assert_allclose(x.grad[:n, b:b + 1], xb.grad, rtol=1e-10, atol=1e-12)
        assert not x.grad[n:, b].any()  # padded steps receive no gradient
        for hp, hg in zip(hs, hb):
            np.testing.assert_allclose(hp.grad[:, b:b + 1], hg.grad, rtol=1e-10, atol=1e-12)
    for n, p in layer.named_parameters():  # the sum of the per-sequence gradients
        np.testing.assert_allclose(grads[n], p.grad, rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------ layer options
@names
def test_shapes_batch_first_and_unbatched(name, rng):
    H, n = 3, N_STATE[name]
    x = rng.standard_normal((5, 2, 2))
    tf = make(name, H=H, L=2, bi=True)
    out, fin = tf(x)
    assert out.shape == (5, 2, 6) and [f.shape for f in fin] == [(4, 2, H)] * n
    bf = make(name, H=H, L=2, bi=True, batch_first=True)
    out_b, fin_b = bf(x.transpose(1, 0, 2))
    assert out_b.shape == (2, 5, 6)
    np.testing.assert_allclose(out_b.data, out.data.transpose(1, 0, 2), rtol=1e-12)
    for f, g in zip(fin, fin_b):
        np.testing.assert_allclose(f.data, g.data, rtol=1e-12)
    # unbatched (T, I) with an unbatched initial state (D*L, H) equals a batch of one
    h0 = states(name, 4, 0, H, rng, requires_grad=False)
    out_u, fin_u = tf(x[:, 0], h0, lengths=3)
    assert out_u.shape == (5, 6) and [f.shape for f in fin_u] == [(4, H)] * n
    out_1, fin_1 = tf(x[:, :1], tuple(h.data[:, None] for h in h0), lengths=[3])
    np.testing.assert_allclose(out_u.data, out_1.data[:, 0], rtol=1e-12)
    assert not out_u.data[3:].any()
    for f, g in zip(fin_u, fin_1):
        np.testing.assert_allclose(f.data, g.data[:, 0], rtol=1e-12)


@names
def test_initial_state_checked(name, rng):
    layer = make(name, H=3, L=2)
    x = rng.standard_normal((3, 2, 2))
    good = states(name, 2, 2, 3, rng, requires_grad=False)
    out, _ = layer(x, good)
    assert not np.allclose(out.data, layer(x)[0].data)  # the initial state is used
    bad = tuple(np.zeros((1, 2, 3)) for _ in good)
    with pytest.raises(mg.ShapeError, match=rf"{ZOO[name].__name__}: .*must have shape \(2, 2, 3\)"):
        layer(x, bad)
    with pytest.raises(mg.ShapeError, match=r"must have shape \(2, 2, 3\)"):
        layer(x, tuple(np.zeros((2, 3, 3)) for _ in good))  # a batch of 3 for an input of 2
    with pytest.raises(TypeError, match="hx must be a tuple"):
        layer(x, (*good, good[0]))
    with pytest.raises(TypeError, match="float32"):
        layer(x, tuple(mg.tensor(g.data.astype(np.float32)) for g in good))
    if N_STATE[name] == 1:  # a one-tensor state may be passed bare
        np.testing.assert_array_equal(layer(x, good[0])[0].data, out.data)
    else:
        with pytest.raises(TypeError, match=r"hx must be a tuple \(hx\[0\], hx\[1\]\)"):
            layer(x, good[0])


@names
def test_dropout_between_layers_train_only_and_seeded(name, rng):
    x = rng.standard_normal((4, 3, 2))
    layer = make(name, L=2, dropout=0.5, rng=np.random.default_rng(1))
    a = layer(x)[0].data
    layer.rng = np.random.default_rng(1)
    np.testing.assert_array_equal(layer(x)[0].data, a)  # seeded
    assert not np.allclose(layer(x)[0].data, a)  # a fresh mask
    layer.eval()
    e = layer(x)[0].data
    np.testing.assert_array_equal(layer(x)[0].data, e)
    np.testing.assert_allclose(e, np_layer(layer, x)[0], rtol=1e-12, atol=1e-13)
    layer.train()
    layer.dropout = 1.0  # the top layer then sees only zeros: every batch row gives the same output
    z = layer(x)[0].data
    np.testing.assert_allclose(z, z[:, :1].repeat(3, 1), rtol=1e-12)
    with pytest.warns(UserWarning, match="no effect"):
        make(name, dropout=0.5)


# ------------------------------------------------------------------ scopes, t0
@names
def test_step_scopes_and_t0(name, rng):
    T, t0 = 3, 7
    layer = make(name, L=2, bi=True, compile=False)  # the literal graph (compiled: tests/viz/test_unroll.py)
    x = mg.tensor(rng.standard_normal((T, 2, 2)), requires_grad=True)
    out, fin = layer(x, t0=t0)
    cls = ZOO[name].__name__
    assert out.scope == (cls,) and fin[0].scope == (cls,)
    steps = {}
    for n in nodes_of(out, *fin):
        assert n.scope[0] == cls
        found = mg.find_step(n.scope)
        if found is None:
            assert len(n.scope) <= 2
            continue
        pos, t = found
        assert pos == 2 and n.scope[1] in ("layer0", "layer0_reverse", "layer1", "layer1_reverse")
        assert mg.parse_step(n.scope[pos]) == t and n.scope[pos] == mg.step_name(t)
        steps.setdefault(n.scope[1], set()).add(t)
    assert steps == {k: set(range(t0, t0 + T)) for k in ("layer0", "layer0_reverse", "layer1",
                                                         "layer1_reverse")}
    # a hoisting cell's input projection is ONE product per layer and direction, outside the steps
    hoisted = [n for n in nodes_of(out) if n.name == "MatMul" and len(n.scope) == 2]
    assert len(hoisted) == (4 if HOISTED[name] else 0)
    named = rnn.Recurrent(lambda n: ZOO[name](n, 2), 2, name="enc")
    assert named(np.zeros((2, 1, 2), np.float32))[0].scope[0] == "enc"


# ------------------------------------------------------------------ errors of user cells
def test_a_cell_returning_a_bare_tensor_is_a_clear_error():
    class Bare(MGU):
        def forward(self, x, state):
            return super().forward(x, state)[0]  # h instead of (h,)

    with pytest.raises(TypeError, match=r"Bare\.forward\(x, state\) must return the new state as a tuple "
                                        r"of 1 tensor\(s\).*got Tensor \(wrap it: return \(h,\)\)"):
        rnn.Recurrent(lambda n: Bare(n, 2), 2)(np.zeros((3, 1, 2), np.float32))

    class Short(PeepholeLSTM):
        def step(self, p, state):
            return super().step(p, state)[:1]

    with pytest.raises(TypeError, match=r"tuple of 2 tensor.*got tuple of length 1"):
        rnn.Recurrent(lambda n: Short(n, 2), 2)(np.zeros((3, 1, 2), np.float32))


# ------------------------------------------------------------------ truncated BPTT, diagnostics
@names
def test_tbptt_equals_full_bptt_and_cuts_at_windows(name, rng):
    layer = make(name, H=2, L=2)
    x, y = rng.standard_normal((6, 2, 2)), rng.standard_normal((6, 2, 2))
    loss_fn = lambda o, t: ((o - t) ** 2).sum()  # noqa: E731
    res = rnn.tbptt(layer, x, y, loss_fn, k1=6)  # one window, no optimizer: full BPTT
    got = {n: p.grad.copy() for n, p in layer.named_parameters()}
    layer.zero_grad()
    out, _ = layer(x)
    loss = loss_fn(out, mg.tensor(y))
    loss.backward()
    assert res.losses == [pytest.approx(loss.item(), rel=1e-12)]
    for n, p in layer.named_parameters():
        np.testing.assert_allclose(got[n], p.grad, rtol=1e-10, atol=1e-12)
    # windows of 2: the state is carried, detached; the steps keep their place in the sequence
    layer.zero_grad()
    res = rnn.tbptt(layer, x, y, loss_fn, k1=2)
    got = {n: p.grad.copy() for n, p in layer.named_parameters()}
    layer.zero_grad()
    state, losses = None, []
    for a in (0, 2, 4):
        out, st_ = layer(x[a:a + 2], state, t0=a)
        loss = loss_fn(out, mg.tensor(y[a:a + 2]))
        loss.backward()
        losses.append(loss.item())
        state = rnn.detach_state(st_)
    np.testing.assert_allclose(res.losses, losses, rtol=1e-12)
    for n, p in layer.named_parameters():
        np.testing.assert_allclose(got[n], p.grad, rtol=1e-10, atol=1e-12)
    assert len(res.state) == N_STATE[name] and res.state[0].shape == (2, 2, 2)
    layer.compile = False  # the windows' step scopes, read off the literal graph
    for w in rnn.tbptt_windows(layer, x, y, k1=2, k2=3):
        ts = {mg.find_step(n.scope)[1] for n in nodes_of(w.outputs) if mg.find_step(n.scope)}
        assert ts == set(range(w.start, w.stop))
        assert w.state_in is None or all(s.is_leaf for s in w.state_in)


@names
def test_hidden_grad_norms(name, rng):
    layer = make(name, H=3, L=2, bi=True)
    x = rng.standard_normal((5, 2, 2))
    for p in layer.parameters():
        p.grad = np.full_like(p.data, 7.0)
    last = lambda res: (res[0][-1][:, :3] ** 2).sum()  # noqa: E731  top layer forward, last step
    norms = rnn.hidden_grad_norms(layer, x, last)
    out, _ = layer(x)
    assert norms.shape == (5,)
    np.testing.assert_allclose(norms[-1], np.linalg.norm(2 * out.data[-1, :, :3]), rtol=1e-10)
    assert norms[:-1].any()  # the gradient reaches back in time
    assert all((p.grad == 7.0).all() for p in layer.parameters())  # .grad left as it was
    assert rnn.hidden_grad_norms(layer, x, last, layer=0, direction=1, per_example=True).shape == (5, 2)
    with rnn.record_hiddens(layer) as rec:
        out, _ = layer(x, t0=10)
    out.sum().backward()
    assert rec.steps(layer=0, direction=1) == list(range(10, 15))
    assert rec.grads().shape == (5, 2, 3)


# ------------------------------------------------------------------ every architecture
def _archs(cell):
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((3, 4, 2)).astype(np.float32)
    tok = rng.integers(0, 5, (3, 4))
    cond = rng.standard_normal((3, 2)).astype(np.float32)
    common = {"cell": cell, "rng": rng}

    def seq2seq():
        m = rnn.Seq2Seq(5, 6, 3, num_layers=2, **common)
        loss = m(tok, tok[:, :3], src_lengths=[4, 2, 3], teacher_forcing=0.5, rng=rng).sum()
        assert m.greedy_decode(tok, max_len=3).shape == (3, 3)
        return m, m.encoder, loss

    def generator():
        m = rnn.Generator(5, 3, cond_size=2, num_layers=2, dropout=0.2, **common)
        logits, st_ = m(tok, cond=cond)
        assert len(st_) == len(m.rnn.cell(0).init_state(1, np.float32))
        assert m.generate(3, start=0, cond=cond, rng=rng).shape == (3, 3)
        return m, m.rnn, logits.sum()

    def predictor():
        m = rnn.NextStepPredictor(2, 3, num_layers=2, **common)
        y, _ = m(xs)
        assert m.rollout(xs, 2).shape == (3, 2, 2)
        return m, m.rnn, F.mse_loss(y, xs)

    def classifier():
        m = rnn.SequenceClassifier(2, 3, 2, num_layers=2, bidirectional=True, dropout=0.2, **common)
        assert m.predict(xs, lengths=[4, 1, 2]).shape == (3,)
        return m, m.encoder.rnn, F.cross_entropy(m(xs, lengths=[4, 1, 2]), np.array([0, 1, 0]))

    def regressor():
        m = rnn.SequenceRegressor(2, 3, 1, vocab_size=5, **common)
        return m, m.encoder.rnn, F.mse_loss(m(tok, lengths=[4, 2, 3]), np.ones((3, 1), np.float32))

    def tagger():
        m = rnn.SequenceTagger(2, 3, 4, **common)
        return m, m.encoder.rnn, F.cross_entropy(m(xs).reshape(12, 4), tok.reshape(-1) % 4)

    def bitagger():
        m = rnn.BiTagger(2, 3, 4, **common)
        assert m.predict(xs).shape == (3, 4)
        return m, m.encoder.rnn, m(xs, lengths=[4, 4, 2]).sum()

    return {f.__name__: f for f in (classifier, regressor, tagger, bitagger, predictor, generator, seq2seq)}


@names
@pytest.mark.parametrize("arch", list(_archs("mgu")))
def test_every_architecture_takes_a_zoo_name_and_a_factory(name, arch):
    def factory(n_in, hidden, *, rng=None, dtype="float32"):
        return ZOO[name](n_in, hidden, rng=rng, dtype=dtype)

    for cell in (name, ZOO[name], factory):
        _, layer, loss = _archs(cell)[arch]()
        assert isinstance(layer, rnn.Recurrent) and all(type(c) is ZOO[name] for c in layer.cells())
        loss.backward()
        assert all(p.grad is not None and np.isfinite(p.grad).all() for p in layer.parameters())


@names
def test_forget_bias_option(name):
    if name == "peephole_lstm":
        layer = rnn.make_rnn(name, 2, 3, num_layers=2, forget_bias=1.0)
        assert all((c.b.data[3:6] == 1.0).all() for c in layer.cells())
    else:
        with pytest.raises(ValueError, match="forget_bias needs a cell with a forget gate"):
            rnn.make_rnn(name, 2, 3, forget_bias=1.0)


# ------------------------------------------------------------------ drawings
@names
def test_viz_draw_one_cluster_per_step(name, rng):
    viz = pytest.importorskip("viz")
    layer = make(name, H=2, L=2, bi=True)
    out, _ = layer(mg.tensor(rng.standard_normal((3, 2, 2)), requires_grad=True))
    loss = (out ** 2).sum()
    viz.retain_grads(loss)
    loss.backward()
    cls = ZOO[name].__name__
    g = viz.draw(loss, view="expanded", max_steps=3)
    assert g.info["sequences"] == 4 and g.info["steps"] == g.info["steps_drawn"] == 12
    assert len(re.findall(r"label=<<B>t=\d+</B>>", g.source)) == 12  # one cluster per step
    for lbl in (cls, "layer0", "layer0_reverse", "layer1", "layer1_reverse"):
        assert f"label=<<B>{lbl}</B>>" in g.source
    g = viz.draw(loss)  # collapsed: one box per step
    assert g.info["steps_drawn"] == 12 and g.info["grad_range"] is not None
    boxes = re.findall(rf"<B>{cls} (layer\d(?:_reverse)?) t=(\d)</B>", g.source)
    assert len(set(boxes)) == 12
    first = next(iter(layer.cell(0).named_parameters()))[0]
    assert f"<B>{first}_l0</B>" in g.source  # parameters drawn by name


@names
def test_viz_draw_rolled(name):
    viz = pytest.importorskip("viz")
    model = rnn.SequenceClassifier(2, 3, 2, cell=name, num_layers=2, bidirectional=True)
    g = viz.draw_rolled(model)
    assert g.info["stacks"] == 1 and g.info["cells"] == 4
    assert "layer1_reverse" in g.source

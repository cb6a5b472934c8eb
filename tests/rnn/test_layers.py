"""Layers: PyTorch shapes/names, NumPy reference (multi-layer, bidirectional, lengths), gradcheck of the
whole unrolled graph w.r.t. every parameter, the inputs and the initial states, lengths, scopes."""

import re

import numpy as np
import pytest
import rnn_np_ref as ref

import minigrad as mg
from minigrad.autograd import toposort
from rnn import GRU, LSTM, RNN

MODES = {"RNN": RNN, "GRU": GRU, "LSTM": LSTM}
G = {"RNN": 1, "GRU": 3, "LSTM": 4}


def make(mode, n_in=2, H=2, L=1, bi=False, compile=None, seed=0, dtype="float64", **kw):
    return MODES[mode](n_in, H, num_layers=L, bidirectional=bi, compile=compile,
                       rng=np.random.default_rng(seed), dtype=dtype, **kw)


def init_state(mode, n, B, H, rng, requires_grad=True):
    shape = (n, B, H) if B else (n, H)
    h = mg.tensor(0.5 * rng.standard_normal(shape), requires_grad=requires_grad)
    if mode == "LSTM":
        return (h, mg.tensor(0.5 * rng.standard_normal(shape), requires_grad=requires_grad))
    return h


def flat_state(s):
    return list(s) if isinstance(s, tuple) else [s]


def run(layer, mode, x, states, **kw):
    hx = tuple(states) if mode == "LSTM" else states[0]
    out, hn = layer(x, hx, **kw)
    return [out, *flat_state(hn)]


# ------------------------------------------------------------------ shapes and names
@pytest.mark.parametrize("mode", MODES)
def test_parameter_names_and_shapes_are_pytorchs(mode):
    layer = make(mode, n_in=5, H=3, L=2, bi=True, dtype="float32")
    g = G[mode]
    shapes = {n: p.shape for n, p in layer.named_parameters()}
    want = {}
    for layer_i, in_size in ((0, 5), (1, 6)):
        for sfx in ("", "_reverse"):
            want[f"weight_ih_l{layer_i}{sfx}"] = (g * 3, in_size)
            want[f"weight_hh_l{layer_i}{sfx}"] = (g * 3, 3)
            want[f"bias_ih_l{layer_i}{sfx}"] = (g * 3,)
            want[f"bias_hh_l{layer_i}{sfx}"] = (g * 3,)
    assert list(shapes) == list(want) and shapes == want  # PyTorch's order too
    every = np.concatenate([p.data.ravel() for p in layer.parameters()])
    assert every.dtype == np.float32 and np.abs(every).max() <= 1 / np.sqrt(3)
    assert [n for n, _ in make(mode, bias=False).named_parameters()] == ["weight_ih_l0", "weight_hh_l0"]


@pytest.mark.parametrize("mode", MODES)
def test_pytorch_state_dict_loads_unchanged(mode, rng):
    """A PyTorch state dict (names and shapes of nn.LSTM(3, 4, 2, bidirectional=True), as arrays)."""
    g = G[mode]
    sd = {}
    for layer_i, in_size in ((0, 3), (1, 8)):
        for sfx in ("", "_reverse"):
            sd[f"weight_ih_l{layer_i}{sfx}"] = rng.uniform(-0.5, 0.5, (4 * g, in_size)).astype(np.float32)
            sd[f"weight_hh_l{layer_i}{sfx}"] = rng.uniform(-0.5, 0.5, (4 * g, 4)).astype(np.float32)
            sd[f"bias_ih_l{layer_i}{sfx}"] = rng.uniform(-0.5, 0.5, (4 * g,)).astype(np.float32)
            sd[f"bias_hh_l{layer_i}{sfx}"] = rng.uniform(-0.5, 0.5, (4 * g,)).astype(np.float32)
    layer = MODES[mode](3, 4, num_layers=2, bidirectional=True)
    layer.load_state_dict(sd)
    for k, v in sd.items():
        np.testing.assert_array_equal(getattr(layer, k).data, v)
    x = rng.standard_normal((6, 2, 3))
    out, hn = layer(x.astype(np.float32))
    want, h_ref, _ = ref.layer(mode, x, {k: v.astype(np.float64) for k, v in sd.items()}, 2, True)
    np.testing.assert_allclose(out.data, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(flat_state(hn)[0].data, h_ref, rtol=1e-4, atol=1e-5)
    assert sorted(layer.state_dict()) == sorted(sd)


@pytest.mark.parametrize("mode", MODES)
def test_shapes_batch_first_and_unbatched(mode, rng):
    layer = make(mode, n_in=3, H=4, L=2, bi=True)
    x = rng.standard_normal((5, 2, 3))
    out, hn = layer(x)
    assert out.shape == (5, 2, 8)
    assert all(s.shape == (4, 2, 4) for s in flat_state(hn))
    bf = make(mode, n_in=3, H=4, L=2, bi=True, batch_first=True)
    out_bf, hn_bf = bf(x.transpose(1, 0, 2))
    assert out_bf.shape == (2, 5, 8)
    np.testing.assert_allclose(out_bf.data.transpose(1, 0, 2), out.data, rtol=1e-13)
    for a, b in zip(flat_state(hn_bf), flat_state(hn)):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-13)
    out1, hn1 = layer(x[:, 1])  # unbatched (T, I)
    assert out1.shape == (5, 8) and all(s.shape == (4, 4) for s in flat_state(hn1))
    np.testing.assert_allclose(out1.data, out.data[:, 1], rtol=1e-13)
    h0 = init_state(mode, 4, 0, 4, rng, requires_grad=False)
    out2, _ = layer(x[:, 1], h0)
    assert out2.shape == (5, 8)


# ------------------------------------------------------------------ forward against NumPy
@pytest.mark.parametrize("compile", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_forward_matches_numpy_multilayer_bidirectional(mode, compile, rng):
    layer = make(mode, n_in=3, H=4, L=2, bi=True, compile=compile)
    x = rng.standard_normal((6, 3, 3))
    hx = init_state(mode, 4, 3, 4, rng, requires_grad=False)
    hs = flat_state(hx)
    out, *states = run(layer, mode, x, hs)
    params = {n: p.data for n, p in layer.named_parameters()}
    want, h_ref, c_ref = ref.layer(mode, x, params, 2, True, hs[0].data, hs[-1].data)
    np.testing.assert_allclose(out.data, want, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(states[0].data, h_ref, rtol=1e-12, atol=1e-13)
    if mode == "LSTM":
        np.testing.assert_allclose(states[1].data, c_ref, rtol=1e-12, atol=1e-13)


def test_relu_rnn_and_no_bias_match_numpy(rng):
    layer = make("RNN", n_in=3, H=4, L=2, nonlinearity="relu", bias=False)
    x = rng.standard_normal((4, 2, 3))
    out, hn = layer(x)
    params = {n: p.data for n, p in layer.named_parameters()}
    for k in list(params):
        params[k.replace("weight", "bias")] = np.zeros(params[k].shape[0])
    want, h_ref, _ = ref.layer("RNN", x, params, 2, False, nonlinearity="relu")
    np.testing.assert_allclose(out.data, want, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(hn.data, h_ref, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------ gradcheck of the unrolled layers
GRID = [(T, B, L, bi) for T in (1, 2, 5, 20) for B in (1, 3) for L in (1, 2) for bi in (False, True)]


@pytest.mark.parametrize("T,B,L,bi", GRID, ids=lambda v: str(v))
@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_layer(mode, T, B, L, bi, rng):
    """d(output, h_n[, c_n]) w.r.t. x, h0[, c0] and every parameter: full Jacobians for the small
    unrolls, random projections (fast=True) for the rest."""
    layer = make(mode, n_in=2, H=2, L=L, bi=bi)
    x = mg.tensor(rng.standard_normal((T, B, 2)), requires_grad=True)
    hs = flat_state(init_state(mode, L * (2 if bi else 1), B, 2, rng))
    inputs = [x, *hs, *layer.parameters()]
    full = T <= 2 and L == 1
    assert mg.gradcheck(lambda x, *a: run(layer, mode, x, a[:len(hs)]), inputs, atol=1e-7, rtol=1e-6,
                        fast=not full, n_probes=2)


@pytest.mark.parametrize("mode", MODES)
def test_gradcheck_layer_zero_initial_state_batch_first_lengths(mode, rng):
    layer = make(mode, n_in=2, H=3, L=2, bi=True, batch_first=True)
    x = mg.tensor(rng.standard_normal((3, 4, 2)), requires_grad=True)

    def f(x, *params):
        out, hn = layer(x, lengths=[4, 1, 3])
        return [out, *flat_state(hn)]

    assert mg.gradcheck(f, [x, *layer.parameters()], atol=1e-7, rtol=1e-6, fast=True)


@pytest.mark.parametrize("mode", MODES)
def test_compiled_and_eager_layer_gradients_equal(mode, rng):
    x_np = rng.standard_normal((7, 3, 2))
    h_np = [0.5 * rng.standard_normal((4, 3, 3)) for _ in range(2)]
    res = []
    for compile in (False, True):
        layer = make(mode, n_in=2, H=3, L=2, bi=True, compile=compile, seed=11)
        x = mg.tensor(x_np, requires_grad=True)
        hs = [mg.tensor(h, requires_grad=True) for h in h_np[:2 if mode == "LSTM" else 1]]
        outs = run(layer, mode, x, hs, lengths=[7, 2, 5])
        loss = sum(((o * o).sum() * (k + 1)) for k, o in enumerate(outs))
        loss.backward()
        res.append([o.data for o in outs] + [x.grad] + [h.grad for h in hs]
                   + [p.grad for p in layer.parameters()])
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13)


# ------------------------------------------------------------------ variable lengths
@pytest.mark.parametrize("bi", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_padded_batch_equals_each_sequence_alone(mode, bi, rng):
    lengths = [3, 6, 1, 4]  # unsorted
    T, B = 6, 4
    x_np = rng.standard_normal((T, B, 2))
    x_np[np.arange(T)[:, None] >= np.array(lengths)[None, :]] = 123.0  # padding garbage must not leak
    h_np = [0.5 * rng.standard_normal((4 if bi else 2, B, 3)) for _ in range(2)]
    weights = [rng.standard_normal((T, B, 3 * (2 if bi else 1))) for _ in range(3)]
    layer = make(mode, n_in=2, H=3, L=2, bi=bi)
    x = mg.tensor(x_np, requires_grad=True)
    hs = [mg.tensor(h, requires_grad=True) for h in h_np[:2 if mode == "LSTM" else 1]]
    out, *fin = run(layer, mode, x, hs, lengths=lengths)
    loss = (out * weights[0]).sum() + sum((f * w[0, :, :3]).sum() for f, w in zip(fin, weights[1:]))
    loss.backward()
    padded = {"x": x.grad, "h": [h.grad for h in hs], "p": {n: p.grad for n, p in layer.named_parameters()}}
    layer.zero_grad()
    for b, n in enumerate(lengths):
        xb = mg.tensor(x_np[:n, b:b + 1], requires_grad=True)
        hb = [mg.tensor(h[:, b:b + 1], requires_grad=True) for h in h_np[:len(hs)]]
        ob, *fb = run(layer, mode, xb, hb)
        np.testing.assert_allclose(out.data[:n, b:b + 1], ob.data, rtol=1e-12, atol=1e-13)
        assert not out.data[n:, b].any()  # outputs at padded steps are zero
        for f, g in zip(fin, fb):
            np.testing.assert_allclose(f.data[:, b:b + 1], g.data, rtol=1e-12, atol=1e-13)
        lb = (ob * weights[0][:n, b:b + 1]).sum() + sum((f * w[0, b:b + 1, :3]).sum()
                                                        for f, w in zip(fb, weights[1:]))
        lb.backward()
        np.testing.assert_allclose(padded["x"][:n, b:b + 1], xb.grad, rtol=1e-10, atol=1e-12)
        assert not padded["x"][n:, b].any()  # padded steps receive no gradient
        for hp, hg in zip(padded["h"], hb):
            np.testing.assert_allclose(hp[:, b:b + 1], hg.grad, rtol=1e-10, atol=1e-12)
    for n, p in layer.named_parameters():  # sum of the per-sequence gradients
        np.testing.assert_allclose(padded["p"][n], p.grad, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", MODES)
def test_lengths_forward_matches_numpy_packed_semantics(mode, rng):
    layer = make(mode, n_in=2, H=3, L=2, bi=True)
    x = rng.standard_normal((5, 3, 2))
    out, hn = layer(x, lengths=np.array([2, 5, 0]))
    params = {n: p.data for n, p in layer.named_parameters()}
    want, h_ref, _ = ref.layer(mode, x, params, 2, True, lengths=[2, 5, 0])
    np.testing.assert_allclose(out.data, want, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(flat_state(hn)[0].data, h_ref, rtol=1e-12, atol=1e-13)


def test_lengths_errors():
    layer = make("GRU")
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, 3\]"):
        layer(np.zeros((3, 2, 2)), lengths=[4, 1])
    with pytest.raises(ValueError, match="2 integers"):
        layer(np.zeros((3, 2, 2)), lengths=[1, 2, 3])
    with pytest.raises(ValueError, match="integers"):
        layer(np.zeros((3, 2, 2)), lengths=[1.5, 2.0])


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("mode", MODES)
def test_errors_name_layer_shapes_and_dtypes(mode):
    layer = make(mode, n_in=2, H=3, L=2)
    with pytest.raises(mg.ShapeError, match=rf"{mode}: input has 4 features .*input_size is 2"):
        layer(np.zeros((3, 1, 4)))
    with pytest.raises(mg.ShapeError, match=rf"{mode}: input must be 3-D"):
        layer(np.zeros((3,)))
    with pytest.raises(TypeError, match=r"float32.*float64"):
        layer(mg.tensor(np.zeros((3, 1, 2), np.float32)))
    bad = np.zeros((1, 1, 3))
    with pytest.raises(mg.ShapeError, match=r"must have shape \(2, 1, 3\)"):
        layer(np.zeros((3, 1, 2)), (bad, bad) if mode == "LSTM" else bad)
    with pytest.raises(ValueError, match="num_layers"):
        MODES[mode](2, 3, num_layers=0)
    with pytest.raises(ValueError, match="dropout"):
        MODES[mode](2, 3, dropout=1.5)
    if mode == "LSTM":
        with pytest.raises(TypeError, match=r"tuple \(h0, c0\)"):
            layer(np.zeros((3, 1, 2)), np.zeros((2, 1, 3)))
    else:
        with pytest.raises(TypeError, match="one tensor h0"):
            layer(np.zeros((3, 1, 2)), (np.zeros((2, 1, 3)), np.zeros((2, 1, 3))))


# ------------------------------------------------------------------ dropout
def test_dropout_between_layers_train_only_and_seeded(rng):
    x = rng.standard_normal((4, 3, 2))
    with pytest.warns(UserWarning, match="no effect"):
        LSTM(2, 3, dropout=0.5)
    layer = make("LSTM", n_in=2, H=3, L=2, dropout=0.5)
    layer.rng = np.random.default_rng(1)
    a = layer(x)[0].data
    layer.rng = np.random.default_rng(1)
    b = layer(x)[0].data
    np.testing.assert_array_equal(a, b)  # seeded
    c = layer(x)[0].data
    assert not np.allclose(a, c)  # a fresh mask
    layer.eval()
    e1, e2 = layer(x)[0].data, layer(x)[0].data
    np.testing.assert_array_equal(e1, e2)
    params = {n: p.data for n, p in layer.named_parameters()}
    np.testing.assert_allclose(e1, ref.layer("LSTM", x, params, 2, False)[0], rtol=1e-12)
    layer.train()
    layer.dropout = 1.0  # the second layer then only sees zeros
    z = layer(x)[0].data
    np.testing.assert_allclose(z[0], z[0][0:1].repeat(3, 0))


# ------------------------------------------------------------------ scopes and graph shape
def _nodes(*roots):
    """Every node the roots depend on, once each."""
    return list({id(n): n for r in roots if r.node is not None for n in toposort(r.node)}.values())


@pytest.mark.parametrize("mode", MODES)
def test_scopes_follow_the_contract(mode, rng):
    layer = make(mode, L=2, bi=True, compile=False)  # the literal graph (compiled: mg.unroll, test_unroll)
    T = 4
    out, hn = layer(mg.tensor(rng.standard_normal((T, 2, 2)), requires_grad=True))
    nodes = _nodes(out, *flat_state(hn))
    step = re.compile(r"^t=(\d+)$")
    by_step = {}
    for n in nodes:
        assert n.scope[0] == mode
        if len(n.scope) == 3:
            assert n.scope[1] in ("layer0", "layer0_reverse", "layer1", "layer1_reverse")
            assert step.match(n.scope[2])
            by_step.setdefault(n.scope[1:], []).append(n.name)
        else:
            assert len(n.scope) in (1, 2)
            if len(n.scope) == 2:
                assert n.scope[1] in ("layer0", "layer0_reverse", "layer1", "layer1_reverse")
    assert len(by_step) == 2 * 2 * T  # every layer, direction and step has a scope
    # the hoisted projection is one matmul per layer and direction, outside the steps
    assert sum(1 for n in nodes if n.name == "MatMul" and len(n.scope) == 2) == 4
    # per step the cell's equations, op by op (the first step of each direction skips h_0 W_hh^T)
    per_step = {"RNN": {"Tanh"}, "GRU": {"Sigmoid", "Tanh", "Mul", "Add", "Split"},
                "LSTM": {"Sigmoid", "Tanh", "Mul", "Add", "Split"}}[mode]
    assert all(per_step <= set(v) and len(v) < 20 for v in by_step.values())
    assert "getitem" not in {n.name for n in nodes}


def test_t0_offsets_step_scopes(rng):
    out, _ = make("GRU", compile=False)(rng.standard_normal((2, 1, 2)), t0=10)
    scopes = {n.scope for n in _nodes(out) if len(n.scope) == 3}
    assert {s[2] for s in scopes} == {"t=10", "t=11"}


@pytest.mark.parametrize("mode", MODES)
def test_graph_grows_linearly_with_T(mode, rng):
    counts = []
    for T in (10, 20, 40):
        out, _ = make(mode, compile=False)(mg.tensor(rng.standard_normal((T, 1, 2)), requires_grad=True))
        counts.append(len(_nodes(out)))
    assert counts[2] - counts[1] == 2 * (counts[1] - counts[0])


def test_float32_stays_float32(rng):
    layer = LSTM(3, 4, num_layers=2, bidirectional=True)
    out, (h, c) = layer(rng.standard_normal((5, 2, 3)).astype(np.float32), lengths=[5, 3])
    assert out.dtype == h.dtype == c.dtype == np.float32
    out.sum().backward()
    assert all(p.grad.dtype == np.float32 for p in layer.parameters())


def test_dtype_follows_module_to(rng):
    layer = GRU(2, 3, num_layers=2).double()
    assert layer.dtype == np.float64
    out, h = layer(rng.standard_normal((4, 1, 2)))
    assert out.dtype == h.dtype == np.float64
    layer.reset_parameters(np.random.default_rng(0))  # keeps the current dtype
    assert all(p.dtype == np.float64 for p in layer.parameters())


@pytest.mark.parametrize("compile", [False, True])
def test_scope_restored_when_a_step_raises(rng, monkeypatch, compile):
    layer = make("GRU", compile=compile)

    def boom(*a, **k):
        raise FloatingPointError("boom")

    monkeypatch.setattr(layer.cell(0), "step", boom)
    with mg.scope("outer"), pytest.raises(FloatingPointError):
        layer(rng.standard_normal((3, 1, 2)))
    assert mg.current_scope() == ()


def test_h_n_pattern_gradient_regression():
    """h_n stacks the final state of layer 0 AND of layer 1 = f(layer 0): the backward order must let
    layer 1 send its gradient to layer 0's state before that is processed (a toposort that marked
    nodes when pushed got this wrong)."""
    x = mg.tensor(np.array([0.3, -0.2]), requires_grad=True)
    a = x.tanh()
    mg.stack([a, a * 2.0]).sum().backward()
    np.testing.assert_allclose(x.grad, 3 * (1 - np.tanh(x.data) ** 2), rtol=1e-12)

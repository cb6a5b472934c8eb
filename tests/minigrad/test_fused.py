"""Fused cells (minigrad/ops/fused.py) against the same cells composed from primitive ops, gradcheck,
kernels (pure-Python ``_name`` and jitted ``name``) against NumPy references, dtypes and errors."""

import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.kernels import cells as K
from minigrad.ops import fused as FU
from minigrad.ops.fused import GRUCell, LSTMCell, RNNCell

JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0")

# ------------------------------------------------------------------ primitive compositions


def lstm_prim(gates, c_prev):
    i, f, g, o = mg.chunk(gates, 4, axis=-1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    c = f * c_prev + i * g
    return o * c.tanh(), c


def gru_prim(gi, gh, h_prev):
    ir, iz, inn = mg.chunk(gi, 3, axis=-1)
    hr, hz, hn = mg.chunk(gh, 3, axis=-1)
    r = (ir + hr).sigmoid()
    z = (iz + hz).sigmoid()
    n = (inn + r * hn).tanh()
    return (1 - z) * n + z * h_prev


def rnn_prim(pre, nonlinearity="tanh"):
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


def _t(rng, shape, dtype=np.float64, scale=1.5, grad=True):
    return mg.tensor((scale * rng.standard_normal(shape)).astype(dtype), requires_grad=grad)


def _grads(fn, inputs, seeds):
    """Forward values and d(sum_k <seed_k, out_k>)/d(input) for every input (None where no grad)."""
    for t in inputs:
        t.grad = None
    outs = fn(*inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    loss = None
    for o, s in zip(outs, seeds):
        if s is not None:
            term = (o * mg.tensor(s)).sum()
            loss = term if loss is None else loss + term
    loss.backward()
    return [o.data.copy() for o in outs], [None if t.grad is None else t.grad.copy() for t in inputs]


def _assert_same(fused, prim, inputs, seeds, tol=1e-12):
    fo, fg = _grads(fused, inputs, seeds)
    po, pg = _grads(prim, inputs, seeds)
    for a, b in zip(fo, po):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    for a, b in zip(fg, pg):
        assert (a is None) == (b is None)
        if a is not None:
            assert a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    return fg


# ------------------------------------------------------------------ fused == primitive (float64)


@pytest.mark.parametrize("B,H", [(1, 1), (3, 5), (4, 8)])
def test_lstm_fused_equals_primitive(rng, B, H):
    gates, c = _t(rng, (B, 4 * H)), _t(rng, (B, H))
    seeds = [rng.standard_normal((B, H)), rng.standard_normal((B, H))]
    g = _assert_same(mg.lstm_cell, lstm_prim, [gates, c], seeds)
    assert all(x is not None and np.abs(x).max() > 0 for x in g)


@pytest.mark.parametrize("used", ["h", "c"])
def test_lstm_only_one_output_used(rng, used):
    gates, c = _t(rng, (3, 12)), _t(rng, (3, 3))
    seed = rng.standard_normal((3, 3))
    seeds = [seed, None] if used == "h" else [None, seed]
    _assert_same(mg.lstm_cell, lstm_prim, [gates, c], seeds)
    # the unused output receives no gradient: backward gets None for it and must cope
    h, c_new = mg.lstm_cell(gates, c)
    (h if used == "h" else c_new).sum().backward()
    assert gates.grad is not None and c.grad is not None


def test_lstm_only_h_used_gives_c_grad_none():
    seen = {}
    orig = LSTMCell.backward

    def spy(ctx, grads):
        seen["grads"] = list(grads)
        return orig(ctx, grads)

    rng = np.random.default_rng(0)
    gates, c = _t(rng, (2, 8)), _t(rng, (2, 2))
    h, _ = mg.lstm_cell(gates, c)
    LSTMCell.backward = staticmethod(spy)
    try:
        h.sum().backward()
    finally:
        LSTMCell.backward = staticmethod(orig)
    assert seen["grads"][0] is not None and seen["grads"][1] is None
    # h-only gradient: dL/dc_prev = (o * (1 - tanh^2 c)) * f
    i, f, _g, o = np.split(1 / (1 + np.exp(-gates.data)), 4, axis=1)
    cn = f * c.data + i * np.tanh(gates.data[:, 4:6])
    np.testing.assert_allclose(c.grad, o * (1 - np.tanh(cn) ** 2) * f, rtol=1e-12)


@pytest.mark.parametrize("B,H", [(1, 1), (3, 5), (4, 8)])
def test_gru_fused_equals_primitive(rng, B, H):
    gi, gh, h = _t(rng, (B, 3 * H)), _t(rng, (B, 3 * H)), _t(rng, (B, H))
    g = _assert_same(mg.gru_cell, gru_prim, [gi, gh, h], [rng.standard_normal((B, H))])
    assert all(x is not None and np.abs(x).max() > 0 for x in g)


@pytest.mark.parametrize("nl", ["tanh", "relu"])
def test_rnn_fused_equals_primitive(rng, nl):
    pre = _t(rng, (4, 7))
    _assert_same(lambda p: mg.rnn_cell(p, nl), lambda p: rnn_prim(p, nl), [pre],
                 [rng.standard_normal((4, 7))])


def test_partial_requires_grad(rng):
    """Inputs that do not require grad get none (e.g. a zero initial state)."""
    gates, c = _t(rng, (2, 8)), _t(rng, (2, 2), grad=False)
    h, cn = mg.lstm_cell(gates, c)
    (h.sum() + cn.sum()).backward()
    assert gates.grad is not None and c.grad is None
    gi, gh, hp = _t(rng, (2, 6)), _t(rng, (2, 6), grad=False), _t(rng, (2, 2), grad=False)
    mg.gru_cell(gi, gh, hp).sum().backward()
    assert gi.grad is not None and gh.grad is None and hp.grad is None


def test_no_grad_records_nothing(rng):
    gates, c = _t(rng, (2, 8)), _t(rng, (2, 2))
    with mg.no_grad():
        h, _cn = mg.lstm_cell(gates, c)
    assert h.node is None and not h.requires_grad


def test_one_node_two_outputs(rng):
    gates, c = _t(rng, (2, 8)), _t(rng, (2, 2))
    h, cn = mg.lstm_cell(gates, c)
    assert h.node is cn.node and h.node.fn is LSTMCell and h.node.n_out == 2
    assert (h._idx, cn._idx) == (0, 1)
    assert h.node.name == "lstm_cell"
    assert mg.gru_cell(_t(rng, (2, 6)), _t(rng, (2, 6)), c).node.fn is GRUCell
    assert mg.rnn_cell(c).node.fn is RNNCell


def _unroll(cell, T, rng, kind):
    """A 3-step recurrence with shared weights, so gradients flow through every step (BPTT)."""
    n_in, H, B = 3, 4, 2
    G = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
    xs = _t(rng, (T, B, n_in), scale=1.0)
    wih, whh = _t(rng, (G * H, n_in), scale=0.5), _t(rng, (G * H, H), scale=0.5)
    b = _t(rng, (G * H,), scale=0.5)

    def run(xs, wih, whh, b):
        h = mg.zeros((B, H), dtype=np.float64)
        c = mg.zeros((B, H), dtype=np.float64)
        out = None
        for x in xs.unbind(0):
            gx = x @ wih.T + b
            if kind == "lstm":
                h, c = cell(gx + h @ whh.T, c)
            elif kind == "gru":
                h = cell(gx, h @ whh.T, h)
            else:
                h = cell(gx + h @ whh.T)
            out = h if out is None else out + h * h
        return out

    return run, [xs, wih, whh, b]


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_unrolled_fused_equals_primitive(rng, kind):
    fused = {"lstm": mg.lstm_cell, "gru": mg.gru_cell, "rnn": mg.rnn_cell}[kind]
    prim = {"lstm": lstm_prim, "gru": gru_prim, "rnn": rnn_prim}[kind]
    run_f, inputs = _unroll(fused, 3, rng, kind)
    run_p, _ = _unroll(prim, 3, rng, kind)
    seed = [rng.standard_normal((2, 4))]
    _assert_same(run_f, run_p, inputs, seed)


# ------------------------------------------------------------------ gradcheck (both versions)


@pytest.mark.parametrize("fn", [mg.lstm_cell, lstm_prim])
def test_gradcheck_lstm(rng, fn):
    assert mg.gradcheck(fn, [_t(rng, (2, 12)), _t(rng, (2, 3))])


@pytest.mark.parametrize("fn", [mg.gru_cell, gru_prim])
def test_gradcheck_gru(rng, fn):
    assert mg.gradcheck(fn, [_t(rng, (2, 9)), _t(rng, (2, 9)), _t(rng, (2, 3))])


@pytest.mark.parametrize("nl", ["tanh", "relu"])
@pytest.mark.parametrize("fused", [True, False])
def test_gradcheck_rnn(rng, nl, fused):
    pre = mg.tensor(rng.uniform(0.1, 2, (3, 4)) * rng.choice([-1, 1], (3, 4)), requires_grad=True)
    fn = (lambda p: mg.rnn_cell(p, nl)) if fused else (lambda p: rnn_prim(p, nl))
    assert mg.gradcheck(fn, [pre])


def test_gradcheck_unrolled_lstm(rng):
    run, inputs = _unroll(mg.lstm_cell, 3, rng, "lstm")
    assert mg.gradcheck(run, inputs, fast=True)


# ------------------------------------------------------------------ dtypes and shapes


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_dtype_preserved(rng, dt):
    gates, c = _t(rng, (2, 8), dt), _t(rng, (2, 2), dt)
    h, cn = mg.lstm_cell(gates, c)
    (h.sum() + cn.sum()).backward()
    assert h.dtype == cn.dtype == gates.grad.dtype == c.grad.dtype == dt
    gi, gh = _t(rng, (2, 6), dt), _t(rng, (2, 6), dt)
    hn = mg.gru_cell(gi, gh, c)
    hn.sum().backward()
    assert hn.dtype == gi.grad.dtype == gh.grad.dtype == dt
    p = _t(rng, (2, 2), dt)
    r = mg.rnn_cell(p, "relu")
    r.sum().backward()
    assert r.dtype == p.grad.dtype == dt


def test_float32_close_to_float64(rng):
    gates, c = _t(rng, (3, 16)), _t(rng, (3, 4))
    g32, c32 = (mg.tensor(t.data.astype(np.float32), requires_grad=True) for t in (gates, c))
    (o64, _), (gr64, _) = _grads(mg.lstm_cell, [gates, c], [np.ones((3, 4)), np.ones((3, 4))])
    (o32, _), (gr32, _) = _grads(mg.lstm_cell, [g32, c32], [np.ones((3, 4)), np.ones((3, 4))])
    np.testing.assert_allclose(o32, o64, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gr32, gr64, rtol=1e-5, atol=1e-6)


def test_unbatched_1d_inputs(rng):
    gates, c = _t(rng, (8,)), _t(rng, (2,))
    _assert_same(mg.lstm_cell, lstm_prim, [gates, c], [rng.standard_normal(2), rng.standard_normal(2)])
    gi, gh, h = _t(rng, (6,)), _t(rng, (6,)), _t(rng, (2,))
    _assert_same(mg.gru_cell, gru_prim, [gi, gh, h], [rng.standard_normal(2)])
    assert mg.lstm_cell(gates, c)[0].shape == (2,)


def test_non_contiguous_inputs(rng):
    big = _t(rng, (8, 3))  # transposed view: (3, 8), not C-contiguous
    c = _t(rng, (3, 2))
    assert not big.T.data.flags.c_contiguous
    fo, fg = _grads(lambda b, c: mg.lstm_cell(b.T, c), [big, c], [np.ones((3, 2)), np.ones((3, 2))])
    po, pg = _grads(lambda b, c: lstm_prim(b.T, c), [big, c], [np.ones((3, 2)), np.ones((3, 2))])
    for a, b in zip(fo + fg, po + pg):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_extreme_values_do_not_overflow():
    x = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0, -1e308, 1e308, 3.0]])
    c = np.array([[0.5, -0.5]])
    with np.errstate(all="raise"):
        h, cn = mg.lstm_cell(mg.tensor(x, requires_grad=True), mg.tensor(c))
    assert np.isfinite(h.data).all() and np.isfinite(cn.data).all()
    prim_h, _prim_c = lstm_prim(mg.tensor(x), mg.tensor(c))
    np.testing.assert_allclose(h.data, prim_h.data, rtol=1e-12)


def test_nan_propagates():
    x = np.zeros((1, 8))
    x[0, 0] = np.nan
    h, c = mg.lstm_cell(mg.tensor(x), mg.tensor(np.zeros((1, 2))))
    assert np.isnan(h.data[0, 0]) and np.isnan(c.data[0, 0]) and np.isfinite(h.data[0, 1])
    r = mg.rnn_cell(mg.tensor(np.array([[np.nan, -1.0, 2.0]])), "relu")
    assert np.isnan(r.data[0, 0]) and r.data[0, 1] == 0 and r.data[0, 2] == 2


# ------------------------------------------------------------------ validation


def test_errors_name_op_shapes_dtypes(rng):
    g, c = _t(rng, (2, 8)), _t(rng, (2, 3))
    with pytest.raises(mg.ShapeError, match=r"lstm_cell: .*gates \(2, 8\) \[float64\].*c_prev \(2, 3\)"):
        mg.lstm_cell(g, c)
    with pytest.raises(mg.ShapeError, match="lstm_cell"):
        mg.lstm_cell(_t(rng, (3, 8)), _t(rng, (2, 2)))  # batch mismatch
    with pytest.raises(mg.ShapeError, match="lstm_cell"):
        mg.lstm_cell(_t(rng, (2, 8)), _t(rng, (2,)))  # ndim mismatch
    with pytest.raises(mg.ShapeError, match="lstm_cell"):
        mg.lstm_cell(_t(rng, (1, 2, 8)), _t(rng, (1, 2, 2)))  # 3-D
    with pytest.raises(TypeError, match=r"lstm_cell: .*share one dtype.*float32.*float64"):
        mg.lstm_cell(_t(rng, (2, 8), np.float32), _t(rng, (2, 2)))
    with pytest.raises(TypeError, match=r"lstm_cell: .*float32 or float64"):
        mg.lstm_cell(mg.tensor(np.zeros((2, 8), np.int64)), mg.tensor(np.zeros((2, 2), np.int64)))
    with pytest.raises(TypeError, match="lstm_cell: gates must be a Tensor"):
        mg.lstm_cell([[1.0] * 8], _t(rng, (1, 2)))
    want = r"gru_cell: expected gi \(B, 3H\), gh \(B, 3H\), h_prev \(B, H\)"
    with pytest.raises(mg.ShapeError, match=want):
        mg.gru_cell(_t(rng, (2, 9)), _t(rng, (2, 6)), _t(rng, (2, 3)))
    with pytest.raises(TypeError, match="gru_cell"):
        mg.gru_cell(_t(rng, (2, 9)), _t(rng, (2, 9), np.float32), _t(rng, (2, 3)))
    with pytest.raises(ValueError, match="rnn_cell: nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"):
        mg.rnn_cell(c, "sigmoid")
    with pytest.raises(mg.ShapeError, match="rnn_cell"):
        mg.rnn_cell(_t(rng, (2, 2, 2)))


def test_ndarray_inputs_accepted(rng):
    h, _c = mg.lstm_cell(rng.standard_normal((2, 8)), rng.standard_normal((2, 2)))
    assert isinstance(h, mg.Tensor) and h.node is None


# ------------------------------------------------------------------ kernels vs NumPy


def _sig(x):
    return 1 / (1 + np.exp(-x))


def np_lstm(gates, c_prev):
    i, f, g, o = np.split(gates, 4, axis=1)
    i, f, g, o = _sig(i), _sig(f), np.tanh(g), _sig(o)
    c = f * c_prev + i * g
    return o * np.tanh(c), c, np.concatenate([i, f, g, o], axis=1), np.tanh(c)


def np_lstm_back(act, c_prev, tc, gh, gc):
    i, f, g, o = np.split(act, 4, axis=1)
    dc = gc + gh * o * (1 - tc ** 2)
    dg = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                         gh * tc * o * (1 - o)], axis=1)
    return dg, dc * f


def np_gru(gi, gh, h_prev):
    H = h_prev.shape[1]
    r = _sig(gi[:, :H] + gh[:, :H])
    z = _sig(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return (1 - z) * n + z * h_prev, np.concatenate([r, z, n, gh[:, 2 * H:]], axis=1)


def np_gru_back(act, h_prev, dh):
    r, z, n, ghn = np.split(act, 4, axis=1)
    dn = dh * (1 - z) * (1 - n ** 2)
    dz = dh * (h_prev - n) * z * (1 - z)
    dr = dn * ghn * r * (1 - r)
    return np.concatenate([dr, dz, dn], 1), np.concatenate([dr, dz, dn * r], 1), dh * z


def _kernels(name):
    """The pure-Python kernel always; the jitted one too when JIT is on."""
    ks = [getattr(K, "_" + name)]
    if not JIT_DISABLED:
        ks.append(getattr(K, name))
    return ks


@pytest.mark.parametrize("dt,tol", [(np.float32, 2e-6), (np.float64, 1e-13)])
@pytest.mark.parametrize("jit", [False, True])
def test_lstm_kernels_vs_numpy(rng, dt, tol, jit):
    ks_f, ks_b = _kernels("lstm_forward"), _kernels("lstm_backward")
    if jit and len(ks_f) == 1:
        pytest.skip("JIT disabled")
    kf, kb = ks_f[int(jit)], ks_b[int(jit)]
    B, H = 3, 5
    gates = (3 * rng.standard_normal((B, 4 * H))).astype(dt)
    c_prev = rng.standard_normal((B, H)).astype(dt)
    h, c, act, tc = (np.empty((B, n * H), dt) for n in (1, 1, 4, 1))
    kf(gates, c_prev, h, c, act, tc)
    for got, ref in zip((h, c, act, tc), np_lstm(gates.astype(np.float64), c_prev.astype(np.float64))):
        assert got.dtype == dt
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
    gh, gc = rng.standard_normal((B, H)).astype(dt), rng.standard_normal((B, H)).astype(dt)
    for has_h, has_c in [(True, True), (True, False), (False, True)]:
        dg, dcp = np.empty((B, 4 * H), dt), np.empty((B, H), dt)
        kb(act, c_prev, tc, gh, gc, has_h, has_c, dg, dcp)
        r = np_lstm_back(*(a.astype(np.float64) for a in (act, c_prev, tc)),
                         gh * has_h, gc * has_c)
        np.testing.assert_allclose(dg, r[0], rtol=tol, atol=tol)
        np.testing.assert_allclose(dcp, r[1], rtol=tol, atol=tol)


@pytest.mark.parametrize("dt,tol", [(np.float32, 2e-6), (np.float64, 1e-13)])
@pytest.mark.parametrize("jit", [False, True])
def test_gru_kernels_vs_numpy(rng, dt, tol, jit):
    ks_f, ks_b = _kernels("gru_forward"), _kernels("gru_backward")
    if jit and len(ks_f) == 1:
        pytest.skip("JIT disabled")
    kf, kb = ks_f[int(jit)], ks_b[int(jit)]
    B, H = 3, 5
    gi, gh = ((3 * rng.standard_normal((B, 3 * H))).astype(dt) for _ in range(2))
    hp = rng.standard_normal((B, H)).astype(dt)
    h, act = np.empty((B, H), dt), np.empty((B, 4 * H), dt)
    kf(gi, gh, hp, h, act)
    rh, ract = np_gru(*(a.astype(np.float64) for a in (gi, gh, hp)))
    np.testing.assert_allclose(h, rh, rtol=tol, atol=tol)
    np.testing.assert_allclose(act, ract, rtol=tol, atol=tol)
    dh = rng.standard_normal((B, H)).astype(dt)
    dgi, dgh, dhp = np.empty((B, 3 * H), dt), np.empty((B, 3 * H), dt), np.empty((B, H), dt)
    kb(act, hp, dh, dgi, dgh, dhp)
    for got, ref in zip((dgi, dgh, dhp), np_gru_back(*(a.astype(np.float64) for a in (act, hp, dh)))):
        assert got.dtype == dt
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("dt,tol", [(np.float32, 2e-6), (np.float64, 1e-13)])
@pytest.mark.parametrize("jit", [False, True])
def test_rnn_kernels_vs_numpy(rng, dt, tol, jit):
    names = ["rnn_tanh_forward", "rnn_tanh_backward", "rnn_relu_forward", "rnn_relu_backward"]
    ks = [_kernels(n) for n in names]
    if jit and len(ks[0]) == 1:
        pytest.skip("JIT disabled")
    tf, tb, rf, rb = (k[int(jit)] for k in ks)
    pre = (2 * rng.standard_normal((4, 6))).astype(dt)
    dh = rng.standard_normal((4, 6)).astype(dt)
    h, d = np.empty_like(pre), np.empty_like(pre)
    tf(pre, h)
    np.testing.assert_allclose(h, np.tanh(pre.astype(np.float64)), rtol=tol, atol=tol)
    tb(h, dh, d)
    np.testing.assert_allclose(d, dh * (1 - h.astype(np.float64) ** 2), rtol=tol, atol=tol)
    rf(pre, h)
    np.testing.assert_array_equal(h, np.maximum(pre, 0))
    rb(h, dh, d)
    np.testing.assert_array_equal(d, np.where(pre > 0, dh, 0))
    assert h.dtype == d.dtype == dt


# ------------------------------------------------------------------ property test over shapes


@given(B=st.integers(1, 4), H=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_property_lstm_gru_match_primitive(B, H, seed):
    rng = np.random.default_rng(seed)
    gates, c = _t(rng, (B, 4 * H)), _t(rng, (B, H))
    _assert_same(mg.lstm_cell, lstm_prim, [gates, c], [rng.standard_normal((B, H))] * 2)
    gi, gh = _t(rng, (B, 3 * H)), _t(rng, (B, 3 * H))
    _assert_same(mg.gru_cell, gru_prim, [gi, gh, c], [rng.standard_normal((B, H))])


# ------------------------------------------------------------------ recurrent product folded in


def _rec_inputs(rng, G, B=3, H=4, dt=np.float64):
    return _t(rng, (B, G * H), dt), _t(rng, (B, H), dt), _t(rng, (G * H, H), dt, scale=0.7)


def test_lstm_rec_equals_primitive(rng):
    gx, h, w = _rec_inputs(rng, 4)
    c = _t(rng, (3, 4))

    def fused(gx, c, h, w):
        return mg.lstm_cell(gx, c, h_prev=h, w_hh=w)

    def prim(gx, c, h, w):
        return lstm_prim(gx + h @ w.T, c)

    seeds = [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))]
    g = _assert_same(fused, prim, [gx, c, h, w], seeds)
    assert all(x is not None for x in g)
    _assert_same(fused, prim, [gx, c, h, w], [seeds[0], None])
    assert mg.gradcheck(fused, [gx, c, h, w])
    out = fused(gx, c, h, w)
    assert out[0].node.fn.__name__ == "LSTMCellRec" and out[0].node.name == "lstm_cell"
    assert len(out[0].node.inputs) == 4


@pytest.mark.parametrize("bias", [True, False])
def test_gru_rec_equals_primitive(rng, bias):
    gi, h, w = _rec_inputs(rng, 3)
    b = _t(rng, (12,))
    inputs = [gi, h, w, b] if bias else [gi, h, w]

    def fused(gi, h, w, b=None):
        return mg.gru_cell(gi, None, h, w_hh=w, b_hh=b)

    def prim(gi, h, w, b=None):
        gh = h @ w.T if b is None else h @ w.T + b
        return gru_prim(gi, gh, h)

    g = _assert_same(fused, prim, inputs, [rng.standard_normal((3, 4))])
    assert all(x is not None for x in g)
    assert mg.gradcheck(fused, inputs)


@pytest.mark.parametrize("nl", ["tanh", "relu"])
def test_rnn_rec_equals_primitive(rng, nl):
    px, h, w = _rec_inputs(rng, 1)

    def fused(px, h, w):
        return mg.rnn_cell(px, nl, h_prev=h, w_hh=w)

    def prim(px, h, w):
        return rnn_prim(px + h @ w.T, nl)

    _assert_same(fused, prim, [px, h, w], [rng.standard_normal((3, 4))])
    assert mg.gradcheck(fused, [px, h, w])


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_rec_unrolled_bptt_equals_primitive(rng, kind):
    """A 4-step recurrence with one node per step vs the primitive graph (shared W_hh across steps)."""
    G = {"lstm": 4, "gru": 3, "rnn": 1}[kind]
    T, B, H = 4, 2, 3
    gxs = _t(rng, (T, B, G * H))
    w = _t(rng, (G * H, H), scale=0.7)

    def run(gxs, w, fused):
        h = mg.tensor(np.zeros((B, H)))
        c = mg.tensor(np.zeros((B, H)))
        total = None
        for gx in gxs.unbind(0):
            if kind == "lstm":
                h, c = mg.lstm_cell(gx, c, h_prev=h, w_hh=w) if fused else lstm_prim(gx + h @ w.T, c)
            elif kind == "gru":
                h = mg.gru_cell(gx, None, h, w_hh=w) if fused else gru_prim(gx, h @ w.T, h)
            else:
                h = mg.rnn_cell(gx, h_prev=h, w_hh=w) if fused else rnn_prim(gx + h @ w.T)
            total = h if total is None else total + h
        return total

    _assert_same(lambda a, b: run(a, b, True), lambda a, b: run(a, b, False), [gxs, w],
                 [rng.standard_normal((B, H))])


@pytest.mark.parametrize("dt", [np.float32, np.float64])
def test_rec_dtype_preserved(rng, dt):
    gx, h, w = _rec_inputs(rng, 4, dt=dt)
    c = _t(rng, (3, 4), dt)
    hn, cn = mg.lstm_cell(gx, c, h_prev=h, w_hh=w)
    (hn.sum() + cn.sum()).backward()
    assert hn.dtype == cn.dtype == gx.grad.dtype == h.grad.dtype == w.grad.dtype == dt


def test_rec_errors(rng):
    gx, h, w = _rec_inputs(rng, 4)
    c = _t(rng, (3, 4))
    with pytest.raises(TypeError, match="lstm_cell: h_prev and w_hh go together"):
        mg.lstm_cell(gx, c, h_prev=h)
    with pytest.raises(mg.ShapeError, match=r"lstm_cell: expected h_prev \(3, 4\), w_hh \(16, 4\)"):
        mg.lstm_cell(gx, c, h_prev=h, w_hh=w.T)
    with pytest.raises(TypeError, match="lstm_cell: h_prev/w_hh/b_hh must have the dtype"):
        mg.lstm_cell(gx, c, h_prev=h, w_hh=mg.tensor(w.data.astype(np.float32)))
    with pytest.raises(mg.ShapeError, match="lstm_cell: h_prev/w_hh need 2-D"):
        mg.lstm_cell(_t(rng, (16,)), _t(rng, (4,)), h_prev=_t(rng, (4,)), w_hh=w)
    gi, hg, wg = _rec_inputs(rng, 3)
    with pytest.raises(TypeError, match="gru_cell: pass either gh, or gh=None with w_hh"):
        mg.gru_cell(gi, gi, hg, w_hh=wg)
    with pytest.raises(mg.ShapeError, match=r"gru_cell: expected .*b_hh \(12,\)"):
        mg.gru_cell(gi, None, hg, w_hh=wg, b_hh=_t(rng, (4,)))
    with pytest.raises(TypeError, match="gru_cell: h_prev and w_hh go together"):
        mg.gru_cell(gi, None, hg)
    with pytest.raises(mg.ShapeError, match="rnn_cell"):
        mg.rnn_cell(_t(rng, (3, 4)), h_prev=_t(rng, (2, 4)), w_hh=_t(rng, (4, 4)))


# ------------------------------------------------------------------ the vectorised (large-array) path


@pytest.fixture(params=["scalar", "vector"])
def path(request, monkeypatch):
    """Run a test with every step below (scalar Numba kernel) or above (NumPy SIMD exp/tanh + Numba
    arithmetic) the size threshold."""
    monkeypatch.setattr(FU, "VECTOR_MIN", 10**9 if request.param == "scalar" else 0)
    return request.param


def test_paths_match_primitive(rng, path):
    gates, c = _t(rng, (3, 16)), _t(rng, (3, 4))
    seeds = [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))]
    _assert_same(mg.lstm_cell, lstm_prim, [gates, c], seeds)
    gi, gh = _t(rng, (3, 12)), _t(rng, (3, 12))
    _assert_same(mg.gru_cell, gru_prim, [gi, gh, c], seeds[:1])
    for nl in ["tanh", "relu"]:
        _assert_same(lambda p, nl=nl: mg.rnn_cell(p, nl), lambda p, nl=nl: rnn_prim(p, nl), [c], seeds[:1])
    assert mg.gradcheck(mg.lstm_cell, [gates, c])
    assert mg.gradcheck(mg.gru_cell, [gi, gh, c])


@pytest.mark.parametrize("dt,tol", [(np.float32, 1e-6), (np.float64, 1e-14)])
def test_scalar_and_vector_paths_agree(rng, monkeypatch, dt, tol):
    gates, c = _t(rng, (5, 24), dt, scale=4), _t(rng, (5, 6), dt)
    gi, gh = _t(rng, (5, 18), dt, scale=4), _t(rng, (5, 18), dt, scale=4)
    seeds = [rng.standard_normal((5, 6)), rng.standard_normal((5, 6))]
    res = {}
    for name, vmin in [("scalar", 10**9), ("vector", 0)]:
        monkeypatch.setattr(FU, "VECTOR_MIN", vmin)
        res[name] = (_grads(mg.lstm_cell, [gates, c], seeds), _grads(mg.gru_cell, [gi, gh, c], seeds[:1]),
                     _grads(mg.rnn_cell, [c], seeds[:1]))
    for (o1, g1), (o2, g2) in zip(res["scalar"], res["vector"]):
        for a, b in zip(o1 + g1, o2 + g2):
            assert a.dtype == b.dtype == dt
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_vector_path_extremes(monkeypatch):
    monkeypatch.setattr(FU, "VECTOR_MIN", 0)
    x = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0, -1e308, 1e308, -np.inf]])
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # exp underflows to 0: benign
        h, c = mg.lstm_cell(mg.tensor(x), mg.tensor(np.array([[0.5, -0.5]])))
        r = mg.gru_cell(mg.tensor(x[:, :6]), mg.tensor(-x[:, :6]), mg.tensor(np.array([[0.5, -0.5]])))
    assert np.isfinite(h.data).all() and np.isfinite(c.data).all() and np.isfinite(r.data).all()
    x[0, 0] = np.nan
    h, _ = mg.lstm_cell(mg.tensor(x), mg.tensor(np.zeros((1, 2))))
    assert np.isnan(h.data[0, 0]) and np.isfinite(h.data[0, 1])


@pytest.mark.parametrize("dt,tol", [(np.float32, 2e-6), (np.float64, 1e-13)])
@pytest.mark.parametrize("jit", [False, True])
def test_pre_kernels_vs_numpy(rng, dt, tol, jit):
    names = ["lstm_forward_pre", "gru_forward_pre", "gru_forward_post"]
    ks = [_kernels(n) for n in names]
    if jit and len(ks[0]) == 1:
        pytest.skip("JIT disabled")
    lpre, gpre, gpost = (k[int(jit)] for k in ks)
    B, H = 3, 4
    gates = (3 * rng.standard_normal((B, 4 * H))).astype(dt)
    c_prev = rng.standard_normal((B, H)).astype(dt)
    act, c = np.empty((B, 4 * H), dt), np.empty((B, H), dt)
    lpre(gates, np.exp(-np.abs(gates)), np.tanh(gates[:, 2 * H:3 * H]), c_prev, act, c)
    _, rc, ract, _ = np_lstm(gates.astype(np.float64), c_prev.astype(np.float64))
    np.testing.assert_allclose(act, ract, rtol=tol, atol=tol)
    np.testing.assert_allclose(c, rc, rtol=tol, atol=tol)
    gi, gh = ((3 * rng.standard_normal((B, 3 * H))).astype(dt) for _ in range(2))
    act = np.empty((B, 4 * H), dt)
    gpre(gi, gh, np.exp(-np.abs(gi[:, :2 * H] + gh[:, :2 * H])), act)
    rh, ract = np_gru(*(a.astype(np.float64) for a in (gi, gh, c_prev)))
    pre_n = gi[:, 2 * H:].astype(np.float64) + ract[:, :H] * gh[:, 2 * H:]
    np.testing.assert_allclose(act[:, :2 * H], ract[:, :2 * H], rtol=tol, atol=tol)
    np.testing.assert_allclose(act[:, 2 * H:3 * H], pre_n, rtol=tol, atol=tol)
    act[:, 2 * H:3 * H] = np.tanh(act[:, 2 * H:3 * H])
    h = np.empty((B, H), dt)
    gpost(act, c_prev, h)
    np.testing.assert_allclose(h, rh, rtol=tol, atol=tol)
    assert act.dtype == h.dtype == dt

"""The backward pass: accumulation, long chains, multi-output ops, PyTorch-like autograd semantics
(no_grad, detach, retain_grad, hooks, retain_graph), freeing of the graph, anomaly mode, custom ops."""

from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.ops import shape as shape_ops


def leaf(data, dtype=np.float64):
    return mg.tensor(np.array(data, dtype), requires_grad=True)


# ----------------------------------------------------------------------- accumulation
def test_accumulation_b_is_a_plus_a() -> None:
    a = leaf([1.0, -2.0])
    b = a + a
    c = b + b
    c.sum().backward()
    np.testing.assert_array_equal(a.grad, [4.0, 4.0])


def test_accumulation_x_times_a() -> None:
    a, b = leaf([1.5, -2.0]), leaf([0.5, 3.0])
    x = a + b
    y = x * a  # y = a^2 + ab:  dy/da = 2a + b,  dy/db = a
    y.sum().backward()
    np.testing.assert_allclose(a.grad, 2 * a.data + b.data)
    np.testing.assert_allclose(b.grad, a.data)
    assert mg.gradcheck(lambda a, b: (a + b) * a, [a, b])


def test_weight_shared_over_50_steps_matches_hand_derivation() -> None:
    # h_t = w * h_{t-1}: h_50 = w^50 h_0, so d h_50 / dw = 50 w^49 h_0 and d h_50 / d h_0 = w^50
    w, h0 = leaf(1.01), leaf(0.7)
    h = h0
    for _ in range(50):
        h = w * h
    h.backward()
    np.testing.assert_allclose(w.grad, 50 * 1.01 ** 49 * 0.7, rtol=1e-12)
    np.testing.assert_allclose(h0.grad, 1.01 ** 50, rtol=1e-12)


def test_shared_matrix_weight_recurrence_50_steps_gradcheck() -> None:
    rng = np.random.default_rng(0)
    W = mg.tensor(rng.standard_normal((3, 3)) * 0.5, requires_grad=True)
    U = mg.tensor(rng.standard_normal((2, 3)) * 0.5, requires_grad=True)
    xs = mg.tensor(rng.standard_normal((50, 2)), requires_grad=True)

    def rnn(W, U, xs):
        h = mg.zeros(3, dtype="float64")
        for x in xs.unbind(0):
            h = (h @ W + x @ U).tanh()
        return h.sum()

    assert mg.gradcheck(rnn, [W, U, xs], fast=True)


# ----------------------------------------------------------------------- long chains
def test_100k_op_chain_without_recursion() -> None:
    limit = sys.getrecursionlimit()
    x = leaf(0.5)
    c = mg.tensor(1.00001, dtype="float64")
    y = x
    for _ in range(50_000):
        y = -(y * c)
    y.backward()  # y = (-c)^50000 x
    np.testing.assert_allclose(x.grad, 1.00001 ** 50_000, rtol=1e-9)
    assert sys.getrecursionlimit() == limit
    del y  # freeing a 100,000-deep graph must not overflow either
    assert sys.getrecursionlimit() == limit


def test_10k_step_tanh_recurrence_matches_manual_bptt() -> None:
    limit = sys.getrecursionlimit()
    T = 10_000
    rng = np.random.default_rng(1)
    xs_np = rng.standard_normal(T) * 0.5
    w = leaf(0.8)
    xs = mg.tensor(xs_np, requires_grad=True)
    h = mg.tensor(0.0, dtype="float64")
    for x_t in xs.unbind(0):
        h = (w * h + x_t).tanh()
    h.backward()
    assert sys.getrecursionlimit() == limit
    # manual BPTT: forward keeps every h_t, backward runs the chain rule step by step
    hs = np.empty(T + 1)
    hs[0] = 0.0
    for t in range(T):
        hs[t + 1] = np.tanh(0.8 * hs[t] + xs_np[t])
    gh, gw, gx = 1.0, 0.0, np.empty(T)
    for t in range(T - 1, -1, -1):
        gpre = gh * (1 - hs[t + 1] ** 2)
        gw += gpre * hs[t]
        gx[t] = gpre
        gh = gpre * 0.8
    np.testing.assert_allclose(h.item(), hs[-1], rtol=1e-12)
    np.testing.assert_allclose(w.grad, gw, rtol=1e-10)
    np.testing.assert_allclose(xs.grad, gx, rtol=1e-10, atol=1e-300)


# ----------------------------------------------------------------------- multi-output ops
def test_unbind_sequence_uses_one_split_backward(monkeypatch) -> None:
    calls = []
    original = shape_ops.Split.backward

    def counting(ctx, grads):
        calls.append(len(grads))
        return original(ctx, grads)

    monkeypatch.setattr(shape_ops.Split, "backward", staticmethod(counting))
    T = 200
    seq = mg.tensor(np.arange(T * 2, dtype=np.float64).reshape(T, 2), requires_grad=True)
    total = None
    for t, step in enumerate(seq.unbind(0)):
        term = step * float(t)
        total = term if total is None else total + term
    total.sum().backward()
    assert calls == [T]  # ONE backward of the split, receiving all T step gradients
    np.testing.assert_array_equal(seq.grad, np.repeat(np.arange(T, dtype=np.float64)[:, None], 2, axis=1))


def test_iterating_a_tensor_is_one_unbind() -> None:
    x = leaf(np.arange(6.0).reshape(3, 2))
    rows = list(x)
    assert len(rows) == 3 and all(r.node is rows[0].node for r in rows)
    assert rows[0].node.n_out == 3
    (rows[2] * 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0], [0, 0], [2, 2]])


def test_split_only_some_outputs_used() -> None:
    x = leaf(np.arange(12.0).reshape(3, 4))
    _a, b, _c = mg.split(x, [1, 2, 1], dim=1)
    (b * 3).sum().backward()  # a and c never used: their part of the gradient is zero
    np.testing.assert_array_equal(x.grad, np.array([[0, 3, 3, 0]] * 3, dtype=float))
    x.grad = None
    _h1, h2 = x.chunk(2, axis=0)  # rows [0, 1] and [2]
    (h2 * h2).sum().backward()
    np.testing.assert_array_equal(x.grad, np.vstack([np.zeros((2, 4)), 2 * x.data[2:]]))


def test_multi_output_used_twice_accumulates() -> None:
    x = leaf([1.0, 2.0, 3.0, 4.0])
    a, b = x.split(2)
    (a * b + a * 2 + b).sum().backward()  # d/da = b + 2, d/db = a + 1
    np.testing.assert_array_equal(x.grad, [5.0, 6.0, 2.0, 3.0])


# ----------------------------------------------------------------------- grad modes and detach
def test_no_grad_context_and_decorator_and_enable_grad() -> None:
    x = leaf([1.0, 2.0])
    with mg.no_grad():
        assert not mg.is_grad_enabled()
        y = x * 2
        with mg.enable_grad():
            assert mg.is_grad_enabled()
            z = x * 3
        w = x * 4
    assert mg.is_grad_enabled()
    assert not y.requires_grad and y.node is None and not w.requires_grad
    assert z.requires_grad and z.node is not None

    @mg.no_grad()
    def f(t):
        return t * t

    out = f(x)
    assert not out.requires_grad and mg.is_grad_enabled()
    np.testing.assert_array_equal(out.data, [1.0, 4.0])


def test_no_grad_restores_mode_after_exception() -> None:
    with pytest.raises(ZeroDivisionError), mg.no_grad():
        1 / 0
    assert mg.is_grad_enabled()


def test_detach_shares_data_and_cuts_graph() -> None:
    x = leaf([1.0, 2.0])
    y = x * 2
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.node is None
    assert np.shares_memory(d.data, y.data)
    z = d * x  # d is a constant here: dz/dx = d
    z.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])
    d.data[0] = 10.0  # shared storage, as in PyTorch
    assert y.data[0] == 10.0


def test_requires_grad_propagates_and_leaf_flags() -> None:
    a = mg.tensor([1.0, 2.0])
    b = leaf([3.0, 4.0], np.float32)
    assert not (a * 2).requires_grad
    c = a * b
    assert c.requires_grad and not c.is_leaf and b.is_leaf and a.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        (a * 2).sum().backward()


# ----------------------------------------------------------------------- retain_grad, hooks, repeat backward
def test_retain_grad_on_non_leaf() -> None:
    x = leaf([1.0, 2.0])
    y = x * 3
    z = y * y
    y.retain_grad()
    y.retain_grad()  # idempotent
    z.sum().backward()
    np.testing.assert_array_equal(y.grad, 2 * y.data)
    np.testing.assert_array_equal(x.grad, 6 * y.data)
    assert z.grad is None  # not retained


def test_register_hook_on_leaf_replaces_grad_and_remove() -> None:
    x = leaf([1.0, 2.0])
    seen = []

    def double(g):
        seen.append(g.copy())
        return g * 2

    handle = x.register_hook(double)
    (x * 3).sum().backward()
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])
    handle.remove()
    handle.remove()  # removing twice is harmless
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])
    assert len(seen) == 1


def test_register_hook_on_non_leaf_changes_upstream_grads() -> None:
    x = leaf([1.0, 2.0])
    y = x * x
    seen = []
    y.register_hook(lambda g: seen.append(g.copy()))  # returns None: observe only
    h = y.register_hook(lambda g: g * 0 + 1.0)  # replace dL/dy by ones
    (y * 5).sum().backward()
    np.testing.assert_array_equal(seen[0], [5.0, 5.0])
    np.testing.assert_array_equal(x.grad, 2 * x.data)  # 1 * dy/dx
    h.remove()
    x.grad = None
    y2 = x * x
    (y2 * 5).sum().backward()
    np.testing.assert_array_equal(x.grad, 10 * x.data)
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).register_hook(lambda g: g)


def test_hook_on_one_output_of_split() -> None:
    x = leaf([1.0, 2.0, 3.0])
    a, b, c = x.unbind(0)
    b.register_hook(lambda g: g * 10)
    (a + b + c).backward()
    np.testing.assert_array_equal(x.grad, [1.0, 10.0, 1.0])


def test_leaf_grad_accumulates_across_backward_calls_and_zero_grad() -> None:
    x = leaf([1.0, 2.0])
    (x * 2).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad, [4.0, 6.0])
    x.zero_grad()
    assert x.grad is None
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_backward_retain_graph_twice_doubles() -> None:
    x = leaf([1.0, -2.0])
    y = (x.tanh() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward(retain_graph=True)
    np.testing.assert_allclose(x.grad, 2 * first)
    y.backward()  # a third time frees it
    np.testing.assert_allclose(x.grad, 3 * first)
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_backward_twice_without_retain_graph_is_clear_error() -> None:
    x = leaf([1.0, 2.0])
    y = (x.exp() * 2).sum()
    y.backward()
    mul = y.node.inputs[0].node
    assert mul.released  # Mul saved arrays: freed; Sum saved only shapes (kept, as in PyTorch)
    assert not y.node.released
    with pytest.raises(RuntimeError, match=r"second time.*retain_graph=True"):
        y.backward()


def test_graph_shared_by_two_roots_second_backward_errors() -> None:
    x = leaf([1.0, 2.0])
    h = x.sigmoid()
    h.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (h * 2).sum().backward()


def test_second_backward_through_nodes_that_saved_no_arrays_works() -> None:
    """PyTorch's rule: only freed saved tensors forbid a second backward (e.g. a shared ``w.T``)."""
    w = leaf(np.arange(6.0).reshape(2, 3))
    wt = w.T
    (wt * 2).sum().backward()
    (wt * 3).sum().backward()
    np.testing.assert_array_equal(w.grad, np.full((2, 3), 5.0))


def test_one_tuple_forward_is_a_multi_output_op() -> None:
    class Twice(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return (2 * x,)

        @staticmethod
        def backward(ctx, grads):
            assert isinstance(grads, list) and len(grads) == 1
            return 2 * grads[0]

    x = leaf([1.0, 2.0])
    (y,) = Twice.apply(x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 2.0])


def test_backward_with_explicit_grad() -> None:
    x = leaf([[1.0, 2.0], [3.0, 4.0]], np.float32)
    y = x * x
    y.backward(np.array([[1.0, 0.0], [0.5, 2.0]]))  # float64 seed is cast to y's dtype
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [[2.0, 0.0], [3.0, 16.0]])
    x.grad = None
    (x * 1).backward(mg.ones(2, 2))
    np.testing.assert_array_equal(x.grad, np.ones((2, 2)))
    x.grad = None
    x.sum().backward()
    (x * 1).sum().backward()
    np.testing.assert_array_equal(x.grad, 2 * np.ones((2, 2)))


def test_backward_on_leaf_and_mg_backward() -> None:
    x = leaf(3.0)
    x.backward()
    assert x.grad == 1.0
    y = leaf([1.0, 2.0])
    mg.backward((y * y).sum())
    np.testing.assert_array_equal(y.grad, [2.0, 4.0])


def test_backward_does_not_touch_upstream_buffers() -> None:
    """Adding into gradient buffers in place must never modify a user's seed or a retained grad."""
    x = leaf([1.0, 2.0])
    y = x * 1
    y.retain_grad()
    seed = np.array([1.0, 1.0])
    z = y + y + y  # add returns its gradient unchanged: aliasing must not leak
    z.backward(seed)
    np.testing.assert_array_equal(seed, [1.0, 1.0])
    np.testing.assert_array_equal(y.grad, [3.0, 3.0])
    np.testing.assert_array_equal(x.grad, [3.0, 3.0])
    g_before = x.grad.copy()
    (x * 2).sum().backward()
    np.testing.assert_array_equal(x.grad, g_before + 2)


# ----------------------------------------------------------------------- graph freeing and cycles
def test_saved_arrays_freed_after_backward() -> None:
    x = leaf(np.ones(3))
    y = x.exp()
    z = (y * x).sum()
    mul = z.node.inputs[0].node
    assert mul.__dict__  # the saved operands
    z.backward()
    assert mul.released and not {k for k in mul.__dict__ if k not in ("released", "hooks")}


def test_no_reference_cycles_outlive_the_graph() -> None:
    gc.collect()
    gc.disable()
    try:
        x = leaf(np.ones((2, 3)))
        w = leaf(np.ones((3, 2)))
        h = (x @ w).tanh()
        parts = h.unbind(0)
        mid = parts[0] * parts[1]
        mid.retain_grad()
        mid.register_hook(lambda g: g)
        loss = mid.sigmoid().sum()
        refs = [weakref.ref(t) for t in (h, parts[0], parts[1], mid, loss)]
        nodes = [weakref.ref(t.node) for t in (h, mid, loss)]
        loss.backward()
        del h, parts, mid, loss
        assert all(r() is None for r in refs), "intermediate tensors kept alive by a cycle"
        assert all(r() is None for r in nodes), "nodes kept alive by a cycle"
        # the same without running backward (the saved arrays are still attached)
        y = (x * 2).exp().sum()
        ry, rn = weakref.ref(y), weakref.ref(y.node)
        del y
        assert ry() is None and rn() is None
        # and after retain_graph=True
        y = (x * 2).exp().sum()
        y.backward(retain_graph=True)
        ry, rn = weakref.ref(y), weakref.ref(y.node)
        del y
        assert ry() is None and rn() is None
    finally:
        gc.enable()


# ----------------------------------------------------------------------- scopes
def test_scope_is_recorded_on_nodes() -> None:
    x = leaf([1.0])
    with mg.scope("LSTM"), mg.scope("layer0"):
        with mg.scope("t=3"):
            y = x * 2
            c = mg.tensor([1.0])
        z = y + 1
    assert y.node.scope == ("LSTM", "layer0", "t=3") and y.scope == y.node.scope
    assert c.scope == ("LSTM", "layer0", "t=3")
    assert z.node.scope == ("LSTM", "layer0")
    assert (x * 1).node.scope == ()
    with pytest.raises(TypeError, match="scope"):
        with mg.scope(3):
            pass


def test_one_scope_object_nests_restores_on_error_and_decorates() -> None:
    s = mg.scope("enc")
    with s, s:
        assert mg.current_scope() == ("enc", "enc")
    with pytest.raises(ValueError), s:
        raise ValueError
    assert mg.current_scope() == ()

    @mg.scope("dec")
    def f(x):
        return x * 2

    assert f(leaf([1.0])).node.scope == ("dec",) and mg.current_scope() == ()


# ----------------------------------------------------------------------- anomaly mode
def test_anomaly_off_by_default() -> None:
    with np.errstate(invalid="ignore"):
        y = mg.log(leaf([-1.0]))  # NaN, silently (as NumPy)
    assert np.isnan(y.data).all()


def test_anomaly_forward_names_op_and_line() -> None:
    x = leaf([1.0, -1.0])
    with np.errstate(invalid="ignore"), mg.detect_anomaly():
        ok = x * 2  # finite: fine
        with pytest.raises(FloatingPointError) as info:
            mg.log(x)  # the offending line
    msg = str(info.value)
    assert "forward" in msg and "'Log'" in msg and "NaN" in msg
    assert "test_autograd.py" in msg and "mg.log(x)  # the offending line" in msg
    assert ok.shape == (2,)
    # off again after the block
    with np.errstate(invalid="ignore"):
        mg.log(x)


def test_anomaly_backward_names_op_and_creation_line() -> None:
    x = leaf([0.0, 4.0])
    with np.errstate(divide="ignore"), mg.detect_anomaly():
        y = x.sqrt()  # created here; backward at 0 is inf
        loss = (y * 3).sum()
        with pytest.raises(FloatingPointError) as info:
            loss.backward()
    msg = str(info.value)
    assert "backward" in msg and "'Sqrt'" in msg and "inf" in msg
    assert "test_autograd.py" in msg and "y = x.sqrt()  # created here" in msg


def test_anomaly_switch_function_form() -> None:
    x = leaf([-1.0])
    mg.detect_anomaly(True)
    try:
        with np.errstate(invalid="ignore"), pytest.raises(FloatingPointError, match="Sqrt"):
            x.sqrt()
    finally:
        mg.detect_anomaly(False)
    with np.errstate(invalid="ignore"):
        assert np.isnan(x.sqrt().data).all()


# ----------------------------------------------------------------------- user-defined ops
class Cube(mg.Function):
    """y = x^3;  dL/dx = 3 x^2 g."""

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        return 3 * ctx.x ** 2 * g


class ScaledAdd(mg.Function):
    """z = a + k b (broadcasting, k a constant parameter);  dL/da = g, dL/db = k g (unbroadcast)."""

    @staticmethod
    def forward(ctx, a, b, *, k):
        ctx.sa, ctx.sb, ctx.k = a.shape, b.shape, k
        return a + k * b

    @staticmethod
    def backward(ctx, g):
        na, nb = ctx.needs_input_grad
        return ((mg.unbroadcast(g, ctx.sa) if na else None),
                (mg.unbroadcast(ctx.k * g, ctx.sb) if nb else None))


def test_user_defined_op_passes_gradcheck() -> None:
    x = leaf([[0.5, -1.2, 2.0]])
    y = Cube.apply(x)
    assert y.node.fn is Cube and y.node.name == "Cube"
    np.testing.assert_allclose(y.data, x.data ** 3)
    assert mg.gradcheck(lambda t: Cube.apply(t), [x])
    b = leaf([[1.0], [2.0]])
    assert mg.gradcheck(lambda a, b: ScaledAdd.apply(Cube.apply(a), b, k=0.5), [x, b])
    c = mg.tensor(np.ones((2, 1)))  # needs_input_grad lets an op skip what nobody wants
    ScaledAdd.apply(x, c, k=2.0).sum().backward()
    assert c.grad is None


class TwoOut(mg.Function):
    """(u, v) = (2 x, x^2);  dL/dx = 2 g_u + 2 x g_v  (a missing output gradient arrives as None)."""

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return 2 * x, x * x

    @staticmethod
    def backward(ctx, grads):
        gu, gv = grads
        seen_grads.append((gu is None, gv is None))
        out = np.zeros_like(ctx.x)
        if gu is not None:
            out = out + 2 * gu
        if gv is not None:
            out = out + 2 * ctx.x * gv
        return out


seen_grads: list = []


def test_user_defined_multi_output_op() -> None:
    x = leaf([0.5, -1.5])
    u, v = TwoOut.apply(x)
    assert u.node is v.node and u.node.n_out == 2 and (u._idx, v._idx) == (0, 1)
    seen_grads.clear()
    (v * 3).sum().backward()
    assert seen_grads == [(True, False)]
    np.testing.assert_allclose(x.grad, 6 * x.data)
    assert mg.gradcheck(lambda t: TwoOut.apply(t), [x])
    assert mg.gradcheck(lambda t: TwoOut.apply(t)[0].tanh(), [x])


def test_needs_input_grad() -> None:
    seen = []

    class Probe(mg.Function):
        @staticmethod
        def forward(ctx, a, b):
            seen.append(ctx.needs_input_grad)
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g, g

    Probe.apply(leaf([1.0]), mg.tensor([2.0]))
    assert seen == [(True, False)]


# ----------------------------------------------------------------------- random graphs
GRAPH_SHAPES = [(), (3, 1), (1, 4), (3, 4)]


def _graph_ops():
    def unbind_restack(x):
        if x.ndim == 0 or x.shape[0] != 3:
            return x * 1.5
        u = x.unbind(0)
        return mg.stack([u[2], u[0], u[0]])  # outputs of one multi-output node, one used twice

    def gather(x):
        return x[[0, 0, 2]] if x.ndim and x.shape[0] == 3 else -x

    def reduce_keep(x):
        return x.mean(axis=-1, keepdims=True) if x.ndim == 2 else x * x

    return {
        "add": (2, lambda a, b: a + b), "sub": (2, lambda a, b: a - b), "mul": (2, lambda a, b: a * b),
        "max": (2, lambda a, b: mg.maximum(a, b * 0.5 + 0.3)),
        "tanh": (1, mg.tanh), "sigmoid": (1, mg.sigmoid), "square": (1, lambda a: a * a),
        "unbind_restack": (1, unbind_restack), "gather": (1, gather), "reduce_keep": (1, reduce_keep),
    }


GRAPH_OPS = _graph_ops()


@given(data=st.data())
def test_random_graphs_with_reuse_match_finite_differences(data) -> None:
    """Random DAGs in which nodes are reused many times (accumulation, in-place buffer adds, aliasing
    from ops that pass gradients through unchanged, multi-output nodes): backward == central differences."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
    leaves = [mg.tensor(rng.uniform(-1, 1, s), requires_grad=True)
              for s in data.draw(st.lists(st.sampled_from(GRAPH_SHAPES), min_size=1, max_size=3))]
    steps = data.draw(st.lists(st.tuples(st.sampled_from(sorted(GRAPH_OPS)), st.integers(0, 99),
                                         st.integers(0, 99)), min_size=1, max_size=10))
    weights = [rng.uniform(-1, 1, (3, 4)) for _ in range(3)]

    def f(*xs):
        nodes = list(xs)
        for name, i, j in steps:
            arity, op = GRAPH_OPS[name]
            args = [nodes[i % len(nodes)], nodes[j % len(nodes)]][:arity]
            nodes.append(op(*args))
        loss = None
        for w, n in zip(weights, nodes[::-1]):
            term = (n * w[tuple(slice(0, s) for s in n.shape)]).sum() if n.ndim else n * w[0, 0]
            loss = term if loss is None else loss + term
        return loss

    assert mg.gradcheck(f, leaves)
    # the same graph in float32: gradients stay float32 and agree with float64 to float32 precision
    leaves32 = [mg.tensor(t.data.astype(np.float32), requires_grad=True) for t in leaves]
    loss32 = f(*leaves32)
    assert loss32.dtype == np.float32
    loss32.backward()
    f(*leaves).backward()
    for t32, t64 in zip(leaves32, leaves):
        if t64.grad is None:  # a leaf the graph never used
            assert t32.grad is None
            continue
        assert t32.grad.dtype == np.float32 and t32.grad.shape == t32.shape
        np.testing.assert_allclose(t32.grad, t64.grad, rtol=1e-3, atol=1e-4)

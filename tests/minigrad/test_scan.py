"""``minigrad.compile_scan`` and the compiled recurrence of ``rnn.Recurrent(..., compile=True)``: the
whole time loop as generated code, against the eager unrolled graph (1e-12 relative in float64, 1e-5
in float32), finite differences through the one node, masks, reverse, hooks, and the errors. The
NUMBA_DISABLE_JIT lane runs the same generated loops as Python."""

from __future__ import annotations

import copy
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
import rnn
from minigrad.autograd import toposort

TOL = {"float64": 1e-12, "float32": 1e-5}


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-30))


def param(rng, *shape, dtype="float64"):
    return mg.tensor(rng.standard_normal(shape) * 0.5, dtype=dtype, requires_grad=True)


def eager_scan(fn, init, xs, reverse=False):
    """The reference: fn applied step by step on the eager graph."""
    carry, ys = init, []
    T = (xs if isinstance(xs, mg.Tensor) else xs[0]).shape[0]
    order = range(T - 1, -1, -1) if reverse else range(T)
    for t in order:
        x_t = xs[t] if isinstance(xs, mg.Tensor) else tuple(x[t] for x in xs)
        carry, y = fn(carry, x_t)
        ys.append(y)
    if reverse:
        ys = ys[::-1]
    if isinstance(ys[0], mg.Tensor):
        return carry, mg.stack(ys, axis=0)
    return carry, tuple(mg.stack([y[k] for y in ys], axis=0) for k in range(len(ys[0])))


def grads_of(run, leaves):
    """Outputs of ``run()`` flattened, and d(sum o^2 + sum o^3 / 3)/d(leaf) for every leaf."""
    for t in leaves:
        t.grad = None
    carry, ys = run()
    outs = [*(carry if isinstance(carry, tuple) else (carry,)), *(ys if isinstance(ys, tuple) else (ys,))]
    loss = sum((o * o).sum() + (o * o * o).sum() / 3 for o in outs)
    loss.backward()
    return [o.data.copy() for o in outs], [t.grad.numpy().copy() for t in leaves]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("reverse", [False, True])
def test_scan_equals_the_eager_loop(dtype, reverse) -> None:
    rng = np.random.default_rng(0)
    w, u, b = param(rng, 4, 3, dtype=dtype), param(rng, 3, 3, dtype=dtype), param(rng, 3, dtype=dtype)

    def fn(carry, x):  # two carries, broadcasting, a weight used twice, two ys (one is a carry)
        h, c = carry
        a = (x @ w + h @ u + b).tanh()
        c2 = c * a.sigmoid() + (a * b).softplus()
        h2 = (c2 - h).tanh() * 0.5 + h @ u.T * 0.1
        return (h2, c2), (h2, (c2 * x[:, :3]).sum(axis=-1, keepdims=True))

    xs = param(rng, 5, 2, 4, dtype=dtype)
    init = (param(rng, 2, 3, dtype=dtype), param(rng, 2, 3, dtype=dtype))
    leaves = [xs, *init, w, u, b]
    scan = mg.compile_scan(fn)
    got = grads_of(lambda: scan(init, xs, reverse=reverse), leaves)
    want = grads_of(lambda: eager_scan(fn, init, xs, reverse), leaves)
    for a, e in zip(got[0] + got[1], want[0] + want[1]):
        assert a.shape == e.shape and rel(a, e) <= TOL[dtype]


def test_gradcheck_through_the_scan_node() -> None:
    rng = np.random.default_rng(1)
    w = param(rng, 3, 3)
    scan = mg.compile_scan(lambda h, x: ((x + h @ w).tanh(),) * 2)

    def f(xs, h0, w_):
        h, ys = scan(h0, xs)
        return (ys * ys).sum() + h.sum()

    xs, h0 = param(rng, 4, 2, 3), param(rng, 2, 3)
    assert mg.gradcheck(f, (xs, h0, w))
    _, ys = scan(h0, xs)
    nodes = [n for n in toposort(ys.node)]
    assert [n.name for n in nodes].count("compiled scan") == 1  # the whole loop is one node


def test_scan_without_grad_and_the_source() -> None:
    rng = np.random.default_rng(2)
    w = param(rng, 3, 3)
    scan = mg.compile_scan(lambda h, x: ((x + h @ w).tanh(),) * 2)
    xs, h0 = param(rng, 6, 2, 3), param(rng, 2, 3)
    with mg.no_grad():
        _, ys = scan(h0, xs)
    assert not ys.requires_grad and ys.shape == (6, 2, 3)
    _, want = eager_scan(lambda h, x: ((x + h @ w).tanh(),) * 2, h0, xs)
    assert rel(ys.data, want.data) <= 1e-12
    src = scan.program(h0, xs).source
    assert "def scan_forward(dims, reverse" in src and "def scan_backward(dims, reverse" in src
    assert "backpropagation through time" in src


@pytest.mark.parametrize("reverse", [False, True])
def test_unroll_rebuilds_the_eager_graph_with_its_gradients(reverse) -> None:
    rng = np.random.default_rng(5)
    w, u = param(rng, 3, 3), param(rng, 3, 3)

    def fn(carry, x):
        h, c = carry
        c2 = c * (x @ w).sigmoid() + (h @ u).tanh()
        return (c2.tanh(), c2), c2.tanh() * 2.0

    xs, init = param(rng, 4, 2, 3), (param(rng, 2, 3), param(rng, 2, 3))
    with mg.scope("outer"):
        (h, c), ys = mg.compile_scan(fn)(init, xs, reverse=reverse, t0=7)
    seeds = [rng.standard_normal(h.shape), None, rng.standard_normal(ys.shape)]
    w_grad_before = w.grad
    un = mg.unroll(ys.node, seeds)
    assert mg.unroll(xs.__mul__(2.0).node) is None  # any other node
    assert w.grad is w_grad_before  # the user's graph and gradients are untouched
    for got, want in zip(un.outputs, (h, c, ys)):
        assert got.shape == want.shape and rel(got.data, want.data) <= 1e-12
    # every stand-in leaf is one of the node's inputs; the steps are scoped t=7.. under "outer"
    assert set(map(id, un.sources.values())) == {id(xs), *map(id, init)}
    nodes = toposort(un.outputs[2].node)
    assert {n.scope[:2] for n in nodes if len(n.scope) > 1} == {("outer", f"t={t}") for t in range(7, 11)}
    # the gradients are those of the eager loop under the same seeds
    ref_init = tuple(mg.tensor(t.data, requires_grad=True) for t in init)
    ref_xs = mg.tensor(xs.data, requires_grad=True)
    (rh, rc), rys = eager_scan(fn, ref_init, ref_xs, reverse)
    for t in (rh, rc, rys):
        t.retain_grad()
    ((rh * mg.tensor(seeds[0])).sum() + (rys * mg.tensor(seeds[2])).sum()).backward()
    for got, want in zip(un.outputs, (rh, rc, rys)):  # c: no seed of its own, but ys uses it
        assert rel(got.grad.data, want.grad.data) <= 1e-12
    assert mg.unroll(ys.node).outputs[0].grad is None  # no seeds, no gradients (as without retain_grad)


def test_scan_errors() -> None:
    scan = mg.compile_scan(lambda h, x: (h * x, h))
    h = mg.ones((2, 3))
    with pytest.raises(ValueError, match=r"same T"):
        scan(h, (mg.ones((4, 2, 3)), mg.ones((5, 2, 3))))
    with pytest.raises(TypeError, match=r"init must be a Tensor"):
        scan([1.0], mg.ones((4, 2, 3)))
    with pytest.raises(mg.CompileError, match=r"must return \(new_carry, y\)"):
        mg.compile_scan(lambda h, x: h * x)(h, mg.ones((4, 2, 3)))
    with pytest.raises(mg.CompileError, match=r"carry 0 goes in as \(2, 3\) \[float32\] and comes out as "
                       r"\(2, 3\) \[float64\]"):
        mg.compile_scan(lambda h, x: (h.double() * 2, h * x))(h, mg.ones((4, 2, 3)))
    with pytest.raises(mg.CompileError, match=r"not supported"):
        mg.compile_scan(lambda h, x: (h * x.cumsum(0), h * 2))(h, mg.ones((4, 2, 3)))


@pytest.mark.parametrize("x_grad", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_a_prologue_runs_inside_the_node_and_equals_the_eager_loop(x_grad, reverse) -> None:
    rng = np.random.default_rng(8)
    w, u, b = param(rng, 4, 3), param(rng, 3, 3), param(rng, 3)

    def pre(xs):  # the input-only part over the whole sequence; the mask passes unchanged
        x, keep = xs
        T, B, F = x.shape
        return ((x.reshape(T * B, F) @ w + b).reshape(T, B, 3), keep)

    def fn(h, xs):
        p, keep = xs
        new = (p + h @ u).tanh()
        return mg.where(keep, new, h), new * 2.0

    x = mg.tensor(rng.standard_normal((5, 2, 4)), requires_grad=x_grad)
    keep = mg.tensor(np.arange(5)[:, None, None] < np.array([5, 3])[None, :, None])
    h0 = param(rng, 2, 3)
    leaves = [h0, w, u, b] + ([x] if x_grad else [])
    scan = mg.compile_scan(fn, prologue=pre)
    got = grads_of(lambda: scan(h0, (x, keep), reverse=reverse), leaves)
    want = grads_of(lambda: eager_scan(fn, h0, pre((x, keep)), reverse), leaves)
    for a, e in zip(got[0] + got[1], want[0] + want[1]):
        assert a.shape == e.shape and rel(a, e) <= 1e-12
    _, ys = scan(h0, (x, keep), reverse=reverse)
    assert [n.name for n in toposort(ys.node)] == ["compiled scan"]  # the prologue is inside the node
    with mg.no_grad():
        assert rel(scan(h0, (x, keep), reverse=reverse)[1].data, ys.data) <= 1e-12
    un = mg.unroll(ys.node)  # drawings: the prologue's ops, then the steps
    assert rel(un.outputs[1].data, ys.data) <= 1e-12
    assert "MatMul" in [n.name for n in toposort(un.outputs[1].node) if not n.scope]
    assert mg.gradcheck(lambda h_, w_: (scan(h_, (x, keep), reverse=reverse)[1] ** 2).sum(), (h0, w))


def test_programs_for_many_shapes_are_kept_to_the_most_recent_few() -> None:
    """Each (T, B) traces a prologue (and each B a loop program); the caches keep the 16 most recently
    used, and a shape whose program was dropped is traced again and still right."""
    rng = np.random.default_rng(12)
    w, u = param(rng, 4, 3), param(rng, 3, 3)

    def pre(x):
        T, B, F = x.shape
        return (x.reshape(T * B, F) @ w).reshape(T, B, 3)

    def fn(h, p):
        h = (p + h @ u).tanh()
        return h, h

    scan = mg.compile_scan(fn, prologue=pre)
    for T in [*range(1, 21), 1]:
        x, h0 = mg.tensor(rng.standard_normal((T, 2, 4))), param(rng, 2, 3)
        got = grads_of(lambda x=x, h0=h0: scan(h0, x), [h0, w, u])
        want = grads_of(lambda x=x, h0=h0: eager_scan(fn, h0, pre(x)), [h0, w, u])
        for a, e in zip(got[0] + got[1], want[0] + want[1]):
            assert rel(a, e) <= 1e-12
    assert len(scan.prologues) == 16 and len(scan.programs) == 1
    assert list(scan.prologues.entries)[-1][1][0] == (1, 2, 4)  # T = 1 again: traced anew, the newest
    oldest = next(iter(scan.prologues.entries))
    kept = scan.prologues.entries[oldest]
    scan(h0, mg.tensor(rng.standard_normal(oldest[1][0])))  # a hit: now the most recently used
    scan(h0, mg.tensor(rng.standard_normal((21, 2, 4))))  # a new shape evicts the least recently used
    assert scan.prologues.entries[oldest] is kept and len(scan.prologues) == 16


def test_a_scan_that_ran_can_be_deep_copied() -> None:
    """Its programs, workspaces and caches hold no lock of their own (a layer's copy drops its
    programs: tests/rnn/test_recurrent.py)."""
    rng = np.random.default_rng(3)
    w, u = param(rng, 3, 4), param(rng, 4, 4)
    scan = mg.compile_scan(lambda h, p: ((p @ w + h @ u).tanh(),) * 2, prologue=None)
    x, h0 = mg.tensor(rng.standard_normal((6, 2, 3))), param(rng, 2, 4)
    scan(h0, x)[1].sum().backward()
    c = copy.deepcopy(scan)
    assert len(c.programs) == 1 and np.array_equal(c(h0, x)[1].data, scan(h0, x)[1].data)


def test_a_prologue_may_pass_one_x_on_twice_and_the_body_is_traced_on_data() -> None:
    rng = np.random.default_rng(9)
    w = param(rng, 3, 3)

    def pre(xs):
        a, _, c = xs
        return (a, a, c * 2.0)

    def fn(h, xs):
        a1, a2, c2 = xs
        new = (a1.log() + a2 * c2 + h @ w).tanh()  # log: the trace must not see zeros
        return new, new

    xs = (mg.tensor(rng.uniform(0.5, 2.0, (4, 2, 3)), dtype="float64", requires_grad=True),
          mg.ones((4, 2, 3), dtype="float64"),
          param(rng, 4, 2, 3))
    h0 = param(rng, 2, 3)
    leaves = [xs[0], xs[2], h0, w]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = grads_of(lambda: mg.compile_scan(fn, prologue=pre)(h0, xs), leaves)
    want = grads_of(lambda: eager_scan(fn, h0, pre(xs)), leaves)
    for a, e in zip(got[0] + got[1], want[0] + want[1]):
        assert rel(a, e) <= 1e-12


def test_a_returned_state_is_not_a_view_of_the_workspace() -> None:
    m = rnn.RNN(3, 4, compile=True).double()  # the RNN's new h is its saved tanh, written in place
    out, h = m(mg.tensor(np.ones((50, 2, 3))))
    prog = next(n for n in toposort(out.node) if n.name == "compiled scan").program
    del out, h  # the graph and its saved values are gone
    with mg.no_grad():  # no graph: only the returned tensors could hold a slab
        _out, h = m(mg.tensor(np.ones((50, 2, 3))))
    assert all(not np.shares_memory(h.data, s) for s in prog.saved_space.slabs)
    assert all(prog.saved_space._free(i) for i in range(len(prog.saved_space.slabs)))


def test_prologue_errors() -> None:
    h, xs = mg.ones((2, 3)), mg.ones((4, 2, 3))
    body = lambda h, x: (h * x, h)  # noqa: E731
    with pytest.raises(TypeError, match=r"prologue must be callable"):
        mg.compile_scan(body, prologue=3)
    with pytest.raises(mg.CompileError, match=r"must return xs' like xs \(1 tensor"):
        mg.compile_scan(body, prologue=lambda x: (x * 2, x * 3))(h, xs)
    with pytest.raises(mg.CompileError, match=r"\(T, \.\.\.\) arrays with T = 4.*shape \(2, 3\)"):
        mg.compile_scan(body, prologue=lambda x: x.sum(axis=0))(h, xs)
    with pytest.raises(mg.CompileError, match=r"returned its inputs unchanged"):
        mg.compile_scan(body, prologue=lambda x: x)(h, xs)


def test_a_compiled_layer_is_one_node_with_its_input_projection() -> None:
    m = rnn.LSTM(3, 4, compile=True).double()
    out, _ = m(mg.tensor(np.ones((5, 2, 3))))
    names = [n.name for n in toposort(out.node)]
    assert names == ["compiled scan"]  # no projection product, bias add or reshape outside it
    src = next(n for n in toposort(out.node)).pre.program.source
    assert "project" in src and "dot(" in src and "d_xs_0" not in src  # the data gets no gradient


def test_the_workspace_reuses_a_slab_only_when_no_buffer_of_it_is_alive() -> None:
    from minigrad.compiler.workspace import Workspace

    ws = Workspace([((3,), np.dtype("float32")), ((2, 2), np.dtype("float64"))], keep=2)
    a, b = ws.buffers(5)
    assert a.shape == (5, 3) and a.dtype == np.float32 and b.shape == (5, 2, 2) and b.dtype == np.float64
    assert b.flags.c_contiguous and b.ctypes.data % 64 == 0 and not np.shares_memory(a, b)
    a2, _ = ws.buffers(5)  # a and b alive: a second slab
    assert not np.shares_memory(a, a2)
    a3, _ = ws.buffers(5)  # both pooled slabs busy, the pool full: a slab of its own
    assert not np.shares_memory(a3, a) and not np.shares_memory(a3, a2) and len(ws.slabs) == 2
    ptr = a.ctypes.data
    del a, b, a3
    assert ws.buffers(5)[0].ctypes.data == ptr  # every view of the first slab gone: reused
    big = ws.buffers(1000)[1]  # bigger than any free slab: replaces one
    assert big.shape == (1000, 2, 2) and max(s.nbytes for s in ws.slabs) >= 32_000


def test_the_workspace_hands_out_its_views_again_only_when_nothing_refers_to_them() -> None:
    from minigrad.compiler.workspace import Workspace

    ws = Workspace([((3,), np.dtype("float32"))], keep=1)
    (a,) = ws.buffers(4)
    ptr = a.ctypes.data
    del a
    (b,) = ws.buffers(4)
    assert b.ctypes.data == ptr and b.shape == (4, 3)  # the same memory (its kept view)
    row = b[1]  # a view of the view: refers to the slab itself
    del b
    (c,) = ws.buffers(4)
    assert not np.shares_memory(c, row)  # busy: a slab of this call's own (the pool of one is full)
    del c, row
    assert [v.shape for v in ws.buffers(4)] == [(4, 3)] and [v.shape for v in ws.buffers(2)] == [(2, 3)]
    (d,) = ws.buffers(4)  # a kept view for T = 2 is not handed out for T = 4
    assert d.shape == (4, 3) and d.ctypes.data == ptr
    held = ws.buffers(4)  # held in a list: busy
    assert not np.shares_memory(ws.buffers(4)[0], held[0])
    assert Workspace([]).buffers(7) == []
    twin = copy.deepcopy(ws)  # a copy starts with an empty pool (copied views would pin their slab)
    assert twin.slabs == [] and [v.shape for v in twin.buffers(4)] == [(4, 3)] and twin._free(0)


def test_a_retained_graph_keeps_its_saved_values_while_the_layer_runs_again() -> None:
    """The saved values live in a reused workspace: a graph kept for a second backward must keep
    them, whatever other calls of the same layer do meanwhile."""
    m = rnn.LSTM(3, 4, compile=True).double()
    x = mg.tensor(np.random.default_rng(6).standard_normal((40, 2, 3)), requires_grad=True)
    out, _ = m(x)
    loss = (out * out).sum()
    loss.backward(retain_graph=True)
    first = [p.grad.numpy().copy() for p in m.parameters()] + [x.grad.numpy().copy()]
    node = out.node
    projected = node.xs[0].copy()  # the prologue's output x W_ih^T + b, in its own workspace
    assert any(np.shares_memory(node.xs[0], s) for s in node.pre.program.space.slabs)
    for _ in range(3):  # other calls in between, with and without grad
        m(mg.tensor(np.ones((40, 2, 3))))[0].sum().backward()
        with mg.no_grad():
            m(mg.tensor(np.full((40, 2, 3), 5.0)))
    assert np.array_equal(node.xs[0], projected)
    m.zero_grad()
    x.grad = None
    loss.backward()
    for g, want in zip([p.grad.numpy() for p in m.parameters()] + [x.grad.numpy()], first):
        assert rel(g, want) <= 1e-12


def layer_pair(kind, dtype, **kw):
    a = getattr(rnn, kind)(3, 4, compile=False, **kw).to(dtype)
    b = getattr(rnn, kind)(3, 4, compile=True, **kw).to(dtype)
    b.load_state_dict(a.state_dict())
    return a, b


def run_layer(m, x, **kw):
    x.grad = None
    for p in m.parameters():
        p.grad = None
    o, s = m(x, **kw)
    s = s if isinstance(s, tuple) else (s,)
    ((o * o).sum() + sum((q * q * q).sum() for q in s)).backward()
    return [o.data, *[q.data for q in s], x.grad.numpy()] + [p.grad.numpy() for p in m.parameters()]


@pytest.mark.parametrize("kind,dtype", [("LSTM", "float64"), ("GRU", "float32"), ("RNN", "float64")])
def test_a_large_projection_folds_its_bias_into_the_product(kind, dtype) -> None:
    """From FOLD_MIN elements and N >= 4 K, x W^T + b is ONE product [x | 1] [W^T ; b] (no pass adding
    b, none summing dG for db); every gradient as eager's, through two layers (the LSTM's second layer
    folds too, with a dX; the GRU's, N = 3H < 4K, and the RNN's do not)."""
    from minigrad.compiler.prologue import FOLD_MIN

    T, B = 64, 8
    a = getattr(rnn, kind)(3, 64, num_layers=2, compile=False).to(dtype)
    b = getattr(rnn, kind)(3, 64, num_layers=2, compile=True).to(dtype)
    b.load_state_dict(a.state_dict())
    x = mg.tensor(np.random.default_rng(16).standard_normal((T, B, 3)), dtype=dtype, requires_grad=True)
    got, want = run_layer(b, x), run_layer(a, x)
    for g, w in zip(got, want):
        assert rel(g, w) <= TOL[dtype]
    scan = next(iter(b._compiled.values())).compiled
    pre = next(iter(scan.prologues.entries.values())).program
    assert T * B * pre.graph.outputs[0].shape[-1] >= FOLD_MIN
    assert "np.concatenate((reshape, ones,), 1)" in pre.source and "d_xs_0 = " in pre.source
    assert "+=" not in pre.source  # no loop summing dG over the rows for db


def test_fold_biases_leaves_other_sums_alone() -> None:
    from minigrad.compiler.prologue import FOLD_MIN, fold_biases
    from minigrad.compiler.trace import trace

    rng = np.random.default_rng(17)
    n = FOLD_MIN // 8
    x, w = mg.tensor(rng.standard_normal((n, 2))), mg.tensor(rng.standard_normal((8, 2)), requires_grad=True)
    v, m = mg.tensor(rng.standard_normal(8), requires_grad=True), mg.tensor(rng.standard_normal((n, 8)))
    x4, w4 = mg.tensor(rng.standard_normal((n, 4))), mg.tensor(rng.standard_normal((8, 4)))

    def folded(fn, x=x):
        graph = trace(fn, (x,), [x], ["x"], ())[0]
        fold_biases(graph)
        return [op.kind for op in graph.ops].count("concat")

    assert folded(lambda x: x @ w.T + v) == 2 and folded(lambda x: v + x @ w.T) == 2  # N = 8 = 4 K
    assert folded(lambda x: x @ w.T + m) == 0  # a (n, 8) addend: not a bias
    assert folded(lambda x: (lambda p: (p + v) * p)(x @ w.T)) == 0  # the product read twice
    assert folded(lambda x: x[:2] @ w.T + v) == 0  # fewer than FOLD_MIN elements
    assert folded(lambda x: x @ w4.T + v, x4) == 0  # N = 8 < 4 K = 16: the pass costs less than the copy


@pytest.mark.parametrize("kind,dtype,lengths", [("LSTM", "float64", [5, 2, 4]), ("GRU", "float64", None),
                                                ("RNN", "float32", [1, 5, 3])])
def test_compiled_layers_equal_eager_with_masks_and_both_directions(kind, dtype, lengths) -> None:
    a, b = layer_pair(kind, dtype, num_layers=2, bidirectional=True)
    x = mg.tensor(np.random.default_rng(3).standard_normal((5, 3, 3)), dtype=dtype, requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # compiled, no fallback
        got = run_layer(b, x, lengths=lengths)
    want = run_layer(a, x, lengths=lengths)
    for u, v in zip(got, want):
        assert rel(u, v) <= TOL[dtype]
    o, _ = b(x, lengths=lengths)
    names = [n.name for n in toposort(o.node)]
    assert names.count("compiled scan") == 4  # one node per layer and direction, not per step


@pytest.mark.parametrize("kind,lengths", [("LSTM", [5, 2, 4]), ("GRU", None), ("RNN", [1, 5, 3])])
def test_recompute_saves_only_the_state_and_gives_the_same_bits(kind, lengths) -> None:
    """``recompute``: the backward reruns each step's forward from the saved state; the same code
    computes the same values, so every output and gradient is bit-identical, with fewer saved arrays."""
    a, b = layer_pair(kind, "float64", num_layers=2, bidirectional=True)
    b.recompute = True
    assert "recompute=True" in repr(b) and "recompute" not in repr(a)
    x = mg.tensor(np.random.default_rng(4).standard_normal((5, 3, 3)), requires_grad=True)
    got = run_layer(b, x, lengths=lengths)
    a.compile = True
    want = run_layer(a, x, lengths=lengths)
    for u, v in zip(got, want):
        assert np.array_equal(u, v)
    scans = [v.compiled for k, v in b._compiled.items() if k[1] == "scan+recompute"]
    plain = [v.compiled for k, v in a._compiled.items() if k[1] == "scan"]
    assert len(scans) == len(plain) == 4
    saved = [len(next(reversed(s.programs.entries.values())).saved_space.specs) for s in (scans[0], plain[0])]
    assert saved[0] == len(b.cell(0).init_state(1, np.float64)) < saved[1]  # the state, nothing else
    assert "rf = forward(" in next(reversed(scans[0].programs.entries.values())).source
    assert mg.gradcheck(lambda x_: (b(x_, lengths=lengths)[0] ** 2).sum(), [x])  # through the recomputation
    with pytest.raises(TypeError, match="recompute must be True or False"):
        mg.compile_scan(lambda h, x: (h, h), recompute="yes")


def _view_written_later(h, x):  # g = d(h W^T) is a transposed view of a buffer scattered into later
    r_ = x.T
    k = (r_[0:2] * 2.0).sum(axis=0, keepdims=True)
    z = ((h @ _W.T).T + r_ + k).tanh()
    return z.T, z.T


def _made_operand(h, x):  # the recurrent product's left operand is made in the step
    z = ((h * x.sigmoid()) @ _W.T).tanh()
    return z, z


_W = param(np.random.default_rng(10), 4, 4)


@pytest.mark.filterwarnings("ignore:np.dot\\(\\) is faster on contiguous arrays")  # z.T's carry is a view
@pytest.mark.parametrize("fn", [_view_written_later, _made_operand])
@pytest.mark.parametrize("recompute", [False, True])
def test_recurrent_products_whose_adjoint_is_a_view_or_whose_operand_is_made_in_the_step(fn, recompute):
    """Found in review: g returned without a copy while a view of its buffer was written later (wrong
    dW), and recompute without a buffer for an operand made in the step (a NameError)."""
    rng = np.random.default_rng(11)
    xs, h0 = param(rng, 5, 2, 4), param(rng, 2, 4)
    scan = mg.compile_scan(fn, recompute=recompute)
    got = grads_of(lambda: scan(h0, xs), [xs, h0, _W])
    want = grads_of(lambda: eager_scan(fn, h0, xs), [xs, h0, _W])
    for a, e in zip(got[0] + got[1], want[0] + want[1]):
        assert rel(a, e) <= 1e-12
    src = scan.program(h0, xs).source
    copied = ".copy()" in src[src.index("def backward"):src.index("def scan_")]  # the scatter's copy
    assert copied == (fn is _view_written_later)  # (so that g, a view of its array, is left alone)


@pytest.mark.parametrize("cell", sorted(rnn.CELLS))
def test_every_registered_cell_recomputes_bit_for_bit(cell) -> None:
    x = mg.tensor(np.random.default_rng(12).standard_normal((6, 3, 3)), requires_grad=True)
    runs = []
    for recompute in (False, True):
        m = rnn.make_rnn(cell, 3, 4, rng=np.random.default_rng(13), dtype="float64", compile=True,
                         batch_first=False, bidirectional=True)
        m.recompute = recompute
        runs.append(run_layer(m, x, lengths=[6, 2, 4]))
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


def test_step_hooks_run_the_per_step_graph() -> None:
    a, b = layer_pair("GRU", "float64")
    x = mg.tensor(np.random.default_rng(4).standard_normal((6, 2, 3)), dtype="float64")
    loss = lambda out: (out[0] * out[0]).sum()  # noqa: E731
    na = rnn.hidden_grad_norms(a, x, loss)
    nb = rnn.hidden_grad_norms(b, x, loss)  # hooks: every step's state is a tensor of the graph
    assert na.shape == (6,) and rel(nb, na) <= 1e-12


def test_the_layers_share_one_generated_module() -> None:
    before = {k for k in sys.modules if k.startswith("minigrad_compiled_")}
    m = rnn.LSTM(3, 4, num_layers=2, bidirectional=True, compile=True).double()
    m(mg.ones((3, 2, 3), dtype="float64"))
    new = {k for k in sys.modules if k.startswith("minigrad_compiled_")} - before
    # four cells, three modules (the parameters are named as the cell calls them): the loop's, and the
    # input projection's without dX (layer 0: the data) and with it (layer 1)
    assert len(new) <= 3


@pytest.mark.parametrize("kind,kept", [("LSTM", 0), ("RNN", 0), ("GRU", 1)])
def test_a_recurrent_products_adjoint_that_is_dx_is_read_from_dx(kind, kept) -> None:
    """The LSTM's and RNN's d(gx + h W^T) is also their dX: the weight gradient after the loop reads
    dX (no G buffer, no per-step copy); the GRU's h W_hh^T + b_hh has an adjoint of its own. The step's
    backward writes dX[t] and G[t] itself (no per-step copy either) and the GRU's b_hh pieces add into
    one buffer (no concatenate)."""
    a, b = layer_pair(kind, "float64")
    x = mg.tensor(np.random.default_rng(5).standard_normal((9, 2, 3)), requires_grad=True)
    got, want = (grads_of(lambda m=m: m(x), [*m.parameters(), x]) for m in (b, a))
    for g, w in zip(got[0] + got[1], want[0] + want[1]):
        assert rel(g, w) <= 1e-12
    scan = next(iter(b._compiled.values())).compiled
    prog = next(reversed(scan.programs.entries.values()))  # the one program of the layer
    assert len(prog.adjoint_space.specs) == kept and len(prog.g_is_dx) == len(prog.deferred) - kept
    assert ("G0.reshape" in prog.source) == bool(kept)
    assert len(prog.gives) == 1 + kept and "[t, i0, i1] = g" not in prog.source
    src = prog.source
    step_backward = src[src.index("def backward"):src.index("def scan_")]
    assert "dX_gx_0[t])" in src and "np.concatenate" not in step_backward and ".copy()" not in step_backward


def test_a_float32_x_beside_float64_weights_and_carry() -> None:
    """Found in review: the float64 g of h @ W, written into G0[t], was also taken for the float32 x's
    dX (the two arrays compared equal by name), and scan_backward read a G0 it never made."""
    rng = np.random.default_rng(18)
    w, h0 = param(rng, 4, 4), param(rng, 2, 4)
    xs = param(rng, 5, 2, 4, dtype="float32")
    fn = lambda h, x: ((x + h @ w).tanh(),) * 2  # noqa: E731
    got = grads_of(lambda: mg.compile_scan(fn)(h0, xs), [xs, h0, w])
    want = grads_of(lambda: eager_scan(fn, h0, xs), [xs, h0, w])
    for a, e in zip(got[0] + got[1], want[0] + want[1]):
        assert a.dtype == e.dtype and rel(a, e) <= 1e-6


def test_a_value_returned_as_two_carries() -> None:
    """Found in review (older than the review's diff): ``return (z, z), z`` generated a backward with
    the parameter d_tanh twice (a SyntaxError); each place now has its own, added up first."""
    rng = np.random.default_rng(19)
    w, xs, h0, c0 = param(rng, 4, 4), param(rng, 5, 2, 4), param(rng, 2, 4), param(rng, 2, 4)

    def fn(carry, x):
        z = (x + carry[0] @ w + carry[1]).tanh()
        return (z, z), z

    got = grads_of(lambda: mg.compile_scan(fn)((h0, c0), xs), [xs, h0, c0, w])
    want = grads_of(lambda: eager_scan(fn, (h0, c0), xs), [xs, h0, c0, w])
    for a, e in zip(got[0] + got[1], want[0] + want[1]):
        assert rel(a, e) <= 1e-12


def _two_xs_one_adjoint(h, x):  # x1 and x2 get the same adjoint array: dX1[t] is given it, dX2 copies
    x1, x2 = x
    z = (x1 + x2 + h @ _W.T).tanh()
    return z, z


def _adjoint_from_a_product(h, x):  # dx = g @ W^T: no loop's buffer, copied into dX[t] as before; the two
    # products' g are one buffer: G0[t] is given it, G1 copies
    z = (x @ _W + h @ _W.T).tanh()
    return z, z


@pytest.mark.parametrize("fn,copied", [(_two_xs_one_adjoint, 1), (_adjoint_from_a_product, 2)])
def test_the_steps_backward_writes_into_the_loops_buffers(fn, copied) -> None:
    """A loop buffer the step's backward returns whole as an x's gradient or a recurrent product's g
    is a parameter: scan_backward passes dX[t] (or G[t]) and keeps no per-step copy of it."""
    rng = np.random.default_rng(14)
    xs = (param(rng, 5, 2, 4), param(rng, 5, 2, 4)) if fn is _two_xs_one_adjoint else param(rng, 5, 2, 4)
    h0 = param(rng, 2, 4)
    leaves = [*(xs if isinstance(xs, tuple) else (xs,)), h0, _W]
    scan = mg.compile_scan(fn)
    got = grads_of(lambda: scan(h0, xs), leaves)
    want = grads_of(lambda: eager_scan(fn, h0, xs), leaves)
    for a, e in zip(got[0] + got[1], want[0] + want[1]):
        assert rel(a, e) <= 1e-12
    prog = scan.program(h0, xs)
    assert len(prog.gives) == 1
    assert prog.source.count("[t, i0, i1] = g") == copied  # per-step copies of what the step returned


@pytest.mark.parametrize("k2", [None, 10])
def test_truncated_bptt_on_a_compiled_layer_equals_eager(k2) -> None:
    trained = []
    for compiled, recompute in ((False, False), (True, False), (True, True)):
        mg.manual_seed(0)
        m = rnn.GRU(3, 4, compile=compiled).double()
        m.recompute = recompute
        x = mg.tensor(np.random.default_rng(0).standard_normal((30, 2, 3)), dtype="float64")
        y = mg.tensor(np.random.default_rng(1).standard_normal((30, 2, 4)), dtype="float64")
        opt = mg.optim.SGD(m.parameters(), lr=0.1)
        rnn.tbptt(m, x, y, lambda out, tgt: ((out - tgt) ** 2).mean(), opt, k1=7, k2=k2)
        trained.append([p.data.copy() for p in m.parameters()])
    for run in trained[1:]:
        for a, b in zip(trained[0], run):
            assert rel(a, b) <= 1e-12


def test_docs_show_the_generated_bptt_loop() -> None:
    """docs/engine.md prints the LSTM's scan_backward: it must be what the engine generates today."""
    cell = rnn.LSTM(3, 5).cell(0)

    def lstm_step(state, gx):
        h, c = cell.step(gx, state)
        return (h, c), h

    state = (mg.zeros((2, 5), requires_grad=True), mg.zeros((2, 5), requires_grad=True))
    src = mg.compile_scan(lstm_step).program(state, mg.randn(7, 2, 20)).source
    doc = (Path(__file__).resolve().parents[2] / "docs" / "engine.md").read_text()
    shown = doc[doc.index("def scan_backward"):]
    assert src[src.index("def scan_backward"):].strip() == shown[:shown.index("```")].strip()


def test_docs_show_the_generated_backward_of_one_lstm_step() -> None:
    """docs/engine.md prints ``mg.compile`` of the LSTM step's backward: what the engine generates."""
    cell = rnn.LSTM(3, 5).cell(0)
    h, c = mg.zeros((2, 5), requires_grad=True), mg.zeros((2, 5), requires_grad=True)
    src = mg.compile(cell.step).source(mg.randn(2, 20, requires_grad=True), (h, c))
    doc = (Path(__file__).resolve().parents[2] / "docs" / "engine.md").read_text()
    shown = doc[doc.index("def loop_b0"):]
    assert src[src.index("def loop_b0"):].strip() == shown[:shown.index("```")].strip()

"""``minigrad.compile``: generated forward and backward against the eager graph (1e-12 relative in
float64, 1e-5 in float32), finite differences through the compiled node, the errors it documents,
and the disk cache in a new process. The NUMBA_DISABLE_JIT lane runs the generated code as Python."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
import rnn
from minigrad.autograd import toposort
from minigrad.kernels.fastmath import vectorising

TOL = {"float64": 1e-12, "float32": 1e-5}


@pytest.fixture(autouse=True)
def _quiet_numba():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*faster on contiguous arrays.*")
        yield


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-30))


def leaves(rng, shapes, dtype):
    return [mg.tensor(rng.standard_normal(s), dtype=dtype, requires_grad=True) for s in shapes]


def compare(fn, args, dtype, weights=None):
    """Outputs and every input gradient of compile(fn) against fn."""
    outs_c = mg.compile(fn)(*args)
    outs_e = fn(*args)
    outs_c = outs_c if isinstance(outs_c, tuple) else (outs_c,)
    outs_e = outs_e if isinstance(outs_e, tuple) else (outs_e,)
    grads = []
    for outs in (outs_c, outs_e):
        for a in args:
            a.grad = None
        loss = sum(((o * o).sum() + o.sum()) for o in outs)
        loss.backward()
        grads.append([np.zeros(a.shape) if a.grad is None else a.grad.numpy().copy() for a in args])
    for oc, oe in zip(outs_c, outs_e):
        assert rel(oc.data, oe.data) <= TOL[dtype]
    for gc, ge in zip(*grads):
        assert rel(gc, ge) <= TOL[dtype]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_pointwise_matmul_reduction_graph(dtype) -> None:
    rng = np.random.default_rng(0)

    def f(x, h, w, b):
        a = x @ w.T + b
        g = (a + h).tanh() * (h.sigmoid() - 0.5) + a.relu() - (a * 0.5).exp() / (2 + h * h).sqrt()
        m = g.mean(axis=-1, keepdims=True)
        d = g - m
        s = mg.where(a > 0, a, h).softplus()
        return d * mg.clip(g, -0.5, 0.5), (g * g).sum(axis=-1, keepdims=True), s

    compare(f, leaves(rng, [(3, 4), (3, 5), (5, 4), (5,)], dtype), dtype)


def test_shape_ops() -> None:
    rng = np.random.default_rng(1)

    def f(x, y):
        a, b = x.chunk(2, axis=-1)
        c = mg.concatenate([a * b, y], axis=-1)
        s = mg.stack([a, b], axis=0).sum(axis=0)
        r = c.reshape(2, 3, 4).transpose(1, 0, 2).reshape(3, 8)
        return r[:, 1:5] * s[0:3, 0:4].abs(), mg.maximum(a, b) + mg.minimum(a, b) ** 2

    compare(f, leaves(rng, [(3, 8), (3, 4)], "float64"), "float64")


OPS = {"add": lambda a, b: a + b, "mul": lambda a, b: a * b, "sub": lambda a, b: a - b,
       "div": lambda a, b: a / (1.5 + b * b), "tanh": lambda a, b: a.tanh(),
       "sigmoid": lambda a, b: a.sigmoid(), "exp_neg": lambda a, b: (-(a * a)).exp(),
       "relu": lambda a, b: a.relu(), "square": lambda a, b: a ** 2}


@settings(max_examples=15, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.sampled_from(["add", "mul", "sub", "div", "tanh", "sigmoid", "exp_neg",
                                            "relu", "square"]), st.integers(0, 10)), min_size=1, max_size=8),
       st.sampled_from([(3, 4), (4,), (1, 4), (3, 1)]))
def test_random_pointwise_graphs(prog, bshape) -> None:
    """Random pointwise programs over a (3, 4) and a broadcast input, values reused."""
    rng = np.random.default_rng(2)
    x, y = leaves(rng, [(3, 4), bshape], "float64")

    def f(x, y):
        vals = [x, y]
        for op, k in prog:
            vals.append(OPS[op](vals[k % len(vals)], vals[(k + 1) % len(vals)]))
        return vals[-1] + x

    compare(f, [x, y], "float64")


def test_gradcheck_through_the_compiled_node() -> None:
    rng = np.random.default_rng(3)
    f = mg.compile(lambda x, w: ((x @ w).tanh() * x[:, :2].sigmoid()).sum(axis=-1, keepdims=True))
    x, w = leaves(rng, [(3, 4), (4, 2)], "float64")
    assert mg.gradcheck(f, (x, w))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn", "mgu", "indrnn", "peephole_lstm", "ln_rnn"])
def test_recurrent_compiled_equals_eager(cell) -> None:
    rng = np.random.default_rng(4)
    m = rnn.make_rnn(cell, 3, 5, 2, True, dtype="float64", rng=np.random.default_rng(1), compile=True)
    e = rnn.make_rnn(cell, 3, 5, 2, True, dtype="float64", rng=np.random.default_rng(1), compile=False)
    x = mg.tensor(rng.standard_normal((2, 6, 3)), dtype="float64", requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no fallback to eager
        o, _ = m(x)
    (o.sum() + (o * o).sum()).backward()
    gx = x.grad.numpy().copy()
    x.grad = None
    o2, _ = e(x)
    (o2.sum() + (o2 * o2).sum()).backward()
    assert rel(o.data, o2.data) <= 1e-12 and rel(gx, x.grad.numpy()) <= 1e-12
    for p, q in zip(m.parameters(), e.parameters()):
        assert rel(p.grad.numpy(), q.grad.numpy()) <= 1e-12
    assert any("compiled" in (n.name or "") for n in toposort(o.node))  # one node per step, not the gate ops


def test_source_is_readable_and_shape_free() -> None:
    f = mg.compile(lambda x, h: (x + h).tanh() * h)
    a = f.source(mg.ones((2, 3), requires_grad=True), mg.ones((2, 3), requires_grad=True))
    b = f.source(mg.ones((4, 7), requires_grad=True), mg.ones((4, 7), requires_grad=True))
    assert "def forward(dims" in a and "def backward(dims" in a and "fm.tanh" in a and "# tanh" in a
    assert a.split("# this call")[0] == b.split("# this call")[0]  # one module for every size


def test_unsupported_op_is_a_clear_error() -> None:
    f = mg.compile(lambda x: x.cumsum(0) * 2)
    with pytest.raises(mg.CompileError, match=r"op 'cumsum'.*not supported.*uncompiled"):
        f(mg.ones((2, 3), requires_grad=True))


def test_python_control_flow_on_values_is_an_error() -> None:
    f = mg.compile(lambda x: x * 2 if bool(x.sum() > 0) else x)
    with pytest.raises(mg.CompileError, match=r"bool\(\).*control flow"):
        f(mg.ones((2, 3)))


def test_uncompilable_cell_falls_back_with_one_warning() -> None:
    class CumCell(rnn.Cell):
        def __init__(self, n_in, h, **kw):
            super().__init__(n_in, h)
            self.w = mg.nn.Parameter(np.ones((h, n_in)))

        def forward(self, x, state):
            return ((x @ self.w.T).cumsum(-1) * state[0],)

    layer = rnn.Recurrent(lambda n: CumCell(n, 2), 2, compile=True)
    with pytest.warns(UserWarning, match="cannot be compiled") as rec:
        layer(mg.ones((3, 1, 2), dtype="float64"))
    assert len([w for w in rec if "cannot be compiled" in str(w.message)]) == 1


def test_disk_cache_serves_a_new_process(tmp_path) -> None:
    code = ("import minigrad as mg; f = mg.compile(lambda x: (x * 3).sigmoid());"
            "y = f(mg.ones((2, 2), requires_grad=True)); y.sum().backward(); print(y.data[0, 0])")
    env = {**os.environ, "MINIGRAD_CACHE_DIR": str(tmp_path)}
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                             check=True)
        assert abs(float(out.stdout) - 1 / (1 + np.exp(-3))) < 1e-6
    files = list((tmp_path / "compiled").glob("minigrad_compiled_*.py"))
    assert len(files) == 1
    if os.environ.get("NUMBA_DISABLE_JIT") != "1":
        assert list((tmp_path / "compiled" / "__pycache__").glob("*.nbi"))  # Numba's cache index


@pytest.mark.jit_only
def test_generated_loops_fuse_multiply_adds_and_keep_nan_and_inf() -> None:
    """Compiled with ``contract``: on a CPU with FMA, a * b + c is rounded once. With a = 1 + 2^-30,
    b = 1 - 2^-30, c = -1, NumPy's a * b rounds to 1.0 and the sum to 0; fused it is -2^-60. NaN and
    inf inputs still propagate, as NumPy's."""
    import llvmlite.binding as llb

    llb.initialize_native_target()
    f = mg.compile(lambda a, b, c: a * b + c)
    a, b, c = (mg.tensor(np.full(8, v)) for v in (1 + 2.0**-30, 1 - 2.0**-30, -1.0))
    assert (a * b + c).data.tolist() == [0.0] * 8
    if llb.get_host_cpu_features().get("fma"):
        assert f(a, b, c).data.tolist() == [-(2.0**-60)] * 8
    x = mg.tensor(np.array([np.nan, np.inf, -np.inf, 1.0, 0.0, np.inf, 2.0, -0.0]))
    y = mg.tensor(np.array([1.0, 2.0, 1.0, np.nan, np.inf, 0.0, -np.inf, 1.0]))
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(f(x, y, x).data, (x * y + x).data)


@pytest.mark.jit_only
def test_a_fused_loop_over_many_arrays_is_vectorised() -> None:
    """The peephole LSTM's forward loop reads 6 arrays and writes 7: with LLVM's default limit on
    runtime alias checks it stayed scalar (3x slower than the LSTM's); ``VECTORIZER`` lifts it."""
    import re

    import numba

    cell = rnn.make_rnn("peephole_lstm", 3, 8, batch_first=False).cell(0)
    f = mg.compile(cell.step)
    args = (mg.randn(4, 32, requires_grad=True),
            (mg.randn(4, 8, requires_grad=True), mg.randn(4, 8, requires_grad=True)))
    h, c = f(*args)
    (h.sum() + c.sum()).backward()
    loop = f.program(*args).forward.__globals__["loop_f0"]
    assert loop.targetoptions["fastmath"] == {"contract"}  # fastmath.vectorising()'s options, no others
    # compiled again, uncached: Numba shows no IR of code loaded from its disk cache
    fresh = numba.njit(**vectorising())(loop.py_func)
    fresh.compile(loop.signatures[0])
    ir = fresh.inspect_llvm(loop.signatures[0])
    assert re.search(r"<\d+ x float>", ir), "the fused forward loop was not vectorised"
    # the gate pieces read at offsets (gx[i0, i1 + n1]) are plain vector loads: with the sizes of
    # unknown sign, Numba's negative-index wraparound made them gathers
    assert "i1 + n1" in f.source(*args) and "masked.gather" not in ir
    # ...and the backward loop stores the four gates' adjoints into ONE buffer at their offsets
    back = f.program(*args).source
    assert "np.concatenate(" not in back and "r_p[i0, i1 + n3] = " in back


def test_a_base_read_whole_and_through_a_full_slice_gets_both_adjoints() -> None:
    """A loop reading x itself and its full-width window x[:, 0:3]: both contributions reach d_x."""
    rng = np.random.default_rng(11)
    compare(lambda x, y: (x[:, 0:3] * y).tanh() + x.exp() * 2, leaves(rng, [(2, 3), (2, 3)], "float64"),
            "float64")


def test_the_arrays_a_generated_backward_holds_follow_its_rebindings() -> None:
    """What tells that a deferred product's g IS the step's dX (its G buffer then dropped): ``a = b``
    shares b's array; any other assignment (a product, a view, a sum) is another array."""
    from minigrad.compiler.derive import arrays_held

    lines = ["    r_x = np.empty((n0,), f32)", "    d_x = r_x", "    d_y = d_x  # a comment",
             "    g = d_y", "    d_z = dot(g, w)"]
    assert arrays_held(lines)["g"] == arrays_held(lines)["r_x"] != arrays_held(lines)["d_z"]
    assert arrays_held([*lines, "    d_x = d_x + d_z"])["d_x"] != arrays_held(lines)["g"]  # rebound
    view = ["    r_a = np.empty((n0, n1), f32)", "    d_b = r_a", "    d_c = d_b.T", "    g = d_c"]
    assert arrays_held(view)["g"] != arrays_held(view)["r_a"]  # overlapping, not one array
    assert "        r_x[i0] = 0.0" not in arrays_held([*lines, "        r_x[i0] = 0.0"])  # a loop body


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_scatter_never_writes_into_an_array_another_adjoint_holds(dtype) -> None:
    """Found in review: one loop buffer was the adjoint of both x and h @ w (d(x + h @ w)); x's slice
    then added its gradient into that buffer in place, and dh and dw, read from it later, were wrong."""
    rng = np.random.default_rng(12)

    def f(x, h, w):
        m = h @ w
        s = x[0:2] @ w
        return (x + m).tanh(), s * s

    compare(f, leaves(rng, [(3, 4), (3, 4), (4, 4)], dtype), dtype)
    src = mg.compile(f).program(*leaves(rng, [(3, 4), (3, 4), (4, 4)], dtype)).source
    assert "d_x = d_x.copy()" in src

"""``mg.gradcheck`` itself: passes on correct ops, fails loudly (worst entries first) on wrong ones."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import minigrad as mg


class WrongCube(mg.Function):
    """y = x^3 with a deliberately wrong backward (3 x g instead of 3 x^2 g)."""

    @staticmethod
    def forward(ctx, x):
        ctx.x = x
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        return 3 * ctx.x * g


class HalfWrongMul(mg.Function):
    """z = x * y; right for x, wrong (missing a factor 2) for y."""

    @staticmethod
    def forward(ctx, x, y):
        ctx.x, ctx.y = x, y
        return x * y

    @staticmethod
    def backward(ctx, g):
        return mg.unbroadcast(g * ctx.y, ctx.x.shape), mg.unbroadcast(2 * g * ctx.x, ctx.y.shape)


def x64(data):
    return mg.tensor(np.asarray(data, np.float64), requires_grad=True)


@pytest.mark.parametrize("fast", [False, True])
def test_passes_on_correct_ops(fast) -> None:
    rng = np.random.default_rng(0)
    a, b = x64(rng.standard_normal((3, 4))), x64(rng.standard_normal((4, 2)))
    assert mg.gradcheck(lambda a, b: (a @ b).tanh().sum(axis=0), [a, b], fast=fast) is True
    assert mg.gradcheck(lambda a: (a.exp() / a.exp().sum()).log(), [a], fast=fast) is True


@pytest.mark.parametrize("fast", [False, True])
def test_fails_on_wrong_op_with_worst_entries(fast) -> None:
    x = x64([[0.5, -1.0, 2.0], [1.5, 0.25, -3.0]])
    with pytest.raises(mg.GradcheckError) as info:
        mg.gradcheck(lambda t: WrongCube.apply(t), [x], fast=fast)
    msg = str(info.value)
    assert "mismatch" in msg and "worst first" in msg
    if fast:
        assert "probe" in msg and "v^T J u" in msg
    else:
        # 6 wrong diagonal entries; the worst is at x = -3 (analytic -9, numeric 27)
        assert "6 mismatch(es)" in msg
        lines = [ln.strip() for ln in msg.splitlines()[1:]]
        assert lines[0].startswith("input 0 (2, 3) at (1, 2)")
        assert "analytic -9" in lines[0] and "numeric 27" in lines[0]
        diffs = [float(re.search(r"\|diff\| (\S+)", ln).group(1)) for ln in lines]
        assert diffs == sorted(diffs, reverse=True)


def test_report_names_the_wrong_input_only() -> None:
    x, y = x64([1.0, 2.0]), x64([3.0, -1.0])
    x.name = "weight"
    with pytest.raises(mg.GradcheckError) as info:
        mg.gradcheck(lambda a, b: HalfWrongMul.apply(a, b), [x, y])
    msg = str(info.value)
    assert "input 1 (2,)" in msg and "input 0" not in msg
    assert mg.gradcheck(lambda a, b: HalfWrongMul.apply(a, b), [x, mg.tensor(y.data)])  # y not checked
    with pytest.raises(mg.GradcheckError, match=r"input 2 \(2,\) at"):  # labels count every input
        mg.gradcheck(lambda c, a, b: HalfWrongMul.apply(a, b) * c, [2.0, mg.tensor(x.data), y])
    with pytest.raises(mg.GradcheckError, match=r"input 0 \(weight\) \(2,\)"):
        mg.gradcheck(lambda a: HalfWrongMul.apply(y, a), [x])


def test_warns_on_float32_inputs() -> None:
    x = mg.tensor(np.array([0.5, 1.0], np.float32), requires_grad=True)
    with pytest.warns(RuntimeWarning, match="float32"):
        mg.gradcheck(lambda t: t * 2, [x], eps=1e-3, atol=1e-2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mg.gradcheck(lambda t: t * 2, [x64([0.5, 1.0])])  # float64: no warning


def test_restores_grad_and_data() -> None:
    x = x64([0.3, -0.7])
    sentinel = mg.tensor(np.array([10.0, 20.0]))
    x.grad = sentinel
    before = x.data.copy()
    mg.gradcheck(lambda t: t.sigmoid() * t, [x])
    assert x.grad is sentinel and x.grad.tolist() == [10.0, 20.0]
    np.testing.assert_array_equal(x.data, before)
    y = x64([1.0, 2.0])
    mg.gradcheck(lambda t: t.exp(), [y], fast=True)
    assert y.grad is None
    np.testing.assert_array_equal(y.data, [1.0, 2.0])
    with pytest.raises(mg.GradcheckError):  # restored also when it fails
        mg.gradcheck(lambda t: WrongCube.apply(t), [x])
    assert x.grad is sentinel


def test_tuple_outputs_and_nondifferentiable_parts() -> None:
    x = x64([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert mg.gradcheck(lambda t: (t.sum(axis=0), (t > 2.5), t.amax(axis=1), t.max(1)), [x])
    assert mg.gradcheck(lambda t: t.unbind(1), [x])


def test_checks_gradient_shape_and_dtype(monkeypatch) -> None:
    """An engine that stored gradients in the wrong dtype or shape is caught (simulated by patching)."""
    from minigrad import autograd

    real = autograd._finish_leaves

    def wrong_dtype(leaf, owned):
        real(leaf, owned)
        for t, _ in leaf.values():
            t._grad = mg.Tensor(t.grad.data.astype(np.float32))  # past the .grad setter's own check

    monkeypatch.setattr(autograd, "_finish_leaves", wrong_dtype)
    x = x64([1.0, 2.0, 3.0])
    with pytest.raises(mg.GradcheckError, match=r"gradient of input 0 \(3,\) \[float64\].*dtype float32"):
        mg.gradcheck(lambda t: t * 2, [x])

    def wrong_shape(leaf, owned):
        real(leaf, owned)
        for t, _ in leaf.values():
            t._grad = mg.Tensor(t.grad.data[:2])

    monkeypatch.setattr(autograd, "_finish_leaves", wrong_shape)
    with pytest.raises(mg.GradcheckError, match=r"gradient of input 0 \(3,\).*shape \(2,\)"):
        mg.gradcheck(lambda t: t * 2, [x])


def test_derived_0d_input_is_perturbed() -> None:
    x = (mg.tensor(2.0, dtype="float64") * 3).detach().requires_grad_()
    assert mg.gradcheck(lambda t: t ** 3, [x])
    with pytest.raises(mg.GradcheckError):
        mg.gradcheck(lambda t: WrongCube.apply(t), [x])


def test_argument_errors() -> None:
    with pytest.raises(ValueError, match="no input requires grad"):
        mg.gradcheck(lambda t: t * 2, [mg.tensor([1.0], dtype="float64")])
    with pytest.raises(TypeError, match="Tensors"):
        mg.gradcheck(lambda t: t.data, [x64([1.0])])


def test_tolerances_are_honoured() -> None:
    # a backward off by 1e-4 relative passes rtol=1e-3 and fails rtol=1e-6
    class Slightly(mg.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2 * (1 + 1e-4)

    x = x64([1.0, -2.0])
    assert mg.gradcheck(lambda t: Slightly.apply(t), [x])
    with pytest.raises(mg.GradcheckError):
        mg.gradcheck(lambda t: Slightly.apply(t), [x], rtol=1e-6, atol=1e-9)


# ---------------------------------------------------------------------------- non-leaf inputs
def test_non_leaf_inputs_are_independent_variables() -> None:
    """As torch.autograd.gradcheck: a tensor computed from others is an input like a leaf (this used
    to report 'analytic 0 numeric 0.98' because only leaves receive .grad)."""
    x = x64([0.3, -0.7, 1.1])
    h = x * 2.0                                         # a non-leaf input
    h_data = h.data.copy()
    assert mg.gradcheck(lambda t: (t ** 3).tanh(), [h])
    assert mg.gradcheck(lambda t, u: t * u.exp(), [h, x], fast=True)
    worst = r"input 0 \(3,\) at \(1,\), output 1: analytic -4\.2 numeric 5\.88"
    with pytest.raises(mg.GradcheckError, match=worst):
        mg.gradcheck(lambda t: WrongCube.apply(t), [h])
    np.testing.assert_array_equal(h.data, h_data)       # the caller's graph is untouched ...
    assert x.grad is None and h.grad is None
    h.sum().backward()                                  # ... and still differentiable
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])


def test_non_leaf_input_keeps_its_name_in_reports() -> None:
    h = x64([1.0, 2.0]) * 1.0
    h.name = "hidden"
    with pytest.raises(mg.GradcheckError, match=r"input 0 \(hidden\) \(2,\)"):
        mg.gradcheck(lambda t: WrongCube.apply(t), [h])


# ---------------------------------------------------------------------------- gradient dtypes
class Float32Grad(mg.Function):
    """y = 2 x, with a backward that returns float32 whatever the input (a precision bug the engine's
    cast to the input's dtype would hide)."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, g):
        return (2 * g).astype(np.float32)


def test_gradient_of_the_wrong_dtype_is_reported() -> None:
    x = x64([0.1, 0.2, 0.3])
    for fast in (False, True):
        with pytest.raises(mg.GradcheckError,
                           match=r"op 'Float32Grad' returned a float32 gradient for its input 0 "
                                 r"\(3,\) \[float64\]"):
            mg.gradcheck(lambda t: Float32Grad.apply(t).tanh(), [x], fast=fast)
    assert x.grad is None
    x32 = mg.tensor(np.array([0.1, 0.2, 0.3], np.float32), requires_grad=True)
    with pytest.warns(RuntimeWarning, match="float32"):    # float32 for a float32 input is right
        assert mg.gradcheck(lambda t: Float32Grad.apply(t), [x32], eps=1e-3, atol=1e-2)


# ---------------------------------------------------------------------------- determinism
def test_non_deterministic_fn_is_named_as_such() -> None:
    from minigrad.nn import functional as F

    x = x64(np.linspace(0.5, 2.0, 20))
    for fast in (False, True):
        with pytest.raises(mg.GradcheckError, match=r"fn is not deterministic.*dropout"):
            mg.gradcheck(lambda t: F.dropout(t, 0.5), [x], fast=fast)
    # the same dropout with its randomness fixed per call is checkable
    assert mg.gradcheck(lambda t: F.dropout(t, 0.5, rng=np.random.default_rng(0)), [x])


def test_nan_is_deterministic_but_never_a_pass() -> None:
    """NaN outputs repeat (not 'non-deterministic'), and a NaN numeric derivative against a finite
    analytic one is a mismatch (NaN compares False, which used to let it pass)."""
    x = x64([-1.0, 2.0])
    with np.errstate(invalid="ignore"), pytest.raises(mg.GradcheckError) as info:
        mg.gradcheck(lambda t: t.log(), [x])
    msg = str(info.value)
    assert "2 mismatch(es)" in msg and "deterministic" not in msg
    assert "at (0,), output 0: analytic -1 numeric nan" in msg    # d log(x0) / dx0 = -1 at x0 = -1
    assert "at (1,), output 0: analytic 0 numeric nan" in msg     # NaN - NaN: nothing to compare


# ---------------------------------------------------------------------------- in-place backward
class InPlaceDoubler(mg.Function):
    """y = 2 x, with a backward that doubles its incoming gradient IN PLACE: the engine may have handed
    the same array to a sibling branch (add gives its gradient to both inputs)."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, g):
        g *= 2
        return g


# d/dt = 5, 3 and 5; each ends in "* 1.0" so that the add's incoming gradient is a writable array
SIBLINGS = [lambda t: (InPlaceDoubler.apply(t * 1.0) + t * 3.0) * 1.0,
            lambda t: (InPlaceDoubler.apply(t) + t) * 1.0,
            lambda t: (t * 3.0 + InPlaceDoubler.apply(t * 1.0)) * 1.0]  # this order hides the corruption


@pytest.mark.parametrize("k", range(3))
def test_backward_writing_into_its_incoming_gradient_is_reported(k) -> None:
    x = x64([1.0, 2.0])
    fn = SIBLINGS[k]
    for fast in (False, True):
        with pytest.raises(mg.GradcheckError,
                           match=r"backward of op 'InPlaceDoubler' writes into its incoming gradient"):
            mg.gradcheck(fn, [x], fast=fast)
    assert x.grad is None
    np.testing.assert_array_equal(x.data, [1.0, 2.0])


def test_watching_restores_the_ops() -> None:
    """Nodes built outside fn (here y's, captured by the closure) are watched while gradcheck runs and
    get their own op classes back afterwards, also when a backward failed."""
    x, w = x64([1.0, 2.0]), x64([0.5, -0.5])
    w.grad = sentinel = mg.tensor(np.array([7.0, 7.0]))
    y = (w * 3.0).tanh()
    nodes = [y.node, y.node.inputs[0].node]
    before = [n.fn for n in nodes]
    assert mg.gradcheck(lambda t: t * y, [x])
    assert [n.fn for n in nodes] == before
    assert w.grad is sentinel                     # a leaf reached through the closure: .grad restored
    assert w.grad.tolist() == [7.0, 7.0]          # ... and not accumulated into
    with pytest.raises(mg.GradcheckError, match="in place"):
        mg.gradcheck(lambda t: InPlaceDoubler.apply(t * 1.0) + t * 3.0 + y, [x])
    assert [n.fn for n in nodes] == before
    assert [n.fn.__module__ for n in nodes] == ["minigrad.ops.elementwise", "minigrad.ops.arithmetic"]


@pytest.mark.parametrize("k", [0, 1])
def test_engine_protects_sibling_gradients_from_in_place_backward(k) -> None:
    x = x64([1.0, 2.0])
    fn = SIBLINGS[k]
    try:
        fn(x).sum().backward()
    except ValueError as exc:          # a read-only gradient: a loud error is a fix too
        assert "read-only" in str(exc)
        return
    np.testing.assert_array_equal(x.grad, [5.0, 5.0] if k == 0 else [3.0, 3.0])

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
    sentinel = np.array([10.0, 20.0])
    x.grad = sentinel
    before = x.data.copy()
    mg.gradcheck(lambda t: t.sigmoid() * t, [x])
    assert x.grad is sentinel
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
            t.grad = t.grad.astype(np.float32)

    monkeypatch.setattr(autograd, "_finish_leaves", wrong_dtype)
    x = x64([1.0, 2.0, 3.0])
    with pytest.raises(mg.GradcheckError, match=r"gradient of input 0 \(3,\) \[float64\].*dtype float32"):
        mg.gradcheck(lambda t: t * 2, [x])

    def wrong_shape(leaf, owned):
        real(leaf, owned)
        for t, _ in leaf.values():
            t.grad = t.grad[:2]

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

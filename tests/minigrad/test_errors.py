"""Errors are raised before any kernel runs and name the op, the shapes and the dtypes."""

from __future__ import annotations

import re

import numpy as np
import pytest

import minigrad as mg


def f32(*shape):
    return mg.ones(*shape)


def f64(*shape):
    return mg.ones(*shape, dtype="float64")


SHAPE_ERRORS = [
    ("matmul", lambda: f32(2, 3) @ f64(4, 5), ["(2, 3) [float32]", "(4, 5) [float64]"]),
    ("matmul", lambda: mg.matmul(f32(3), f32(4)), ["(3,) [float32]", "(4,) [float32]"]),
    ("matmul", lambda: f32(2, 2, 3) @ f32(3, 3, 4), ["batch", "(2, 2, 3)", "(3, 3, 4)"]),
    ("matmul", lambda: mg.tensor(2.0) @ f32(2), ["at least 1-D", "() [float32]"]),
    ("add", lambda: f32(2, 3) + f64(4, 3), ["(2, 3) [float32]", "(4, 3) [float64]"]),
    ("sub", lambda: f32(3) - f32(4), ["(3,) [float32]", "(4,) [float32]"]),
    ("mul", lambda: f32(2, 3) * np.ones((4, 3)), ["(2, 3) [float32]", "(4, 3)"]),
    ("div", lambda: 1 / f32(2, 3) / f32(2), ["(2, 3) [float32]", "(2,) [float32]"]),
    ("maximum", lambda: mg.maximum(f32(2, 3), f32(2)), ["(2, 3)", "(2,)"]),
    ("where", lambda: mg.where(np.ones(3, bool), f32(2, 3), f32(4, 1)), ["(3,) [bool]", "(2, 3)", "(4, 1)"]),
    ("reshape", lambda: f32(2, 3).reshape(4, 2), ["(2, 3) [float32]", "(4, 2)"]),
    ("reshape", lambda: f32(2, 3).reshape(-1, -1), ["(2, 3) [float32]", "(-1, -1)"]),
    ("concatenate", lambda: mg.concatenate([f32(2, 3), f64(2, 4)]), ["(2, 3) [float32]", "(2, 4) [float64]"]),
    ("concatenate", lambda: mg.concatenate([f32(2, 3), f32(3)], axis=0), ["(2, 3)", "(3,)"]),
    ("concatenate", lambda: mg.concatenate([mg.tensor(1.0), mg.tensor(2.0)]), ["axis 0", "0 dimensions"]),
    ("stack", lambda: mg.stack([f32(2, 3), f32(2, 4)]), ["(2, 3)", "(2, 4)"]),
    ("broadcast_to", lambda: f32(2, 3).expand(3, 3), ["(2, 3) [float32]", "(3, 3)"]),
    ("broadcast_to", lambda: f32(3).expand(-1, 3), ["(3,) [float32]", "(-1, 3)", "existing axes"]),
    ("broadcast_to", lambda: f32(2, 3).broadcast_to((3,)), ["(2, 3) [float32]", "(3,)"]),
    ("transpose", lambda: mg.transpose(f32(2, 3, 4), (0, 5, 1)), ["(2, 3, 4)", "(0, 5, 1)"]),
    ("transpose", lambda: f32(2, 3, 4).permute(0, 0, 1), ["(2, 3, 4)", "permutation"]),
    ("split", lambda: f32(2, 3).split([2, 2], dim=1), ["(2, 3) [float32]", "[2, 2]"]),
    ("squeeze", lambda: f32(2, 3).squeeze(0), ["(2, 3)"]),
    ("sum", lambda: f32(2, 3).sum(axis=2), ["axis 2", "2 dimensions"]),
    ("sum", lambda: mg.tensor(2.0).sum(axis=0), ["axis 0", "0 dimensions"]),
    ("max", lambda: f32(2, 3).amax(axis=(0, 0)), ["repeated axis"]),
    ("max", lambda: mg.zeros(0, 3).max(), ["empty", "(0, 3)"]),
    ("min", lambda: mg.zeros(0, 3).amin(axis=0), ["empty", "(0, 3)"]),
    ("softmax", lambda: f32(2, 3).softmax(axis=3), ["axis 3"]),
    ("log_softmax", lambda: mg.log_softmax(f32(2, 3), axis=-3), ["axis -3"]),
]


@pytest.mark.parametrize("op,fn,parts", SHAPE_ERRORS, ids=[f"{e[0]}-{i}" for i, e in enumerate(SHAPE_ERRORS)])
def test_shape_errors_name_op_shapes_dtypes(op, fn, parts) -> None:
    with pytest.raises(mg.ShapeError) as info:
        fn()
    msg = str(info.value)
    assert msg.startswith(f"{op}:"), msg
    for p in parts:
        assert p in msg, f"{p!r} not in {msg!r}"


def test_shape_error_is_a_value_error() -> None:
    assert issubclass(mg.ShapeError, ValueError)


def test_getitem_out_of_range_names_op_and_shape() -> None:
    with pytest.raises(IndexError, match="getitem: .*" + re.escape("(2, 3) [float32]")):
        f32(2, 3)[5]
    with pytest.raises(IndexError, match="getitem"):
        f32(2, 3)[[0, 2]]


def test_errors_raised_before_any_kernel_runs(monkeypatch) -> None:
    """A shape mismatch must not reach the forward: nothing runs, nothing is recorded."""
    from minigrad.ops import linalg, shape

    def boom(*a, **k):
        raise AssertionError("forward ran")

    monkeypatch.setattr(linalg.MatMul, "forward", staticmethod(boom))
    monkeypatch.setattr(shape.Concatenate, "forward", staticmethod(boom))
    monkeypatch.setattr(shape.Reshape, "forward", staticmethod(boom))
    with pytest.raises(mg.ShapeError):
        f32(2, 3) @ f32(4, 2)
    with pytest.raises(mg.ShapeError):
        mg.concatenate([f32(2, 3), f32(3, 2)])
    with pytest.raises(mg.ShapeError):
        f32(2, 3).reshape(5)


@pytest.mark.parametrize("make", [
    lambda: mg.tensor(np.zeros(2, np.float16)),
    lambda: mg.tensor(np.zeros(2, np.complex128)),
    lambda: mg.tensor(np.array(["a"])),
    lambda: mg.tensor([1.0, 2.0], dtype="float16"),
    lambda: mg.tensor(1 + 2j),
    lambda: mg.zeros(2, dtype=np.float16),
    lambda: mg.ones(2, dtype="complex64"),
    lambda: mg.randn(2, dtype="float16"),
    lambda: mg.full((2,), 1.0, dtype=np.longdouble),
    lambda: mg.tensor([1.0]).astype("float16"),
    lambda: mg.tensor([1.0], dtype="not a dtype"),
], ids=["f16", "c128", "str", "dtype-f16", "complex", "zeros-f16", "ones-c64", "randn-f16", "longdouble",
        "astype-f16", "bogus"])
def test_unsupported_dtypes_are_type_errors(make) -> None:
    with pytest.raises(TypeError, match="dtype"):
        make()


def test_requires_grad_on_integer_tensor_is_type_error() -> None:
    with pytest.raises(TypeError, match=r"requires_grad.*int64"):
        mg.tensor(np.array([1, 2]), requires_grad=True)
    with pytest.raises(TypeError, match="requires_grad"):
        mg.arange(3, requires_grad=True)
    with pytest.raises(TypeError, match="requires_grad"):
        mg.tensor(np.array([True])).requires_grad_()
    t = mg.tensor(np.array([1, 2]))  # integer tensors may exist without gradients
    assert t.dtype == np.int64 and not t.requires_grad


def test_backward_twice_names_retain_graph_and_op() -> None:
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    # The error names the op whose saved arrays were freed (Mul); Sum saved only shapes.
    with pytest.raises(RuntimeError, match=r"(?s)second time.*'Mul'.*retain_graph=True"):
        y.backward()


def test_backward_non_scalar_without_grad() -> None:
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"shape \(2,\).*grad"):
        (x * 2).backward()
    (x * 2)[:1].backward()  # one element is fine (like PyTorch)
    assert x.grad.tolist() == [2.0, 0.0]


def test_backward_grad_of_wrong_shape() -> None:
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"grad has shape \(3,\).*\(2,\)"):
        (x * 2).backward(np.ones(3))


def test_backward_without_requires_grad() -> None:
    with pytest.raises(RuntimeError, match="does not require grad"):
        mg.tensor([1.0]).sum().backward()
    x = mg.tensor([1.0], requires_grad=True)
    with mg.no_grad(), pytest.raises(RuntimeError, match="no_grad"):
        (x * 2).sum().backward()


class BadShape(mg.Function):
    """A broken op: its backward returns a gradient of the wrong shape."""

    @staticmethod
    def forward(ctx, x):
        return x * 2

    @staticmethod
    def backward(ctx, g):
        return g.sum(axis=0)


class BadCount(mg.Function):
    @staticmethod
    def forward(ctx, x, y):
        return x + y

    @staticmethod
    def backward(ctx, g):
        return g


def test_custom_op_with_wrongly_shaped_grad_names_the_op() -> None:
    x = mg.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"'BadShape'.*\(3,\).*\(2, 3\)"):
        BadShape.apply(x).sum().backward()


def test_custom_op_with_wrong_number_of_grads_names_the_op() -> None:
    x = mg.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"'BadCount'.*1 gradients for 2 inputs"):
        BadCount.apply(x, x).sum().backward()


def test_hook_returning_wrong_shape_is_an_error() -> None:
    x = mg.tensor(np.ones(3), requires_grad=True)
    h = x.register_hook(lambda g: g[:2])
    with pytest.raises(RuntimeError, match=r"hook.*\(3,\).*\(2,\)"):
        (x * 2).sum().backward()
    h.remove()
    y = x * 2
    y.register_hook(lambda g: g.sum())  # would silently broadcast in the next backward
    with pytest.raises(RuntimeError, match=r"hook on output 0 of op 'Mul'.*shape \(\)"):
        (y * y).sum().backward()


def test_misc_argument_errors() -> None:
    with pytest.raises(ValueError, match="clip"):
        f32(3).clip()
    with pytest.raises(ValueError, match="chunk"):
        f32(3).chunk(0)
    with pytest.raises(ValueError, match="concatenate"):
        mg.concatenate([])
    with pytest.raises(TypeError, match="len"):
        len(mg.tensor(1.0))
    with pytest.raises(RuntimeError, match="non-leaf"):
        (mg.tensor([1.0], requires_grad=True) * 2).requires_grad_(False)

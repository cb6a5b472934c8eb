"""Every op: gradients against float64 central differences (``mg.gradcheck``) on the broadcasting shape
groups, forward values against NumPy, and float32 in -> float32 out / float32 gradients.

Ops are described once in a table of ``Case``s (function, NumPy reference, input shapes and value kinds);
the generic tests below run over the whole table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from _engine_values import ALL_SHAPES, SHAPE_PAIRS, values

import minigrad as mg


@dataclass(frozen=True)
class Case:
    name: str
    fn: Callable  # Tensors -> Tensor or tuple of Tensors
    ref: Callable  # ndarrays -> ndarray or tuple of ndarrays
    shapes: tuple
    kinds: tuple

    @property
    def id(self) -> str:
        return f"{self.name}-" + "-".join("x".join(map(str, s)) or "scalar" for s in self.shapes)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _lse(x, axis=None, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


UNARY = [
    ("neg", lambda x: -x, np.negative, "any"),
    ("exp", mg.exp, np.exp, "any"),
    ("log", mg.log, np.log, "pos"),
    ("sqrt", mg.sqrt, np.sqrt, "pos"),
    ("abs", mg.abs, np.abs, "any"),
    ("tanh", mg.tanh, np.tanh, "any"),
    ("sigmoid", mg.sigmoid, _sigmoid, "any"),
    ("relu", mg.relu, lambda x: np.maximum(x, 0), "any"),
    ("softplus", mg.softplus, lambda x: np.logaddexp(0, x), "any"),
    ("clip", lambda x: mg.clip(x, -1, 1), lambda x: np.clip(x, -1, 1), "offunit"),
    ("clip_lo", lambda x: x.clip(lo=-1.0), lambda x: np.maximum(x, -1), "offunit"),
    ("clip_hi", lambda x: mg.clamp(x, max=1.0), lambda x: np.minimum(x, 1), "offunit"),
    ("pow2", lambda x: x ** 2, lambda x: x ** 2, "any"),
    ("pow3", lambda x: mg.power(x, 3), lambda x: x ** 3, "any"),
    ("pow_neg_int", lambda x: x ** -2, lambda x: x ** -2.0, "any"),
    ("pow_half", lambda x: x.pow(0.5), np.sqrt, "pos"),
    ("pow_np_scalar", lambda x: x ** np.float64(-1.5), lambda x: x ** -1.5, "pos"),
    ("rpow", lambda x: 2.0 ** x, lambda x: 2.0 ** x, "any"),
    ("scalar_arith", lambda x: (1.5 - x) * 2 / 3 + 1 - (x / 4),
     lambda x: (1.5 - x) * 2 / 3 + 1 - x / 4, "any"),
    ("rdiv", lambda x: 2.0 / x, lambda x: 2.0 / x, "any"),
]

BINARY = [
    ("add", lambda a, b: a + b, np.add, ("any", "any")),
    ("sub", lambda a, b: a - b, np.subtract, ("any", "any")),
    ("mul", lambda a, b: a * b, np.multiply, ("any", "any")),
    ("div", lambda a, b: a / b, np.divide, ("any", "any")),
    ("pow", lambda a, b: a ** b, np.power, ("pos", "any")),
    ("maximum", mg.maximum, np.maximum, ("lo", "hi")),
    ("minimum", mg.minimum, np.minimum, ("hi", "lo")),
    ("where", lambda a, b: mg.where(np.array([[True], [False], [True]]), a, b),
     lambda a, b: np.where(np.array([[True], [False], [True]]), a, b), ("any", "any")),
]


def _axes_for(ndim: int) -> list:
    axes: list = [None]
    if ndim >= 1:
        axes += [0, -1]
    if ndim >= 2:
        axes += [(0, ndim - 1)]
    return axes


REDUCTIONS = [
    ("sum", mg.sum, np.sum, "any"),
    ("mean", lambda x, axis, keepdims: x.mean(axis, keepdims), np.mean, "any"),
    ("amax", mg.amax, np.max, "distinct"),
    ("amin", lambda x, axis, keepdims: x.amin(axis=axis, keepdims=keepdims), np.min, "distinct"),
    ("logsumexp", mg.logsumexp, _lse, "any"),
]


def _softmax_ref(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


MATMUL_SHAPES = [
    ((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((2, 2, 3), (3, 4)),
    ((2, 3), (2, 3, 4)), ((2, 1, 2, 3), (3, 3, 4)), ((2, 2, 3), (3,)), ((3,), (2, 3, 4)),
    ((1, 2, 3), (2, 3, 2)),
]


def _shape_cases() -> list[Case]:
    c = []

    def add(name, fn, ref, *shapes, kinds=None):
        c.append(Case(name, fn, ref, tuple(shapes), kinds or ("any",) * len(shapes)))

    add("reshape", lambda x: x.reshape(4, 3), lambda x: x.reshape(4, 3), (3, 4))
    add("reshape_infer", lambda x: mg.reshape(x, (2, -1)), lambda x: x.reshape(2, -1), (2, 3, 4))
    add("reshape_scalar", lambda x: x.reshape(1, 1), lambda x: x.reshape(1, 1), ())
    add("flatten", lambda x: x.flatten(), lambda x: x.ravel(), (2, 1, 4))
    add("T", lambda x: x.T, lambda x: x.T, (3, 4))
    add("transpose3", lambda x: mg.transpose(x, (2, 0, 1)), lambda x: x.transpose(2, 0, 1), (2, 3, 4))
    add("transpose_swap", lambda x: x.transpose(0, 2), lambda x: x.swapaxes(0, 2), (2, 3, 4))
    add("permute", lambda x: x.permute(1, 2, 0), lambda x: x.transpose(1, 2, 0), (2, 3, 4))
    add("expand", lambda x: x.expand(2, 3, 4), lambda x: np.broadcast_to(x, (2, 3, 4)), (3, 1))
    add("expand_minus1", lambda x: x.expand(3, -1), lambda x: np.broadcast_to(x, (3, 4)), (1, 4))
    add("broadcast_to", lambda x: mg.broadcast_to(x, (2, 2, 3, 4)),
        lambda x: np.broadcast_to(x, (2, 2, 3, 4)), (2, 1, 4))
    add("broadcast_scalar", lambda x: x.broadcast_to((3, 4)), lambda x: np.broadcast_to(x, (3, 4)), ())
    add("squeeze", lambda x: x.squeeze(1), lambda x: x.squeeze(1), (2, 1, 4))
    add("unsqueeze", lambda x: x.unsqueeze(0), lambda x: x[None], (3, 4))
    # getitem: basic
    add("getitem_int", lambda x: x[1], lambda x: x[1], (3, 4))
    add("getitem_slices", lambda x: x[:, 1:3], lambda x: x[:, 1:3], (3, 4))
    add("getitem_step", lambda x: x[::-1, ::2], lambda x: x[::-1, ::2], (3, 4))
    add("getitem_ellipsis_none", lambda x: x[..., None, 1], lambda x: x[..., None, 1], (2, 3, 4))
    add("getitem_mixed", lambda x: x[1, :, -1], lambda x: x[1, :, -1], (2, 3, 4))
    # getitem: integer arrays, with repeated indices (gradients must accumulate)
    add("getitem_intarray_rep", lambda x: x[[0, 2, 0, 0]], lambda x: x[[0, 2, 0, 0]], (3, 4))
    add("getitem_intarray_axis1", lambda x: x[:, np.array([3, 1, 1])], lambda x: x[:, [3, 1, 1]], (3, 4))
    add("getitem_intarray_pairs", lambda x: x[[0, 1, 0], [1, 1, 1]], lambda x: x[[0, 1, 0], [1, 1, 1]],
        (2, 3, 4))
    add("getitem_tensor_index", lambda x: x[mg.tensor(np.array([[1, 1], [0, 2]]))],
        lambda x: x[np.array([[1, 1], [0, 2]])], (3, 4))
    add("getitem_bool", lambda x: x[np.array([True, False, True])], lambda x: x[[0, 2]], (3, 4))
    # joins
    add("concat0", lambda a, b: mg.concatenate([a, b]), lambda a, b: np.concatenate([a, b]), (3, 4), (1, 4))
    add("concat_last3", lambda a, b, c: mg.concatenate([a, b, c], axis=-1),
        lambda a, b, c: np.concatenate([a, b, c], axis=-1), (2, 3, 4), (2, 3, 1), (2, 3, 2))
    add("stack0", lambda a, b: mg.stack([a, b]), lambda a, b: np.stack([a, b]), (3, 4), (3, 4))
    add("stack_last", lambda a, b, c: mg.stack((a, b, c), axis=-1),
        lambda a, b, c: np.stack((a, b, c), axis=-1), (2, 1, 4), (2, 1, 4), (2, 1, 4))
    add("stack_scalars", lambda a, b: mg.stack([a, b]), lambda a, b: np.stack([a, b]), (), ())
    # one multi-output op
    add("split_sections", lambda x: mg.split(x, 2, dim=2), lambda x: tuple(np.split(x, 2, axis=2)),
        (2, 3, 4))
    add("split_sizes", lambda x: x.split([1, 2, 1], dim=-1), lambda x: tuple(np.split(x, [1, 3], axis=-1)),
        (3, 4))
    add("chunk_uneven", lambda x: x.chunk(3, axis=1), lambda x: tuple(np.split(x, [2, 4], axis=1)), (3, 5))
    add("unbind", lambda x: mg.unbind(x, 1), lambda x: tuple(np.moveaxis(x, 1, 0)), (2, 3, 4))
    add("split_uneven", lambda x: x.split(3, dim=1), lambda x: tuple(np.split(x, [3], axis=1)), (3, 5))
    add("split_some_used", lambda x: mg.split(x, 1, dim=1)[1] * mg.split(x, 1, axis=1)[3],
        lambda x: x[:, 1:2] * x[:, 3:4], (3, 4))
    add("unbind_partial", lambda x: x.unbind(0)[0] * 2 + x.unbind(0)[2],
        lambda x: x[0] * 2 + x[2], (3, 4))
    return c


def _build_cases() -> list[Case]:
    cases = []
    for name, fn, ref, kind in UNARY:
        cases += [Case(name, fn, ref, (s,), (kind,)) for s in ALL_SHAPES]
    for name, fn, ref, kinds in BINARY:
        cases += [Case(name, fn, ref, pair, kinds) for pair in SHAPE_PAIRS]
    for name, fn, ref, kind in REDUCTIONS:
        for s in ALL_SHAPES:
            for axis in _axes_for(len(s)):
                for keepdims in (False, True):
                    cases.append(Case(
                        f"{name}[axis={axis},keepdims={keepdims}]",
                        lambda x, fn=fn, axis=axis, keepdims=keepdims: fn(x, axis=axis, keepdims=keepdims),
                        lambda x, ref=ref, axis=axis, keepdims=keepdims: ref(x, axis=axis, keepdims=keepdims),
                        (s,), (kind,)))
    for s in [(3, 4), (2, 3, 4), (2, 1, 4)]:
        for axis in (0, -1):
            cases.append(Case(f"softmax[{axis}]", lambda x, a=axis: mg.softmax(x, a),
                              lambda x, a=axis: _softmax_ref(x, a), (s,), ("any",)))
            cases.append(Case(f"log_softmax[{axis}]", lambda x, a=axis: x.log_softmax(axis=a),
                              lambda x, a=axis: np.log(_softmax_ref(x, a)), (s,), ("any",)))
    for sa, sb in MATMUL_SHAPES:
        cases.append(Case("matmul", lambda a, b: a @ b, np.matmul, (sa, sb), ("any", "any")))
    cases.append(Case("mg.matmul", mg.matmul, np.matmul, ((3, 4), (4, 2)), ("any", "any")))
    cases.append(Case("rmatmul_array", lambda b: np.ones((2, 3)) @ b, lambda b: np.ones((2, 3)) @ b,
                      ((3, 4),), ("any",)))
    return cases + _shape_cases()


CASES = _build_cases()


def _inputs(case: Case, dtype=np.float64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [values(rng, s, k, dtype) for s, k in zip(case.shapes, case.kinds)]


def _as_tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_gradcheck_float64(case: Case) -> None:
    xs = [mg.tensor(a, requires_grad=True) for a in _inputs(case)]
    assert mg.gradcheck(case.fn, xs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_forward_matches_numpy(case: Case, dtype) -> None:
    arrays = _inputs(case, dtype)
    outs = _as_tuple(case.fn(*[mg.tensor(a) for a in arrays]))
    refs = _as_tuple(case.ref(*[a.astype(np.float64) for a in arrays]))
    assert len(outs) == len(refs)
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == np.float64 else {"rtol": 2e-6, "atol": 1e-6}
    for o, r in zip(outs, refs):
        assert isinstance(o, mg.Tensor)
        assert o.shape == np.shape(r)
        assert o.dtype == dtype
        np.testing.assert_allclose(o.data, r, **tol)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_float32_in_float32_out_and_grads(case: Case) -> None:
    xs = [mg.tensor(a, requires_grad=True) for a in _inputs(case, np.float32)]
    outs = _as_tuple(case.fn(*xs))
    loss = None
    for i, o in enumerate(outs):
        assert o.dtype == np.float32, f"output {i} is {o.dtype}"
        term = (o * (i + 1)).sum()
        loss = term if loss is None else loss + term
    assert loss.dtype == np.float32
    loss.backward()
    # the same gradient computed in float64 (the float32 one must agree to float32 precision)
    xs64 = [mg.tensor(x.data.astype(np.float64), requires_grad=True) for x in xs]
    loss64 = sum(((o * (i + 1)).sum() for i, o in enumerate(_as_tuple(case.fn(*xs64)))), mg.tensor(0.0))
    loss64.backward()
    for x, x64 in zip(xs, xs64):
        assert x.grad is not None and x.grad.dtype == np.float32 and x.grad.shape == x.shape
        np.testing.assert_allclose(x.grad, x64.grad, rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------- scalars and promotion
SCALARS = [2.0, 2, np.float64(2.0), np.float32(2.0), np.int64(2), np.array(2.0)]
SCALAR_OPS = [
    ("add", lambda x, s: x + s, lambda x, s: s + x),
    ("sub", lambda x, s: x - s, lambda x, s: s - x),
    ("mul", lambda x, s: x * s, lambda x, s: s * x),
    ("div", lambda x, s: x / s, lambda x, s: s / x),
    ("pow", lambda x, s: x ** s, lambda x, s: s ** x),
    ("maximum", mg.maximum, lambda x, s: mg.maximum(s, x)),
    ("minimum", mg.minimum, lambda x, s: mg.minimum(s, x)),
    ("where", lambda x, s: mg.where(x.data > 1, x, s), lambda x, s: mg.where(x.data > 1, s, x)),
]


@pytest.mark.parametrize("scalar", SCALARS, ids=lambda s: f"{type(s).__name__}")
@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("name,right,left", SCALAR_OPS, ids=[o[0] for o in SCALAR_OPS])
def test_scalars_keep_float32(name, right, left, side, scalar) -> None:
    """A Python or NumPy scalar on either side adopts the tensor's dtype (float32 stays float32)."""
    x = mg.tensor(np.array([0.5, 1.5, 3.0], np.float32), requires_grad=True)
    out = (right if side == "right" else left)(x, scalar)
    assert isinstance(out, mg.Tensor)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32
    # values and gradient agree with the same computation in float64
    x64 = mg.tensor(x.data.astype(np.float64), requires_grad=True)
    out64 = (right if side == "right" else left)(x64, scalar)
    assert out64.dtype == np.float64
    out64.sum().backward()
    np.testing.assert_allclose(out.data, out64.data, rtol=1e-6)
    np.testing.assert_allclose(x.grad, x64.grad, rtol=1e-5, atol=1e-6)


def test_numpy_array_operand_adopts_tensor_dtype() -> None:
    x = mg.tensor(np.ones(3, np.float32), requires_grad=True)
    a = np.array([1.0, 2.0, 3.0])  # float64
    for out in (x + a, a + x, a * x, x @ a, a - x):
        assert out.dtype == np.float32


PROMOTING = [
    ("add", lambda a, b: a + b), ("sub", lambda a, b: a - b), ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b), ("pow", lambda a, b: a.abs() ** b), ("maximum", mg.maximum),
    ("minimum", mg.minimum), ("matmul", lambda a, b: a @ b.T),
    ("where", lambda a, b: mg.where(np.array([True, False, True]), a, b)),
    ("concatenate", lambda a, b: mg.concatenate([a, b])), ("stack", lambda a, b: mg.stack([a, b])),
]


@pytest.mark.parametrize("name,fn", PROMOTING, ids=[p[0] for p in PROMOTING])
@pytest.mark.parametrize("order", ["f32_f64", "f64_f32"])
def test_mixed_float_dtypes_promote_and_grads_keep_input_dtype(name, fn, order) -> None:
    rng = np.random.default_rng(3)
    d1, d2 = (np.float32, np.float64) if order == "f32_f64" else (np.float64, np.float32)
    a = mg.tensor(values(rng, (3,), "lo", d1), requires_grad=True)
    b = mg.tensor(values(rng, (3,), "hi", d2), requires_grad=True)
    out = fn(a, b)
    assert out.dtype == np.float64
    out.sum().backward()
    assert a.grad.dtype == d1 and a.grad.shape == a.shape
    assert b.grad.dtype == d2 and b.grad.shape == b.shape
    a64 = mg.tensor(a.data.astype(np.float64), requires_grad=True)
    b64 = mg.tensor(b.data.astype(np.float64), requires_grad=True)
    fn(a64, b64).sum().backward()
    np.testing.assert_allclose(a.grad, a64.grad, rtol=1e-6)
    np.testing.assert_allclose(b.grad, b64.grad, rtol=1e-6)


# ----------------------------------------------------------------------- kinks and conventions
def _grad(fn, data, dtype=np.float64):
    x = mg.tensor(np.array(data, dtype), requires_grad=True)
    fn(x).sum().backward()
    return x.grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kink_conventions(dtype) -> None:
    np.testing.assert_array_equal(_grad(mg.relu, [-1.0, 0.0, 2.0], dtype), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(_grad(mg.abs, [-1.0, 0.0, 2.0], dtype), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(_grad(lambda x: x.max(), [1.0, 3.0, 3.0], dtype), [0.0, 0.5, 0.5])
    np.testing.assert_array_equal(_grad(lambda x: x.min(), [2.0, 1.0, 1.0, 1.0], dtype),
                                  np.array([0.0, 1, 1, 1], dtype) / dtype(3))
    np.testing.assert_array_equal(
        _grad(lambda x: x.amax(axis=1), [[1.0, 1.0], [0.0, 2.0]], dtype), [[0.5, 0.5], [0.0, 1.0]])
    np.testing.assert_array_equal(
        _grad(lambda x: x.amax(axis=0, keepdims=True), [[1.0, 1.0], [1.0, 2.0]], dtype), [[0.5, 0], [0.5, 1]])
    # max(dim) is PyTorch's (values, indices): the gradient goes to the index returned (the first)
    np.testing.assert_array_equal(
        _grad(lambda x: x.max(1).values, [[1.0, 1.0], [0.0, 2.0]], dtype), [[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(
        _grad(lambda x: x.min(dim=0, keepdim=True)[0], [[1.0, 1.0], [1.0, 2.0]], dtype), [[1, 1], [0, 0]])
    # maximum(x, x): each argument gets half, so x gets 0.5 + 0.5
    np.testing.assert_array_equal(_grad(lambda x: mg.maximum(x, x), [1.0, -2.0], dtype), [1.0, 1.0])
    np.testing.assert_array_equal(_grad(lambda x: mg.minimum(x, x) * 3, [1.0, -2.0], dtype), [3.0, 3.0])
    # powers at 0: d/dx x^p = p x^(p-1) is 0 for p = 0, 2, 3 and 1 for p = 1 (no NaN from 0 * inf)
    for p, expected in ((0, 0.0), (1, 1.0), (2, 0.0), (3, 0.0), (2.5, 0.0)):
        np.testing.assert_array_equal(_grad(lambda x, p=p: x ** p, [0.0], dtype), [expected])
    a = mg.tensor(np.array([0.0, 0.0, 2.0], dtype), requires_grad=True)
    b = mg.tensor(np.array([0.0, 2.0, 0.0], dtype), requires_grad=True)
    (a ** b).sum().backward()  # tensor exponent: same at 0, and no gradient into b through log(0)
    np.testing.assert_array_equal(a.grad, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(b.grad, [0.0, 0.0, np.log(dtype(2))])
    # clip passes the gradient at its bounds (PyTorch's convention)
    np.testing.assert_array_equal(_grad(lambda x: x.clip(-1, 1), [-2.0, -1.0, 0.0, 1.0, 2.0], dtype),
                                  [0.0, 1.0, 1.0, 1.0, 0.0])


@pytest.mark.parametrize("fn", [mg.maximum, mg.minimum], ids=["maximum", "minimum"])
def test_binary_ties_split_evenly_between_tensors(fn) -> None:
    a = mg.tensor(np.array([1.0, 2.0, 5.0]), requires_grad=True)
    b = mg.tensor(np.array([1.0, 3.0, 4.0]), requires_grad=True)
    fn(a, b).sum().backward()
    win_a = np.array([0.5, 0.0, 1.0]) if fn is mg.maximum else np.array([0.5, 1.0, 0.0])
    np.testing.assert_array_equal(a.grad, win_a)
    np.testing.assert_array_equal(b.grad, 1 - win_a)
    # broadcasting: the tied scalar collects half from each tie
    s = mg.tensor(2.0, requires_grad=True)
    c = mg.tensor(np.array([2.0, 2.0, 2.0]), requires_grad=True)
    fn(s, c).sum().backward()
    assert s.grad == 1.5 and c.grad.tolist() == [0.5, 0.5, 0.5]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp"])
def test_softmax_family_stable_at_1000(op, dtype) -> None:
    data = np.array([[1000.0, -1000.0, 999.0], [-1000.0, -1000.0, -999.0]], dtype)
    x = mg.tensor(data, requires_grad=True)
    y = getattr(mg, op)(x, axis=-1)
    assert np.isfinite(y.data).all() and y.dtype == dtype
    rows = data.astype(np.float64)
    shifted = rows - rows.max(axis=1, keepdims=True)
    lse = rows.max(axis=1) + np.log(np.exp(shifted).sum(axis=1))
    expected = {"softmax": np.exp(rows - lse[:, None]), "log_softmax": rows - lse[:, None],
                "logsumexp": lse}[op]
    # float32 carries |x| = 1000 only to ~6e-5 (its spacing there), so compare at that resolution
    tol = {"rtol": 1e-12, "atol": 1e-300} if dtype == np.float64 else {"rtol": 2e-4, "atol": 2e-4}
    np.testing.assert_allclose(y.data, expected, **tol)
    w = mg.tensor(np.linspace(-1, 1, y.size).reshape(y.shape).astype(dtype))
    (y * w).sum().backward()
    assert x.grad.dtype == dtype and np.isfinite(x.grad).all()
    # the float64 gradient at these extreme values is still exact
    x64 = mg.tensor(rows, requires_grad=True)
    assert mg.gradcheck(lambda t: getattr(mg, op)(t, axis=-1) * w.data.astype(np.float64), [x64])


def test_comparisons_return_bool_tensors_without_grad() -> None:
    x = mg.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = mg.tensor(np.array([3.0, 2.0, 1.0]), requires_grad=True)
    cases = [(x < y, [True, False, False]), (x <= y, [True, True, False]), (x > 2, [False, False, True]),
             (x >= 2.0, [False, True, True]), (x == y, [False, True, False]), (x != y, [True, False, True]),
             (2 < x, [False, False, True]), (mg.greater(y, x), [True, False, False])]
    for c, expected in cases:
        assert c.dtype == np.bool_ and not c.requires_grad and c.node is None
        assert c.tolist() == expected
    # a comparison can drive where, and the gradient only flows through the selected branch
    mg.where(x > 1.5, x * 2, y).sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 2, 2])
    np.testing.assert_array_equal(y.grad, [1, 0, 0])


def test_argmax_argmin_are_int_without_grad() -> None:
    x = mg.tensor(np.array([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]]), requires_grad=True)
    for t, ref in ((x.argmax(axis=1), [1, 0]), (mg.argmin(x, axis=1), [0, 1]), (x.argmax(), 3)):
        assert t.dtype.kind == "i" and not t.requires_grad
        assert t.tolist() == ref


def test_astype_between_floats_is_differentiable() -> None:
    x = mg.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.tolist() == [2.0, 4.0]
    assert x.float() is x
    i = x.astype("int64")
    assert i.dtype == np.int64 and not i.requires_grad


def test_ops_on_integer_tensors_give_floats() -> None:
    """Nonlinearities of integer tensors compute in floating point (as NumPy does), not in ints."""
    i = mg.tensor(np.array([-1, 0, 2]))
    for name in ("exp", "tanh", "sigmoid", "softplus", "sqrt"):
        out = getattr(mg, name)(mg.abs(i) if name == "sqrt" else i)
        assert out.dtype.kind == "f", name
        ref = {"exp": np.exp, "tanh": np.tanh, "sigmoid": _sigmoid, "softplus": lambda v: np.logaddexp(0, v),
               "sqrt": lambda v: np.sqrt(np.abs(v))}[name](i.data.astype(np.float64))
        np.testing.assert_allclose(out.data, ref, rtol=1e-6)


def test_max_over_nonempty_axis_of_empty_tensor() -> None:
    x = mg.tensor(np.zeros((0, 3)), requires_grad=True)
    y = x.amax(axis=1)
    assert y.shape == (0,)
    y.sum().backward()
    assert x.grad.shape == (0, 3)


def test_repeated_integer_indices_accumulate() -> None:
    x = mg.tensor(np.arange(4.0), requires_grad=True)
    x[[1, 1, 3, 1]].sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 3, 0, 1])
    x.grad = None
    (x[np.array([[0, 0], [0, 2]])] * mg.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]))).sum().backward()
    np.testing.assert_array_equal(x.grad, [6, 0, 4, 0])


@pytest.mark.parametrize("name", [u[0] for u in UNARY])
@pytest.mark.parametrize("view", ["transpose", "strided", "broadcast"])
def test_unary_ops_on_non_contiguous_views(name, view) -> None:
    """Kernels run on flat arrays: transposed, strided and broadcast (stride-0) inputs and gradients
    must be laid out consistently."""
    _, fn, ref, kind = next(u for u in UNARY if u[0] == name)
    base = values(np.random.default_rng(5), (4, 6), kind)
    make = {"transpose": lambda t: t.T, "strided": lambda t: t[::2, ::-3],
            "broadcast": lambda t: t[:1].expand(3, 6)}[view]
    x = mg.tensor(base, requires_grad=True)
    np.testing.assert_allclose(fn(make(x)).data, ref(make(mg.tensor(base)).data), rtol=1e-12)
    w = np.random.default_rng(6).standard_normal(make(x).shape)
    assert mg.gradcheck(lambda t: (fn(make(t)) * w).T, [x])


def test_expand_dims_takes_a_tuple_of_result_positions() -> None:
    x = mg.ones((2, 3))
    assert mg.expand_dims(x, (0, 2)).shape == (1, 2, 1, 3) == np.expand_dims(np.ones((2, 3)), (0, 2)).shape
    assert x.unsqueeze(-1).shape == (2, 3, 1)
    with pytest.raises(mg.ShapeError, match=r"expand_dims of \(2, 3\)"):
        x.unsqueeze(3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("axis,keepdims", [(None, False), ((0, 2), True), (1, False), (-1, True)])
def test_mean_is_numpys_mean_bit_for_bit(dtype, axis, keepdims) -> None:
    """Mean takes np.mean's own steps (sum, divide by the count) without its wrapper: same bits, dtype."""
    x = (np.random.default_rng(0).standard_normal((50, 7, 3)) * 100).astype(dtype)
    got = mg.tensor(x).mean(axis=axis, keepdims=keepdims).data
    want = np.mean(x, axis=axis, keepdims=keepdims)
    assert got.dtype == want.dtype and got.shape == np.shape(want)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("reduce", ["sum", "mean"])
@pytest.mark.parametrize("axis,keepdims", [(None, False), ((0, 2), False), (1, True), ((), False)])
def test_reduction_gradients_are_read_only_broadcasts(reduce, axis, keepdims) -> None:
    x = mg.tensor(np.random.default_rng(1).standard_normal((4, 3, 2)), requires_grad=True)
    y = getattr(x, reduce)(axis=axis, keepdims=keepdims)
    w = np.random.default_rng(2).standard_normal(y.shape)
    node = y.node
    g = node.fn.backward(node, w)
    axes = range(3) if axis is None else [a % 3 for a in np.atleast_1d(axis).astype(int)]
    kept = [1 if a in axes else s for a, s in enumerate(x.shape)]  # the reduced axes as size 1
    n = x.data.size / y.data.size if reduce == "mean" else 1.0
    want = np.broadcast_to(w.reshape(kept) / n, x.shape)
    np.testing.assert_allclose(g, want, rtol=1e-15)
    assert g.shape == x.shape and not g.flags.writeable
    (y * mg.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.data, want, rtol=1e-15)

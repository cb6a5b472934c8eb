"""Property tests: every op's gradient against central differences (``mg.gradcheck``, float64) on
hypothesis-generated shapes (with broadcasting, axes, indices, split points) and values kept off kinks.
Forward values are compared with NumPy on the same draws."""

from __future__ import annotations

import numpy as np
import pytest
from _engine_values import values
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)
nonscalar_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=3)
seeds = st.integers(0, 2**31 - 1)


def _t(rng, shape, kind="any"):
    return mg.tensor(values(rng, shape, kind), requires_grad=True)


def _check(fn, xs, ref=None):
    assert mg.gradcheck(fn, xs)
    if ref is not None:
        out = fn(*xs)
        outs = out if isinstance(out, tuple) else (out,)
        refs = ref(*[x.data for x in xs])
        refs = refs if isinstance(refs, tuple) else (refs,)
        for o, r in zip(outs, refs):
            assert o.shape == np.shape(r)
            np.testing.assert_allclose(o.data, r, rtol=1e-12, atol=1e-12)


UNARY = {
    "neg": (lambda x: -x, np.negative, "any"),
    "exp": (mg.exp, np.exp, "any"),
    "log": (mg.log, np.log, "pos"),
    "sqrt": (mg.sqrt, np.sqrt, "pos"),
    "abs": (mg.abs, np.abs, "any"),
    "tanh": (mg.tanh, np.tanh, "any"),
    "sigmoid": (mg.sigmoid, lambda x: 1 / (1 + np.exp(-x)), "any"),
    "relu": (mg.relu, lambda x: np.maximum(x, 0), "any"),
    "softplus": (mg.softplus, lambda x: np.logaddexp(0, x), "any"),
    "clip": (lambda x: x.clip(-1, 1), lambda x: np.clip(x, -1, 1), "offunit"),
    "pow_scalar": (lambda x: x ** 3, lambda x: x ** 3, "any"),
    "pow_frac": (lambda x: x ** 1.5, lambda x: x ** 1.5, "pos"),
}


@pytest.mark.parametrize("name", list(UNARY))
@given(shape=shapes, seed=seeds)
def test_unary(name, shape, seed):
    fn, ref, kind = UNARY[name]
    _check(fn, [_t(np.random.default_rng(seed), shape, kind)], ref)


BINARY = {
    "add": (lambda a, b: a + b, np.add, ("any", "any")),
    "sub": (lambda a, b: a - b, np.subtract, ("any", "any")),
    "mul": (lambda a, b: a * b, np.multiply, ("any", "any")),
    "div": (lambda a, b: a / b, np.divide, ("any", "any")),
    "pow": (lambda a, b: a ** b, np.power, ("pos", "any")),
    "maximum": (mg.maximum, np.maximum, ("lo", "hi")),
    "minimum": (mg.minimum, np.minimum, ("hi", "lo")),
}


@pytest.mark.parametrize("name", list(BINARY))
@given(bs=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3), seed=seeds)
def test_binary_broadcasting(name, bs, seed):
    fn, ref, (ka, kb) = BINARY[name]
    rng = np.random.default_rng(seed)
    sa, sb = bs.input_shapes
    _check(fn, [_t(rng, sa, ka), _t(rng, sb, kb)], ref)


@given(bs=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, max_side=3), seed=seeds)
def test_where_broadcasting(bs, seed):
    rng = np.random.default_rng(seed)
    sc, sa, sb = bs.input_shapes
    cond = rng.random(sc) < 0.5
    _check(lambda a, b: mg.where(cond, a, b), [_t(rng, sa), _t(rng, sb)], lambda a, b: np.where(cond, a, b))


@st.composite
def shape_and_axis(draw, min_dims=0):
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=3))
    nd = len(shape)
    axis = draw(st.one_of(
        st.none(),
        st.integers(-nd, nd - 1) if nd else st.none(),
        st.lists(st.integers(0, nd - 1), unique=True, max_size=nd).map(tuple) if nd else st.none(),
    ))
    return shape, axis


def _lse(x, axis=None, keepdims=False):
    return np.log(np.sum(np.exp(x), axis=axis, keepdims=keepdims))


REDUCTIONS = {
    "sum": (mg.sum, np.sum, "any"),
    "mean": (mg.mean, np.mean, "any"),
    "amax": (mg.amax, np.max, "distinct"),
    "amin": (mg.amin, np.min, "distinct"),
    "logsumexp": (mg.logsumexp, _lse, "any"),
}


@pytest.mark.parametrize("name", list(REDUCTIONS))
@given(sa=shape_and_axis(), keepdims=st.booleans(), seed=seeds)
def test_reductions(name, sa, keepdims, seed):
    fn, ref, kind = REDUCTIONS[name]
    shape, axis = sa
    _check(lambda x: fn(x, axis=axis, keepdims=keepdims), [_t(np.random.default_rng(seed), shape, kind)],
           lambda x: ref(x, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(shape=nonscalar_shapes, data=st.data(), seed=seeds)
def test_softmax_family(name, shape, data, seed):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = _t(np.random.default_rng(seed), shape)

    def ref(v):
        e = np.exp(v - v.max(axis=axis, keepdims=True))
        s = e / e.sum(axis=axis, keepdims=True)
        return s if name == "softmax" else np.log(s)

    _check(lambda t: getattr(mg, name)(t, axis=axis), [x], ref)


@given(bs=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=2),
       nkm=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
       a_vec=st.booleans(), b_vec=st.booleans(), seed=seeds)
def test_matmul_batched_broadcast(bs, nkm, a_vec, b_vec, seed):
    n, k, m = nkm
    ba, bb = bs.input_shapes
    sa = (k,) if a_vec else (*ba, n, k)
    sb = (k,) if b_vec else (*bb, k, m)
    rng = np.random.default_rng(seed)
    _check(lambda a, b: a @ b, [_t(rng, sa), _t(rng, sb)], np.matmul)


@given(shape=shapes, data=st.data(), seed=seeds)
def test_reshape_transpose_expand(shape, data, seed):
    rng = np.random.default_rng(seed)
    x = _t(rng, shape)
    perm = tuple(data.draw(st.permutations(range(len(shape)))))
    target = data.draw(hnp.broadcastable_shapes(shape, min_dims=len(shape), max_dims=4, max_side=3).map(
        lambda s: np.broadcast_shapes(s, shape)))
    size = int(np.prod(shape))
    new = data.draw(st.sampled_from([(size,), (1, size), (size, 1), (-1,)]))
    _check(lambda t: t.permute(perm) if perm else t.T, [x], lambda v: np.transpose(v, perm or None))
    _check(lambda t: t.expand(*target), [x], lambda v: np.broadcast_to(v, target))
    _check(lambda t: t.reshape(new), [x], lambda v: v.reshape(new))


@given(shape=nonscalar_shapes, data=st.data(), seed=seeds)
def test_getitem_basic_and_integer_arrays(shape, data, seed):
    rng = np.random.default_rng(seed)
    x = _t(rng, shape)
    basic = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    _check(lambda t: t[basic], [x], lambda v: v[basic])
    # integer arrays, with repeats (the gradient accumulates), on the first axes
    k = data.draw(st.integers(1, len(shape)))
    idx = tuple(np.array(data.draw(st.lists(st.integers(-shape[i], shape[i] - 1), min_size=1, max_size=4)))
                for i in range(k))
    if len({len(i) for i in idx}) > 1:  # make the index arrays broadcast together
        idx = tuple(i[:1] for i in idx)
    _check(lambda t: t[idx], [x], lambda v: v[idx])


@given(shape=nonscalar_shapes, data=st.data(), seed=seeds)
def test_concatenate_stack(shape, data, seed):
    rng = np.random.default_rng(seed)
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    sizes = data.draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    parts = []
    for s in sizes:
        sh = list(shape)
        sh[axis] = s
        parts.append(_t(rng, tuple(sh)))
    _check(lambda *ts: mg.concatenate(ts, axis=axis), parts, lambda *vs: np.concatenate(vs, axis=axis))
    same = [_t(rng, shape) for _ in sizes]
    sax = data.draw(st.integers(-len(shape) - 1, len(shape)))
    _check(lambda *ts: mg.stack(ts, axis=sax), same, lambda *vs: np.stack(vs, axis=sax))


@given(shape=nonscalar_shapes, data=st.data(), seed=seeds)
def test_split_chunk_unbind(shape, data, seed):
    rng = np.random.default_rng(seed)
    x = _t(rng, shape)
    axis = data.draw(st.integers(0, len(shape) - 1))
    n = shape[axis]
    points = sorted(data.draw(st.lists(st.integers(0, n), max_size=3)))
    used = data.draw(st.lists(st.booleans(), min_size=len(points) + 1, max_size=len(points) + 1))

    sizes = [b - a for a, b in zip([0, *points], [*points, n])]  # PyTorch's split takes piece sizes

    def use_some(t):  # only some outputs feed the result: the others get no gradient
        outs = mg.split(t, sizes, dim=axis)
        kept = [o.sum() * (i + 1) for i, o in enumerate(outs) if used[i]]
        return mg.stack(kept).sum() if kept else outs[0]

    ref_parts = np.split(x.data, points, axis=axis)
    _check(lambda t: mg.split(t, sizes, dim=axis), [x], lambda v: tuple(np.split(v, points, axis=axis)))
    _check(use_some, [x], None)
    if any(used):
        expected = sum(p.sum() * (i + 1) for i, p in enumerate(ref_parts) if used[i])
        np.testing.assert_allclose(use_some(x).item(), expected, rtol=1e-12)
    chunks = data.draw(st.integers(1, 4))
    _check(lambda t: t.chunk(chunks, axis=axis), [x], None)
    _check(lambda t: mg.unbind(t, axis), [x], lambda v: tuple(np.moveaxis(v, axis, 0)))

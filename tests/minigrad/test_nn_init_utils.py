"""Initialisers (bounds, moments, orthogonality, reproducibility) and gradient clipping semantics."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import init
from minigrad.nn.utils import clip_grad_norm_, clip_grad_value_, grad_array, grad_norm


def p(shape, dtype=np.float32):
    return nn.Parameter(np.zeros(shape, dtype))


# ---------------------------------------------------------------------------- init
def test_fans_and_gains():
    assert init.calculate_fan_in_and_fan_out(p((5, 3))) == (3, 5)
    assert init.calculate_fan_in_and_fan_out(p((4, 3, 2, 2))) == (12, 16)
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="at least 2"):
        init.xavier_uniform_(p((3,)))
    with pytest.raises(ValueError, match="nonlinearity"):
        init.calculate_gain("swish")


@pytest.mark.parametrize("fn, bound", [
    (lambda t, r: init.uniform_(t, -0.3, 0.2, rng=r), (-0.3, 0.2)),
    (lambda t, r: init.xavier_uniform_(t, rng=r), (-math.sqrt(6 / 300), math.sqrt(6 / 300))),
    (lambda t, r: init.kaiming_uniform_(t, nonlinearity="relu", rng=r),
     (-math.sqrt(6 / 100), math.sqrt(6 / 100))),
    (lambda t, r: init.kaiming_uniform_(t, a=math.sqrt(5), rng=r), (-0.1, 0.1)),  # PyTorch Linear
])
def test_uniform_family_bounds_and_spread(fn, bound):
    t = fn(p((200, 100)), np.random.default_rng(0))
    lo, hi = bound
    assert lo <= t.data.min() and t.data.max() <= hi
    assert t.data.min() < lo + 0.02 * (hi - lo) and t.data.max() > hi - 0.02 * (hi - lo)
    assert t.data.std() == pytest.approx((hi - lo) / math.sqrt(12), rel=0.03)


@pytest.mark.parametrize("fn, std", [
    (lambda t, r: init.normal_(t, 1.0, 0.5, rng=r), 0.5),
    (lambda t, r: init.xavier_normal_(t, gain=2.0, rng=r), 2 * math.sqrt(2 / 300)),
    (lambda t, r: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu", rng=r), math.sqrt(2 / 200)),
])
def test_normal_family_std(fn, std):
    t = fn(p((200, 100), np.float64), np.random.default_rng(1))
    assert t.data.std() == pytest.approx(std, rel=0.03)


def test_constant_inits_and_dtype_kept():
    t = p((3, 4), np.float64)
    assert np.all(init.ones_(t).data == 1) and t.dtype == np.float64
    assert np.all(init.zeros_(t).data == 0)
    assert np.all(init.constant_(t, 2.5).data == 2.5)
    np.testing.assert_array_equal(init.eye_(p((3, 3))).data, np.eye(3))


@pytest.mark.parametrize("shape", [(6, 6), (3, 7), (7, 3), (4, 2, 3)])
def test_orthogonal(shape):
    t = init.orthogonal_(p(shape, np.float64), gain=2.0, rng=np.random.default_rng(2))
    m = t.data.reshape(shape[0], -1) / 2.0
    small = min(m.shape)
    gram = m @ m.T if m.shape[0] == small else m.T @ m
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)


def test_rng_reproducibility_and_global_seed():
    a = init.normal_(p((4, 4)), rng=np.random.default_rng(9)).data.copy()
    b = init.normal_(p((4, 4)), rng=np.random.default_rng(9)).data.copy()
    np.testing.assert_array_equal(a, b)
    mg.manual_seed(5)
    c = init.orthogonal_(p((4, 4))).data.copy()
    mg.manual_seed(5)
    np.testing.assert_array_equal(init.orthogonal_(p((4, 4))).data, c)
    with pytest.raises(TypeError, match="Generator"):
        init.normal_(p((2, 2)), rng=np.random.RandomState(0))


def test_init_keeps_parameter_identity_in_place():
    lin = nn.Linear(3, 3)
    data = lin.weight.data
    init.xavier_uniform_(lin.weight, rng=np.random.default_rng(0))
    assert lin.weight.data is data


# ---------------------------------------------------------------------------- clipping
def with_grads(*grads, dtype=np.float64):
    ps = []
    for g in grads:
        q = nn.Parameter(np.zeros(np.shape(g), dtype))
        q.grad = np.array(g, dtype)
        ps.append(q)
    return ps


def garr(q):
    """The gradient as an ndarray whether ``.grad`` holds an ndarray or a Tensor."""
    return grad_array(q)


def test_clip_grad_norm_scales_and_returns_norm_before():
    ps = with_grads([3.0, 4.0], [[12.0]])
    total = clip_grad_norm_(ps, max_norm=6.5)
    assert float(total) == pytest.approx(13.0, rel=1e-15)
    coef = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(garr(ps[0]), [3 * coef, 4 * coef], rtol=1e-15)
    np.testing.assert_allclose(garr(ps[1]), [[12 * coef]], rtol=1e-15)
    assert grad_norm(ps) == pytest.approx(6.5, rel=1e-6)


def test_clip_grad_norm_returns_a_0d_tensor_of_the_grads_dtype():
    """As PyTorch: a 0-d Tensor (float32 for float32 gradients), usable as a number."""
    ps = with_grads([3.0, 4.0], dtype=np.float32)
    norm = clip_grad_norm_(ps, 1.0)
    assert isinstance(norm, mg.Tensor) and norm.shape == () and norm.dtype == np.float32
    assert not norm.requires_grad
    assert float(norm) == 5.0 and norm.item() == 5.0
    assert f"{norm:.3f}" == "5.000" and f"{norm:>6.1f}" == "   5.0"
    assert round(norm, 2) == 5.0 and isinstance(round(norm, 2), float)
    assert math.isfinite(norm)                       # math functions take it through __float__
    norm64 = clip_grad_norm_(with_grads([1.0, 2.0]), 10.0)
    assert norm64.dtype == np.float64 and float(norm64) == pytest.approx(math.sqrt(5), rel=1e-15)
    empty = clip_grad_norm_([nn.Parameter(np.zeros(2))], 1.0)
    assert empty.shape == () and float(empty) == 0.0


def test_clip_grad_norm_scales_in_place():
    """PyTorch multiplies each gradient in place: a reference to it sees the clipped values."""
    ps = with_grads([30.0, 40.0])
    before = garr(ps[0])
    clip_grad_norm_(ps, 5.0)
    np.testing.assert_allclose(before, [3.0, 4.0], rtol=1e-6)
    assert garr(ps[0]) is before


def test_clip_grad_norm_shared_gradient_array_scaled_once():
    a, b = nn.Parameter(np.zeros(2)), nn.Parameter(np.zeros(2))
    a.grad = b.grad = np.array([3.0, 4.0])
    clip_grad_norm_([a, b], 5.0 * math.sqrt(2))     # total sqrt(50): coef ~ 1 - 1e-7, not squared
    np.testing.assert_allclose(garr(a), [3.0, 4.0], rtol=1e-6)
    clip_grad_norm_([a, b], math.sqrt(50) / 2)       # coef 1/2 once, not 1/4
    np.testing.assert_allclose(garr(b), [1.5, 2.0], rtol=1e-6)


@pytest.mark.parametrize("bad", [-1.0, -1e-9, math.nan])
def test_clip_grad_norm_rejects_negative_or_nan_max_norm(bad):
    ps = with_grads([3.0, 4.0])
    with pytest.raises(ValueError, match=r"max_norm must be >= 0"):
        clip_grad_norm_(ps, bad)
    np.testing.assert_array_equal(garr(ps[0]), [3.0, 4.0])        # nothing changed


def test_clip_grad_norm_zero_and_inf_max_norm():
    ps = with_grads([3.0, 4.0])
    clip_grad_norm_(ps, math.inf)
    np.testing.assert_array_equal(garr(ps[0]), [3.0, 4.0])
    clip_grad_norm_(ps, 0.0)
    np.testing.assert_array_equal(garr(ps[0]), [0.0, 0.0])


@pytest.mark.parametrize("bad", [0, -2, math.nan, -math.inf])
def test_norm_type_must_be_positive(bad):
    ps = with_grads([3.0, 4.0])
    with pytest.raises(ValueError, match="norm_type"):
        clip_grad_norm_(ps, 1.0, norm_type=bad)
    with pytest.raises(ValueError, match="norm_type"):
        grad_norm(ps, bad)


def test_clip_grad_norm_leaves_small_grads_exactly():
    ps = with_grads([0.3, -0.4])
    assert float(clip_grad_norm_(ps, 1.0)) == pytest.approx(0.5)
    np.testing.assert_array_equal(garr(ps[0]), [0.3, -0.4])


def test_clip_grad_norm_other_orders_and_no_grads():
    ps = with_grads([1.0, -7.0], [2.0])
    assert float(clip_grad_norm_(ps, 100.0, norm_type=math.inf)) == 7.0
    assert float(clip_grad_norm_(ps, 100.0, norm_type=1)) == pytest.approx(10.0)
    assert float(clip_grad_norm_(ps, 1.0, norm_type="inf")) == 7.0
    np.testing.assert_allclose(garr(ps[0]), np.array([1.0, -7.0]) / (7 + 1e-6))
    q = nn.Parameter(np.zeros(2))
    assert float(clip_grad_norm_([q], 1.0)) == 0.0 and q.grad is None
    single = with_grads([6.0, 8.0])[0]
    assert float(clip_grad_norm_(single, 5.0)) == pytest.approx(10.0)  # a single tensor is accepted


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_clip_grad_norm_nonfinite(bad):
    ps = with_grads([1.0, bad], [2.0])
    with pytest.raises(RuntimeError, match="error_if_nonfinite"):
        clip_grad_norm_(ps, 1.0)
    np.testing.assert_array_equal(garr(ps[1]), [2.0])  # untouched
    total = float(clip_grad_norm_(ps, 1.0, error_if_nonfinite=False))
    assert math.isnan(total) if np.isnan(bad) else total == math.inf
    if np.isnan(bad):
        assert np.all(np.isnan(garr(ps[1])))  # scaled by NaN, as in PyTorch
    else:
        np.testing.assert_array_equal(garr(ps[1]), [0.0])  # scaled by max_norm / inf = 0
        assert np.isnan(garr(ps[0])[1])  # inf * 0


def test_clip_grad_norm_float32_grads_keep_dtype():
    q = nn.Parameter(np.zeros(3, np.float32))
    q.grad = np.full(3, 10.0, np.float32)
    clip_grad_norm_([q], 1.0)
    assert garr(q).dtype == np.float32
    assert np.linalg.norm(garr(q).astype(np.float64)) == pytest.approx(1.0, rel=1e-5)


def test_clip_works_on_grads_from_backward():
    w = nn.Parameter(np.array([3.0, 4.0]))
    (w * w).sum().backward()                       # grad 2w = [6, 8], norm 10
    assert float(clip_grad_norm_([w], 1.0)) == pytest.approx(10.0)
    np.testing.assert_allclose(garr(w), [0.6, 0.8], rtol=1e-6)
    clip_grad_value_([w], 0.7)
    np.testing.assert_allclose(garr(w), [0.6, 0.7], rtol=1e-6)


def test_clip_grad_value():
    ps = with_grads([-3.0, 0.5, 2.0, np.nan])
    clip_grad_value_(ps, 1.0)
    np.testing.assert_array_equal(garr(ps[0]), [-1.0, 0.5, 1.0, np.nan])
    with pytest.raises(ValueError):
        clip_grad_value_(ps, -1.0)
    with pytest.raises(ValueError):
        clip_grad_value_(ps, math.nan)

"""``nn.LayerNorm`` / ``F.layer_norm``: PyTorch's semantics and names, NumPy reference, gradcheck."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F


def ref_layer_norm(x, k, w=None, b=None, eps=1e-5):
    axes = tuple(range(x.ndim - k, x.ndim))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)  # biased, as PyTorch
    y = (x - mu) / np.sqrt(var + eps)
    return y * (1 if w is None else w) + (0 if b is None else b)


def test_pytorch_value_by_hand():
    # torch.nn.LayerNorm(3)(torch.tensor([[1., 2., 3.]])) = (x - 2) / sqrt(2/3 + 1e-5)
    y = nn.LayerNorm(3)(mg.tensor(np.array([[1.0, 2.0, 3.0]])))
    s = 1 / math.sqrt(2 / 3 + 1e-5)
    np.testing.assert_allclose(y.data, [[-s, 0.0, s]], rtol=1e-12)


@pytest.mark.parametrize("shape", [4, (4,), (3, 4)])
def test_reference_and_gradcheck_all_inputs(rng, shape):
    k = 1 if isinstance(shape, int) else len(shape)
    ns = (shape,) if isinstance(shape, int) else shape
    x = rng.standard_normal((2, 3, 4)) * 3 + 1
    w, b = rng.standard_normal(ns), rng.standard_normal(ns)
    got = F.layer_norm(mg.tensor(x), shape, mg.tensor(w), mg.tensor(b), eps=1e-3)
    np.testing.assert_allclose(got.data, ref_layer_norm(x, k, w, b, 1e-3), rtol=1e-10, atol=1e-12)
    args = [mg.tensor(a, requires_grad=True) for a in (x, w, b)]
    assert mg.gradcheck(lambda a, ww, bb: F.layer_norm(a, shape, ww, bb, eps=1e-3), args)


def test_module_parameters_names_and_options(rng):
    ln = nn.LayerNorm((2, 3), eps=1e-6)
    assert [n for n, _ in ln.named_parameters()] == ["weight", "bias"]
    assert ln.weight.shape == ln.bias.shape == (2, 3) and ln.weight.dtype == np.float32
    np.testing.assert_array_equal(ln.weight.data, 1)
    np.testing.assert_array_equal(ln.bias.data, 0)
    assert ln.normalized_shape == (2, 3) and ln.eps == 1e-6
    assert repr(ln) == "LayerNorm((2, 3), eps=1e-06, elementwise_affine=True)"
    plain = nn.LayerNorm(3, elementwise_affine=False)
    assert plain.weight is None and plain.bias is None and list(plain.parameters()) == []
    nobias = nn.LayerNorm(3, bias=False)
    assert nobias.bias is None and [n for n, _ in nobias.named_parameters()] == ["weight"]
    x = rng.standard_normal((5, 3))
    np.testing.assert_allclose(plain(mg.tensor(x)).data, ref_layer_norm(x, 1), rtol=1e-10, atol=1e-12)
    ln64 = nn.LayerNorm(3, dtype=mg.float64)
    ln64.weight.data[:] = [1.0, 2.0, 3.0]
    assert mg.gradcheck(lambda a: ln64(a), [mg.tensor(x, requires_grad=True)])
    ln64(mg.tensor(x)).sum().backward()
    assert ln64.weight.grad is not None and ln64.bias.grad is not None


def test_constant_rows_and_float32():
    x = mg.tensor(np.full((2, 4), 7.0, np.float32), requires_grad=True)
    y = nn.LayerNorm(4)(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y.data, 0.0)       # var 0: eps keeps it finite
    y.sum().backward()
    assert np.all(np.isfinite(x.grad))


def test_errors():
    with pytest.raises(mg.ShapeError, match=r"must end in normalized_shape \(3,\)"):
        nn.LayerNorm(3)(mg.zeros(2, 4))
    with pytest.raises(mg.ShapeError, match="normalized_shape"):
        nn.LayerNorm((2, 3))(mg.zeros(3))
    with pytest.raises(ValueError, match="normalized_shape"):
        nn.LayerNorm(0)
    with pytest.raises(ValueError, match="normalized_shape"):
        nn.LayerNorm(())
    with pytest.raises(mg.ShapeError, match="weight has shape"):
        F.layer_norm(mg.zeros(2, 3), 3, weight=mg.ones(2))
    with pytest.raises(ValueError, match="CPU only"):
        nn.LayerNorm(3, device="cuda")
    assert nn.LayerNorm(3, device="cpu").weight.shape == (3,)

"""Activation modules and functions (``nn.GELU``, ``F.gelu`` ...), ``Softmax``/``LogSoftmax`` with
``dim=``/``axis=``: NumPy references, values PyTorch gives, PyTorch's one-sided derivatives at kinks,
float64 gradcheck."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F

ERF = np.vectorize(math.erf)

# name -> (module, NumPy reference); inputs avoid the kinks at 0 and +-1 (probability ~0 for normals)
CASES = {
    "ReLU": (nn.ReLU(), lambda x: np.maximum(x, 0)),
    "Tanh": (nn.Tanh(), np.tanh),
    "Sigmoid": (nn.Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
    "LeakyReLU": (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    "ELU": (nn.ELU(alpha=1.5), lambda x: np.where(x > 0, x, 1.5 * np.expm1(np.minimum(x, 0)))),
    "SiLU": (nn.SiLU(), lambda x: x / (1 + np.exp(-x))),
    "GELU": (nn.GELU(), lambda x: x * 0.5 * (1 + ERF(x / math.sqrt(2)))),
    "GELU-tanh": (nn.GELU("tanh"), lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi)
                                                                     * (x + 0.044715 * x ** 3)))),
    "Softplus": (nn.Softplus(), lambda x: np.logaddexp(0, x)),
    "Softplus-beta": (nn.Softplus(beta=2.0, threshold=3.0),
                      lambda x: np.where(2 * x > 3, x, np.logaddexp(0, 2 * x) / 2)),
    "Hardtanh": (nn.Hardtanh(-0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7)),
    "ReLU6": (nn.ReLU6(), lambda x: np.clip(x, 0, 6)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_activation_reference_and_gradcheck(rng, name):
    module, ref = CASES[name]
    x = rng.standard_normal((3, 5)) * 3
    np.testing.assert_allclose(module(mg.tensor(x)).data, ref(x), rtol=1e-12, atol=1e-15)
    assert mg.gradcheck(module, [mg.tensor(x, requires_grad=True)])
    assert module(mg.tensor(x.astype(np.float32))).dtype == np.float32


def test_values_pytorch_gives():
    """torch.nn.X()(torch.tensor(v)) for a few v, as printed by PyTorch."""
    one, neg = mg.tensor(np.array([1.0])), mg.tensor(np.array([-1.0]))
    assert nn.GELU()(one).item() == pytest.approx(0.8413447460685429, rel=1e-12)
    assert nn.GELU("tanh")(one).item() == pytest.approx(0.8411919906082768, rel=1e-12)
    assert nn.SiLU()(one).item() == pytest.approx(0.7310585786300049, rel=1e-12)
    assert nn.ELU()(neg).item() == pytest.approx(-0.6321205588285577, rel=1e-12)
    assert nn.Softplus()(one).item() == pytest.approx(1.3132616875182228, rel=1e-12)
    assert nn.LeakyReLU()(mg.tensor(np.array([-2.0]))).item() == pytest.approx(-0.02)


def grad_at(fn, v):
    x = mg.tensor(np.array(v, np.float64), requires_grad=True)
    fn(x).sum().backward()
    return x.grad


def test_one_sided_derivatives_are_pytorchs():
    np.testing.assert_array_equal(grad_at(nn.ReLU(), [0.0]), [0.0])
    np.testing.assert_array_equal(grad_at(nn.LeakyReLU(0.1), [0.0, 1.0, -1.0]), [0.1, 1.0, 0.1])
    np.testing.assert_array_equal(grad_at(nn.ELU(alpha=2.0), [0.0]), [2.0])
    np.testing.assert_array_equal(grad_at(nn.Hardtanh(), [-1.0, 1.0, 0.5, 3.0]), [0.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(grad_at(nn.ReLU6(), [0.0, 6.0, 3.0]), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(grad_at(nn.Softplus(threshold=5.0), [6.0]), [1.0])
    assert grad_at(nn.GELU(), [0.0])[0] == pytest.approx(0.5)


def test_large_inputs_do_not_overflow():
    x = mg.tensor(np.array([-1000.0, 1000.0]), requires_grad=True)
    for m in (nn.ELU(), nn.SiLU(), nn.Softplus(), nn.GELU(), nn.GELU("tanh"), nn.Sigmoid()):
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            y = m(x)
            y.sum().backward()
        assert np.all(np.isfinite(y.data)) and np.all(np.isfinite(x.grad)), type(m).__name__
        x.grad = None


def test_inplace_flag_accepted_and_repr():
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.GELU("tanh")) == "GELU(approximate='tanh')"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"
    x = mg.tensor([-1.0, 2.0])
    np.testing.assert_array_equal(F.relu(x, inplace=True).data, [0.0, 2.0])
    np.testing.assert_array_equal(x.data, [-1.0, 2.0])  # the result is a new tensor


def test_argument_errors():
    with pytest.raises(ValueError, match="approximate"):
        nn.GELU("exact")
    with pytest.raises(ValueError, match="approximate"):
        F.gelu(mg.tensor([1.0]), approximate="erf")
    with pytest.raises(ValueError, match="beta"):
        nn.Softplus(beta=0)
    with pytest.raises(ValueError, match="min_val"):
        nn.Hardtanh(1.0, -1.0)
    with pytest.raises(TypeError, match="float32 or float64"):
        F.leaky_relu(mg.tensor(np.array([1, 2])))


# ---------------------------------------------------------------------------- softmax, log_softmax
def ref_log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_modules_dim_and_axis(rng, dim):
    x = rng.standard_normal((3, 4, 2)) * 10
    want = ref_log_softmax(x, dim)
    np.testing.assert_allclose(nn.LogSoftmax(dim)(mg.tensor(x)).data, want, atol=1e-12)
    np.testing.assert_allclose(nn.LogSoftmax(dim=dim)(mg.tensor(x)).data, want, atol=1e-12)
    np.testing.assert_allclose(nn.Softmax(axis=dim)(mg.tensor(x)).data, np.exp(want), atol=1e-12)
    np.testing.assert_allclose(F.softmax(mg.tensor(x), dim=dim).data, np.exp(want), atol=1e-12)
    np.testing.assert_allclose(F.log_softmax(mg.tensor(x), axis=dim).data, want, atol=1e-12)
    assert mg.gradcheck(nn.Softmax(dim), [mg.tensor(x, requires_grad=True)])
    assert mg.gradcheck(nn.LogSoftmax(dim), [mg.tensor(x, requires_grad=True)])


def test_softmax_implicit_dim_is_pytorchs_or_an_error(rng):
    x2 = rng.standard_normal((2, 3))
    np.testing.assert_allclose(nn.Softmax()(mg.tensor(x2)).data, np.exp(ref_log_softmax(x2, 1)), atol=1e-12)
    np.testing.assert_allclose(F.log_softmax(mg.tensor(x2[0])).data, ref_log_softmax(x2[0], 0), atol=1e-12)
    with pytest.raises(ValueError, match="pass dim"):  # PyTorch would pick dim 0 for 3-D: never guess
        nn.Softmax()(mg.tensor(rng.standard_normal((2, 3, 4))))
    with pytest.raises(ValueError, match="out of range"):
        F.softmax(mg.tensor(x2), dim=2)
    with pytest.raises(TypeError, match="pass one of them"):
        F.softmax(mg.tensor(x2), dim=0, axis=1)


def test_softmax_dtype_argument_and_stability():
    x = mg.tensor(np.array([[1000.0, 0.0]], np.float32))
    y = F.softmax(x, dim=1, dtype=mg.float64)
    assert y.dtype == np.float64
    np.testing.assert_allclose(y.data, [[1.0, 0.0]])
    np.testing.assert_allclose(F.log_softmax(x, dim=1).data, [[0.0, -1000.0]])

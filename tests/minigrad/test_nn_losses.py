"""The loss modules (``nn.CrossEntropyLoss`` ...) and the elementwise losses added for them
(``F.l1_loss``, ``F.binary_cross_entropy``): NumPy references, values PyTorch gives (worked out by
hand), PyTorch's edge cases, float64 gradcheck."""

import math
import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F


def t64(a, grad=True):
    return mg.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def reduce(v, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction](v)


def ref_bce(p, y, w=1.0):
    """PyTorch's binary_cross_entropy: log terms floored at -100."""
    with np.errstate(divide="ignore"):
        return -w * (y * np.maximum(np.log(p), -100) + (1 - y) * np.maximum(np.log(1 - p), -100))


# ---------------------------------------------------------------------------- l1
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_l1_loss_reference_and_gradcheck(rng, reduction):
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    got = F.l1_loss(mg.tensor(a), b, reduction=reduction).data
    np.testing.assert_allclose(got, reduce(np.abs(a - b), reduction), rtol=1e-12)
    assert mg.gradcheck(lambda x, y: F.l1_loss(x, y, reduction=reduction), [t64(a), t64(b)])
    np.testing.assert_allclose(nn.L1Loss(reduction=reduction)(mg.tensor(a), b).data, got)


def test_l1_loss_gradient_is_sign_and_zero_at_ties():
    x = t64([1.0, -2.0, 3.0])
    F.l1_loss(x, np.array([0.0, 0.0, 3.0]), reduction="sum").backward()
    np.testing.assert_array_equal(x.grad, [1.0, -1.0, 0.0])   # PyTorch: sign(x - y), 0 at x == y


# ---------------------------------------------------------------------------- binary cross-entropy
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_reference_and_gradcheck(rng, reduction):
    p = rng.uniform(0.05, 0.95, (3, 4))
    y = rng.random((3, 4))
    w = rng.random((1, 4)) + 0.5
    got = F.binary_cross_entropy(mg.tensor(p), y, reduction=reduction).data
    np.testing.assert_allclose(got, reduce(ref_bce(p, y), reduction), rtol=1e-12)
    got_w = F.binary_cross_entropy(mg.tensor(p), y, weight=w, reduction=reduction).data
    np.testing.assert_allclose(got_w, reduce(ref_bce(p, y, w), reduction), rtol=1e-12)
    assert mg.gradcheck(lambda a, b: F.binary_cross_entropy(a, b, weight=w, reduction=reduction),
                        [t64(p), t64(y)])


def test_bce_pytorch_values_and_edges():
    # torch.nn.BCELoss()(torch.tensor([0.8, 0.2]), torch.tensor([1., 0.])) = -log(0.8)
    assert nn.BCELoss()(mg.tensor([0.8, 0.2]), [1.0, 0.0]).item() == pytest.approx(-math.log(0.8), rel=1e-6)
    # p = 0 or 1: finite (log floored at -100, as PyTorch), the derivative's denominator floored at 1e-12
    x = t64([0.0, 0.0, 1.0, 1.0])
    y = np.array([0.0, 1.0, 0.0, 1.0])
    loss = F.binary_cross_entropy(x, y, reduction="none")
    np.testing.assert_array_equal(loss.data, [0.0, 100.0, 100.0, 0.0])
    loss.sum().backward()
    np.testing.assert_allclose(x.grad, [0.0, -1e12, 1e12, 0.0])
    # the target's gradient: log(1 - p) - log(p), floored
    yt = t64([0.3])
    F.binary_cross_entropy(mg.tensor(np.array([0.25])), yt).backward()
    np.testing.assert_allclose(yt.grad, [math.log(0.75) - math.log(0.25)], rtol=1e-12)


def test_bce_rejects_non_probabilities():
    for bad in ([1.5, 0.5], [-0.1, 0.5], [math.nan, 0.5]):
        with pytest.raises(ValueError, match=r"probability in \[0, 1\].*with_logits"):
            F.binary_cross_entropy(mg.tensor(bad), [1.0, 0.0])
    with pytest.raises(mg.ShapeError, match="same shape"):
        F.binary_cross_entropy(mg.tensor([0.5, 0.5]), [1.0])
    with pytest.raises(mg.ShapeError, match="weight"):
        F.binary_cross_entropy(mg.tensor([0.5, 0.5]), [1.0, 0.0], weight=np.ones(3))


def test_bce_of_sigmoid_equals_bce_with_logits(rng):
    x = rng.standard_normal(6) * 3
    y = rng.random(6)
    a = F.binary_cross_entropy(mg.tensor(x).sigmoid(), y).item()
    b = F.binary_cross_entropy_with_logits(mg.tensor(x), y).item()
    assert a == pytest.approx(b, rel=1e-10)


# ---------------------------------------------------------------------------- the modules
def test_cross_entropy_loss_module_pytorch_value_and_options(rng):
    # torch.nn.CrossEntropyLoss()(torch.tensor([[1., 2., 3.]]), torch.tensor([2])) = log(e + e^2 + e^3) - 3
    want = math.log(math.e + math.e ** 2 + math.e ** 3) - 3
    assert nn.CrossEntropyLoss()(mg.tensor([[1.0, 2.0, 3.0]]), np.array([2])).item() == pytest.approx(want)
    x = rng.standard_normal((5, 4))
    t = np.array([0, 3, -1, 2, 1])
    w = rng.random(4) + 0.5
    for kw in ({}, {"weight": w}, {"ignore_index": -1}, {"reduction": "sum", "label_smoothing": 0.2},
               {"weight": w, "ignore_index": -1, "reduction": "none"}):
        fkw = dict(kw)
        module = nn.CrossEntropyLoss(**kw)
        tt = t if "ignore_index" in kw else np.abs(t)
        want = F.cross_entropy(mg.tensor(x), tt, **fkw).data
        np.testing.assert_allclose(module(mg.tensor(x), tt).data, want, rtol=1e-12, err_msg=str(kw))
        assert mg.gradcheck(lambda a, m=module, tt=tt: m(a, tt), [t64(x)])


def test_cross_entropy_loss_positional_order_is_pytorchs():
    w = np.array([1.0, 2.0])
    m = nn.CrossEntropyLoss(w, None, 1)            # weight, size_average, ignore_index
    assert m.ignore_index == 1 and np.array_equal(m.weight, w)
    x = mg.tensor([[0.0, 1.0], [2.0, 0.0]])
    assert m(x, np.array([0, 1])).item() == pytest.approx(math.log(1 + math.e))  # row 1 ignored
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=1.5)


def test_nll_loss_module_matches_functional(rng):
    lp = F.log_softmax(mg.tensor(rng.standard_normal((4, 3))), dim=1)
    t = np.array([2, 0, 1, 1])
    w = np.array([0.5, 1.0, 2.0])
    np.testing.assert_allclose(nn.NLLLoss(weight=w)(lp, t).data, F.nll_loss(lp, t, weight=w).data)
    np.testing.assert_allclose(nn.NLLLoss(ignore_index=1, reduction="sum")(lp, t).data,
                               -(lp.data[0, 2] + lp.data[1, 0]), rtol=1e-6)
    # LogSoftmax + NLLLoss is CrossEntropyLoss
    x = mg.tensor(rng.standard_normal((4, 3)))
    want = nn.CrossEntropyLoss()(x, t).item()
    assert nn.NLLLoss()(nn.LogSoftmax(dim=1)(x), t).item() == pytest.approx(want)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_l1_bce_modules(rng, reduction):
    a, b = rng.uniform(0.1, 0.9, (2, 3)), rng.random((2, 3))
    cases = [(nn.MSELoss, (a - b) ** 2), (nn.L1Loss, np.abs(a - b)), (nn.BCELoss, ref_bce(a, b))]
    for cls, want in cases:
        got = cls(reduction=reduction)(mg.tensor(a), b).data
        np.testing.assert_allclose(got, reduce(want, reduction), rtol=1e-12, err_msg=cls.__name__)
        assert mg.gradcheck(lambda x, y, c=cls: c(reduction=reduction)(x, y), [t64(a), t64(b)])


def test_bce_with_logits_module_weights_are_buffers(rng):
    x, y = rng.standard_normal((3, 2)) * 4, rng.random((3, 2))
    w, pw = np.array([[1.0, 2.0]]), np.array([3.0, 0.5])
    m = nn.BCEWithLogitsLoss(weight=w, pos_weight=pw)
    want = F.binary_cross_entropy_with_logits(mg.tensor(x), y, weight=w, pos_weight=pw)
    np.testing.assert_allclose(m(mg.tensor(x), y).data, want.data, rtol=1e-12)
    assert mg.gradcheck(lambda a, b: m(a, b), [t64(x), t64(y)])
    assert sorted(m.state_dict()) == ["pos_weight", "weight"]      # buffers, as in PyTorch
    assert nn.BCEWithLogitsLoss().state_dict() == {}                 # None buffers are not saved
    np.testing.assert_array_equal(nn.BCELoss(weight=mg.tensor([1.0, 2.0])).weight, [1.0, 2.0])


def test_loss_module_inside_a_model_and_to_double(rng):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)
            self.criterion = nn.CrossEntropyLoss(weight=[1.0, 3.0])

    net = Net().double()
    assert net.criterion.weight.dtype == np.float64
    assert "criterion.weight" in net.state_dict()
    loss = net.criterion(net.fc(mg.tensor(rng.standard_normal((4, 3)))), np.array([0, 1, 1, 0]))
    assert loss.dtype == np.float64


def test_reduction_checked_and_legacy_flags():
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.MSELoss(reduction="avg")
    with pytest.warns(UserWarning, match="deprecated"):
        assert nn.MSELoss(size_average=False).reduction == "sum"
    with pytest.warns(UserWarning):
        assert nn.L1Loss(reduce=False).reduction == "none"
    with pytest.warns(UserWarning):
        assert nn.NLLLoss(None, True, -100, True).reduction == "mean"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert nn.MSELoss().reduction == "mean"
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss(reduction='sum')"


def test_modules_exported_from_nn():
    for name in ("CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss"):
        assert name in nn.__all__ and issubclass(getattr(nn, name), nn.Module)
    for name in ("l1_loss", "binary_cross_entropy", "layer_norm", "gelu", "silu", "leaky_relu"):
        assert name in F.__all__ and callable(getattr(F, name))

"""Losses and functional layers: NumPy references, stability, gradcheck (float64), errors."""

import warnings

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F


def t64(a, grad=True):
    return mg.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# ---------------------------------------------------------------------------- NumPy references
def ref_log_softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


def ref_cross_entropy(x, t, weight=None, ignore_index=-100, reduction="mean"):
    """Straight from the definition, looping over rows (class axis 1)."""
    x = np.asarray(x, np.float64)
    if x.ndim == 1:
        x, t = x[None], np.asarray(t)[None]
    xm = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1])
    tf = np.asarray(t).reshape(-1)
    losses, wsum = [], 0.0
    for row, ti in zip(xm, tf):
        if ti == ignore_index:
            losses.append(0.0)
            continue
        w = 1.0 if weight is None else weight[ti]
        m = row.max()
        lse = m + np.log(np.sum(np.exp(row - m)))
        losses.append(w * (lse - row[ti]))
        wsum += w
    losses = np.array(losses)
    if reduction == "none":
        return losses.reshape(np.asarray(t).shape)
    if reduction == "sum":
        return losses.sum()
    return losses.sum() / wsum


def ref_smoothed_ce(x, t, eps, weight=None, ignore_index=-100, reduction="mean"):
    """PyTorch's label smoothing for index targets: (1 - e) * nll + e / C * sum_j w_j (-log p_j),
    "mean" divided by the summed weight of the non-ignored targets."""
    C = x.shape[1]
    w = np.ones(C) if weight is None else weight
    lp = ref_log_softmax(x, 1)
    rows = []
    for i, ti in enumerate(t):
        if ti == ignore_index:
            rows.append(0.0)
        else:
            rows.append((1 - eps) * w[ti] * -lp[i, ti] + eps / C * np.sum(w * -lp[i]))
    rows = np.array(rows)
    if reduction == "none":
        return rows
    if reduction == "sum":
        return rows.sum()
    return rows.sum() / sum(w[ti] for ti in t if ti != ignore_index)


def ref_soft_ce(x, y, eps=0.0, weight=None, reduction="mean"):
    C = x.shape[1]
    w = np.ones(C) if weight is None else weight
    yy = (1 - eps) * y + eps / C
    rows = -(yy * w * ref_log_softmax(x, 1)).sum(axis=1)
    return {"none": rows, "sum": rows.sum(), "mean": rows.mean()}[reduction]


def ref_bce_logits(x, y, pos_weight=None):
    p = 1.0 if pos_weight is None else pos_weight
    log_sig = -np.logaddexp(0, -x)
    log_one_minus = -np.logaddexp(0, x)
    return -(p * y * log_sig + (1 - y) * log_one_minus)


# ---------------------------------------------------------------------------- cross-entropy
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_reference_with_ignore_index(rng, reduction):
    x = rng.standard_normal((6, 5))
    t = np.array([0, 4, -100, 2, 2, -100])
    got = F.cross_entropy(mg.tensor(x), t, reduction=reduction).data
    np.testing.assert_allclose(got, ref_cross_entropy(x, t, reduction=reduction), rtol=1e-12, atol=1e-12)


def test_cross_entropy_mean_divides_by_non_ignored_count(rng):
    x = rng.standard_normal((4, 3))
    t = np.array([1, -1, -1, 2])
    full = F.cross_entropy(mg.tensor(x), t, ignore_index=-1, reduction="sum").item()
    assert F.cross_entropy(mg.tensor(x), t, ignore_index=-1).item() == pytest.approx(full / 2, rel=1e-12)


def test_cross_entropy_stable_at_1000():
    x = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0], [1000.0, 1000.0, -1000.0]])
    t = np.array([1, 2, 0])
    xt = t64(x)
    loss = F.cross_entropy(xt, t, reduction="none")
    np.testing.assert_allclose(loss.data, [2000.0, 0.0, np.log(2)], rtol=1e-12)
    np.testing.assert_allclose(loss.data, ref_cross_entropy(x, t, reduction="none"), rtol=1e-12)
    t_ign = np.array([1, -100, 0])
    np.testing.assert_allclose(F.cross_entropy(mg.tensor(x), t_ign).item(), ref_cross_entropy(x, t_ign),
                               rtol=1e-12)
    loss.sum().backward()
    assert np.all(np.isfinite(xt.grad))
    np.testing.assert_allclose(xt.grad, [[1, -1, 0], [0, 0, 0], [-0.5, 0.5, 0]], atol=1e-12)
    # float32 too
    l32 = F.cross_entropy(mg.tensor(x.astype(np.float32)), t, reduction="none")
    assert l32.dtype == np.float32 and np.all(np.isfinite(l32.data))


def test_cross_entropy_class_weights_and_kdim(rng):
    w = np.array([0.5, 2.0, 1.0])
    x = rng.standard_normal((2, 3, 4))  # (N, C, d1): class axis 1 as in PyTorch
    t = np.array([[0, 1, 2, -100], [2, 2, 1, 0]])
    for red in ("mean", "sum", "none"):
        got = F.cross_entropy(mg.tensor(x), t, weight=w, reduction=red).data
        np.testing.assert_allclose(got, ref_cross_entropy(x, t, weight=w, reduction=red), rtol=1e-12)


def test_cross_entropy_single_sample_and_all_ignored():
    x = t64([1.0, 2.0, 3.0])
    loss = F.cross_entropy(x, np.array(2))
    assert loss.shape == () and loss.item() == pytest.approx(ref_cross_entropy([1.0, 2, 3], 2))
    y = t64(np.zeros((2, 3)))
    loss = F.cross_entropy(y, np.array([-100, -100]))
    assert np.isnan(loss.item())  # 0/0 as in PyTorch
    loss.backward()
    np.testing.assert_array_equal(y.grad, 0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradcheck_cross_entropy(rng, reduction):
    x = t64(rng.standard_normal((5, 4)))
    t = np.array([3, -100, 0, 1, 1])
    w = np.array([1.0, 0.5, 2.0, 1.5])
    assert mg.gradcheck(lambda a: F.cross_entropy(a, t, reduction=reduction), [x])
    assert mg.gradcheck(lambda a: F.cross_entropy(a, t, weight=w, reduction=reduction), [x])
    xk = t64(rng.standard_normal((2, 3, 2)))
    tk = np.array([[0, 2], [-100, 1]])
    assert mg.gradcheck(lambda a: F.cross_entropy(a, tk, reduction=reduction), [xk])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_label_smoothing(rng, reduction, weighted):
    x = rng.standard_normal((5, 4)) * 3
    t = np.array([3, -100, 0, 1, 1])
    w = np.array([1.0, 0.5, 2.0, 1.5]) if weighted else None
    got = F.cross_entropy(mg.tensor(x), t, weight=w, reduction=reduction, label_smoothing=0.2).data
    np.testing.assert_allclose(got, ref_smoothed_ce(x, t, 0.2, w, reduction=reduction), rtol=1e-12)
    assert mg.gradcheck(lambda a: F.cross_entropy(a, t, weight=w, reduction=reduction,
                                                  label_smoothing=0.2), [t64(x)])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_probability_targets(rng, reduction):
    x = rng.standard_normal((4, 3))
    y = rng.random((4, 3))
    y /= y.sum(axis=1, keepdims=True)
    w = np.array([0.5, 1.0, 2.0])
    for eps, wt in ((0.0, None), (0.1, w)):
        got = F.cross_entropy(mg.tensor(x), y, weight=wt, reduction=reduction, label_smoothing=eps).data
        np.testing.assert_allclose(got, ref_soft_ce(x, y, eps, wt, reduction), rtol=1e-12)
        assert mg.gradcheck(lambda a, b, e=eps, ww=wt: F.cross_entropy(
            a, b, weight=ww, reduction=reduction, label_smoothing=e), [t64(x), t64(y)])
    xk, yk = t64(rng.standard_normal((2, 3, 2))), t64(rng.random((2, 3, 2)))  # class axis 1
    assert mg.gradcheck(lambda a, b: F.cross_entropy(a, b, reduction=reduction), [xk, yk])


def test_probability_targets_agree_with_index_targets(rng):
    x = mg.tensor(rng.standard_normal((6, 5)))
    t = np.array([0, 4, 2, 2, 1, 3])
    oh = F.one_hot(t, 5, dtype="float64")
    for eps in (0.0, 0.3):  # smoothing an index target == smoothing its one-hot distribution
        a = F.cross_entropy(x, t, label_smoothing=eps).item()
        b = F.cross_entropy(x, oh, label_smoothing=eps).item()
        assert a == pytest.approx(b, rel=1e-12)


def test_cross_entropy_equals_nll_of_log_softmax(rng):
    x = rng.standard_normal((4, 6))
    t = np.array([5, 0, -100, 3])
    a = F.cross_entropy(mg.tensor(x), t).item()
    b = F.nll_loss(F.log_softmax(mg.tensor(x), axis=1), t).item()
    assert a == pytest.approx(b, rel=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_reference_and_gradcheck(rng, reduction):
    lp = ref_log_softmax(rng.standard_normal((5, 3)), 1)
    t = np.array([0, 2, -100, 1, 2])
    w = np.array([1.0, 3.0, 0.5])
    picked = np.array([-w[ti] * lp[i, ti] if ti != -100 else 0.0 for i, ti in enumerate(t)])
    want = {"none": picked, "sum": picked.sum(), "mean": picked.sum() / w[t[t != -100]].sum()}[reduction]
    np.testing.assert_allclose(F.nll_loss(mg.tensor(lp), t, weight=w, reduction=reduction).data, want,
                               rtol=1e-12)
    assert mg.gradcheck(lambda a: F.nll_loss(a, t, weight=w, reduction=reduction), [t64(lp)])


def test_class_loss_errors_are_clear(rng):
    x = mg.tensor(rng.standard_normal((4, 3)))
    with pytest.raises(IndexError, match=r"cross_entropy: target contains 3, outside \[0, 3\)"):
        F.cross_entropy(x, np.array([0, 1, 2, 3]))
    with pytest.raises(mg.ShapeError, match=r"needs target of shape \(4,\)"):
        F.cross_entropy(x, np.array([0, 1]))
    with pytest.raises(mg.ShapeError, match="class axis is axis 1"):
        F.cross_entropy(mg.tensor(rng.standard_normal((2, 5, 3))), np.zeros((2, 5), np.int64))
    with pytest.raises(TypeError, match="target must be integers"):
        F.cross_entropy(x, np.array([True, False, True, True]))
    with pytest.raises(mg.ShapeError, match="probability targets"):
        F.cross_entropy(x, np.array([0.0, 1, 2, 0]))  # float targets are probabilities
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, np.array([0, 1, 2, 0]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, np.array([0, 1, 2, 0]), reduction="avg")
    with pytest.raises(mg.ShapeError, match="weight"):
        F.nll_loss(x, np.array([0, 1, 2, 0]), weight=np.ones(2))


# ---------------------------------------------------------------------------- BCE with logits
def test_bce_with_logits_reference_and_stability(rng):
    x = np.array([-1000.0, -30.0, -1.0, 0.0, 2.0, 40.0, 1000.0])
    y = np.array([1.0, 0.0, 0.3, 1.0, 0.0, 1.0, 0.0])
    got = F.binary_cross_entropy_with_logits(mg.tensor(x), y, reduction="none").data
    np.testing.assert_allclose(got, ref_bce_logits(x, y), rtol=1e-12)
    np.testing.assert_allclose(got[[0, -1]], [1000.0, 1000.0])
    pw = np.array(3.0)
    got = F.binary_cross_entropy_with_logits(mg.tensor(x), y, pos_weight=pw, reduction="none").data
    np.testing.assert_allclose(got, ref_bce_logits(x, y, 3.0), rtol=1e-12)
    xt = t64(x)
    F.binary_cross_entropy_with_logits(xt, y, reduction="sum").backward()
    sig = 1 / (1 + np.exp(-np.clip(x, -500, 500)))
    np.testing.assert_allclose(xt.grad, sig - y, atol=1e-15)


def test_gradcheck_bce_with_logits_all_options(rng):
    x = t64(rng.standard_normal((3, 4)) * 3)
    y = t64(rng.random((3, 4)))
    w = rng.random((3, 4))
    pw = rng.random(4) + 0.5
    for red in ("mean", "sum", "none"):
        assert mg.gradcheck(lambda a, b, r=red: F.binary_cross_entropy_with_logits(
            a, b, weight=w, pos_weight=pw, reduction=r), [x, y])
        assert mg.gradcheck(lambda a, b, r=red: F.binary_cross_entropy_with_logits(a, b, reduction=r), [x, y])


def test_bce_errors(rng):
    with pytest.raises(mg.ShapeError, match="same shape"):
        F.binary_cross_entropy_with_logits(mg.zeros(3), np.zeros(4))
    with pytest.raises(mg.ShapeError, match="pos_weight"):
        F.binary_cross_entropy_with_logits(mg.zeros(2, 3), np.zeros((2, 3)), pos_weight=np.ones(2))


# ---------------------------------------------------------------------------- mse, softmax, one_hot
def test_mse_loss_reference_and_gradcheck(rng):
    a, b = rng.standard_normal((3, 2)), rng.standard_normal((3, 2))
    for red, want in (("mean", ((a - b) ** 2).mean()), ("sum", ((a - b) ** 2).sum()), ("none", (a - b) ** 2)):
        np.testing.assert_allclose(F.mse_loss(mg.tensor(a), b, reduction=red).data, want, rtol=1e-12)
        assert mg.gradcheck(lambda x, y, r=red: F.mse_loss(x, y, reduction=r), [t64(a), t64(b)])
    with pytest.raises(mg.ShapeError, match="same shape"):
        F.mse_loss(mg.zeros(3), np.zeros((3, 1)))
    assert F.mse_loss(mg.zeros(3), np.ones(3, np.float64)).dtype == np.float32  # constant target is cast


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("case", ["normal", "subnormal", "empty"])
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # the backward of an empty mean, both
def test_mse_loss_is_one_node_with_the_bits_of_the_composite(dtype, reduction, case):
    rng = np.random.default_rng(7)
    shape, scale, seed = {"normal": ((31, 3, 17), 1.0, 0.37), "subnormal": ((5, 3), 1e-30, 1e-9),
                          "empty": ((0, 3), 1.0, 0.37)}[case]  # sizes not a power of two: n rounds
    a, b = ((scale * rng.standard_normal(shape)).astype(dtype) for _ in range(2))
    x1, y1, x2, y2 = (mg.tensor(v, requires_grad=True) for v in (a, b, a, b))
    fused = F.mse_loss(x1, y1, reduction=reduction)
    d = x2 - y2
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the mean of nothing
        composite = getattr(d * d, reduction)()
    assert fused.node.name == "mse_loss" and all(t.node is None for t in fused.node.inputs)
    fused.backward(np.asarray(seed, dtype))
    composite.backward(np.asarray(seed, dtype))
    assert fused.dtype == composite.dtype == dtype and fused.data.tobytes() == composite.data.tobytes()
    assert np.array_equal(x1.grad.data, x2.grad.data) and np.array_equal(y1.grad.data, y2.grad.data)
    x3 = mg.tensor(a, requires_grad=True)
    F.mse_loss(x3, b, reduction=reduction).backward(np.asarray(seed, dtype))  # a constant target: no grad
    assert np.array_equal(x3.grad.data, x1.grad.data)


def test_softmax_log_softmax_reference_and_gradcheck(rng):
    x = rng.standard_normal((3, 4)) * 500
    np.testing.assert_allclose(F.log_softmax(mg.tensor(x), axis=1).data, ref_log_softmax(x, 1), atol=1e-9)
    np.testing.assert_allclose(F.softmax(mg.tensor(x), axis=0).data, np.exp(ref_log_softmax(x, 0)),
                               atol=1e-12)
    y = t64(rng.standard_normal((3, 4)))
    assert mg.gradcheck(lambda a: F.log_softmax(a, axis=1), [y])
    assert mg.gradcheck(lambda a: F.softmax(a, axis=0), [y])


def test_one_hot():
    oh = F.one_hot(np.array([[0, 2], [1, 1]]), 3)
    assert oh.shape == (2, 2, 3) and oh.dtype == np.float32 and not oh.requires_grad
    np.testing.assert_array_equal(oh.data[0], [[1, 0, 0], [0, 0, 1]])
    assert F.one_hot(np.array([3, 0])).shape == (2, 4)
    assert F.one_hot(np.array([1]), 2, dtype="int64").dtype == np.int64
    with pytest.raises(IndexError):
        F.one_hot(np.array([3]), 3)


# ---------------------------------------------------------------------------- layers under gradcheck
def test_gradcheck_linear_layer_and_functional(rng):
    lin = nn.Linear(3, 2, rng=rng).double()
    x = t64(rng.standard_normal((4, 3)))
    assert mg.gradcheck(lambda a, w, b: lin(a), [x, lin.weight, lin.bias])
    np.testing.assert_allclose(lin(x).data, x.data @ lin.weight.data.T + lin.bias.data, rtol=1e-12)
    w = t64(rng.standard_normal((2, 3)))
    x3 = t64(rng.standard_normal((2, 2, 3)))  # batched leading axes
    assert mg.gradcheck(lambda a, b: F.linear(a, b), [x3, w])


def test_gradcheck_embedding(rng):
    emb = nn.Embedding(5, 3, rng=rng).double()
    idx = np.array([[1, 0, 4], [4, 4, 2]])
    assert mg.gradcheck(lambda w: emb(idx), [emb.weight])
    np.testing.assert_array_equal(emb(idx).data, emb.weight.data[idx])
    # with padding_idx the padding row gets no gradient even though it is used (PyTorch's rule)
    emb = nn.Embedding(5, 3, padding_idx=0, rng=rng).double()
    out = emb(idx)
    out.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad[0], 0)
    np.testing.assert_array_equal(emb.weight.grad[4], 3)


def test_gradcheck_dropout_with_fixed_mask(rng):
    x = t64(rng.standard_normal((4, 5)))
    assert mg.gradcheck(lambda a: F.dropout(a, 0.4, rng=np.random.default_rng(7)), [x])
    y = F.dropout(x, 0.4, rng=np.random.default_rng(7))
    y.sum().backward()
    np.testing.assert_allclose(x.grad, y.data / x.data, rtol=1e-12)  # grad = mask / (1 - p)


def test_gradcheck_sequential_mlp(rng):
    mlp = nn.Sequential(nn.Linear(3, 4, rng=rng), nn.Tanh(), nn.Linear(4, 4, rng=rng), nn.Sigmoid(),
                        nn.Linear(4, 2, rng=rng), nn.ReLU()).double()
    x = t64(rng.standard_normal((2, 3)))
    t = np.array([1, 0])
    params = list(mlp.parameters())
    assert mg.gradcheck(lambda a, *ps: F.cross_entropy(mlp(a), t), [x, *params])


def test_mse_loss_inside_a_compiled_function_traces_its_primitive_ops():
    x = mg.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    assert mg.compile(lambda a, b: F.mse_loss(a, b, reduction="none"))(x, mg.zeros(3, 4)).shape == (3, 4)
    with pytest.raises(mg.CompileError, match="'mean' makes a 0-d value"):  # the compiler's own advice
        mg.compile(lambda a, b: F.mse_loss(a, b))(x, mg.zeros(3, 4))

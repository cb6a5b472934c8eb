"""Where NumPy and PyTorch disagree the Tensor follows PyTorch; in-place updates follow PyTorch's rules
(and are never a silent wrong gradient); the methods a PyTorch user reaches for first."""

import numpy as np
import pytest

import minigrad as mg


def leaf(a, dtype=np.float64):
    return mg.tensor(np.asarray(a, dtype), requires_grad=True)


# ------------------------------------------------------------------ the three silent cases
def test_sgd_step_in_place_updates_the_parameter():
    w = leaf([1.0, 2.0])
    (w * w).sum().backward()
    before = w
    with mg.no_grad():
        w -= 0.1 * w.grad
    assert w is before and w.requires_grad and w.is_leaf
    np.testing.assert_allclose(w.data, [0.8, 1.6])
    (w * w).sum().backward()                         # the next backward works
    with mg.no_grad():
        for p in [w]:
            p -= 0.5 * p.grad                        # the loop idiom updates the model
    grad = np.array([2.0, 4.0]) + np.array([1.6, 3.2])  # accumulated over the two backward passes
    np.testing.assert_allclose(w.data, np.array([0.8, 1.6]) - 0.5 * grad)


def test_split_takes_piece_sizes():
    x = mg.arange(10)
    assert [p.shape for p in x.split(4)] == [(4,), (4,), (2,)]
    assert [p.tolist() for p in x.split([2, 3, 5])] == [[0, 1], [2, 3, 4], [5, 6, 7, 8, 9]]
    assert [p.shape for p in x.chunk(3)] == [(4,), (4,), (2,)]
    with pytest.raises(mg.ShapeError, match=r"sizes \[2, 2\] do not add up to 10"):
        x.split([2, 2])


def test_max_with_dim_returns_values_and_indices():
    x = leaf([[1.0, 5.0, 2.0], [7.0, 0.0, 7.0]])
    values, indices = x.max(1)
    np.testing.assert_array_equal(values.data, [5.0, 7.0])
    np.testing.assert_array_equal(indices.data, [1, 0])
    assert indices.dtype == np.int64
    _, pred = x.max(1)                               # the classification idiom
    np.testing.assert_array_equal(pred.data, [1, 0])
    r = x.min(dim=0, keepdim=True)
    assert r.values.shape == (1, 3) and r.indices.tolist() == [[0, 1, 0]]
    values.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 0], [1, 0, 0]])   # to the returned index only
    assert float(x.max()) == 7.0
    assert mg.gradcheck(lambda t: t.max(0).values * 2, [leaf([[1.0, 3.0], [2.0, 0.5]])])


# ------------------------------------------------------------------ arguments and dtypes
def test_dim_and_axis_keepdim_and_keepdims_are_both_accepted():
    x = mg.tensor(np.arange(6.0).reshape(2, 3))
    for a, b in [(x.sum(dim=1), x.sum(axis=1)),
                 (x.mean(1, keepdim=True), x.mean(axis=1, keepdims=True)),
                 (x.softmax(dim=0), x.softmax(axis=0)), (mg.stack([x, x], dim=1), mg.stack([x, x], axis=1)),
                 (mg.cat([x, x], dim=1), mg.concatenate([x, x], axis=1)),
                 (x.argmax(dim=1), x.argmax(axis=1))]:
        np.testing.assert_array_equal(a.data, b.data)
    with pytest.raises(TypeError, match="dim= or axis=, not both"):
        x.sum(dim=0, axis=1)


def test_python_data_dtypes_follow_pytorch():
    assert mg.tensor([1, 2]).dtype == mg.int64 == mg.long
    assert mg.tensor([1.0, 2]).dtype == mg.float32 == mg.float
    assert mg.tensor(True).dtype == mg.bool
    assert mg.tensor([1, 2], dtype=mg.double).dtype == np.float64
    with pytest.raises(TypeError, match="only float32/float64"):
        mg.tensor([1, 2], requires_grad=True)


def test_size_numel_dim_and_friends():
    x = mg.zeros(2, 3)
    assert x.size() == (2, 3) and x.size(1) == 3 and x.size(-1) == 3 and x.size == 6 and x.numel() == 6
    assert x.dim() == 2 and x.t().shape == (3, 2) and x.view(3, 2).shape == (3, 2)
    assert x.view_as(mg.zeros(6)).shape == (6,) and x.new_zeros(4).dtype == np.float32
    assert x.new_ones((2, 2)).tolist() == [[1, 1], [1, 1]] and x.new_full((1,), 7).item() == 7
    assert x.long().dtype == np.int64 and x.double().dtype == np.float64 and x.bool().dtype == np.bool_
    assert x.to("cpu") is x and x.to(mg.float64).dtype == np.float64 and x.cpu() is x
    assert x.to("cpu", mg.float64).dtype == np.float64 and x.to(mg.tensor([1])).dtype == np.int64
    with pytest.raises(ValueError, match="CPU only"):
        x.to("cuda")
    with pytest.raises(mg.ShapeError, match="<= 2 dimensions"):
        mg.zeros(2, 2, 2).t()
    assert np.asarray(x).shape == (2, 3) and x.numpy() is x.data
    a = np.ones(3)
    assert mg.from_numpy(a).data is a and mg.tensor(a).data is not a


def test_new_methods_match_numpy_and_finite_differences():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 4))
    x = leaf(a)
    np.testing.assert_allclose(x.norm().data, np.linalg.norm(a))
    np.testing.assert_allclose(x.norm(dim=1).data, np.linalg.norm(a, axis=1))
    np.testing.assert_allclose(x.norm(p=1, dim=0).data, np.abs(a).sum(0))
    np.testing.assert_allclose(x.var(dim=1).data, a.var(axis=1, ddof=1))
    np.testing.assert_allclose(x.var(unbiased=False).data, a.var())
    np.testing.assert_allclose(x.std(0, keepdim=True).data, a.std(axis=0, ddof=1, keepdims=True))
    vals, idx = x.topk(2, dim=1)
    np.testing.assert_array_equal(idx.data, np.argsort(-a, axis=1)[:, :2])
    np.testing.assert_allclose(vals.data, np.take_along_axis(a, idx.data, 1))
    np.testing.assert_allclose(x.topk(1, dim=0, largest=False).values.data, a.min(0, keepdims=True))
    np.testing.assert_allclose(x.gather(1, np.array([[0, 0], [3, 1], [2, 2]])).data,
                               np.take_along_axis(a, np.array([[0, 0], [3, 1], [2, 2]]), 1))
    mask = a > 0
    np.testing.assert_array_equal(x.masked_fill(mask, -1.0).data, np.where(mask, -1.0, a))
    c = x.clone()
    assert c.data is not x.data and c.node is not None
    for fn in (lambda t: t.norm(), lambda t: t.norm(dim=0) * t.var(dim=0), lambda t: t.std(1),
               lambda t: t.topk(3, dim=1).values ** 2, lambda t: t.gather(0, np.array([[2, 2, 0, 1]])),
               lambda t: t.masked_fill(mask, 0.0) * t, lambda t: t.clone() * 3):
        assert mg.gradcheck(fn, [x])


def test_norm_of_zero_has_a_zero_gradient():
    z = leaf(np.zeros(3))
    z.norm().backward()
    np.testing.assert_array_equal(z.grad, np.zeros(3))


# ------------------------------------------------------------------ in-place rules
def test_in_place_on_a_leaf_that_requires_grad_needs_no_grad():
    w = leaf([1.0, 2.0])
    for update in (lambda: w.add_(1.0), lambda: w.__iadd__(1.0), lambda: w.zero_(),
                   lambda: w.__setitem__(0, 3.0)):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            update()
    with mg.no_grad():
        w.mul_(2).add_(1, alpha=3).clamp_(max=6.5)
        w[0] = 0.5
    np.testing.assert_array_equal(w.data, [0.5, 6.5])
    with mg.no_grad():
        w.copy_(mg.tensor([4.0, 5.0])).div_(2)
        w.fill_(9)
    np.testing.assert_array_equal(w.data, [9.0, 9.0])
    with mg.no_grad():
        w.zero_()
    np.testing.assert_array_equal(w.data, [0.0, 0.0])


def test_in_place_on_a_graph_tensor():
    x = leaf([1.0, 2.0])
    loss = (x * 0).sum()
    for k in range(1, 4):                          # the accumulation idiom of RNN tutorials
        loss += (x * k).sum()
    loss.backward()
    np.testing.assert_array_equal(x.grad, [6.0, 6.0])
    y = x * 2
    z = y * 3                                      # y is now used by an op: updating it would change
    with pytest.raises(RuntimeError, match=r"an op has already used it.*x = x \+ y"):
        y += 1                                     # what z's backward sees, so it is refused
    assert float(z.sum()) == 18.0


def test_a_plain_tensor_updated_with_a_graph_tensor_joins_the_graph():
    w = leaf([1.0, 2.0])
    total = mg.tensor(0.0, dtype=mg.float64)
    for k in range(3):
        total += (w * w).sum() * k
    total.backward()
    np.testing.assert_allclose(total.item(), 3 * 5.0)
    np.testing.assert_allclose(w.grad, 3 * 2 * np.array([1.0, 2.0]))


def test_overwriting_a_saved_array_is_caught_at_backward():
    x = leaf([0.5, 1.0])
    y = x.tanh()                                    # tanh saves its output y
    z = y.sum()
    with mg.no_grad():
        y.mul_(2)
    with pytest.raises(RuntimeError, match=r"op 'Tanh'.*'mul_' updated a tensor"):
        z.backward()
    w = leaf([1.0, 2.0])
    loss = (w * w).sum()                            # mul saves its inputs
    with mg.no_grad():
        w -= 0.1                                     # a step before the graph's backward
    with pytest.raises(RuntimeError, match=r"op 'Mul'.*input 0 .*updated in place"):
        loss.backward()
    a = leaf([1.0, 2.0])
    s = (a + 1).sum()                               # add saves nothing: updating a is harmless
    with mg.no_grad():
        a += 1
    s.backward()
    np.testing.assert_array_equal(a.grad, [1.0, 1.0])


def test_views_and_detach_share_the_version():
    x = leaf([0.5, 1.0, 1.5, 2.0])
    y = x.sigmoid()
    z = y.sum()
    v = y.detach().reshape(2, 2)[0]                 # a view of y's memory, through detach and reshape
    v += 1.0
    np.testing.assert_array_equal(y.data[:2], v.data)
    with pytest.raises(RuntimeError, match="Sigmoid"):
        z.backward()


def test_setitem_and_dtype_errors():
    t = mg.zeros(2, 3)
    t[0, 1:] = 5
    t[1] = mg.tensor([1.0, 2.0, 3.0])
    np.testing.assert_array_equal(t.data, [[0, 5, 5], [1, 2, 3]])
    with pytest.raises(ValueError, match=r"setitem: cannot assign a value of shape \(4,\)"):
        t[0] = np.ones(4)
    i = mg.tensor([1, 2])
    with pytest.raises(TypeError, match=r"\+=: cannot update a tensor of shape \(2,\) \[int64\]"):
        i += 0.5
    with pytest.raises(RuntimeError, match="value requires grad"):
        t[0] = leaf([1.0, 2.0, 3.0], np.float32)


def test_unrecorded_in_place_ops_on_graph_tensors_are_recorded_or_refused():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2
    y.clamp_(max=3)                                 # recorded out of place (y not used by any op yet)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, 0.0])   # PyTorch's gradient
    z = x * 2
    with pytest.raises(RuntimeError, match="item assignment is not recorded"):
        z[0] = 5.0


def test_grad_assignment_is_checked():
    w = leaf([1.0, 2.0])
    w.grad = np.array([0.5, 0.5])                   # an array is wrapped
    assert isinstance(w.grad, mg.Tensor)
    with pytest.raises(TypeError, match=r"shape \(2,\) \[float32\] to a tensor of shape \(2,\) \[float64\]"):
        w.grad = np.array([0.5, 0.5], np.float32)
    with pytest.raises(TypeError, match="shape"):
        w.grad = np.zeros(3)
    g = w.grad
    (w * w).sum().backward()
    assert w.grad is g and w.grad.tolist() == [2.5, 4.5]     # accumulated in place


def test_more_pytorch_names_match_numpy_and_finite_differences():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((3, 4))
    x = leaf(a)
    np.testing.assert_allclose(x.sin().data, np.sin(a))
    np.testing.assert_allclose(x.cos().data, np.cos(a))
    np.testing.assert_allclose(x.cumsum(1).data, np.cumsum(a, 1))
    v, i = x.sort(dim=1, descending=True)
    np.testing.assert_array_equal(i.data, np.argsort(-a, axis=1, kind="stable"))
    np.testing.assert_allclose(v.data, -np.sort(-a, axis=1))
    np.testing.assert_allclose(x.index_select(1, [3, 0, 3]).data, a[:, [3, 0, 3]])
    np.testing.assert_allclose(x.narrow(1, 1, 2).data, a[:, 1:3])
    np.testing.assert_allclose(x.repeat(2, 1, 3).data, np.tile(a, (2, 1, 3)))
    np.testing.assert_allclose(x.mm(x.t()).data, a @ a.T)
    np.testing.assert_allclose(mg.bmm(x.reshape(1, 3, 4), x.t().reshape(1, 4, 3)).data[0], a @ a.T)
    np.testing.assert_allclose(x.add(x, alpha=2).data, 3 * a)
    np.testing.assert_allclose(x.sub(1.0).mul(2).div(4).data, (a - 1) / 2)
    for fn in (lambda t: t.sin() * t.cos(), lambda t: t.cumsum(0) ** 2, lambda t: t.sort(0).values * 3,
               lambda t: t.index_select(0, [2, 2, 0]), lambda t: t.narrow(0, 1, 2) ** 2,
               lambda t: t.repeat(2, 2) ** 2, lambda t: t.mm(t.t())):
        assert mg.gradcheck(fn, [x])
    with pytest.raises(mg.ShapeError, match="mm: expects two matrices"):
        x.mm(mg.zeros(4))
    with pytest.raises(mg.ShapeError, match="narrow"):
        x.narrow(1, 3, 2)


def test_masked_fill_in_place_and_creation_keywords():
    t = mg.zeros(2, 2)
    t.masked_fill_(mg.tensor([[True, False], [False, True]]), 5.0)
    assert t.tolist() == [[5, 0], [0, 5]]
    x = leaf([1.0, 2.0])
    y = x * 1
    y.masked_fill_(np.array([True, False]), 0.0)           # a graph tensor no op used: recorded
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0]
    assert mg.randint(10, (3,)).shape == (3,) and mg.randint(2, 5, (2, 2)).dtype == mg.long
    assert sorted(mg.randperm(5).tolist()) == [0, 1, 2, 3, 4]
    assert mg.zeros(2, device="cpu").shape == (2,) and mg.tensor([1.0], device="cpu").shape == (1,)
    with pytest.raises(ValueError, match="CPU only"):
        mg.ones(2, device="cuda:0")

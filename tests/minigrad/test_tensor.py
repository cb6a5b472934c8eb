"""Tensor creation (dtype rules, requires_grad) and the Tensor API (.T, .item(), repr, len, iteration...)."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg


@pytest.mark.parametrize("data,dtype", [
    ([1, 2], np.int64), ([1.5, 2.0], np.float32), (3, np.int64), (2.5, np.float32),
    ([[1, 2], [3, 4]], np.int64), ([1, 2.5], np.float32), (np.array([1.0, 2.0]), np.float64),
    (np.array([1.0], np.float32), np.float32),
    (np.float64(2.0), np.float64), (np.float32(2.0), np.float32), (np.array([1, 2]), np.int64),
    (np.array([1, 2], np.int32), np.int32), (True, np.bool_), (np.array([True, False]), np.bool_),
])
def test_tensor_dtype_rules(data, dtype) -> None:
    t = mg.tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.data, np.asarray(data))
    assert type(t.data) is np.ndarray and t.is_leaf and not t.requires_grad and t.grad is None


def test_tensor_dtype_argument_and_requires_grad() -> None:
    t = mg.tensor([1, 2], dtype="float64", requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad and t.is_leaf
    assert mg.tensor(np.arange(3), dtype=np.float32).dtype == np.float32
    assert mg.tensor([1, 2], dtype=mg.float64).dtype == np.float64
    assert mg.tensor([1, 2], dtype="int64").dtype == np.int64
    a = np.array([1.0, 2.0])
    assert not np.shares_memory(mg.tensor(a).data, a)  # mg.tensor copies, as torch.tensor
    assert mg.from_numpy(a).data is a                    # from_numpy shares, as torch.from_numpy
    assert mg.Tensor(mg.from_numpy(a)).data is a


CREATORS = [
    ("zeros", lambda **kw: mg.zeros(2, 3, **kw), np.zeros((2, 3))),
    ("zeros_tuple", lambda **kw: mg.zeros((2, 3), **kw), np.zeros((2, 3))),
    ("ones", lambda **kw: mg.ones(4, **kw), np.ones(4)),
    ("ones_list", lambda **kw: mg.ones([2, 1], **kw), np.ones((2, 1))),
    ("full", lambda **kw: mg.full((2, 2), 1.5, **kw), np.full((2, 2), 1.5)),
    ("full_int_shape", lambda **kw: mg.full(3, -2.0, **kw), np.full(3, -2.0)),
    ("eye", lambda **kw: mg.eye(3, **kw), np.eye(3)),
    ("eye_rect", lambda **kw: mg.eye(2, 4, **kw), np.eye(2, 4)),
    ("zeros_like", lambda **kw: mg.zeros_like(mg.tensor(np.ones((2, 5))), **kw), np.zeros((2, 5))),
    ("ones_like", lambda **kw: mg.ones_like(mg.tensor(np.ones(3)), **kw), np.ones(3)),
    ("arange_float", lambda **kw: mg.arange(0.0, 1.0, 0.25, **kw), np.arange(0.0, 1.0, 0.25)),
    ("arange_int_dtype", lambda **kw: mg.arange(5, **kw), np.arange(5.0)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("requires_grad", [False, True])
@pytest.mark.parametrize("name,make,expected", CREATORS, ids=[c[0] for c in CREATORS])
def test_creation_functions(name, make, expected, dtype, requires_grad) -> None:
    t = make(dtype=dtype, requires_grad=requires_grad)
    assert isinstance(t, mg.Tensor) and t.is_leaf
    assert t.dtype == np.dtype(dtype)
    assert t.requires_grad is requires_grad
    np.testing.assert_array_equal(t.data, expected)


def test_creation_defaults() -> None:
    assert mg.zeros(2).dtype == np.float32 and mg.ones(2).dtype == np.float32
    assert mg.full((2,), 1).dtype == np.float32 and mg.eye(2).dtype == np.float32
    assert mg.randn(2).dtype == np.float32 and mg.rand(2).dtype == np.float32
    assert mg.arange(3).dtype == np.int64 and mg.arange(0, 1, 0.5).dtype == np.float32
    assert mg.zeros_like(mg.tensor(np.ones(2))).dtype == np.float64  # like keeps the dtype
    assert mg.ones_like(mg.tensor(np.ones(2)), dtype="float32").dtype == np.float32
    assert mg.zeros(2, 3, dtype="int64").dtype == np.int64


def test_random_creation_is_seeded_and_shaped() -> None:
    mg.manual_seed(7)
    a = mg.randn(3, 4, dtype="float64")
    b = mg.rand(1000)
    mg.manual_seed(7)
    np.testing.assert_array_equal(mg.randn(3, 4, dtype="float64").data, a.data)
    np.testing.assert_array_equal(mg.rand(1000).data, b.data)
    assert a.shape == (3, 4) and mg.randn((2, 5)).shape == (2, 5)
    assert b.data.min() >= 0 and b.data.max() < 1
    assert abs(float(mg.randn(20000, dtype="float64").data.mean())) < 0.05
    own = np.random.default_rng(3)
    np.testing.assert_array_equal(mg.randn(4, rng=own, dtype="float64").data,
                                  np.random.default_rng(3).standard_normal(4))
    gen = mg.manual_seed(1)
    assert mg.default_rng() is gen and isinstance(gen, np.random.Generator)
    assert mg.randn(2, requires_grad=True).requires_grad


def test_properties() -> None:
    t = mg.tensor(np.arange(6.0).reshape(2, 3))
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and t.dtype == np.float64
    assert len(t) == 2
    assert t.T.shape == (3, 2)
    np.testing.assert_array_equal(t.T.data, t.data.T)
    assert t.numpy() is t.data
    assert np.asarray(t) is t.data and np.asarray(t, dtype=np.float32).dtype == np.float32
    assert t.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    s = mg.tensor(2.5)
    assert s.item() == 2.5 and isinstance(s.item(), float)
    assert float(s) == 2.5 and int(mg.tensor(3.0)) == 3 and bool(mg.tensor(1.0))
    x = mg.tensor([1.0], requires_grad=True)
    assert +x is x


def test_op_results_hold_ndarrays_even_when_0d() -> None:
    x = mg.tensor(2.0, requires_grad=True)
    v = mg.tensor([1.0, 2.0])
    for y in (x * 3, x.exp(), x ** 2, v @ v, v.unbind()[0], x.sum(), x.sigmoid()):
        assert type(y.data) is np.ndarray, type(y.data)


def test_repr() -> None:
    assert repr(mg.tensor([1.0, 2.0])) == "tensor([1., 2.], dtype=float32)"
    x = mg.tensor(np.array([0.5]), requires_grad=True)
    assert "requires_grad=True" in repr(x) and "float64" in repr(x)
    assert "op=Mul" in repr(x * 2)
    x.name = "weight"
    assert "name='weight'" in repr(x)
    big = repr(mg.zeros(1000))
    assert "..." in big and len(big) < 200


def test_iteration_is_one_unbind_and_len() -> None:
    x = mg.tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    rows = list(x)
    assert len(rows) == len(x) == 3
    assert {id(r.node) for r in rows} == {id(rows[0].node)} and rows[0].node.name == "Split"
    for i, r in enumerate(rows):
        np.testing.assert_array_equal(r.data, x.data[i])
    a, _b, c = x  # unpacking works the same way
    (a + 2 * c).sum().backward()
    np.testing.assert_array_equal(x.grad, [[1, 1], [0, 0], [2, 2]])
    with pytest.raises(TypeError):
        len(mg.tensor(1.0))
    with pytest.raises(TypeError, match="0-d"):
        iter(mg.tensor(1.0))


def test_comparisons_are_bool_tensors_without_grad_and_hash() -> None:
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    eq = x == mg.tensor([1.0, 3.0])
    assert isinstance(eq, mg.Tensor) and eq.dtype == np.bool_ and not eq.requires_grad
    assert eq.tolist() == [True, False]
    d = {x: "x"}  # tensors hash by identity, so they can key dicts (parameters, hooks)
    assert d[x] == "x"


def test_shape_methods() -> None:
    x = mg.tensor(np.arange(24.0).reshape(2, 3, 4))
    assert x.reshape(6, 4).shape == (6, 4) and x.reshape((4, 6)).shape == (4, 6)
    assert x.view(-1).shape == (24,) and x.flatten().shape == (24,)
    assert x.reshape(2, 3, 4) is x  # no-op reshape adds no node
    assert x.unsqueeze(1).shape == (2, 1, 3, 4) and x.unsqueeze(1).squeeze(1).shape == (2, 3, 4)
    assert mg.expand_dims(x, -1).shape == (2, 3, 4, 1) and mg.zeros(1, 3, 1).squeeze().shape == (3,)
    assert x.transpose(1, 2).shape == (2, 4, 3) and x.transpose().shape == (4, 3, 2)
    assert x.permute(2, 0, 1).shape == (4, 2, 3) and mg.permute(x, (2, 0, 1)).shape == (4, 2, 3)
    m = mg.tensor(np.arange(6.0).reshape(2, 3))
    assert m.transpose(0, 1).shape == (3, 2) and m.transpose(1, 0).shape == (3, 2)  # 2 ints: swap
    np.testing.assert_array_equal(m.transpose(0, 1).data, m.data.T)
    assert x.expand(5, 2, 3, 4).shape == (5, 2, 3, 4)
    assert [p.shape for p in x.split([1, 2, 1], dim=2)] == [(2, 3, 1), (2, 3, 2), (2, 3, 1)]
    assert [p.shape for p in x.chunk(3, axis=2)] == [(2, 3, 2), (2, 3, 2)]
    assert [p.shape for p in x.unbind(2)] == [(2, 3)] * 4


def test_detach_requires_grad_flag_and_names() -> None:
    x = mg.tensor([1.0], requires_grad=True)
    assert x.detach().data is x.data and not x.detach().requires_grad
    y = mg.tensor([1.0]).requires_grad_()
    assert y.requires_grad and y.requires_grad_(False) is y and not y.requires_grad
    z = mg.Tensor(np.ones(2), name="bias")
    assert z.name == "bias"

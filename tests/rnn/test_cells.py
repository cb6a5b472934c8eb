"""Cells: PyTorch names/shapes/init, forward against hand-written NumPy, gradcheck, the graph of a step."""

import numpy as np
import pytest
import rnn_np_ref as ref

import minigrad as mg
from rnn import GRUCell, LSTMCell, RNNCell

CELLS = [("rnn_tanh", RNNCell, 1), ("rnn_relu", RNNCell, 1), ("gru", GRUCell, 3), ("lstm", LSTMCell, 4)]


def make(kind, cls, n_in=3, H=2, bias=True, seed=0, dtype="float64"):
    kw = {"nonlinearity": "relu"} if kind == "rnn_relu" else {}
    return cls(n_in, H, bias=bias, rng=np.random.default_rng(seed), dtype=dtype, **kw)


def params(cell):
    return [p for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh) if p is not None]


def state(kind, B, H, rng):
    shape = (B, H) if B else (H,)
    h = mg.tensor(rng.standard_normal(shape) * 0.5, requires_grad=True)
    if kind == "lstm":
        return (h, mg.tensor(rng.standard_normal(shape) * 0.5, requires_grad=True))
    return h


@pytest.mark.parametrize("kind,cls,G", CELLS)
def test_names_shapes_and_default_init(kind, cls, G):
    cell = make(kind, cls, n_in=5, H=4, dtype="float32")
    names = [n for n, _ in cell.named_parameters()]
    assert names == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    assert cell.weight_ih.shape == (G * 4, 5) and cell.weight_hh.shape == (G * 4, 4)
    assert cell.bias_ih.shape == (G * 4,) and cell.bias_hh.shape == (G * 4,)
    k = 1 / np.sqrt(4)
    for p in cell.parameters():
        assert p.dtype == np.float32 and p.requires_grad and p.is_leaf
    every = np.concatenate([p.data.ravel() for p in cell.parameters()])
    assert np.abs(every).max() <= k and np.abs(every).max() > 0.8 * k
    big = make(kind, cls, n_in=40, H=50, dtype="float32")
    w = big.weight_hh.data  # U(-k, k): mean 0, variance k^2 / 3
    assert abs(w.mean()) < 0.01 and abs(w.var() - (1 / 50) / 3) < 0.1 * (1 / 50) / 3
    nob = make(kind, cls, bias=False)
    assert nob.bias_ih is None and [n for n, _ in nob.named_parameters()] == ["weight_ih", "weight_hh"]


def test_init_is_seeded_and_uses_global_rng():
    a = LSTMCell(3, 4, rng=np.random.default_rng(7))
    b = LSTMCell(3, 4, rng=np.random.default_rng(7))
    assert np.array_equal(a.weight_hh.data, b.weight_hh.data)
    mg.manual_seed(3)
    c = GRUCell(3, 4)
    mg.manual_seed(3)
    d = GRUCell(3, 4)
    assert np.array_equal(c.weight_ih.data, d.weight_ih.data)


def _ref_forward(kind, cell, x, hx):
    w = [p.data for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]
    if kind == "lstm":
        return ref.lstm_cell(x, hx[0], hx[1], *w)
    if kind == "gru":
        return ref.gru_cell(x, hx, *w)
    return ref.rnn_cell(x, hx, *w, nonlinearity=kind[4:])


@pytest.mark.parametrize("kind,cls,G", CELLS)
def test_forward_matches_numpy(kind, cls, G, rng):
    cell = make(kind, cls, n_in=3, H=4)
    x = rng.standard_normal((5, 3))
    hx = state(kind, 5, 4, rng)
    got = cell(mg.tensor(x), hx)
    hx_np = tuple(s.data for s in hx) if kind == "lstm" else hx.data
    want = _ref_forward(kind, cell, x, hx_np)
    for g, w in zip(got if kind == "lstm" else [got], want if kind == "lstm" else [want]):
        np.testing.assert_allclose(g.data, w, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("kind,cls,G", CELLS)
def test_zero_initial_state_and_unbatched(kind, cls, G, rng):
    cell = make(kind, cls)
    x = rng.standard_normal((2, 3))
    z = np.zeros((2, 2))
    out = cell(mg.tensor(x))
    want = _ref_forward(kind, cell, x, (z, z) if kind == "lstm" else z)
    outs, wants = (out, want) if kind == "lstm" else ([out], [want])
    for o, w in zip(outs, wants):
        np.testing.assert_allclose(o.data, w, rtol=1e-12)
    one = cell(mg.tensor(x[0]))  # unbatched (I,) -> (H,)
    for o, w in zip(one if kind == "lstm" else [one], wants):
        assert o.shape == (2,)
        np.testing.assert_allclose(o.data, w[0], rtol=1e-12)


@pytest.mark.parametrize("B", [0, 1, 3])  # 0: unbatched (I,)
@pytest.mark.parametrize("kind,cls,G", CELLS)
def test_gradcheck_cell(kind, cls, G, B, rng):
    cell = make(kind, cls, n_in=3, H=2)
    if kind == "rnn_relu":  # keep pre-activations away from the kink at 0
        cell.bias_ih.data += 0.6
    x = mg.tensor(rng.standard_normal((B, 3) if B else (3,)), requires_grad=True)
    hx = state(kind, B, 2, rng)
    hs = list(hx) if kind == "lstm" else [hx]

    def f(x, *args):
        return cell(x, tuple(args[:2]) if kind == "lstm" else args[0])

    assert mg.gradcheck(f, [x, *hs, *params(cell)], atol=1e-8, rtol=1e-7)


@pytest.mark.parametrize("kind,cls,G", CELLS)
def test_gradcheck_cell_without_bias(kind, cls, G, rng):
    cell = make(kind, cls, bias=False)
    x = mg.tensor(rng.standard_normal((2, 3)) + (0.5 if kind == "rnn_relu" else 0), requires_grad=True)
    hx = state(kind, 2, 2, rng)
    hs = list(hx) if kind == "lstm" else [hx]
    assert mg.gradcheck(lambda x, *a: cell(x, tuple(a[:2]) if kind == "lstm" else a[0]),
                        [x, *hs, *params(cell)], atol=1e-8, rtol=1e-7)


def test_a_step_is_the_graph_of_its_equations():
    x = mg.tensor(np.ones((1, 3)), requires_grad=True)
    h, c = LSTMCell(3, 2, dtype="float64")(x)
    assert h.node.name == "Mul" and c.node.name == "Add"  # h = o * tanh(c), c = f * c + i * g


def test_primitive_cell_cuts_gates_with_one_split():
    x = mg.tensor(np.ones((2, 3)), requires_grad=True)
    h, _ = LSTMCell(3, 2)(x.astype("float32"))
    seen, stack, names = set(), [h.node], []
    while stack:
        n = stack.pop()
        if n is None or id(n) in seen:
            continue
        seen.add(id(n))
        names.append(n.name)
        stack.extend(t.node for t in n.inputs)
    assert "getitem" not in names and names.count("Split") == 1


@pytest.mark.parametrize("kind,cls,G", CELLS)
def test_errors_name_the_cell_and_shapes(kind, cls, G):
    cell = make(kind, cls)
    with pytest.raises(mg.ShapeError, match=rf"{cls.__name__}.*\(2, 4\)"):
        cell(np.zeros((2, 4)))
    with pytest.raises(TypeError, match="float32"):
        cell(mg.tensor(np.zeros((2, 3), np.float32)))
    with pytest.raises(mg.ShapeError, match=r"\(2, 2\)"):
        cell(np.zeros((2, 3)), (np.zeros((3, 2)), np.zeros((3, 2))) if kind == "lstm" else np.zeros((3, 2)))
    with pytest.raises(ValueError, match="hidden_size"):
        cls(3, 0)


def test_rnncell_nonlinearity_checked():
    with pytest.raises(ValueError, match="nonlinearity"):
        RNNCell(2, 2, nonlinearity="sigmoid")


def test_cell_dtype_follows_module_to():
    cell = LSTMCell(2, 3).double()
    h, c = cell(np.ones((1, 2)))
    assert cell.dtype == h.dtype == c.dtype == np.float64

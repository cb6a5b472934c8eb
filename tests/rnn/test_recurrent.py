"""The cell protocol and the generic layer: a user cell under ``rnn.Recurrent`` gets the same values and
gradients as the built-in layer of the same equations, through both the plain and the hoisted path;
names, hooks, state handling and errors."""

import numpy as np
import pytest

import minigrad as mg
import rnn


class Elman(rnn.Cell):
    """h' = tanh(W x + b + U h + c): PyTorch's RNN cell from primitive ops, no hoisting."""

    def __init__(self, input_size, hidden_size, *, rng=None, dtype="float32"):
        super().__init__(input_size, hidden_size)
        self.weight_ih = rnn.uniform_init((hidden_size, input_size), hidden_size, rng, dtype)
        self.weight_hh = rnn.uniform_init((hidden_size, hidden_size), hidden_size, rng, dtype)
        self.bias_ih = rnn.uniform_init((hidden_size,), hidden_size, rng, dtype)
        self.bias_hh = rnn.uniform_init((hidden_size,), hidden_size, rng, dtype)

    def forward(self, x, state):
        (h,) = state
        return ((x @ self.weight_ih.T + self.bias_ih + h @ self.weight_hh.T + self.bias_hh).tanh(),)


class HoistedElman(Elman):
    """The same cell with its input projection hoisted out of the time loop."""

    def project(self, xs):
        return xs @ self.weight_ih.T + self.bias_ih

    def step(self, p, state):
        (h,) = state
        return ((p + h @ self.weight_hh.T + self.bias_hh).tanh(),)


def layers(cls, bi=True, L=2, **kw):
    user = rnn.Recurrent(lambda n: cls(n, 3, rng=np.random.default_rng(n), dtype="float64"), 2,
                         num_layers=L, bidirectional=bi, **kw)
    ref = rnn.RNN(2, 3, num_layers=L, bidirectional=bi, dtype="float64", **kw)
    ref.load_state_dict(user.state_dict())
    return user, ref


@pytest.mark.parametrize("cls", [Elman, HoistedElman])
@pytest.mark.parametrize("lengths", [None, [4, 2, 0]])
def test_user_cell_equals_builtin_layer(cls, lengths, rng):
    user, ref = layers(cls)
    assert user.scope_name == cls.__name__ and user.hidden_size == 3
    x = rng.standard_normal((4, 3, 2))
    h0 = rng.standard_normal((4, 3, 3))
    w = rng.standard_normal((4, 3, 6))
    res = []
    for layer, hx in ((user, (mg.tensor(h0, requires_grad=True),)), (ref, mg.tensor(h0, requires_grad=True))):
        xt = mg.tensor(x, requires_grad=True)
        out, hn = layer(xt, hx, lengths=lengths)
        hn = hn[0] if isinstance(hn, tuple) else hn
        ((out * w).sum() + (hn ** 2).sum()).backward()
        h0_grad = (hx[0] if isinstance(hx, tuple) else hx).grad
        res.append([out.data, hn.data, xt.grad, h0_grad] + [p.grad for p in layer.parameters()])
    for a, b in zip(*res):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_user_cell_gradcheck_every_parameter_input_and_state(rng):
    user, _ = layers(HoistedElman, L=2)
    x = mg.tensor(rng.standard_normal((3, 2, 2)), requires_grad=True)
    h0 = mg.tensor(0.5 * rng.standard_normal((4, 2, 3)), requires_grad=True)
    assert mg.gradcheck(lambda x, h0, *p: (user(x, h0)[0] ** 2).sum(), [x, h0, *user.parameters()])


def test_parameter_names_follow_layer_and_direction():
    user, ref = layers(Elman)
    assert list(user.state_dict()) == list(ref.state_dict())
    assert user.weight_hh_l1_reverse is user.cell(1, 1).weight_hh
    assert user.weight_hh_l1_reverse.name == "weight_hh_l1_reverse"
    assert [type(c).__name__ for c in user.cells()] == ["Elman"] * 4
    assert user.cell(1, 1).input_size == 6
    with pytest.raises(AttributeError, match="weight_hh_l2"):
        user.weight_hh_l2


def test_step_hooks_see_every_step_and_are_removable(rng):
    user, _ = layers(Elman, bi=True, L=2)
    seen = []
    handle = user.register_step_hook(lambda m, layer, d, t, s: seen.append((layer, d, t, s[0].shape)))
    user(rng.standard_normal((3, 2, 2)), t0=5)
    want = [(layer, d, t, (2, 3)) for layer in (0, 1) for d in (0, 1) for t in (5, 6, 7)]
    assert sorted(seen) == sorted(want)
    handle.remove()
    user(rng.standard_normal((3, 2, 2)))
    assert len(seen) == 12
    with pytest.raises(TypeError, match="callable"):
        user.register_step_hook(3)


def test_scopes_and_unbatched_and_batch_first(rng):
    user = rnn.Recurrent(lambda n: Elman(n, 3, dtype="float64"), 2, batch_first=True, compile=False)
    out, (hn,) = user(rng.standard_normal((4, 5, 2)))          # (B, T, I)
    assert out.shape == (4, 5, 3) and hn.shape == (1, 4, 3)
    out, (hn,) = user(rng.standard_normal((5, 2)), t0=2)        # unbatched (T, I)
    assert out.shape == (5, 3) and hn.shape == (1, 3)
    step_scopes = set()
    stack = [out.node]
    while stack:
        n = stack.pop()
        if n is None:
            continue
        if mg.find_step(n.scope):
            step_scopes.add(n.scope)
        stack.extend(t.node for t in n.inputs)
    assert {s[:2] for s in step_scopes} == {("Elman", "layer0")}
    assert {mg.find_step(s)[1] for s in step_scopes} == {2, 3, 4, 5, 6}


def test_state_errors_are_clear(rng):
    user = rnn.Recurrent(lambda n: Elman(n, 3, dtype="float64"), 2, num_layers=2)
    x = rng.standard_normal((3, 2, 2))
    _, state = user(x, mg.tensor(np.zeros((2, 2, 3))))               # a bare tensor for a 1-state cell
    assert isinstance(state, tuple) and len(state) == 1
    with pytest.raises(mg.ShapeError, match=r"Elman: hx must have shape \(2, 2, 3\)"):
        user(x, (np.zeros((1, 2, 3)),))
    with pytest.raises(TypeError, match=r"hx must be a tuple \(hx\), got tuple of length 2"):
        user(x, (np.zeros((2, 2, 3)), np.zeros((2, 2, 3))))
    with pytest.raises(TypeError, match="float32"):
        user(mg.tensor(x.astype(np.float32)))


def test_cell_errors_are_clear():
    class Bare(Elman):
        def forward(self, x, state):
            return super().forward(x, state)[0]

    with pytest.raises(TypeError, match=r"Bare.forward\(x, state\) must return the new state as a tuple"):
        rnn.Recurrent(lambda n: Bare(n, 2), 2)(np.zeros((3, 1, 2), np.float32))
    with pytest.raises(TypeError, match=r"must return an rnn\.Cell"):
        rnn.Recurrent(lambda n: mg.nn.Linear(n, 2), 2)
    with pytest.raises(ValueError, match=r"cell_fn\(2\) built a cell with input_size 3"):
        rnn.Recurrent(lambda n: Elman(3, 2), 2)
    sizes = iter([2, 3])
    with pytest.raises(ValueError, match="same state shapes"):
        rnn.Recurrent(lambda n: Elman(n, next(sizes)), 2, num_layers=2)
    with pytest.raises(NotImplementedError, match="forward"):
        rnn.Recurrent(lambda n: rnn.Cell(n, 2), 2)(np.zeros((1, 1, 2), np.float32))


def test_make_rnn_takes_names_and_factories_and_forget_bias():
    layer = rnn.make_rnn(Elman, 2, 4, num_layers=2, dtype="float64")
    assert isinstance(layer, rnn.Recurrent) and layer.batch_first and layer.dtype == np.float64
    lstm = rnn.make_rnn("lstm", 2, 4, forget_bias=1.0)
    assert isinstance(lstm, rnn.LSTM)
    np.testing.assert_array_equal(lstm.bias_hh_l0.data[4:8], 1.0)
    with pytest.raises(ValueError, match="forget_bias needs a cell with a forget gate"):
        rnn.make_rnn("gru", 2, 4, forget_bias=1.0)
    with pytest.raises(ValueError, match="cell must be one of"):
        rnn.make_rnn("transformer", 2, 4)
    with pytest.raises(TypeError, match="cell must be a registered name"):
        rnn.make_rnn(3, 2, 4)


def test_registry():
    assert {"rnn", "gru", "lstm"} <= set(rnn.CELLS)
    assert rnn.cell_factory("gru") is rnn.GRUCell and rnn.cell_factory(Elman) is Elman
    try:
        rnn.register_cell("test_elman", Elman)
        model = rnn.SequenceClassifier(2, 3, 2, cell="test_elman")
        assert type(model.encoder.rnn.cell(0)) is Elman
        assert rnn.register_cell("test_elman", Elman) is Elman       # the same again is fine
        with pytest.raises(ValueError, match="already registered"):
            rnn.register_cell("test_elman", HoistedElman)
    finally:
        rnn.CELLS.pop("test_elman", None)
    with pytest.raises(ValueError, match="lower-case identifier"):
        rnn.register_cell("My Cell", Elman)
    with pytest.raises(TypeError, match="callable"):
        rnn.register_cell("thing", 3)


def test_builtin_layers_are_recurrent_with_cells():
    lstm = rnn.LSTM(3, 4, num_layers=2, bidirectional=True)
    assert isinstance(lstm, rnn.Recurrent) and lstm.scope_name == "LSTM"
    assert [type(c) for c in lstm.cells()] == [rnn.LSTMCell] * 4
    assert lstm.weight_ih_l1_reverse is lstm.cell(1, 1).weight_ih
    assert lstm.weight_ih_l1_reverse.shape == (16, 8)
    lstm.reset_parameters(np.random.default_rng(0))
    assert lstm.weight_ih_l0.name == "weight_ih_l0"                   # identity and name kept


def test_compiled_layer_source_names_the_state_and_the_input_after_step(rng):
    """The generated recurrence of a layer reads like the cell: ``step(p, state)`` gives the carry
    ``state_k`` and the per-step inputs ``p_k`` (not the other way round)."""
    layer = rnn.Recurrent(lambda n: HoistedElman(n, 3, rng=np.random.default_rng(n)), 2, compile=True)
    out, _ = layer(mg.tensor(rng.standard_normal((4, 2, 2)).astype(np.float32), requires_grad=True))
    src = out.node.program.source
    assert "def scan_forward(dims, reverse, X_p_0, state_0, weight_hh" in src
    assert "dT_state_0" in src and "X_state" not in src


def test_compiled_layer_follows_a_replaced_parameter(rng):
    """A compiled layer re-walks its cell's parameters only when some module changed
    (``mg.nn.structure_version``); a parameter replaced between calls is then traced again, and one
    whose values change in place keeps the program (it reads the values at every call)."""
    pytest.importorskip("numba")
    layer = rnn.RNN(3, 4, compile=True)
    x = mg.tensor(rng.standard_normal((5, 2, 3)).astype(np.float32))
    first = layer(x)[0].node.program
    v = mg.nn.structure_version()
    assert layer(x)[0].node.program is first and mg.nn.structure_version() == v  # a call changes nothing
    layer.weight_hh_l0.data[...] = 0.0  # in place: same program, new values
    out = layer(x)[0]
    assert out.node.program is first
    eager = rnn.RNN(3, 4, compile=False)
    eager.load_state_dict(layer.state_dict())
    np.testing.assert_allclose(out.data, eager(x)[0].data, rtol=1e-5, atol=1e-6)
    cell = layer.cell(0, 0)
    cell.weight_hh = mg.nn.Parameter(np.eye(4, dtype=np.float32))  # replaced: traced again
    assert mg.nn.structure_version() != v
    out = layer(x)[0]
    eager.load_state_dict(layer.state_dict())
    np.testing.assert_allclose(out.data, eager(x)[0].data, rtol=1e-5, atol=1e-6)
    out.sum().backward()
    assert cell.weight_hh.grad is not None and np.abs(cell.weight_hh.grad.data).sum() > 0
    del cell.bias_hh  # deleting also counts
    assert mg.nn.structure_version() != v


class _GainRNN(rnn.Cell):
    """An Elman cell whose output is scaled by a buffer (read as a constant by the compiled trace)."""

    def __init__(self, input_size, hidden_size, *, rng=None, dtype=np.float32):
        super().__init__(input_size, hidden_size)
        self.w = rnn.uniform_init((hidden_size, input_size), hidden_size, rng, dtype)
        self.u = rnn.uniform_init((hidden_size, hidden_size), hidden_size, rng, dtype)
        self.register_buffer("gain", np.ones(hidden_size, dtype))

    def forward(self, x, state):
        (h,) = state
        return ((x @ self.w.T + h @ self.u.T).tanh() * mg.tensor(self.gain),)


def test_compiled_layer_follows_a_buffer_replaced_by_load_state_dict_or_to(rng):
    pytest.importorskip("numba")
    x = mg.tensor(rng.standard_normal((5, 2, 3)).astype(np.float32))
    layer = rnn.Recurrent(lambda n: _GainRNN(n, 4, rng=np.random.default_rng(n)), 3, compile=True)
    layer(x)
    v = mg.nn.structure_version()
    sd = layer.state_dict()
    sd["gain_l0"] = np.full(4, 0.5, np.float32)
    layer.load_state_dict(sd)
    assert mg.nn.structure_version() != v
    compiled = layer(x)[0].data
    layer.compile = False
    np.testing.assert_allclose(compiled, layer(x)[0].data, rtol=1e-6, atol=1e-7)
    layer.compile = True
    layer.to(np.float64)
    x64 = mg.tensor(x.data.astype(np.float64))
    compiled = layer(x64)[0].data
    layer.compile = False
    np.testing.assert_allclose(compiled, layer(x64)[0].data, rtol=1e-12)


def test_assigning_a_listed_name_replaces_the_cells_parameter(rng):
    """``layer.weight_hh_l0 = p`` (PyTorch's name) replaces the cell's ``weight_hh``: no stray
    parameter, the state_dict keeps its keys, and the compiled layer uses (and trains) the new one."""
    layer = rnn.RNN(3, 4, compile=True)
    keys = list(layer.state_dict())
    new = mg.nn.Parameter(np.eye(4, dtype=np.float32))
    layer.weight_hh_l0 = new
    assert layer.weight_hh_l0 is new and layer.cell(0, 0).weight_hh is new
    assert list(layer.state_dict()) == keys and len(list(layer.parameters())) == 4
    x = mg.tensor(rng.standard_normal((5, 2, 3)).astype(np.float32))
    out = layer(x)[0]
    out.sum().backward()
    assert new.grad is not None
    eager = rnn.RNN(3, 4, compile=False)
    eager.load_state_dict(layer.state_dict())
    np.testing.assert_allclose(out.data, eager(x)[0].data, rtol=1e-5, atol=1e-6)


def test_a_compiled_layer_that_ran_pickles_and_copies_without_its_programs(rng):
    import copy
    import pickle

    layer = rnn.LSTM(3, 4, compile=True)
    x = mg.tensor(rng.standard_normal((5, 2, 3)).astype(np.float32))
    want = layer(x)[0].data
    for twin in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert twin._compiled == {} and layer._compiled
        np.testing.assert_array_equal(twin(x)[0].data, want)

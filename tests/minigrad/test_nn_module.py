"""Module, Parameter, ModuleList, Sequential and the layers: registration, naming, modes, state dicts."""

from collections import OrderedDict  # the type of PyTorch's state dicts

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.drop = nn.Dropout(0.5)
        self.scale = nn.Parameter(np.ones(4, np.float32))

    def forward(self, x):
        return self.drop(self.fc(x)) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.heads = [nn.Linear(4, 2), nn.Linear(4, 1, bias=False)]
        self.emb = nn.Embedding(5, 3)
        self.register_buffer("count", np.zeros(2, np.int64))
        self.not_a_param = mg.tensor([1.0])

    def forward(self, idx):
        h = self.block(self.emb(idx))
        return self.heads[0](h), self.heads[1](h)


NAMES = ["block.scale", "block.fc.weight", "block.fc.bias", "heads.0.weight", "heads.0.bias",
         "heads.1.weight", "emb.weight"]


def test_registration_and_dotted_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert sorted(names) == sorted(NAMES)
    assert isinstance(net.heads, nn.ModuleList) and len(net.heads) == 2
    assert net.block.fc.weight.name == "weight"  # attribute name on registration
    net.name_parameters()
    assert net.block.fc.weight.name == "block.fc.weight"
    assert net.num_parameters() == 4 + 12 + 4 + 8 + 2 + 4 + 15
    assert [n for n, _ in net.named_buffers()] == ["count"]
    # a plain Tensor attribute is not a parameter; reassigning removes the registration
    assert all(p is not net.not_a_param for p in net.parameters())
    net.block.scale = None
    assert "block.scale" not in dict(net.named_parameters())


def test_shared_parameter_listed_once():
    a = nn.Linear(2, 2)
    seq = nn.Sequential(a, nn.Tanh(), a)
    assert len(list(seq.parameters())) == 2


def test_setattr_before_init_is_clear():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(RuntimeError, match="super"):
        Bad()


def test_forward_backward_zero_grad():
    net = Net()
    out, out1 = net(np.array([[0, 1], [4, 2]]))
    assert out.shape == (2, 2, 2) and out1.shape == (2, 2, 1)
    (out.sum() + out1.sum()).backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_train_eval_recursive_and_dropout_modes():
    net = Net()
    assert net.training and net.block.drop.training
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    x = mg.ones(100, 3)
    y = net.block.drop(x)
    assert y is x  # identity in eval mode
    net.train()
    y = net.block.drop(x)
    assert set(np.unique(y.data)) <= {0.0, 2.0} and 0 < (y.data == 0).sum() < 300


def test_state_dict_round_trip_and_copies():
    a, b = Net(), Net()
    a.count[...] = 7
    sd = a.state_dict()
    assert sorted(sd) == sorted([*NAMES, "count"])
    sd["block.fc.weight"][...] = 0  # a copy: the model is unchanged
    assert not np.all(a.block.fc.weight.data == 0)
    res = b.load_state_dict(a.state_dict())
    assert res.missing_keys == [] and res.unexpected_keys == []
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=n)
    np.testing.assert_array_equal(b.count, [7, 7])
    assert b.count.dtype == np.int64


def test_load_state_dict_errors_name_and_shape_and_change_nothing():
    net = Net()
    before = net.state_dict()
    sd = net.state_dict()
    del sd["emb.weight"]
    sd["extra"] = np.zeros(1)
    with pytest.raises(KeyError, match=r"missing keys \['emb.weight'\].*unexpected keys \['extra'\]"):
        net.load_state_dict(sd)
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["emb.weight"] and res.unexpected_keys == ["extra"]
    sd = {k: v + 1 for k, v in before.items()}
    sd["heads.0.weight"] = np.zeros((3, 4))
    with pytest.raises(mg.ShapeError, match=r"'heads.0.weight' has shape \(3, 4\).*\(2, 4\)"):
        net.load_state_dict(sd)
    for k, v in net.state_dict().items():  # nothing was loaded
        np.testing.assert_array_equal(v, before[k])


def test_load_state_dict_casts_dtype_and_keeps_parameter_identity():
    lin = nn.Linear(2, 2)
    w = lin.weight
    lin.load_state_dict({"weight": np.ones((2, 2), np.float64), "bias": [0.5, 0.5]})
    assert lin.weight is w and w.dtype == np.float32 and np.all(w.data == 1)


def test_to_double_in_place():
    lin = nn.Linear(2, 3)
    w = lin.weight
    lin.double()
    assert lin.weight is w and w.dtype == np.float64 and lin.bias.dtype == np.float64
    assert lin(mg.tensor(np.ones((1, 2)))).dtype == np.float64
    with pytest.raises(TypeError):
        lin.to(np.int32)


def test_repr_is_readable():
    r = repr(Net())
    assert "Linear(in_features=3, out_features=4, bias=True)" in r
    assert "(heads): ModuleList(" in r and "(1): Linear(in_features=4, out_features=1, bias=False)" in r
    assert "Embedding(5, 3)" in r and "Dropout(p=0.5)" in r
    want = "Parameter(name='w', shape=(2, 3), dtype=float64)"
    assert repr(nn.Parameter(np.zeros((2, 3)), name="w")) == want


def test_sequential_and_modulelist_indexing():
    seq = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(seq) == 3 and isinstance(seq[1], nn.ReLU) and isinstance(seq[-1], nn.Linear)
    head = seq[:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2 and head[0] is seq[0]
    x = mg.randn(4, 2)
    np.testing.assert_allclose(seq(x).data, seq[2](seq[1](seq[0](x))).data)
    ml = nn.ModuleList([nn.Identity()])
    ml.append(nn.Tanh()).extend([nn.Sigmoid()])
    ml[0] = nn.ReLU()
    assert [type(m).__name__ for m in ml] == ["ReLU", "Tanh", "Sigmoid"]
    with pytest.raises(TypeError):
        ml.append("not a module")
    with pytest.raises(IndexError):
        ml[5] = nn.ReLU()


def test_named_sequential_keeps_names():
    seq = nn.Sequential({"fc": nn.Linear(2, 3), "act": nn.Tanh(), "out": nn.Linear(3, 1)})
    assert [n for n, _ in seq.named_parameters()] == ["fc.weight", "fc.bias", "out.weight", "out.bias"]
    assert "(fc): Linear(in_features=2" in repr(seq)
    head = seq[1:]
    assert [n for n, _ in head.named_children()] == ["act", "out"]
    seq[1] = nn.ReLU()
    assert isinstance(seq.act, nn.ReLU) and [n for n, _ in seq.named_children()] == ["fc", "act", "out"]
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential({"x": 3})


def test_buffers_apply_register_parameter_and_requires_grad():
    m = nn.Module()
    m.register_buffer("stats", np.zeros(3, np.float32))
    m.register_parameter("w", nn.Parameter(np.ones(2, np.float32)))
    with pytest.raises(TypeError, match="buffer"):
        m.stats = "nope"
    with pytest.raises(ValueError, match="already has"):
        m.register_buffer("w", np.zeros(1))
    with pytest.raises(TypeError, match="Parameter"):
        m.register_parameter("v", np.zeros(1))
    m.stats = np.ones(3, np.float32)  # re-assigning keeps it a buffer
    assert "stats" in m.state_dict() and np.all(m.state_dict()["stats"] == 1)
    m.double()
    assert m.stats.dtype == np.float64 and m.w.dtype == np.float64
    seen = []
    nn.Sequential(nn.Tanh(), m).apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["Tanh", "Module", "Sequential"]  # children first, in order
    m.requires_grad_(False)
    assert not m.w.requires_grad


def test_forward_not_implemented_names_class():
    class NoForward(nn.Module):
        pass

    with pytest.raises(NotImplementedError, match="NoForward"):
        NoForward()(1)


def test_linear_init_bounds_and_shapes_and_seed():
    mg.manual_seed(3)
    lin = nn.Linear(16, 5)
    assert lin.weight.shape == (5, 16) and lin.bias.shape == (5,)
    assert np.abs(lin.weight.data).max() <= 0.25 and np.abs(lin.bias.data).max() <= 0.25
    assert lin.weight.data.std() > 0.1  # roughly U(-1/4, 1/4): std 0.144
    mg.manual_seed(3)
    np.testing.assert_array_equal(nn.Linear(16, 5).weight.data, lin.weight.data)
    a = nn.Linear(4, 4, rng=np.random.default_rng(1))
    b = nn.Linear(4, 4, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    with pytest.raises(mg.ShapeError, match="in_features=16"):
        lin(mg.ones(2, 3))


def test_embedding_padding_idx_and_errors():
    emb = nn.Embedding(4, 2, padding_idx=1)
    assert np.all(emb.weight.data[1] == 0)
    out = emb(np.array([[1, 2], [2, 3]]))
    out.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad, [[0, 0], [0, 0], [2, 2], [1, 1]])
    with pytest.raises(IndexError, match="outside"):
        emb(np.array([4]))
    with pytest.raises(TypeError, match="integer"):
        emb(np.array([0.5]))


def test_dropout_seeded_and_rescaled():
    x = mg.ones(1000, dtype="float64")
    a = nn.Dropout(0.3, rng=np.random.default_rng(0))(x)
    b = nn.Dropout(0.3, rng=np.random.default_rng(0))(x)
    np.testing.assert_array_equal(a.data, b.data)
    kept = a.data != 0
    np.testing.assert_allclose(a.data[kept], 1 / 0.7)
    assert 0.25 < 1 - kept.mean() < 0.35
    assert np.all(F.dropout(x, 1.0).data == 0)
    with pytest.raises(ValueError):
        nn.Dropout(1.5)


# ------------------------------------------------------------------ children listed under a suffix
class _Cellish(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.weight = nn.Parameter(np.full((n,), float(n)))
        self.register_buffer("count", np.zeros(1))
        self.inner = nn.Linear(1, 1, dtype="float64")


def test_register_module_with_suffix_flattens_names():
    m = nn.Module()
    m.register_module("cell_l0", _Cellish(2), suffix="_l0")
    m.register_module("cell_l1", _Cellish(3), suffix="_l1")
    m.head = nn.Linear(2, 1)
    names = [n for n, _ in m.named_parameters()]
    assert names == ["weight_l0", "inner.weight_l0", "inner.bias_l0", "weight_l1", "inner.weight_l1",
                     "inner.bias_l1", "head.weight", "head.bias"]
    assert [n for n, _ in m.named_buffers()] == ["count_l0", "count_l1"]
    assert m.weight_l1 is m.cell_l1.weight and m.count_l0 is m.cell_l0.count
    assert [n for n, _ in m.named_modules()][:2] == ["", "cell_l0"]
    state = m.state_dict()
    state["weight_l1"] = np.array([7.0, 8.0, 9.0])
    state["count_l0"] = np.ones(1)
    m.load_state_dict(state)
    np.testing.assert_array_equal(m.cell_l1.weight.data, [7, 8, 9])
    np.testing.assert_array_equal(m.cell_l0.count, [1])
    outer = nn.Module()
    outer.body = m
    assert [n for n, _ in outer.named_parameters()][:2] == ["body.weight_l0", "body.inner.weight_l0"]
    outer.name_parameters()
    assert m.cell_l1.weight.name == "body.weight_l1"
    m.cell_l0 = _Cellish(2)                                     # reassigned: an ordinary child again
    assert "cell_l0.weight" in m.state_dict()


def test_register_module_suffix_errors():
    m = nn.Module()
    m.weight_l0 = nn.Parameter(np.zeros(1))
    with pytest.raises(ValueError, match=r"already has entries named \['weight_l0'\]"):
        m.register_module("c", _Cellish(1), suffix="_l0")
    assert "c.weight" in m.state_dict()                         # registered, but not flattened
    with pytest.raises(TypeError, match="must be a Module"):
        m.register_module("x", 3)
    with pytest.raises(AttributeError, match="nothing_l0"):
        m.nothing_l0


# ---------------------------------------------------------------------------- to(), cpu()
def test_to_accepts_dtype_device_or_both():
    lin = nn.Linear(2, 3)
    w = lin.weight
    assert lin.to("cpu") is lin and w.dtype == np.float32          # a device alone changes nothing
    assert lin.cpu() is lin
    assert lin.to(mg.float64) is lin and w.dtype == np.float64 and lin.weight is w
    lin.to("cpu", mg.float32)
    assert w.dtype == np.float32
    lin.to(device="cpu", dtype="float64")
    assert w.dtype == np.float64
    lin.to(mg.tensor(np.zeros(1, np.float32)), non_blocking=True)  # to(tensor): its dtype
    assert w.dtype == np.float32
    lin.to("cpu:0", np.float64, False)                             # to(device, dtype, non_blocking)
    assert w.dtype == np.float64 and lin.bias.dtype == np.float64

    class device:                                                  # torch.device("cpu")-like
        type = "cpu"

        def __str__(self):
            return "cpu"

    lin.to(device())
    assert lin(mg.tensor(np.ones((1, 2)))).dtype == np.float64


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "mps", "meta"])
def test_to_another_device_is_a_clear_error(device):
    lin = nn.Linear(2, 3)
    with pytest.raises(ValueError, match=rf"CPU only, got device '{device}'"):
        lin.to(device)
    with pytest.raises(ValueError, match="CPU only"):
        lin.to(device, mg.float64)
    assert lin.weight.dtype == np.float32                          # nothing changed
    with pytest.raises(ValueError, match="CPU only"):
        lin.cuda()
    with pytest.raises(ValueError, match="CPU only"):
        nn.Linear(2, 3, device=device)
    with pytest.raises(ValueError, match="CPU only"):
        nn.Embedding(2, 3, device=device)
    assert nn.Embedding(2, 3, device="cpu").weight.shape == (2, 3)


def test_to_rejects_bad_arguments():
    lin = nn.Linear(2, 3)
    with pytest.raises(TypeError, match="float32 or float64"):
        lin.to(mg.dtypes.resolve("int64"))
    with pytest.raises(TypeError, match="unsupported dtype"):
        lin.to("float16")
    with pytest.raises(TypeError, match="unexpected arguments"):
        lin.to(copy=True)


# ---------------------------------------------------------------------------- tied parameters
class Tied(nn.Module):
    """A language model whose decoder shares the embedding matrix (PyTorch's tie_weights)."""

    def __init__(self):
        super().__init__()
        self.encoder = nn.Embedding(5, 3)
        self.decoder = nn.Linear(3, 5)
        self.decoder.weight = self.encoder.weight


def test_state_dict_lists_a_tied_parameter_under_every_name():
    m = Tied()
    assert [n for n, _ in m.named_parameters()] == ["encoder.weight", "decoder.bias"]   # deduplicated
    assert len(list(m.parameters())) == 2
    sd = m.state_dict()
    assert list(sd) == ["encoder.weight", "decoder.weight", "decoder.bias"]             # as PyTorch
    np.testing.assert_array_equal(sd["decoder.weight"], m.encoder.weight.data)
    assert sd["decoder.weight"] is not m.encoder.weight.data                             # a copy
    kept = m.state_dict(keep_vars=True)
    assert kept["decoder.weight"] is m.encoder.weight
    assert list(m.state_dict(prefix="lm.")) == ["lm.encoder.weight", "lm.decoder.weight", "lm.decoder.bias"]


def test_load_state_dict_tied_under_any_name():
    src, dst = Tied(), Tied()
    dst.load_state_dict(src.state_dict())                   # every name present
    np.testing.assert_array_equal(dst.decoder.weight.data, src.encoder.weight.data)
    assert dst.decoder.weight is dst.encoder.weight         # still tied
    for name in ("encoder.weight", "decoder.weight"):       # one name suffices (older checkpoints)
        sd = src.state_dict()
        del sd[name]
        fresh = Tied()
        assert fresh.load_state_dict(sd) == ([], [])
        np.testing.assert_array_equal(fresh.encoder.weight.data, src.encoder.weight.data)
    sd = src.state_dict()
    sd["decoder.weight"] = sd["decoder.weight"] + 1
    before = dst.encoder.weight.data.copy()
    with pytest.raises(ValueError, match=r"'encoder\.weight' and 'decoder\.weight' name the same"):
        dst.load_state_dict(sd)
    np.testing.assert_array_equal(dst.encoder.weight.data, before)          # nothing changed
    del sd["encoder.weight"], sd["decoder.weight"]
    with pytest.raises(KeyError, match=r"missing keys \['encoder.weight', 'decoder.weight'\]"):
        dst.load_state_dict(sd)


def test_state_dict_tied_through_suffix_children_and_save_round_trip(tmp_path):
    m = nn.Module()
    m.register_module("cell_l0", _Cellish(2), suffix="_l0")
    m.head = nn.Linear(1, 1, dtype="float64")
    m.head.weight = m.cell_l0.inner.weight
    sd = m.state_dict()
    assert "inner.weight_l0" in sd and "head.weight" in sd
    mg.save(sd, tmp_path / "tied.ckpt")
    m2 = nn.Module()
    m2.register_module("cell_l0", _Cellish(2), suffix="_l0")
    m2.head = nn.Linear(1, 1, dtype="float64")
    m2.head.weight = m2.cell_l0.inner.weight
    m2.load_state_dict(mg.load(tmp_path / "tied.ckpt"))
    assert m2.head.weight is m2.cell_l0.inner.weight
    np.testing.assert_array_equal(m2.head.weight.data, m.head.weight.data)


# ---------------------------------------------------------------------------- PyTorch tensors
class FakeTorchTensor:
    """What load_state_dict sees of a torch.Tensor: .numpy() refuses while it requires grad (as
    PyTorch's does), .detach() and .cpu() return tensors."""

    def __init__(self, arr, requires_grad=False, device="cpu"):
        self.arr, self.requires_grad, self.device = np.asarray(arr), requires_grad, device

    def detach(self):
        return FakeTorchTensor(self.arr, False, self.device)

    def cpu(self):
        return FakeTorchTensor(self.arr, self.requires_grad, "cpu")

    def numpy(self):
        if self.requires_grad or self.device != "cpu":
            raise RuntimeError("Can't call numpy() on Tensor that requires grad / is on cuda")
        return self.arr


class ArrayLike:
    def __init__(self, arr):
        self.arr = np.asarray(arr)

    def __array__(self, dtype=None, copy=None):
        return self.arr


def test_load_state_dict_accepts_pytorch_tensors_and_array_likes():
    lin = nn.Linear(2, 2)
    w = np.arange(4.0).reshape(2, 2)
    lin.load_state_dict({"weight": FakeTorchTensor(w, requires_grad=True, device="cuda:0"),
                         "bias": ArrayLike([5.0, 6.0])})
    np.testing.assert_array_equal(lin.weight.data, w)
    np.testing.assert_array_equal(lin.bias.data, [5.0, 6.0])
    assert lin.weight.dtype == np.float32
    lin.load_state_dict(OrderedDict(weight=mg.tensor(w * 2), bias=[0.0, 1.0]))
    np.testing.assert_array_equal(lin.weight.data, w * 2)
    with pytest.raises(mg.ShapeError, match=r"'weight' has shape \(3,\)"):
        lin.load_state_dict({"weight": FakeTorchTensor(np.zeros(3)), "bias": np.zeros(2)})
    with pytest.raises(TypeError, match=r"'bias' is a str.*\.numpy\(\)"):
        lin.load_state_dict({"weight": w, "bias": "zeros"})
    np.testing.assert_array_equal(lin.weight.data, w * 2)        # nothing changed by the failures


def test_zero_grad_set_to_none_or_zeros_and_add_module():
    lin = nn.Linear(2, 2)
    lin(mg.ones(1, 2)).sum().backward()
    g = np.asarray(lin.weight.grad)
    lin.zero_grad(set_to_none=False)                       # zeros, in place (PyTorch's grad.zero_())
    assert lin.weight.grad is not None and np.all(np.asarray(lin.weight.grad) == 0)
    assert np.all(g == 0)
    lin.zero_grad()
    assert lin.weight.grad is None and lin.bias.grad is None
    seq = nn.Module()
    seq.add_module("fc", lin)
    assert seq.fc is lin and [n for n, _ in seq.named_parameters()] == ["fc.weight", "fc.bias"]

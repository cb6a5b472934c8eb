"""Optimisers against hand-computed updates and PyTorch's documented formulas; schedulers; resuming."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad import nn, optim


def scalar_param(v=1.0):
    return nn.Parameter(np.array([v], np.float64))


def run_const_grad(opt_cls, steps, g=2.0, p0=1.0, **kw):
    """Steps with a constant gradient g; returns p after each step."""
    q = scalar_param(p0)
    opt = opt_cls([q], **kw)
    out = []
    for _ in range(steps):
        q.grad = np.array([g])
        opt.step()
        out.append(q.data[0])
    return out


def run_quadratic(opt_cls, steps, p0=1.0, **kw):
    """Steps on L = p^2 (grad 2p); returns p after each step."""
    q = scalar_param(p0)
    opt = opt_cls([q], **kw)
    out = []
    for _ in range(steps):
        q.grad = 2 * q.data.copy()
        opt.step()
        out.append(q.data[0])
    return out


# ---------------------------------------------------------------------------- hand-computed values
def test_sgd_plain_and_weight_decay_by_hand():
    # p <- p - lr * 2p: 1 -> 0.8 -> 0.64
    assert run_quadratic(optim.SGD, 2, lr=0.1) == pytest.approx([0.8, 0.64], abs=1e-15)
    # g = 2 + 0.5 p: p1 = 1 - 0.1 * 2.5 = 0.75; p2 = 0.75 - 0.1 * (2 + 0.375) = 0.5125
    assert run_const_grad(optim.SGD, 2, lr=0.1, weight_decay=0.5) == pytest.approx([0.75, 0.5125], abs=1e-15)


def test_sgd_momentum_by_hand():
    # L = p^2, lr 0.1, mu 0.9. t1: g=2, b=2, p=0.8. t2: g=1.6, b=0.9*2+1.6=3.4, p=0.8-0.34=0.46
    assert run_quadratic(optim.SGD, 2, lr=0.1, momentum=0.9) == pytest.approx([0.8, 0.46], abs=1e-15)
    # dampening 0.5: t1: b=g=2 (no dampening on the first step), p=0.8.
    # t2: g=1.6, b=0.9*2+0.5*1.6=2.6, p=0.8-0.26=0.54
    assert run_quadratic(optim.SGD, 2, lr=0.1, momentum=0.9, dampening=0.5) == pytest.approx(
        [0.8, 0.54], abs=1e-15)


def test_sgd_nesterov_by_hand():
    # t1: g=2, b=2, g'=2+0.9*2=3.8, p=1-0.38=0.62
    # t2: g=1.24, b=1.8+1.24=3.04, g'=1.24+0.9*3.04=3.976, p=0.62-0.3976=0.2224
    assert run_quadratic(optim.SGD, 2, lr=0.1, momentum=0.9, nesterov=True) == pytest.approx(
        [0.62, 0.2224], abs=1e-15)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD([scalar_param()], lr=0.1, nesterov=True)


def test_adam_by_hand():
    # constant g = 2: m_t/(1-b1^t) = 2 and v_t/(1-b2^t) = 4 exactly, so p_t = 1 - t * lr * 2/(2+eps)
    got = run_const_grad(optim.Adam, 3, lr=0.1)
    step = 0.1 * 2 / (2 + 1e-8)
    assert got == pytest.approx([1 - step, 1 - 2 * step, 1 - 3 * step], abs=1e-12)
    # L = p^2 with lr 0.1, eps 0: t1: g=2, m=0.2, v=0.004 -> m^=2, v^=4, p=1-0.1=0.9
    # t2: g=1.8, m=0.18+0.18=0.36, v=0.003996+0.00324=0.007236; m^=0.36/0.19, v^=0.007236/0.001999
    m_hat, v_hat = 0.36 / 0.19, 0.007236 / (1 - 0.999 ** 2)
    assert run_quadratic(optim.Adam, 2, lr=0.1, eps=0.0) == pytest.approx(
        [0.9, 0.9 - 0.1 * m_hat / math.sqrt(v_hat)], abs=1e-12)


def test_adamw_decoupled_decay_by_hand():
    # constant g = 2, lr 0.1, lambda 0.1: p <- p (1 - 0.01), then p <- p - 0.1 * 2/(2+eps)
    step = 0.1 * 2 / (2 + 1e-8)
    p1 = 1 * 0.99 - step
    p2 = p1 * 0.99 - step
    assert run_const_grad(optim.AdamW, 2, lr=0.1, weight_decay=0.1) == pytest.approx([p1, p2], abs=1e-12)
    # Adam's L2 decay differs: g = 2 + 0.1 p enters the moments
    assert run_const_grad(optim.Adam, 1, lr=0.1, weight_decay=0.1)[0] == pytest.approx(
        1 - 0.1 * 2.1 / (2.1 + 1e-8), abs=1e-12)


def test_rmsprop_by_hand():
    # constant g = 2, lr 0.01, alpha 0.99: v1 = 0.01*4 = 0.04, p1 = 1 - 0.01*2/(0.2+eps)
    # v2 = 0.99*0.04 + 0.04 = 0.0796, p2 = p1 - 0.01*2/(sqrt(0.0796)+eps)
    p1 = 1 - 0.01 * 2 / (0.2 + 1e-8)
    p2 = p1 - 0.01 * 2 / (math.sqrt(0.0796) + 1e-8)
    assert run_const_grad(optim.RMSprop, 2, lr=0.01) == pytest.approx([p1, p2], abs=1e-12)
    # centred: g_avg1 = 0.02, v~1 = 0.04 - 0.0004 = 0.0396
    assert run_const_grad(optim.RMSprop, 1, lr=0.01, centered=True)[0] == pytest.approx(
        1 - 0.01 * 2 / (math.sqrt(0.0396) + 1e-8), abs=1e-12)
    # momentum 0.5: b1 = 2/(0.2+eps); b2 = 0.5 b1 + 2/(sqrt(0.0796)+eps)
    b1 = 2 / (0.2 + 1e-8)
    b2 = 0.5 * b1 + 2 / (math.sqrt(0.0796) + 1e-8)
    assert run_const_grad(optim.RMSprop, 2, lr=0.01, momentum=0.5) == pytest.approx(
        [1 - 0.01 * b1, 1 - 0.01 * b1 - 0.01 * b2], abs=1e-12)


def test_adagrad_by_hand():
    # constant g = 2, lr 0.1: s1 = 4, p1 = 1 - 0.1*2/2 = 0.9; s2 = 8, p2 = 0.9 - 0.1*2/sqrt(8)
    assert run_const_grad(optim.Adagrad, 2, lr=0.1) == pytest.approx([0.9, 0.9 - 0.2 / math.sqrt(8)],
                                                                     abs=1e-9)
    # lr_decay 0.5: step 2 uses lr/(1 + 0.5); initial accumulator 1: s1 = 5
    got = run_const_grad(optim.Adagrad, 2, lr=0.1, lr_decay=0.5, initial_accumulator_value=1.0)
    p1 = 1 - 0.1 * 2 / math.sqrt(5)
    assert got == pytest.approx([p1, p1 - 0.1 / 1.5 * 2 / math.sqrt(9)], abs=1e-9)


# ---------------------------------------------------------------------------- formulas, many steps
def reference(kind, p, grads, **h):
    """PyTorch's documented pseudo-code, written out literally on float64 arrays."""
    p = p.copy()
    st = {}
    for t, g in enumerate(grads, 1):
        g = g.copy()
        if kind == "sgd":
            if h.get("weight_decay"):
                g = g + h["weight_decay"] * p
            if h.get("momentum"):
                st["b"] = g.copy() if t == 1 else h["momentum"] * st["b"] + (1 - h.get("dampening", 0)) * g
                g = g + h["momentum"] * st["b"] if h.get("nesterov") else st["b"]
            p = p - h["lr"] * g
        elif kind in ("adam", "adamw"):
            b1, b2 = h.get("betas", (0.9, 0.999))
            lr, eps, wd = h["lr"], h.get("eps", 1e-8), h.get("weight_decay", 0)
            if kind == "adamw":
                p = p - lr * wd * p
            elif wd:
                g = g + wd * p
            st["m"] = b1 * st.get("m", 0) + (1 - b1) * g
            st["v"] = b2 * st.get("v", 0) + (1 - b2) * g * g
            v = st["v"]
            if h.get("amsgrad"):
                st["vmax"] = np.maximum(st.get("vmax", 0), st["v"])
                v = st["vmax"]
            p = p - lr * (st["m"] / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        elif kind == "rmsprop":
            a, lr, eps = h.get("alpha", 0.99), h["lr"], h.get("eps", 1e-8)
            if h.get("weight_decay"):
                g = g + h["weight_decay"] * p
            st["v"] = a * st.get("v", 0) + (1 - a) * g * g
            vt = st["v"]
            if h.get("centered"):
                st["ga"] = a * st.get("ga", 0) + (1 - a) * g
                vt = vt - st["ga"] ** 2
            if h.get("momentum"):
                st["b"] = h["momentum"] * st.get("b", 0) + g / (np.sqrt(vt) + eps)
                p = p - lr * st["b"]
            else:
                p = p - lr * g / (np.sqrt(vt) + eps)
        elif kind == "adagrad":
            clr = h["lr"] / (1 + (t - 1) * h.get("lr_decay", 0))
            if h.get("weight_decay"):
                g = g + h["weight_decay"] * p
            st["s"] = st.get("s", h.get("initial_accumulator_value", 0)) + g * g
            p = p - clr * g / (np.sqrt(st["s"]) + h.get("eps", 1e-10))
    return p


CASES = [
    (optim.SGD, "sgd", {"lr": 0.1}),
    (optim.SGD, "sgd", {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01}),
    (optim.SGD, "sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    (optim.Adam, "adam", {"lr": 0.01}),
    (optim.Adam, "adam", {"lr": 0.02, "betas": (0.8, 0.99), "weight_decay": 0.1, "amsgrad": True}),
    (optim.AdamW, "adamw", {"lr": 0.02, "weight_decay": 0.05}),
    (optim.AdamW, "adamw", {"lr": 0.02, "weight_decay": 0.05, "amsgrad": True}),
    (optim.RMSprop, "rmsprop", {"lr": 0.01}),
    (optim.RMSprop, "rmsprop", {"lr": 0.01, "alpha": 0.9, "centered": True, "momentum": 0.5,
                                "weight_decay": 0.1}),
    (optim.Adagrad, "adagrad", {"lr": 0.1}),
    (optim.Adagrad, "adagrad", {"lr": 0.1, "lr_decay": 0.1, "weight_decay": 0.2,
                                "initial_accumulator_value": 0.5}),
]


@pytest.mark.parametrize("cls, kind, h", CASES)
def test_optimisers_follow_documented_formulas(rng, cls, kind, h):
    p0 = rng.standard_normal((3, 2))
    grads = [rng.standard_normal((3, 2)) for _ in range(6)]
    q = nn.Parameter(p0.copy())
    opt = cls([q], **h)
    for g in grads:
        q.grad = g.copy()
        opt.step()
    np.testing.assert_allclose(q.data, reference(kind, p0, grads, **h), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls, kind, h", CASES[::2])
def test_float32_params_stay_float32(cls, kind, h):
    q = nn.Parameter(np.ones((2, 2), np.float32))
    opt = cls([q], **h)
    q.grad = np.full((2, 2), 0.5, np.float32)
    opt.step()
    assert q.dtype == np.float32
    assert all(v.dtype == np.float32 for v in opt.state_dict()["state"][0].values()
               if isinstance(v, np.ndarray))


# ---------------------------------------------------------------------------- API behaviour
def test_param_groups_skip_none_grads_and_zero_grad():
    a, b = scalar_param(1.0), scalar_param(1.0)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = np.array([1.0]), None
    opt.step()
    assert a.data[0] == pytest.approx(0.9) and b.data[0] == 1.0
    b.grad = np.array([1.0])
    opt.step()
    assert b.data[0] == pytest.approx(0.5)
    opt.zero_grad(set_to_none=False)
    assert a.grad is not None and np.all(a.grad == 0)
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_optimizer_errors_are_clear():
    q = scalar_param()
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(ValueError, match="more than once"):
        optim.Adam([q, q])
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([q], lr=-1)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([q], betas=(0.9, 1.0))
    with pytest.raises(TypeError, match="unknown hyper-parameter"):
        optim.SGD([{"params": [q], "lrr": 0.1}])
    with pytest.raises(TypeError, match="single Tensor"):
        optim.SGD(q)
    with pytest.raises(ValueError, match="does not require grad"):
        optim.SGD([mg.tensor([1.0])])


def test_closure_is_called_with_grad_and_loss_returned():
    q = scalar_param(3.0)
    opt = optim.SGD([q], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (q * q).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 9.0 and q.data[0] == pytest.approx(1.5)


@pytest.mark.parametrize("cls, kind, h", CASES)
def test_resume_from_state_dict_gives_identical_steps(rng, cls, kind, h, tmp_path):
    """Train 3 steps, checkpoint model + optimiser through mg.save/mg.load, then 3 more steps in the
    original and in a fresh copy restored from the checkpoint: bit-identical."""
    mg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    opt = cls(model.parameters(), **h)
    xs = [mg.tensor(rng.standard_normal((5, 3)).astype(np.float32)) for _ in range(6)]

    def step(m, o, x):
        o.zero_grad()
        (m(x) ** 2).mean().backward()
        o.step()

    for x in xs[:3]:
        step(model, opt, x)
    mg.save({"model": model.state_dict(), "optim": opt.state_dict(), "step": 3}, tmp_path / "ck")
    for x in xs[3:]:
        step(model, opt, x)

    ck = mg.load(tmp_path / "ck")
    mg.manual_seed(123)  # different init: everything must come from the checkpoint
    model2 = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    opt2 = cls(model2.parameters(), **{**h, "lr": 123.0})
    model2.load_state_dict(ck["model"])
    opt2.load_state_dict(ck["optim"])
    assert ck["step"] == 3
    for x in xs[3:]:
        step(model2, opt2, x)
    for (n, p1), (_, p2) in zip(model.named_parameters(), model2.named_parameters()):
        np.testing.assert_array_equal(p1.data, p2.data, err_msg=n)


def test_optimizer_state_dict_is_a_copy_and_load_checks_shapes():
    q = nn.Parameter(np.ones(3))
    opt = optim.Adam([q], lr=0.1)
    q.grad = np.ones(3)
    opt.step()
    sd = opt.state_dict()
    assert sd["param_groups"][0]["params"] == [0] and sd["state"][0]["step"] == 1
    sd["state"][0]["exp_avg"][...] = 99
    assert not np.any(opt.state[id(q)]["exp_avg"] == 99)
    other = optim.Adam([nn.Parameter(np.ones(4))])
    with pytest.raises(ValueError, match=r"'exp_avg'.*shape \(3,\).*\(4,\)"):
        other.load_state_dict(sd)
    with pytest.raises(ValueError, match="param groups"):
        optim.Adam([{"params": [nn.Parameter(np.ones(3))]}, {"params": [nn.Parameter(np.ones(3))]}]
                   ).load_state_dict(sd)


# ---------------------------------------------------------------------------- schedulers
def test_step_lr_values():
    opt = optim.SGD([scalar_param()], lr=1.0)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(5):
        opt.step()
        sched.step()
        lrs.append(sched.get_last_lr()[0])
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    assert opt.param_groups[0]["lr"] == 0.25


def test_exponential_lr_values_and_groups():
    a, b = scalar_param(), scalar_param()
    opt = optim.Adam([{"params": [a]}, {"params": [b], "lr": 0.2}], lr=0.1)
    sched = optim.ExponentialLR(opt, gamma=0.9)
    for _ in range(3):
        sched.step()
    assert sched.get_last_lr() == pytest.approx([0.1 * 0.9 ** 3, 0.2 * 0.9 ** 3], rel=1e-15)


def test_scheduler_state_dict_resume():
    opt = optim.SGD([scalar_param()], lr=1.0)
    s = optim.StepLR(opt, step_size=3, gamma=0.1)
    for _ in range(4):
        s.step()
    sd = s.state_dict()
    assert sd["last_epoch"] == 4 and "optimizer" not in sd
    opt2 = optim.SGD([scalar_param()], lr=1.0)
    s2 = optim.StepLR(opt2, step_size=3, gamma=0.1)
    s2.load_state_dict(sd)
    s.step()
    s2.step()
    assert s2.get_last_lr() == s.get_last_lr() == [pytest.approx(0.1)]
    with pytest.raises(ValueError, match="step_size"):
        optim.StepLR(opt, step_size=0)
    with pytest.raises(KeyError, match="initial_lr"):
        optim.ExponentialLR(optim.SGD([scalar_param()], lr=1.0), gamma=0.5, last_epoch=3)

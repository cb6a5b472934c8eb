"""Optimisers with PyTorch's documented update rules: ``SGD``, ``Adam``, ``AdamW``, ``RMSprop``, ``Adagrad``.

Notation (per parameter p with gradient g, step t = 1, 2, ...; lr = learning rate, lambda = weight
decay). Each class's docstring gives its rule; updates are done in place on ``p.data`` in p's dtype.
Parameters whose ``.grad`` is None are skipped (their step count does not advance).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .. import _state
from ..tensor import Tensor

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


class Optimizer:
    """Base class: ``param_groups`` (list of dicts with ``"params"`` and hyper-parameters, defaults
    filled in), per-parameter ``state``, ``zero_grad()``, ``step()``, ``state_dict()``/
    ``load_state_dict()``. Subclasses implement ``_update(p, g, state, group)``."""

    def __init__(self, params: ParamsT, defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}  # id(param) -> state
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or dicts, "
                            "got a single Tensor (wrap it in a list)")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for g in groups:
            self.add_param_group(g)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add parameters with their own hyper-parameters (missing ones take the defaults)."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{type(self).__name__}: a param group must be a dict with a 'params' key")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        name = type(self).__name__
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: can only optimise Tensors/Parameters, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{name}: can't optimise a non-leaf tensor{_pname(p)}")
            if not p.requires_grad:
                raise ValueError(f"{name}: parameter{_pname(p)} does not require grad")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or any(id(p) in seen for p in params):
            raise ValueError(f"{name}: some parameters appear more than once (in one group or in two)")
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise TypeError(f"{name}: unknown hyper-parameter(s) {sorted(unknown)}; "
                            f"known: {sorted(self.defaults)}")
        full = {**self.defaults, **group, "params": params}
        self._check_group(full)
        self.param_groups.append(full)

    def _check_group(self, group: dict[str, Any]) -> None:
        name = type(self).__name__
        numeric = ("lr", "weight_decay", "eps", "momentum", "dampening", "alpha", "lr_decay",
                   "initial_accumulator_value")
        for k in numeric:
            if k in group and not _is_real(group[k]):
                raise TypeError(f"{name}: {k} must be a real number, got {type(group[k]).__name__} "
                                f"{group[k]!r}")
        if not group["lr"] >= 0:
            raise ValueError(f"{name}: invalid learning rate {group['lr']}")
        for k in ("weight_decay", "eps", "momentum", "lr_decay", "initial_accumulator_value"):
            if k in group and not group[k] >= 0:
                raise ValueError(f"{name}: invalid {k} {group[k]} (must be >= 0)")
        if "betas" in group:
            b = group["betas"]
            if (not isinstance(b, (tuple, list)) or len(b) != 2 or not all(_is_real(x) for x in b)
                    or not all(0 <= x < 1 for x in b)):
                raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {b!r}")

    # ------------------------------------------------------------------ stepping
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drop every parameter's gradient (or zero it in place with ``set_to_none=False``)."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad.data[...] = 0

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient. ``closure`` (optional) recomputes and
        returns the loss first (grad mode on); its value is returned."""
        loss = None
        if closure is not None:
            with _state.enable_grad():
                loss = closure()
        with _state.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    g = p.grad
                    if g is None:
                        continue
                    if g.shape != p.shape:
                        raise ValueError(f"{type(self).__name__}.step: gradient of shape {g.shape} for "
                                         f"parameter{_pname(p)} of shape {p.shape}")
                    if not p.data.flags.writeable:
                        p.data = p.data.copy()
                    state = self.state.setdefault(id(p), {})
                    state["step"] = state.get("step", 0) + 1
                    self._update(p.data, np.asarray(g, p.dtype), state, group)
        return loss

    def _update(self, p: np.ndarray, g: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ state
    def _params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {name: array or number}}, "param_groups": [{hyper..., "params":
        [index, ...]}]}`` with parameters numbered in group order (copies; ``mg.save``-able)."""
        index = {id(p): i for i, p in enumerate(self._params())}
        state = {index[pid]: {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                 for pid, s in self.state.items() if pid in index}
        groups = []
        for g in self.param_groups:
            d = {k: copy.deepcopy(v) for k, v in g.items() if k != "params"}
            d["params"] = [index[id(p)] for p in g["params"]]
            groups.append(d)
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyper-parameters and per-parameter state saved by ``state_dict`` (the optimiser
        must hold parameters of the same shapes in the same groups). Checked before anything changes."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError(f"{name}.load_state_dict: expected a dict with keys 'state' and "
                             "'param_groups'")
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{name}.load_state_dict: the state has {len(groups)} param groups, the "
                             f"optimiser {len(self.param_groups)}")
        params = self._params()
        for i, (saved, mine) in enumerate(zip(groups, self.param_groups)):
            if len(saved["params"]) != len(mine["params"]):
                raise ValueError(f"{name}.load_state_dict: group {i} has {len(saved['params'])} "
                                 f"parameters in the state, {len(mine['params'])} in the optimiser")
        new_state: dict[int, dict[str, Any]] = {}
        for k, s in state_dict["state"].items():
            i = int(k)
            if not 0 <= i < len(params):
                raise ValueError(f"{name}.load_state_dict: state for parameter {i}, but the optimiser "
                                 f"has {len(params)}")
            p = params[i]
            entry = {}
            for key, v in s.items():
                if isinstance(v, np.ndarray) and v.ndim:
                    if v.shape != p.shape:
                        raise ValueError(f"{name}.load_state_dict: state '{key}' of parameter {i}"
                                         f"{_pname(p)} has shape {v.shape}, the parameter {p.shape}")
                    v = v.astype(p.dtype, copy=True)
                elif isinstance(v, np.ndarray):
                    v = v.copy()
                entry[key] = v
            new_state[id(p)] = entry
        for saved, mine in zip(groups, self.param_groups):
            for k, v in saved.items():
                if k != "params":
                    mine[k] = tuple(v) if isinstance(v, list) and k == "betas" else copy.deepcopy(v)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"  group {i}: {len(g['params'])} params, "
                         + ", ".join(f"{k}={v}" for k, v in g.items() if k != "params"))
        return "\n".join(lines) + "\n)"


def _is_real(x: Any) -> bool:
    """A real number (int, float, NumPy number or 0-d Tensor), not a bool or a string."""
    if isinstance(x, Tensor):
        return x.ndim == 0 and x.dtype.kind in "fiu"
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _pname(p: Tensor) -> str:
    return f" '{p.name}'" if p.name else ""


def _buf(state: dict[str, Any], key: str, like: np.ndarray, fill: float = 0.0) -> np.ndarray:
    b = state.get(key)
    if b is None:
        b = state[key] = np.full_like(like, fill)
    return b


class SGD(Optimizer):
    """Stochastic gradient descent with momentum mu, dampening tau, Nesterov, weight decay lambda:

        g <- g + lambda p
        b <- g (t = 1),   b <- mu b + (1 - tau) g (t > 1)        (if mu != 0)
        g <- g + mu b (nesterov)  or  g <- b
        p <- p - lr g
    """

    def __init__(self, params: ParamsT, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False) -> None:
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum requires momentum > 0 and dampening = 0")
        super().__init__(params, {"lr": lr, "momentum": momentum, "dampening": dampening,
                                  "weight_decay": weight_decay, "nesterov": nesterov})

    def _update(self, p, g, state, group):
        wd, mu = group["weight_decay"], group["momentum"]
        if wd:
            g = g + wd * p
        if mu:
            b = state.get("momentum_buffer")
            if b is None:
                b = state["momentum_buffer"] = g.copy()
            else:
                b *= mu
                b += (1 - group["dampening"]) * g
            g = g + mu * b if group["nesterov"] else b
        p -= group["lr"] * g


class Adam(Optimizer):
    """Adam (Kingma & Ba) with betas (b1, b2), eps, L2 weight decay lambda, optional AMSGrad:

        g <- g + lambda p
        m <- b1 m + (1 - b1) g;   v <- b2 v + (1 - b2) g^2
        m^ = m / (1 - b1^t);      v^ = v / (1 - b2^t)
        (AMSGrad: v_max <- max(v_max, v),  v^ = v_max / (1 - b2^t))
        p <- p - lr m^ / (sqrt(v^) + eps)
    """

    decoupled = False

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False) -> None:
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps,
                                  "weight_decay": weight_decay, "amsgrad": amsgrad})

    def _check_group(self, group):
        super()._check_group(group)
        b1, b2 = group["betas"]
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {group['betas']}")

    def _update(self, p, g, state, group):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        t = state["step"]
        if wd:
            if self.decoupled:
                p *= 1 - lr * wd
            else:
                g = g + wd * p
        m, v = _buf(state, "exp_avg", p), _buf(state, "exp_avg_sq", p)
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        if group["amsgrad"]:
            vmax = _buf(state, "max_exp_avg_sq", p)
            np.maximum(vmax, v, out=vmax)
            v = vmax
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        p -= lr * m_hat / (np.sqrt(v_hat) + eps)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): first p <- p (1 - lr lambda), then the
    Adam step without weight decay in the gradient. Default lambda = 0.01."""

    decoupled = True

    def __init__(self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


class RMSprop(Optimizer):
    """RMSprop with smoothing alpha, eps, weight decay lambda, momentum mu, optional centring:

        g <- g + lambda p
        v <- alpha v + (1 - alpha) g^2;   v~ = v
        centred: g_avg <- alpha g_avg + (1 - alpha) g;   v~ = v - g_avg^2
        mu > 0: b <- mu b + g / (sqrt(v~) + eps);  p <- p - lr b
        else:   p <- p - lr g / (sqrt(v~) + eps)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False) -> None:
        if not _is_real(alpha):
            raise TypeError(f"RMSprop: alpha must be a real number, got {type(alpha).__name__} {alpha!r}")
        if not 0 <= alpha <= 1:
            raise ValueError(f"RMSprop: alpha must be in [0, 1], got {alpha}")
        super().__init__(params, {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                                  "momentum": momentum, "centered": centered})

    def _update(self, p, g, state, group):
        lr, a, eps = group["lr"], group["alpha"], group["eps"]
        wd, mu = group["weight_decay"], group["momentum"]
        if wd:
            g = g + wd * p
        v = _buf(state, "square_avg", p)
        v *= a
        v += (1 - a) * (g * g)
        vt = v
        if group["centered"]:
            ga = _buf(state, "grad_avg", p)
            ga *= a
            ga += (1 - a) * g
            vt = v - ga * ga
        denom = np.sqrt(vt) + eps
        if mu > 0:
            b = _buf(state, "momentum_buffer", p)
            b *= mu
            b += g / denom
            p -= lr * b
        else:
            p -= lr * g / denom


class Adagrad(Optimizer):
    """Adagrad (min-char-rnn's optimiser) with learning-rate decay eta, weight decay lambda:

        lr_t = lr / (1 + (t - 1) eta)
        g <- g + lambda p
        s <- s + g^2          (s starts at initial_accumulator_value)
        p <- p - lr_t g / (sqrt(s) + eps)
    """

    def __init__(self, params: ParamsT, lr: float = 1e-2, lr_decay: float = 0.0, weight_decay: float = 0.0,
                 initial_accumulator_value: float = 0.0, eps: float = 1e-10) -> None:
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value, "eps": eps})

    def _update(self, p, g, state, group):
        t, wd = state["step"], group["weight_decay"]
        clr = group["lr"] / (1 + (t - 1) * group["lr_decay"])
        if wd:
            g = g + wd * p
        s = _buf(state, "sum", p, group["initial_accumulator_value"])
        s += g * g
        p -= clr * g / (np.sqrt(s) + group["eps"])


__all__ = ["SGD", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop"]

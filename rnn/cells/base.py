"""What the built-in cells share: PyTorch's parameters (``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H),
``bias_ih``, ``bias_hh`` (G*H,)), its default init U(-1/sqrt(H), 1/sqrt(H)), the hoisted input
projection ``x W_ih^T + b`` and the single-step call of ``torch.nn.RNNCell`` / ``GRUCell`` / ``LSTMCell``.

A step is composed from primitive ops (sigmoid, tanh, mul, add, ... one graph node each), so the graph
reads like the equations. Speed comes from compiling it: a layer runs the whole recurrence as code
generated from these ops (``minigrad.compile_scan``); no cell has a hand-written kernel.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import minigrad as mg
from minigrad import Tensor
from minigrad.dtypes import resolve as resolve_dtype
from minigrad.nn import Parameter

from ..cell import Cell, as_tensor_of, uniform_init

__all__ = ["TorchCell", "float_dtype", "is_zero_state"]


def float_dtype(owner: str, dtype: Any) -> np.dtype:
    """``dtype`` resolved, or a ``TypeError`` unless it is float32 or float64."""
    dt = resolve_dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"{owner}: dtype must be float32 or float64, got {dt}")
    return dt


def is_zero_state(h: Tensor) -> bool:
    """A constant zero state (no graph, no gradient wanted): its recurrent product can be skipped
    (never while ``minigrad.compile`` traces the step: the trace must hold for every state)."""
    return not mg.is_tracing() and h.node is None and not h.requires_grad and not h.data.any()


class TorchCell(Cell):
    """A built-in cell with PyTorch's parameters, init and single-step call ``cell(x, hx=None)``."""

    n_gates: int = 1
    #: whether b_hh is added once to the hoisted projection (RNN, LSTM) or at every step (GRU: b_hn is
    #: multiplied by the reset gate)
    fold_hh_bias: bool = True
    #: tensors in the state: (h,), LSTM (h, c)
    state_count: int = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, *,
                 rng: np.random.Generator | None = None, dtype: Any = np.float32) -> None:
        super().__init__(input_size, hidden_size)
        self.bias = bool(bias)
        self.reset_parameters(rng, float_dtype(type(self).__name__, dtype))

    @property
    def dtype(self) -> np.dtype:
        """The parameters' dtype (follows ``.to()`` / ``.double()``)."""
        return self.weight_ih.dtype

    def reset_parameters(self, rng: np.random.Generator | None = None, dtype: Any = None) -> None:
        """Draw every parameter from U(-1/sqrt(H), 1/sqrt(H)) in PyTorch's order (weight_ih,
        weight_hh, bias_ih, bias_hh); existing parameters keep their identity and name."""
        rng = mg.default_rng() if rng is None else rng
        dt = self.dtype if dtype is None else resolve_dtype(dtype)
        gh, h = self.n_gates * self.hidden_size, self.hidden_size
        shapes = {"weight_ih": (gh, self.input_size), "weight_hh": (gh, h)}
        if self.bias:
            shapes.update(bias_ih=(gh,), bias_hh=(gh,))
        for name, shape in shapes.items():
            new = uniform_init(shape, h, rng, dt)
            old = self.__dict__.get(name)
            if isinstance(old, Parameter):
                old.data, old.grad = new.data, None
            else:
                setattr(self, name, new)
        if not self.bias:
            self.bias_ih = self.bias_hh = None

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        return s

    def init_state(self, batch: int, dtype: Any = None) -> tuple[Tensor, ...]:
        dt = self.dtype if dtype is None else dtype
        return tuple(mg.zeros((batch, self.hidden_size), dtype=dt) for _ in range(self.state_count))

    # -- the hoisted projection ----------------------------------------------------------------------
    def project(self, xs: Tensor) -> Tensor:
        """``xs W_ih^T + b_ih`` (+ ``b_hh`` when it is folded in) for all rows at once."""
        gx = xs @ self.weight_ih.T
        if self.bias_ih is None:
            return gx
        return gx + (self.bias_ih + self.bias_hh if self.fold_hh_bias else self.bias_ih)

    # -- PyTorch's single-step call ------------------------------------------------------------------
    def _as_tensor(self, v: Any, what: str) -> Tensor:
        return as_tensor_of(type(self).__name__, v, self.dtype, what)

    def _input(self, x: Any) -> tuple[Tensor, bool]:
        """(x as (B, I), whether it was unbatched (I,))."""
        x = self._as_tensor(x, "input")
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise mg.ShapeError(f"{type(self).__name__}: input must be (B, {self.input_size}) or "
                                f"({self.input_size},), got {x.shape} [{x.dtype}]")
        return (x.unsqueeze(0), True) if x.ndim == 1 else (x, False)

    def _state_arg(self, s: Any, batch: int, unbatched: bool, what: str) -> Tensor:
        if s is None:
            return Tensor(np.zeros((batch, self.hidden_size), self.dtype))
        s = self._as_tensor(s, what)
        want = (self.hidden_size,) if unbatched else (batch, self.hidden_size)
        if s.shape != want:
            raise mg.ShapeError(f"{type(self).__name__}: {what} must have shape {want} for input of batch "
                                f"{'(unbatched)' if unbatched else batch}, got {s.shape} [{s.dtype}]")
        return s.unsqueeze(0) if unbatched else s

    def _call(self, x: Any, states: tuple[Any, ...], names: tuple[str, ...]) -> tuple[Tensor, ...]:
        """One step through ``project`` and ``step``, with PyTorch's input handling."""
        x, unbatched = self._input(x)
        state = tuple(self._state_arg(s, x.shape[0], unbatched, n) for s, n in zip(states, names))
        new = self.step(self.project(x), state)
        return tuple(s.squeeze(0) for s in new) if unbatched else new

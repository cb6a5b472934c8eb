"""Recurrent cells: ``RNNCell``, ``GRUCell`` and ``LSTMCell`` with PyTorch's equations, gate order,
parameter names/shapes and default initialisation, written from minigrad ops.

With ``x`` the input (B, I), ``h`` the previous hidden state (B, H) and ``W x`` meaning ``x @ W^T``:

    RNNCell   h' = tanh(W_ih x + b_ih + W_hh h + b_hh)             (or relu)
    GRUCell   r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
              z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
              n  = tanh(W_in x + b_in + r * (W_hn h + b_hn))
              h' = (1 - z) * n + z * h
    LSTMCell  i, f, g, o = split(W_ih x + b_ih + W_hh h + b_hh)    (gate order i, f, g, o)
              i, f, o = sigmoid(i), sigmoid(f), sigmoid(o);  g = tanh(g)
              c' = f * c + i * g
              h' = o * tanh(c')

``weight_ih`` is (G*H, I) and ``weight_hh`` (G*H, H) with G = 1, 3, 4 gates stacked in that order;
``bias_ih`` / ``bias_hh`` are (G*H,). Every parameter starts as U(-1/sqrt(H), 1/sqrt(H)).

There is no backward pass here: gradients (and backpropagation through time, when a cell is applied
in a loop) come from the engine differentiating the graph these ops record.

The pointwise part of a step is either composed from primitive ops (``fused=False``: sigmoid, tanh,
mul, add, ... one graph node each, the graph reads like the equations) or one fused op per step
(``fused=True``: ``minigrad.ops.fused.lstm_cell`` / ``gru_cell`` / ``rnn_cell``, Numba forward and
backward). Both give the same values and gradients. The ``*_step`` functions below are shared with
the layers in ``rnn.layers``, which hoist the input projection ``W_ih x + b_ih`` out of the time loop.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import minigrad as mg
from minigrad import Tensor
from minigrad.dtypes import resolve as _resolve_dtype
from minigrad.nn import Module, Parameter

try:  # the fused cell ops (perf helper); until that module exists, fused=True runs the primitive graph
    from minigrad.ops.fused import gru_cell as _gru_cell
    from minigrad.ops.fused import lstm_cell as _lstm_cell
    from minigrad.ops.fused import rnn_cell as _rnn_cell

    HAS_FUSED = True
except ModuleNotFoundError as _exc:  # only "the file is not there"; any other import error surfaces
    if _exc.name != "minigrad.ops.fused":
        raise
    HAS_FUSED = False

NONLINEARITIES = ("tanh", "relu")

__all__ = [
    "HAS_FUSED", "GRUCell", "LSTMCell", "RNNCell", "gru_step", "lstm_step", "rnn_step", "uniform_init",
]


# --------------------------------------------------------------------------- initialisation
def uniform_init(shape: tuple[int, ...], hidden_size: int, rng: np.random.Generator | None = None,
                 dtype: Any = np.float32) -> Parameter:
    """A parameter drawn from PyTorch's recurrent default U(-1/sqrt(H), 1/sqrt(H))."""
    rng = mg.default_rng() if rng is None else rng
    k = 1.0 / math.sqrt(hidden_size)
    return Parameter(rng.uniform(-k, k, size=shape).astype(_resolve_dtype(dtype)))


# --------------------------------------------------------------------------- one step, pointwise part
def rnn_step(gx: Tensor, h: Tensor | None, w_hh_t: Tensor, b_hh: Tensor | None,
             nonlinearity: str = "tanh", fused: bool = True) -> Tensor:
    """h' = act(gx + h W_hh^T + b_hh), where ``gx = x W_ih^T + b_ih`` was computed by the caller.

    ``w_hh_t`` is W_hh^T (H, H) (transposed once per sequence, not per step); ``b_hh`` may be None (no
    bias, or already folded into ``gx``); ``h`` None means the zero state (the product is skipped).
    """
    if fused and HAS_FUSED and h is not None and h.ndim == 2:
        # one node per step: the recurrent product is folded into the fused op
        return _rnn_cell(gx if b_hh is None else gx + b_hh, nonlinearity=nonlinearity, h_prev=h,
                         w_hh_t=w_hh_t)
    pre = gx if h is None else gx + h @ w_hh_t
    if b_hh is not None:
        pre = pre + b_hh
    if fused and HAS_FUSED:
        return _rnn_cell(pre, nonlinearity=nonlinearity)
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


def gru_step(gx: Tensor, h: Tensor, w_hh_t: Tensor, b_hh: Tensor | None, fused: bool = True) -> Tensor:
    """One GRU step from ``gx = x W_ih^T + b_ih`` (B, 3H) and the previous state ``h`` (B, H).

    ``gh = h W_hh^T + b_hh`` keeps b_hn apart from b_in because n = tanh(gx_n + r * (W_hn h + b_hn)).
    """
    if fused and HAS_FUSED and h.ndim == 2:
        # one node per step: gh = h W_hh^T + b_hh is computed inside the fused op
        return _gru_cell(gx, None, h, w_hh_t=w_hh_t, b_hh=b_hh)
    gh = h @ w_hh_t
    if b_hh is not None:
        gh = gh + b_hh
    if fused and HAS_FUSED:
        return _gru_cell(gx, gh, h)
    x_r, x_z, x_n = gx.chunk(3, axis=-1)
    h_r, h_z, h_n = gh.chunk(3, axis=-1)
    r = (x_r + h_r).sigmoid()
    z = (x_z + h_z).sigmoid()
    n = (x_n + r * h_n).tanh()
    return (1 - z) * n + z * h


def lstm_step(gx: Tensor, h: Tensor | None, c: Tensor, w_hh_t: Tensor, b_hh: Tensor | None,
              fused: bool = True) -> tuple[Tensor, Tensor]:
    """One LSTM step from ``gx = x W_ih^T + b_ih`` (B, 4H) and the previous state (h, c).

    ``h`` None means the zero state (the recurrent product is skipped); ``b_hh`` None means no bias or
    a bias already folded into ``gx``.
    """
    if fused and HAS_FUSED and h is not None and h.ndim == 2:
        # one node per step: the recurrent product is folded into the fused op
        return _lstm_cell(gx if b_hh is None else gx + b_hh, c, h_prev=h, w_hh_t=w_hh_t)
    gates = gx if h is None else gx + h @ w_hh_t
    if b_hh is not None:
        gates = gates + b_hh
    if fused and HAS_FUSED:
        return _lstm_cell(gates, c)
    i, f, g, o = gates.chunk(4, axis=-1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    c = f * c + i * g
    h = o * c.tanh()
    return h, c


# --------------------------------------------------------------------------- cells
class _CellBase(Module):
    """Parameters, shapes and input checks shared by the three cells."""

    n_gates: int = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, fused: bool = True,
                 rng: np.random.Generator | None = None, dtype: Any = np.float32) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, v in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{name}: {arg} must be a positive int, got {v!r}")
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.bias = bool(bias)
        self.fused = bool(fused)
        dt = _resolve_dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"{name}: dtype must be float32 or float64, got {dt}")
        self.reset_parameters(rng, dt)

    @property
    def dtype(self) -> np.dtype:
        """The parameters' dtype (follows ``.to()`` / ``.double()``)."""
        return self.weight_ih.dtype

    def reset_parameters(self, rng: np.random.Generator | None = None, dtype: Any = None) -> None:
        """Draw every parameter from U(-1/sqrt(H), 1/sqrt(H)) (PyTorch's default)."""
        rng = mg.default_rng() if rng is None else rng
        dt = self.dtype if dtype is None else _resolve_dtype(dtype)
        gh, h = self.n_gates * self.hidden_size, self.hidden_size
        self.weight_ih = uniform_init((gh, self.input_size), h, rng, dt)
        self.weight_hh = uniform_init((gh, h), h, rng, dt)
        self.bias_ih = uniform_init((gh,), h, rng, dt) if self.bias else None
        self.bias_hh = uniform_init((gh,), h, rng, dt) if self.bias else None

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        return s + ("" if self.fused else ", fused=False")

    # -- input handling --------------------------------------------------------------------
    def _as_tensor(self, v: Any, what: str) -> Tensor:
        name = type(self).__name__
        if not isinstance(v, Tensor):
            v = Tensor(np.asarray(v, dtype=self.dtype))
        if v.dtype != self.dtype:
            raise TypeError(f"{name}: {what} has dtype {v.dtype} but the parameters are {self.dtype} "
                            f"(shape {v.shape}); cast with .astype({str(self.dtype)!r})")
        return v

    def _input(self, x: Any) -> tuple[Tensor, bool]:
        """(x as (B, I), whether it was unbatched (I,))."""
        x = self._as_tensor(x, "input")
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise mg.ShapeError(f"{type(self).__name__}: input must be (B, {self.input_size}) or "
                                f"({self.input_size},), got {x.shape} [{x.dtype}]")
        return (x.unsqueeze(0), True) if x.ndim == 1 else (x, False)

    def _state(self, s: Any, batch: int, unbatched: bool, what: str) -> Tensor:
        if s is None:
            return Tensor(np.zeros((batch, self.hidden_size), self.dtype))
        s = self._as_tensor(s, what)
        want = (self.hidden_size,) if unbatched else (batch, self.hidden_size)
        if s.shape != want:
            raise mg.ShapeError(f"{type(self).__name__}: {what} must have shape {want} for input of batch "
                                f"{'(unbatched)' if unbatched else batch}, got {s.shape} [{s.dtype}]")
        return s.unsqueeze(0) if unbatched else s

    def _proj(self, x: Tensor) -> Tensor:
        """W_ih x + b_ih for one step."""
        gx = x @ self.weight_ih.T
        return gx + self.bias_ih if self.bias_ih is not None else gx


class RNNCell(_CellBase):
    """Elman cell ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (``nonlinearity="relu"``: relu).

    ``cell(x, h=None) -> h'`` with x (B, I) or unbatched (I,), h (B, H) / (H,), zeros when omitted.
    """

    n_gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 fused: bool = True, rng: np.random.Generator | None = None, dtype: Any = np.float32) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, fused, rng, dtype)
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.nonlinearity == "tanh" else ", nonlinearity='relu'")

    def forward(self, x: Any, hx: Any = None) -> Tensor:
        x, unbatched = self._input(x)
        h = self._state(hx, x.shape[0], unbatched, "hx")
        h = rnn_step(self._proj(x), h, self.weight_hh.T, self.bias_hh, self.nonlinearity, self.fused)
        return h.squeeze(0) if unbatched else h


class GRUCell(_CellBase):
    """Gated recurrent unit (PyTorch's equations, gates r, z, n):

        r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
        n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),  h' = (1 - z) * n + z * h

    ``cell(x, h=None) -> h'``.
    """

    n_gates = 3

    def forward(self, x: Any, hx: Any = None) -> Tensor:
        x, unbatched = self._input(x)
        h = self._state(hx, x.shape[0], unbatched, "hx")
        h = gru_step(self._proj(x), h, self.weight_hh.T, self.bias_hh, self.fused)
        return h.squeeze(0) if unbatched else h


class LSTMCell(_CellBase):
    """Long short-term memory (PyTorch's equations, gates i, f, g, o):

        i = sigmoid(.), f = sigmoid(.), g = tanh(.), o = sigmoid(.)   of W_ih x + b_ih + W_hh h + b_hh
        c' = f * c + i * g,   h' = o * tanh(c')

    ``cell(x, (h, c)=None) -> (h', c')``.
    """

    n_gates = 4

    def forward(self, x: Any, hx: tuple[Any, Any] | None = None) -> tuple[Tensor, Tensor]:
        x, unbatched = self._input(x)
        if hx is None:
            hx = (None, None)
        elif not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"LSTMCell: hx must be a tuple (h, c), got {type(hx).__name__}")
        b = x.shape[0]
        h = self._state(hx[0], b, unbatched, "h")
        c = self._state(hx[1], b, unbatched, "c")
        h, c = lstm_step(self._proj(x), h, c, self.weight_hh.T, self.bias_hh, self.fused)
        return (h.squeeze(0), c.squeeze(0)) if unbatched else (h, c)

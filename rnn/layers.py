"""Recurrent layers ``RNN``, ``GRU`` and ``LSTM``: PyTorch's constructor, shapes, parameter names and
equations, unrolled over time from minigrad ops, so that backpropagation through time is just
``loss.backward()`` on the unrolled graph:

    dL/dW_hh = sum_t dL/dh_t * dh_t/dW_hh|_local      (the engine sums the contributions of the
                                                       weight shared by every step)

Shapes (T time steps, B batch, I input, H hidden, D = 2 if bidirectional else 1, L = num_layers):

    input  (T, B, I)  or (B, T, I) with batch_first=True, or unbatched (T, I)
    hx     (D*L, B, H) (unbatched (D*L, H)), zeros when omitted;  LSTM: a tuple (h0, c0)
    output (T, B, D*H) (batch-first / unbatched likewise) = last layer's h_t, directions concatenated
    h_n    (D*L, B, H): the final state of every layer and direction; LSTM also c_n

Per layer and direction the graph is built for speed (see DESIGN.md): the input projection of all T
steps is ONE matrix product ``X W_ih^T + b`` of shape (T*B, G*H); it is cut into steps by ONE
multi-output ``split``; each step only adds ``h W_hh^T`` and runs the cell's pointwise part (a single
fused node by default); the outputs are joined by ONE ``stack``. Backward is linear in T.

Scopes (drawings rely on them): ``mg.scope("LSTM")`` > ``mg.scope("layer0")`` or
``mg.scope("layer0_reverse")`` > ``mg.scope("t=3")``. The projection and the stacking of a direction
live in its ``layer{l}[_reverse]`` scope; joining the directions, dropout, and the initial/final
state bookkeeping live in the layer-name scope.

Variable-length batches: ``lengths`` (one int per batch element, any order). Step t of sequence b is
real when t < lengths[b]. At padded steps the state is held (``h_t = where(mask, h_new, h_{t-1})``)
and the output is 0, so padding changes neither the final state nor any gradient, and the reverse
direction of sequence b starts at its own last step (as with PyTorch's packed sequences).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

import minigrad as mg
from minigrad import Tensor, _state
from minigrad.dtypes import resolve as _resolve_dtype
from minigrad.nn import Module

from .cells import NONLINEARITIES, gru_step, lstm_step, rnn_step, uniform_init

__all__ = ["GRU", "LSTM", "RNN", "RNNBase"]

State = Tensor | tuple[Tensor, Tensor]


class RNNBase(Module):
    """Shared machinery of ``RNN``, ``GRU`` and ``LSTM`` (see the module docstring)."""

    mode: str = "RNN"
    n_gates: int = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 fused: bool = True, *, rng: np.random.Generator | None = None,
                 dtype: Any = np.float32) -> None:
        super().__init__()
        name = type(self).__name__
        for arg, v in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
                raise ValueError(f"{name}: {arg} must be a positive int, got {v!r}")
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError(f"{name}: dropout must be a number in [0, 1], got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"{name}: dropout={dropout} acts between layers, so it has no effect with "
                          "num_layers=1", UserWarning, stacklevel=2)
        self.input_size = int(input_size)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        self.fused = bool(fused)
        dt = _resolve_dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"{name}: dtype must be float32 or float64, got {dt}")
        #: generator for dropout masks (None: minigrad's global one, reseeded by ``mg.manual_seed``)
        self.rng = rng
        #: set by ``rnn.diagnostics.record_hiddens`` to keep every step's hidden state
        self._recorder: Any = None
        self.reset_parameters(rng, dt)

    @property
    def dtype(self) -> np.dtype:
        """The parameters' dtype (follows ``.to()`` / ``.double()``)."""
        return self.weight_ih_l0.dtype

    # ------------------------------------------------------------------ parameters
    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _param_names(self, layer: int, direction: int) -> tuple[str, str, str, str]:
        sfx = f"_l{layer}" + ("_reverse" if direction else "")
        return (f"weight_ih{sfx}", f"weight_hh{sfx}", f"bias_ih{sfx}", f"bias_hh{sfx}")

    def reset_parameters(self, rng: np.random.Generator | None = None, dtype: Any = None) -> None:
        """(Re)create every parameter from U(-1/sqrt(H), 1/sqrt(H)), in PyTorch's order:
        ``weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, weight_ih_l0_reverse, ...``."""
        rng = mg.default_rng() if rng is None else rng
        dt = self.dtype if dtype is None else _resolve_dtype(dtype)
        h, gh = self.hidden_size, self.n_gates * self.hidden_size
        for layer in range(self.num_layers):
            in_size = self.input_size if layer == 0 else h * self.num_directions
            for d in range(self.num_directions):
                w_ih, w_hh, b_ih, b_hh = self._param_names(layer, d)
                setattr(self, w_ih, uniform_init((gh, in_size), h, rng, dt))
                setattr(self, w_hh, uniform_init((gh, h), h, rng, dt))
                if self.bias:
                    setattr(self, b_ih, uniform_init((gh,), h, rng, dt))
                    setattr(self, b_hh, uniform_init((gh,), h, rng, dt))

    def weights(self, layer: int, direction: int = 0) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        """(weight_ih, weight_hh, bias_ih, bias_hh) of one layer and direction (biases None if bias=False)."""
        names = self._param_names(layer, direction)
        return (getattr(self, names[0]), getattr(self, names[1]),
                getattr(self, names[2], None), getattr(self, names[3], None))

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for k, default in (("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                           ("bidirectional", False), ("fused", True)):
            if getattr(self, k) != default:
                s += f", {k}={getattr(self, k)}"
        return s

    # ------------------------------------------------------------------ input checks
    def _fail(self, msg: str) -> mg.ShapeError:
        return mg.ShapeError(f"{type(self).__name__}: {msg}")

    def _tensor(self, v: Any, what: str) -> Tensor:
        if not isinstance(v, Tensor):
            v = Tensor(np.asarray(v, dtype=self.dtype))
        if v.dtype != self.dtype:
            raise TypeError(f"{type(self).__name__}: {what} has dtype {v.dtype} (shape {v.shape}) but the "
                            f"parameters are {self.dtype}; cast with .astype({str(self.dtype)!r})")
        return v

    def _check_state(self, s: Any, batch: int, unbatched: bool, what: str) -> Tensor:
        s = self._tensor(s, what)
        n = self.num_layers * self.num_directions
        want = (n, self.hidden_size) if unbatched else (n, batch, self.hidden_size)
        if s.shape != want:
            raise self._fail(f"{what} must have shape {want} (num_layers*num_directions, "
                             f"{'' if unbatched else 'batch, '}hidden_size), got {s.shape} [{s.dtype}]")
        return s.unsqueeze(1) if unbatched else s

    def _lengths(self, lengths: Any, seq_len: int, batch: int, unbatched: bool) -> np.ndarray | None:
        """lengths as an int array (B,), or None when no step is padded."""
        if lengths is None:
            return None
        arr = np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
        if unbatched and arr.ndim == 0:
            arr = arr.reshape(1)
        if arr.ndim != 1 or arr.shape[0] != batch or arr.dtype.kind not in "iu":
            raise ValueError(f"{type(self).__name__}: lengths must be {batch} integers (one per batch "
                             f"element), got {arr.shape} [{arr.dtype}]")
        if arr.min() < 0 or arr.max() > seq_len:
            raise ValueError(f"{type(self).__name__}: lengths must lie in [0, {seq_len}] (the padded "
                             f"sequence length), got min {arr.min()} max {arr.max()}")
        return None if (arr == seq_len).all() else arr.astype(np.int64)

    # ------------------------------------------------------------------ forward
    def forward(self, x: Any, hx: Any = None, lengths: Any = None, *, t0: int = 0) -> tuple[Tensor, Any]:
        """Run the layer over a sequence; returns ``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``).

        ``lengths``: true length of each batch element (padded steps hold the state, output 0).
        ``t0``: time index of the first step in the ``t=...`` scopes (to number the steps of a long
        sequence fed in pieces, e.g. by truncated BPTT or step-by-step generation).
        """
        name = type(self).__name__
        x = self._tensor(x, "input")
        if x.ndim not in (2, 3):
            raise self._fail(f"input must be 3-D (seq, batch, feature) / (batch, seq, feature) or 2-D "
                             f"unbatched (seq, feature), got {x.shape} [{x.dtype}]")
        if x.shape[-1] != self.input_size:
            raise self._fail(f"input has {x.shape[-1]} features (shape {x.shape}) but input_size is "
                             f"{self.input_size}")
        unbatched = x.ndim == 2
        if unbatched:
            seq_len, batch = x.shape[0], 1
        elif self.batch_first:
            batch, seq_len = x.shape[:2]
        else:
            seq_len, batch = x.shape[:2]
        if seq_len == 0:
            raise self._fail(f"input has no time steps (shape {x.shape})")
        mask = self._lengths(lengths, seq_len, batch, unbatched)
        states = self._initial(hx, batch, unbatched)
        with mg.scope(name):
            if unbatched:
                x = x.unsqueeze(1)
            elif self.batch_first:
                x = x.transpose(0, 1)
            h0s = None if states is None else [s.unbind(0) for s in states]
            finals: list[list[Tensor]] = []
            out = x
            for layer in range(self.num_layers):
                outs = []
                for d in range(self.num_directions):
                    k = layer * self.num_directions + d
                    init = None if h0s is None else tuple(s[k] for s in h0s)
                    with mg.scope(f"layer{layer}" + ("_reverse" if d else "")):
                        o, fin = self._direction(out, layer, d, init, mask, t0)
                    outs.append(o)
                    finals.append(fin)
                out = outs[0] if len(outs) == 1 else mg.concatenate(outs, axis=2)
                if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                    out = self._dropout(out)
            n_state = len(finals[0])
            h_n = [mg.stack([f[i] for f in finals], axis=0) for i in range(n_state)]
            if unbatched:
                out = out.squeeze(1)
                h_n = [s.squeeze(1) for s in h_n]
            elif self.batch_first:
                out = out.transpose(0, 1)
        return out, (h_n[0] if n_state == 1 else tuple(h_n))

    def _initial(self, hx: Any, batch: int, unbatched: bool) -> list[Tensor] | None:
        if hx is None:
            return None
        if isinstance(hx, (tuple, list)):
            raise TypeError(f"{type(self).__name__}: hx must be one tensor h0 of shape (num_layers*"
                            f"num_directions, batch, hidden_size), got a {type(hx).__name__} (an LSTM's "
                            "(h0, c0) state?)")
        return [self._check_state(hx, batch, unbatched, "hx")]

    def _dropout(self, out: Tensor) -> Tensor:
        """Inverted dropout between layers: zero with probability p, scale the rest by 1/(1-p)."""
        rng = mg.default_rng() if self.rng is None else self.rng
        p = self.dropout
        keep = rng.random(out.shape) >= p
        scale = 0.0 if p >= 1 else 1.0 / (1.0 - p)
        return out * Tensor((keep * scale).astype(self.dtype))

    def _direction(self, x: Tensor, layer: int, direction: int, init: tuple[Tensor, ...] | None,
                   mask: np.ndarray | None, t0: int) -> tuple[Tensor, list[Tensor]]:
        """One layer and direction over x (T, B, F): returns (outputs (T, B, H), final state list)."""
        seq_len, batch, feat = x.shape
        w_ih, w_hh, b_ih, b_hh = self.weights(layer, direction)
        # hoisted input projection of all steps: one (T*B, F) x (F, G*H) product, one split into steps
        bias_in, bias_step = self._biases(b_ih, b_hh)
        gx = x.reshape(seq_len * batch, feat) @ w_ih.T
        if bias_in is not None:
            gx = gx + bias_in
        gxs = gx.split(seq_len, axis=0) if seq_len > 1 else (gx,)
        w_hh_t = w_hh.T
        state = self._zero_state(batch) if init is None else list(init)
        zero = init is None  # the state is the constant zero (the first recurrent product is skipped)
        rec = self._recorder
        steps = range(seq_len - 1, -1, -1) if direction else range(seq_len)
        outs: list[Tensor | None] = [None] * seq_len
        # Each step runs in scope base + ("t=<t>",), exactly what `with mg.scope(f"t={t}")` records,
        # set directly: the context manager's overhead is comparable to an op's, paid T times.
        # The loop records O(T) graph objects and no reference cycles, so the cyclic GC is paused
        # meanwhile: its full passes over the growing graph would cost more than the recording itself.
        base = _state.scope
        with mg.pause_gc():
            try:
                for t in steps:
                    _state.scope = (*base, f"t={t + t0}")
                    new = self._cell(gxs[t], state, w_hh_t, bias_step, zero)
                    if mask is None:
                        state = new
                        outs[t] = new[0]
                    else:
                        m = (t < mask)[:, None]
                        state = [mg.where(m, n, s) for n, s in zip(new, state)]
                        outs[t] = mg.where(m, new[0], 0.0)
                    zero = False
                    if rec is not None:
                        rec._record(self, layer, direction, t + t0, state[0])
            finally:
                _state.scope = base
        out = mg.stack(outs, axis=0) if seq_len > 1 else outs[0].unsqueeze(0)
        return out, state

    def _zero_state(self, batch: int) -> list[Tensor]:
        return [Tensor(np.zeros((batch, self.hidden_size), self.dtype))]

    def _biases(self, b_ih: Tensor | None, b_hh: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
        """(bias added to the hoisted projection, bias added at every step). RNN and LSTM fold both
        biases into the projection (``b_ih + b_hh`` once); GRU must keep b_hh per step (b_hn is
        multiplied by r)."""
        if b_ih is None:
            return None, None
        return b_ih + b_hh, None

    def _cell(self, gx: Tensor, state: list[Tensor], w_hh_t: Tensor, b_hh: Tensor | None,
              zero: bool) -> list[Tensor]:
        raise NotImplementedError


class RNN(RNNBase):
    """Elman RNN ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`` (or relu), stacked and
    optionally bidirectional, PyTorch's interface: ``rnn(x, h0=None, lengths=None) -> (output, h_n)``.
    """

    mode = "RNN"
    n_gates = 1

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, fused: bool = True, *, rng: np.random.Generator | None = None,
                 dtype: Any = np.float32) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNN: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         fused, rng=rng, dtype=dtype)
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.nonlinearity == "tanh" else ", nonlinearity='relu'")

    def _cell(self, gx, state, w_hh_t, b_hh, zero):
        return [rnn_step(gx, None if zero else state[0], w_hh_t, b_hh, self.nonlinearity, self.fused)]


class GRU(RNNBase):
    """Gated recurrent unit layer (PyTorch's equations and gate order r, z, n; see ``rnn.cells.GRUCell``):
    ``gru(x, h0=None, lengths=None) -> (output, h_n)``."""

    mode = "GRU"
    n_gates = 3

    def _biases(self, b_ih, b_hh):
        return b_ih, b_hh

    def _cell(self, gx, state, w_hh_t, b_hh, zero):
        return [gru_step(gx, state[0], w_hh_t, b_hh, self.fused)]


class LSTM(RNNBase):
    """Long short-term memory layer (PyTorch's equations and gate order i, f, g, o; see
    ``rnn.cells.LSTMCell``): ``lstm(x, (h0, c0)=None, lengths=None) -> (output, (h_n, c_n))``."""

    mode = "LSTM"
    n_gates = 4

    def _initial(self, hx, batch, unbatched):
        if hx is None:
            return None
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"LSTM: hx must be a tuple (h0, c0), got {type(hx).__name__}")
        return [self._check_state(hx[0], batch, unbatched, "h0"),
                self._check_state(hx[1], batch, unbatched, "c0")]

    def _zero_state(self, batch):
        z = np.zeros((batch, self.hidden_size), self.dtype)
        return [Tensor(z), Tensor(z)]

    def _cell(self, gx, state, w_hh_t, b_hh, zero):
        return list(lstm_step(gx, None if zero else state[0], state[1], w_hh_t, b_hh, self.fused))

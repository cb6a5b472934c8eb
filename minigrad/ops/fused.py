"""Fused recurrent cells: the pointwise part of one LSTM, GRU or RNN time step as ONE graph node.

Composed from primitive ops, an LSTM step's pointwise part is ~12 nodes (chunk, three sigmoids, two
tanh, muls, adds), each a Python-level op with its own temporaries in forward and backward. Here it is
one node whose forward and backward are single Numba passes over (B, H) arrays; the gradients are the
same as those of the primitive composition (tested to 1e-12 in float64). The matrix products stay
outside (BLAS): a layer hoists ``x W_ih^T + b_ih`` over all time steps into one product and does only
``h W_hh^T`` per step.

Gate orders are PyTorch's. Inputs are (B, G*H) and (B, H) arrays (or 1-D (G*H,) and (H,) for a single
example) of one float dtype; float32 stays float32.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from ..function import Function
from ..kernels import cells as K
from ..tensor import Tensor
from .broadcast import ShapeError

__all__ = ["GRUCell", "LSTMCell", "RNNCell", "gru_cell", "lstm_cell", "rnn_cell"]


def _c2(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous 2-D array (a view when possible): kernels see one layout only."""
    if a.ndim == 1:
        a = a.reshape(1, -1)
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


class LSTMCell(Function):
    """The LSTM step's pointwise part: ``(h, c) = lstm_cell(gates, c_prev)``.

    With ``gates = [a_i, a_f, a_g, a_o]`` (B, 4H) pre-activations (``x W_ih^T + b_ih + h W_hh^T + b_hh``):

        i = σ(a_i),  f = σ(a_f),  g = tanh(a_g),  o = σ(a_o)
        c = f ⊙ c_prev + i ⊙ g,      h = o ⊙ tanh(c)

    Backward, from ḣ = dL/dh and ċ = dL/dc (a missing one is zero):

        c̄ = ċ + ḣ ⊙ o ⊙ (1 - tanh²c)
        ā_i = c̄ ⊙ g ⊙ i(1-i),   ā_f = c̄ ⊙ c_prev ⊙ f(1-f),   ā_g = c̄ ⊙ i ⊙ (1-g²),
        ā_o = ḣ ⊙ tanh(c) ⊙ o(1-o),   dL/dc_prev = c̄ ⊙ f

    Saved for backward: the activated gates (B, 4H), tanh(c) (B, H) and c_prev (an input, no copy).
    """

    name = "lstm_cell"

    @staticmethod
    def forward(ctx, gates, c_prev):
        shape = c_prev.shape
        g2, c2 = _c2(gates), _c2(c_prev)
        B, H = c2.shape
        dt = c2.dtype
        h = np.empty((B, H), dt)
        c = np.empty((B, H), dt)
        act = np.empty((B, 4 * H), dt)
        tc = np.empty((B, H), dt)
        K.lstm_forward(g2, c2, h, c, act, tc)
        ctx.act, ctx.c_prev, ctx.tc = act, c2, tc
        ctx.shapes = (gates.shape, shape)
        return h.reshape(shape), c.reshape(shape)

    @staticmethod
    def backward(ctx, grads):
        gh, gc = grads
        act, c_prev, tc = ctx.act, ctx.c_prev, ctx.tc
        gshape, cshape = ctx.shapes
        dgates = np.empty(act.shape, act.dtype)
        dc_prev = np.empty(c_prev.shape, act.dtype)
        K.lstm_backward(act, c_prev, tc,
                        tc if gh is None else _c2(gh), tc if gc is None else _c2(gc),
                        gh is not None, gc is not None, dgates, dc_prev)
        return dgates.reshape(gshape), (dc_prev.reshape(cshape) if ctx.needs_input_grad[1] else None)


class GRUCell(Function):
    """The GRU step's pointwise part: ``h = gru_cell(gi, gh, h_prev)``.

    With ``gi = x W_ih^T + b_ih = [gi_r, gi_z, gi_n]`` and ``gh = h_prev W_hh^T + b_hh`` (B, 3H):

        r = σ(gi_r + gh_r),  z = σ(gi_z + gh_z),  n = tanh(gi_n + r ⊙ gh_n)
        h = (1 - z) ⊙ n + z ⊙ h_prev

    Backward, from ḣ = dL/dh:

        n̄ = ḣ ⊙ (1-z) ⊙ (1-n²)             -> dL/dgi_n = n̄,  dL/dgh_n = n̄ ⊙ r
        z̄ = ḣ ⊙ (h_prev - n) ⊙ z(1-z)      -> dL/dgi_z = dL/dgh_z = z̄
        r̄ = n̄ ⊙ gh_n ⊙ r(1-r)              -> dL/dgi_r = dL/dgh_r = r̄
        dL/dh_prev = ḣ ⊙ z

    Saved for backward: [r, z, n, gh_n] (B, 4H) and h_prev (an input, no copy).
    """

    name = "gru_cell"

    @staticmethod
    def forward(ctx, gi, gh, h_prev):
        shape = h_prev.shape
        h2 = _c2(h_prev)
        B, H = h2.shape
        h = np.empty((B, H), h2.dtype)
        act = np.empty((B, 4 * H), h2.dtype)
        K.gru_forward(_c2(gi), _c2(gh), h2, h, act)
        ctx.act, ctx.h_prev = act, h2
        ctx.shapes = (gi.shape, shape)
        return h.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        act, h_prev = ctx.act, ctx.h_prev
        gshape, hshape = ctx.shapes
        B, H = h_prev.shape
        dgi = np.empty((B, 3 * H), act.dtype)
        dgh = np.empty((B, 3 * H), act.dtype)
        dh_prev = np.empty((B, H), act.dtype)
        K.gru_backward(act, h_prev, _c2(g), dgi, dgh, dh_prev)
        ngi, ngh, nh = ctx.needs_input_grad
        return (dgi.reshape(gshape) if ngi else None, dgh.reshape(gshape) if ngh else None,
                dh_prev.reshape(hshape) if nh else None)


class RNNCell(Function):
    """The Elman RNN step's nonlinearity: ``h = rnn_cell(pre)`` with
    ``pre = x W_ih^T + b_ih + h_prev W_hh^T + b_hh`` (B, H):

        tanh:  h = tanh(pre),      dL/dpre = ḣ ⊙ (1 - h²)
        relu:  h = max(pre, 0),    dL/dpre = ḣ ⊙ [pre > 0] = ḣ ⊙ [h > 0]   (relu'(0) = 0)

    Saved for backward: h.
    """

    name = "rnn_cell"

    @staticmethod
    def forward(ctx, pre, *, nonlinearity):
        p2 = _c2(pre)
        h = np.empty(p2.shape, p2.dtype)
        if nonlinearity == "tanh":
            K.rnn_tanh_forward(p2, h)
        else:
            K.rnn_relu_forward(p2, h)
        ctx.h, ctx.relu = h, nonlinearity == "relu"
        return h.reshape(pre.shape)

    @staticmethod
    def backward(ctx, g):
        h = ctx.h
        dpre = np.empty(h.shape, h.dtype)
        (K.rnn_relu_backward if ctx.relu else K.rnn_tanh_backward)(h, _c2(g), dpre)
        return dpre.reshape(g.shape)


# ---------------------------------------------------------------------------------- validation
def _as_tensor(x: Any, op: str, arg: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return Tensor(x)
    raise TypeError(f"{op}: {arg} must be a Tensor or ndarray, got {type(x).__name__}")


def _check(op: str, args: dict[str, Tensor], widths: dict[str, int]) -> int:
    """Check that every argument is (B, k*H) or (k*H,) for its width k, with one B and one H, and that
    all share one float dtype. Returns H. Raises ShapeError/TypeError naming the op, shapes, dtypes."""
    desc = ", ".join(f"{k} {t.shape} [{t.dtype}]" for k, t in args.items())
    dts = {t.dtype for t in args.values()}
    if len(dts) != 1:
        raise TypeError(f"{op}: inputs must share one dtype, got {desc}")
    dt = next(iter(dts))
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{op}: inputs must be float32 or float64, got {desc}")
    ndims = {t.ndim for t in args.values()}
    if len(ndims) != 1 or next(iter(ndims)) not in (1, 2):
        raise ShapeError(f"{op}: inputs must all be 2-D (batch, features) or all 1-D, got {desc}")
    last = next(reversed(args))
    H = args[last].shape[-1]
    want = ", ".join(f"{k} (B, {'' if w == 1 else w}H)" for k, w in widths.items())
    bs = {t.shape[0] for t in args.values()} if next(iter(ndims)) == 2 else {1}
    if len(bs) != 1 or any(t.shape[-1] != w * H for t, w in zip(args.values(), widths.values())):
        raise ShapeError(f"{op}: expected {want} with H = {H}, got {desc}")
    return H


def lstm_cell(gates: Tensor, c_prev: Tensor) -> tuple[Tensor, Tensor]:
    """``(h, c)`` of one LSTM step from the gate pre-activations ``gates`` (B, 4H) in PyTorch order
    i, f, g, o and the previous cell state ``c_prev`` (B, H). One graph node (see ``LSTMCell``)."""
    gates = _as_tensor(gates, "lstm_cell", "gates")
    c_prev = _as_tensor(c_prev, "lstm_cell", "c_prev")
    _check("lstm_cell", {"gates": gates, "c_prev": c_prev}, {"gates": 4, "c_prev": 1})
    return LSTMCell.apply(gates, c_prev)


def gru_cell(gi: Tensor, gh: Tensor, h_prev: Tensor) -> Tensor:
    """``h`` of one GRU step from ``gi = x W_ih^T + b_ih`` and ``gh = h_prev W_hh^T + b_hh`` (B, 3H) in
    PyTorch order r, z, n, and ``h_prev`` (B, H). One graph node (see ``GRUCell``)."""
    gi = _as_tensor(gi, "gru_cell", "gi")
    gh = _as_tensor(gh, "gru_cell", "gh")
    h_prev = _as_tensor(h_prev, "gru_cell", "h_prev")
    _check("gru_cell", {"gi": gi, "gh": gh, "h_prev": h_prev}, {"gi": 3, "gh": 3, "h_prev": 1})
    return GRUCell.apply(gi, gh, h_prev)


def rnn_cell(pre: Tensor, nonlinearity: Literal["tanh", "relu"] = "tanh") -> Tensor:
    """``h = tanh(pre)`` or ``relu(pre)`` of one Elman RNN step as one fused node (see ``RNNCell``)."""
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"rnn_cell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    pre = _as_tensor(pre, "rnn_cell", "pre")
    _check("rnn_cell", {"pre": pre}, {"pre": 1})
    return RNNCell.apply(pre, nonlinearity=nonlinearity)

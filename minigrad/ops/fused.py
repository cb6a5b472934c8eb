"""Fused recurrent cells: the pointwise part of one LSTM, GRU or RNN time step as ONE graph node.

Composed from primitive ops, an LSTM step's pointwise part is ~12 nodes (chunk, three sigmoids, two
tanh, muls, adds), each a Python-level op with its own temporaries in forward and backward. Here it is
one node whose forward and backward are single Numba passes over (B, H) arrays; the gradients are the
same as those of the primitive composition (tested to 1e-12 in float64). A layer hoists
``x W_ih^T + b_ih`` over all time steps into one product, so a step is ``h W_hh^T`` plus the cell.

Optionally (``h_prev=``, ``w_hh=`` in PyTorch's (G*H, H) layout) the recurrent product
``h_prev @ W_hh^T`` (BLAS) is folded into
the same node, so a whole time step is ONE node instead of three (matmul, add, cell): each node costs
Python-level overhead in forward and backward, which dominates small and long-sequence workloads.

Gate orders are PyTorch's. Inputs are (B, G*H) and (B, H) arrays (or 1-D (G*H,) and (H,) for a single
example) of one float dtype; float32 stays float32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from ..function import Function
from ..kernels import cells as K
from ..tensor import Tensor
from .broadcast import ShapeError

__all__ = ["GRUCell", "GRUCellRec", "LSTMCell", "LSTMCellRec", "RNNCell", "RNNCellRec", "gru_cell",
           "lstm_cell", "rnn_cell"]


def _c2(a: np.ndarray, dtype: np.dtype | None = None) -> np.ndarray:
    """``a`` as a C-contiguous, aligned 2-D array (a view when possible): kernels see one layout only.
    With ``dtype``, also of that dtype (incoming gradients; the engine already casts them, this keeps
    the direct kernel entry points safe whatever a custom op upstream returns)."""
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if dtype is not None and a.dtype != dtype:
        a = a.astype(dtype)
    f = a.flags
    return a if f.c_contiguous and f.aligned else np.array(a, order="C")


_ENTRY: dict[tuple[str, np.dtype], Callable[..., None]] = {}


def _kernel(name: str, dtype: np.dtype) -> Callable[..., None]:
    """The compiled kernel ``name`` for C-contiguous aligned 2-D arrays of ``dtype``.

    Numba's dispatcher re-derives the Numba type of every argument on every call (about 0.3 us an
    array on this machine class); here the (B, H) step kernels are called once per time step, so the
    overload is compiled (or loaded from the on-disk cache) once per dtype and its compiled entry point
    is called directly. Safe because every caller passes exactly that signature: arrays made by
    ``_c2`` or ``np.empty`` of the checked dtype, and Python bools. Under ``NUMBA_DISABLE_JIT=1`` this
    is the pure-Python kernel.
    """
    fn = _ENTRY.get((name, dtype))
    if fn is None:
        fn = getattr(K, name)
        if hasattr(fn, "compile"):  # a Numba dispatcher (JIT enabled)
            import numba

            arr = numba.typeof(np.empty((1, 1), dtype))
            nargs = fn.py_func.__code__.co_argcount
            flags = _FLAG_ARGS.get(name, ())
            sig = tuple(numba.types.boolean if i in flags else arr for i in range(nargs))
            fn = fn.compile(sig)
        _ENTRY[(name, dtype)] = fn
    return fn


#: positions of the bool (not array) arguments of kernels that have any
_FLAG_ARGS = {"lstm_backward": (5, 6)}


#: From this many hidden units (B * H) on, the forward passes take their exp/tanh from NumPy's
#: vectorised (SIMD) ufuncs and only the arithmetic from Numba: a scalar libm ``tanh`` costs ~28 ns an
#: element in a Numba loop, NumPy's ~0.4 ns (float32) / ~3 ns (float64), which outweighs the ~1 us
#: launch cost of the extra calls for all but the smallest steps. Both paths give the same values up
#: to rounding (tested).
VECTOR_MIN = 512


def _lstm_fwd(ctx: Any, g2: np.ndarray, c2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    B, H = c2.shape
    dt = c2.dtype
    h = np.empty((B, H), dt)
    c = np.empty((B, H), dt)
    act = np.empty((B, 4 * H), dt)
    tc = np.empty((B, H), dt)
    if B * H < VECTOR_MIN:
        _kernel("lstm_forward", dt)(g2, c2, h, c, act, tc)
    else:
        e = np.abs(g2)
        np.negative(e, out=e)
        np.exp(e, out=e)
        tg = np.tanh(g2[:, 2 * H:3 * H])
        _kernel("lstm_forward_pre", dt)(g2, e, tg, c2, act, c)
        np.tanh(c, out=tc)
        np.multiply(act[:, 3 * H:], tc, out=h)
    ctx.act, ctx.c_prev, ctx.tc = act, c2, tc
    return h, c


def _lstm_bwd(ctx: Any, grads: Any) -> tuple[np.ndarray, np.ndarray]:
    gh, gc = grads
    act, c_prev, tc = ctx.act, ctx.c_prev, ctx.tc
    dgates = np.empty(act.shape, act.dtype)
    dc_prev = np.empty(c_prev.shape, act.dtype)
    _kernel("lstm_backward", act.dtype)(act, c_prev, tc,
                                        tc if gh is None else _c2(gh, act.dtype),
                                        tc if gc is None else _c2(gc, act.dtype),
                                        gh is not None, gc is not None, dgates, dc_prev)
    return dgates, dc_prev


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
        h, c = _lstm_fwd(ctx, _c2(gates), _c2(c_prev))
        ctx.shapes = (gates.shape, shape)
        return h.reshape(shape), c.reshape(shape)

    @staticmethod
    def backward(ctx, grads):
        dgates, dc_prev = _lstm_bwd(ctx, grads)
        gshape, cshape = ctx.shapes
        return dgates.reshape(gshape), (dc_prev.reshape(cshape) if ctx.needs_input_grad[1] else None)


class LSTMCellRec(Function):
    """``lstm_cell(gx, c_prev, h_prev, w_hh)``: the LSTM step with the recurrent product folded in,
    ``gates = gx + h_prev @ w_hh^T`` (w_hh = W_hh, (4H, H)), then as ``LSTMCell``. Backward adds

        dL/dgx = ā,   dL/dh_prev = ā W_hh,   dL/dw_hh = āᵀ h_prev      (ā = dL/dgates)

    so one time step is ONE graph node (2-D inputs only).
    """

    name = "lstm_cell"

    @staticmethod
    def forward(ctx, gx, c_prev, h_prev, w):
        gates = np.matmul(h_prev, w.T)
        gates += gx
        ctx.h_prev, ctx.w = h_prev, w
        return _lstm_fwd(ctx, gates, _c2(c_prev))

    @staticmethod
    def backward(ctx, grads):
        dgates, dc_prev = _lstm_bwd(ctx, grads)
        _, nc, nh, nw = ctx.needs_input_grad
        return (dgates, dc_prev if nc else None, dgates @ ctx.w if nh else None,
                dgates.T @ ctx.h_prev if nw else None)


def _gru_fwd(ctx: Any, gi: np.ndarray, gh: np.ndarray, h2: np.ndarray) -> np.ndarray:
    B, H = h2.shape
    dt = h2.dtype
    h = np.empty((B, H), dt)
    act = np.empty((B, 4 * H), dt)
    if B * H < VECTOR_MIN:
        _kernel("gru_forward", dt)(gi, gh, h2, h, act)
    else:
        e = np.add(gi[:, :2 * H], gh[:, :2 * H])
        np.abs(e, out=e)
        np.negative(e, out=e)
        np.exp(e, out=e)
        _kernel("gru_forward_pre", dt)(gi, gh, e, act)
        n = act[:, 2 * H:3 * H]
        np.tanh(n, out=n)
        _kernel("gru_forward_post", dt)(act, h2, h)
    ctx.act, ctx.h_prev = act, h2
    return h


def _gru_bwd(ctx: Any, g: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    act, h_prev = ctx.act, ctx.h_prev
    B, H = h_prev.shape
    dgi = np.empty((B, 3 * H), act.dtype)
    dgh = np.empty((B, 3 * H), act.dtype)
    dh_prev = np.empty((B, H), act.dtype)
    _kernel("gru_backward", act.dtype)(act, h_prev, _c2(g, act.dtype), dgi, dgh, dh_prev)
    return dgi, dgh, dh_prev


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
        h = _gru_fwd(ctx, _c2(gi), _c2(gh), _c2(h_prev))
        ctx.shapes = (gi.shape, shape)
        return h.reshape(shape)

    @staticmethod
    def backward(ctx, g):
        dgi, dgh, dh_prev = _gru_bwd(ctx, g)
        gshape, hshape = ctx.shapes
        ngi, ngh, nh = ctx.needs_input_grad
        return (dgi.reshape(gshape) if ngi else None, dgh.reshape(gshape) if ngh else None,
                dh_prev.reshape(hshape) if nh else None)


class GRUCellRec(Function):
    """``gru_cell(gi, None, h_prev, w_hh, b_hh)``: the GRU step with ``gh = h_prev @ w_hh^T (+ b_hh)``
    folded in (w_hh = W_hh, (3H, H)), then as ``GRUCell``. Backward, with ḡ = dL/dgh:

        dL/dh_prev = (cell's) ḣ ⊙ z + ḡ W_hh,   dL/dw_hh = ḡᵀ h_prev,   dL/db_hh = Σ_batch ḡ

    so one time step is ONE graph node (2-D inputs only).
    """

    name = "gru_cell"

    @staticmethod
    def forward(ctx, gi, h_prev, w, *b):
        h2 = _c2(h_prev)
        gh = np.matmul(h2, w.T)
        if b:
            gh += b[0]
        ctx.w = w
        return _gru_fwd(ctx, _c2(gi), gh, h2)

    @staticmethod
    def backward(ctx, g):
        dgi, dgh, dh_prev = _gru_bwd(ctx, g)
        need = ctx.needs_input_grad
        if need[1]:
            dh_prev += dgh @ ctx.w
        grads = (dgi if need[0] else None, dh_prev if need[1] else None,
                 dgh.T @ ctx.h_prev if need[2] else None)
        if len(need) == 4:
            grads += (dgh.sum(axis=0) if need[3] else None,)
        return grads


def _rnn_act(p2: np.ndarray, nonlinearity: str) -> np.ndarray:
    """tanh or relu of a C-contiguous 2-D array: the Numba kernel for small arrays, NumPy's SIMD
    ufunc (same values) from ``VECTOR_MIN`` elements on."""
    h = np.empty(p2.shape, p2.dtype)
    relu = nonlinearity == "relu"
    if p2.size < VECTOR_MIN:
        _kernel("rnn_relu_forward" if relu else "rnn_tanh_forward", p2.dtype)(p2, h)
    elif relu:
        np.maximum(p2, 0, out=h)
    else:
        np.tanh(p2, out=h)
    return h


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
        h = _rnn_act(p2, nonlinearity)
        ctx.h, ctx.relu = h, nonlinearity == "relu"
        return h.reshape(pre.shape)

    @staticmethod
    def backward(ctx, g):
        h = ctx.h
        dpre = np.empty(h.shape, h.dtype)
        _kernel("rnn_relu_backward" if ctx.relu else "rnn_tanh_backward", h.dtype)(h, _c2(g, h.dtype), dpre)
        return dpre.reshape(g.shape)


class RNNCellRec(Function):
    """``rnn_cell(px, nonlinearity, h_prev, w_hh)``: ``pre = px + h_prev @ w_hh^T`` folded in, then as
    ``RNNCell``; backward: dL/dpx = p̄,  dL/dh_prev = p̄ W_hh,  dL/dw_hh = p̄ᵀ h_prev (one node a step)."""

    name = "rnn_cell"

    @staticmethod
    def forward(ctx, px, h_prev, w, *, nonlinearity):
        pre = np.matmul(h_prev, w.T)
        pre += px
        h = _rnn_act(pre, nonlinearity)
        ctx.h, ctx.relu, ctx.h_prev, ctx.w = h, nonlinearity == "relu", h_prev, w
        return h

    @staticmethod
    def backward(ctx, g):
        h = ctx.h
        dpre = np.empty(h.shape, h.dtype)
        _kernel("rnn_relu_backward" if ctx.relu else "rnn_tanh_backward", h.dtype)(h, _c2(g, h.dtype), dpre)
        _, nh, nw = ctx.needs_input_grad
        return dpre, dpre @ ctx.w if nh else None, dpre.T @ ctx.h_prev if nw else None


# ---------------------------------------------------------------------------------- validation
def _as_tensor(x: Any, op: str, arg: str) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return Tensor(x)
    raise TypeError(f"{op}: {arg} must be a Tensor or ndarray, got {type(x).__name__}")


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _check(op: str, args: dict[str, Tensor], widths: dict[str, int]) -> None:
    """Check that every argument is (B, k*H) or (k*H,) for its width k, with one B and one H, and that
    all share one float dtype; raise ShapeError/TypeError naming the op, the shapes and the dtypes.
    (The ops try ``_ok`` first, which accepts the common 2-D case in a few comparisons.)
    """
    ts = list(args.values())
    t0 = ts[0]
    dt = t0.data.dtype
    nd = t0.data.ndim
    H = ts[-1].data.shape[-1] if ts[-1].data.ndim else -1
    ok = dt in _FLOATS and nd in (1, 2)
    if ok:
        B = t0.data.shape[0]
        for t, w in zip(ts, widths.values()):
            d = t.data
            if d.dtype != dt or d.ndim != nd or d.shape[-1] != w * H or (nd == 2 and d.shape[0] != B):
                ok = False
                break
    if ok:
        return
    desc = ", ".join(f"{k} {t.shape} [{t.dtype}]" for k, t in args.items())
    dts = {t.dtype for t in ts}
    if len(dts) != 1:
        raise TypeError(f"{op}: inputs must share one dtype, got {desc}")
    if dt not in _FLOATS:
        raise TypeError(f"{op}: inputs must be float32 or float64, got {desc}")
    if len({t.ndim for t in ts}) != 1 or nd not in (1, 2):
        raise ShapeError(f"{op}: inputs must all be 2-D (batch, features) or all 1-D, got {desc}")
    want = ", ".join(f"{k} (B, {'' if w == 1 else w}H)" for k, w in widths.items())
    raise ShapeError(f"{op}: expected {want} with H = {H}, got {desc}")


def _ok(dt: np.dtype, *arrays: np.ndarray) -> bool:
    """Fast path of the checks: one float dtype (``char`` 'f' or 'd'), all 2-D, one batch size."""
    if dt.char not in "fd":
        return False
    a0 = arrays[0]
    if a0.ndim != 2:
        return False
    b = a0.shape[0]
    for a in arrays:
        if a.dtype != dt or a.ndim != 2 or a.shape[0] != b:
            return False
    return True


def _rec(op: str, h_prev: Any, w_hh: Any, G: int, H: int, B: int, dt: np.dtype, b_hh: Any = None
         ) -> tuple[Tensor, ...]:
    """Validate the folded recurrent inputs: h_prev (B, H), w_hh (G*H, H), b_hh (G*H,), one dtype."""
    if type(h_prev) is Tensor and isinstance(w_hh, Tensor):  # fast path: a few comparisons
        hd, wd = h_prev.data, w_hh.data
        if (hd.dtype == dt and wd.dtype == dt and hd.shape == (B, H) and wd.shape == (G * H, H)
                and (b_hh is None or (isinstance(b_hh, Tensor) and b_hh.data.dtype == dt
                                      and b_hh.data.shape == (G * H,)))):
            return (h_prev, w_hh) if b_hh is None else (h_prev, w_hh, b_hh)
    if h_prev is None or w_hh is None:
        raise TypeError(f"{op}: h_prev and w_hh go together (the recurrent product h_prev @ w_hh^T is "
                        f"folded into the op); got h_prev={type(h_prev).__name__}, "
                        f"w_hh={type(w_hh).__name__}")
    ts = [_as_tensor(h_prev, op, "h_prev"), _as_tensor(w_hh, op, "w_hh")]
    want = [(B, H), (G * H, H)]
    if b_hh is not None:
        ts.append(_as_tensor(b_hh, op, "b_hh"))
        want.append((G * H,))
    names = ["h_prev", "w_hh", "b_hh"]
    if any(t.dtype != dt for t in ts):
        raise TypeError(f"{op}: h_prev/w_hh/b_hh must have the dtype of the other inputs ({dt}), got "
                        + ", ".join(f"{n} [{t.dtype}]" for n, t in zip(names, ts)))
    if any(t.shape != s for t, s in zip(ts, want)):
        raise ShapeError(f"{op}: expected " + ", ".join(f"{n} {s}" for n, s in zip(names, want))
                         + f" for B = {B}, H = {H}; got "
                         + ", ".join(f"{n} {t.shape} [{t.dtype}]" for n, t in zip(names, ts)))
    return tuple(ts)


def lstm_cell(gates: Tensor, c_prev: Tensor, h_prev: Tensor | None = None,
              w_hh: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """``(h, c)`` of one LSTM step from the gate pre-activations ``gates`` (B, 4H) in PyTorch order
    i, f, g, o and the previous cell state ``c_prev`` (B, H). One graph node (see ``LSTMCell``).

    With ``h_prev`` (B, H) and ``w_hh`` = W_hh (4H, H), ``gates`` is the input part only and the
    recurrent product is folded into the same node: gates + h_prev @ w_hh^T (see ``LSTMCellRec``).
    """
    if type(gates) is not Tensor or type(c_prev) is not Tensor:
        gates = _as_tensor(gates, "lstm_cell", "gates")
        c_prev = _as_tensor(c_prev, "lstm_cell", "c_prev")
    g, c = gates.data, c_prev.data
    if not (_ok(c.dtype, g, c) and g.shape[1] == 4 * c.shape[1]):
        _check("lstm_cell", {"gates": gates, "c_prev": c_prev}, {"gates": 4, "c_prev": 1})
    if h_prev is None and w_hh is None:
        return LSTMCell.apply(gates, c_prev)
    if c.ndim != 2:
        raise ShapeError(f"lstm_cell: h_prev/w_hh need 2-D (batch, features) inputs, got gates "
                         f"{g.shape}, c_prev {c.shape}")
    h_prev, w_hh = _rec("lstm_cell", h_prev, w_hh, 4, c.shape[1], c.shape[0], c.dtype)
    return LSTMCellRec.apply(gates, c_prev, h_prev, w_hh)


def gru_cell(gi: Tensor, gh: Tensor | None, h_prev: Tensor, w_hh: Tensor | None = None,
             b_hh: Tensor | None = None) -> Tensor:
    """``h`` of one GRU step from ``gi = x W_ih^T + b_ih`` and ``gh = h_prev W_hh^T + b_hh`` (B, 3H) in
    PyTorch order r, z, n, and ``h_prev`` (B, H). One graph node (see ``GRUCell``).

    With ``gh=None`` and ``w_hh`` = W_hh (3H, H) (and optionally ``b_hh`` (3H,)), gh is computed
    inside the same node: h_prev @ w_hh^T + b_hh (see ``GRUCellRec``).
    """
    if gh is None:
        if type(gi) is not Tensor or type(h_prev) is not Tensor:
            gi = _as_tensor(gi, "gru_cell", "gi")
            h_prev = _as_tensor(h_prev, "gru_cell", "h_prev")
        a, h = gi.data, h_prev.data
        if not (_ok(h.dtype, a, h) and a.shape[1] == 3 * h.shape[1]):
            _check("gru_cell", {"gi": gi, "h_prev": h_prev}, {"gi": 3, "h_prev": 1})
        if h.ndim != 2:
            raise ShapeError(f"gru_cell: w_hh needs 2-D (batch, features) inputs, got gi {a.shape}, "
                             f"h_prev {h.shape}")
        rec = _rec("gru_cell", h_prev, w_hh, 3, h.shape[1], h.shape[0], h.dtype, b_hh)
        return GRUCellRec.apply(gi, *rec)
    if w_hh is not None or b_hh is not None:
        raise TypeError("gru_cell: pass either gh, or gh=None with w_hh (and b_hh), not both")
    if type(gi) is not Tensor or type(gh) is not Tensor or type(h_prev) is not Tensor:
        gi = _as_tensor(gi, "gru_cell", "gi")
        gh = _as_tensor(gh, "gru_cell", "gh")
        h_prev = _as_tensor(h_prev, "gru_cell", "h_prev")
    a, b, h = gi.data, gh.data, h_prev.data
    if not (_ok(h.dtype, a, b, h) and a.shape[1] == 3 * h.shape[1] and b.shape[1] == a.shape[1]):
        _check("gru_cell", {"gi": gi, "gh": gh, "h_prev": h_prev}, {"gi": 3, "gh": 3, "h_prev": 1})
    return GRUCell.apply(gi, gh, h_prev)


def rnn_cell(pre: Tensor, nonlinearity: Literal["tanh", "relu"] = "tanh", h_prev: Tensor | None = None,
             w_hh: Tensor | None = None) -> Tensor:
    """``h = tanh(pre)`` or ``relu(pre)`` of one Elman RNN step as one fused node (see ``RNNCell``).

    With ``h_prev`` (B, H) and ``w_hh`` = W_hh (H, H), ``pre`` is the input part only and the
    recurrent product is folded into the same node: act(pre + h_prev @ w_hh^T) (see ``RNNCellRec``).
    """
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"rnn_cell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    if type(pre) is not Tensor:
        pre = _as_tensor(pre, "rnn_cell", "pre")
    p = pre.data
    if not _ok(p.dtype, p):
        _check("rnn_cell", {"pre": pre}, {"pre": 1})
    if h_prev is None and w_hh is None:
        return RNNCell.apply(pre, nonlinearity=nonlinearity)
    if p.ndim != 2:
        raise ShapeError(f"rnn_cell: h_prev/w_hh need a 2-D (batch, features) pre, got {p.shape}")
    h_prev, w_hh = _rec("rnn_cell", h_prev, w_hh, 1, p.shape[1], p.shape[0], p.dtype)
    return RNNCellRec.apply(pre, h_prev, w_hh, nonlinearity=nonlinearity)

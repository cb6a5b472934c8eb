"""Truncated backpropagation through time: run a long sequence in windows, carry the recurrent state
from window to window, and detach it at each window start so no gradient crosses a window boundary.

Full BPTT on a sequence of length T differentiates through all T steps:

    dL/dW = sum_{t=1}^{T} sum_{s<=t} dL_t/dh_t * (prod_{u=s+1}^{t} dh_u/dh_{u-1}) * dh_s/dW|_local

TBPTT(k1, k2) (Williams & Peng 1990; Sutskever 2013) updates every k1 steps, and each update
backpropagates the losses of the k1 newest steps through at most the k2 newest steps: the product
above is cut at the window start (the state there is a detached leaf). With k2 == k1 (the default)
the windows simply tile the sequence: "unfold k steps, backpropagate, update, carry the state".
With k2 > k1 the windows overlap: a window re-runs the k2 - k1 steps before its new ones from the
state carried at its start (the forward of those steps is recomputed, with the current weights).

Any model works that is called as ``model(x, state) -> (outputs, new_state)`` with the time axis of
``x`` and ``outputs`` at ``time_axis``: an ``rnn.RNN``/``GRU``/``LSTM`` layer (``state`` = ``h0`` or
``(h0, c0)``, None for zeros) or the models in ``rnn.models`` with a ``forward(x, state=None)``. The
state may be a Tensor or a (nested) tuple of Tensors. When the model's forward takes ``t0``, steps
are numbered by their position in the whole sequence (scopes ``t=...``).

    for w in tbptt_windows(model, x, y, k1=20):       # the low-level loop
        loss = loss_fn(w.outputs, w.targets)
        opt.zero_grad(); loss.backward(); opt.step()

    res = tbptt(model, x, y, loss_fn, opt, k1=20)     # the same loop, with clipping and bookkeeping
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import minigrad as mg
from minigrad import Tensor

from .cell import check_size

__all__ = ["TBPTTResult", "Window", "detach_state", "tbptt", "tbptt_windows", "window_bounds"]


def detach_state(state: Any) -> Any:
    """The state (a Tensor, or tuple/list of them, or None) cut from the graph: same values, leaves."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    raise TypeError(f"detach_state: a state must be a Tensor or a tuple of Tensors, "
                    f"got {type(state).__name__}")


def window_bounds(seq_len: int, k1: int, k2: int | None = None) -> list[tuple[int, int, int, int]]:
    """The windows of TBPTT(k1, k2) over ``seq_len`` steps as ``(start, carry, loss_start, stop)``:
    steps ``start..stop-1`` are run from the state carried at ``start``; the losses of steps
    ``loss_start..stop-1`` (the k1 new ones) are backpropagated, through at most k2 steps
    (``start = loss_start - (k2 - k1)``); the state at ``carry`` (the next window's start) is carried
    on. The last window may have fewer new steps."""
    k2 = k1 if k2 is None else k2
    k1, k2, seq_len = (check_size("tbptt", name, v)
                       for name, v in (("k1", k1), ("k2", k2), ("seq_len", seq_len)))
    if k2 < k1:
        raise ValueError(f"tbptt: k2 ({k2}) must be >= k1 ({k1}): each update backpropagates the k1 new "
                         "steps' losses through the last k2 steps")
    stops = [*range(k1, seq_len, k1), seq_len]
    news = [0, *stops[:-1]]  # first new step of every window
    starts = [max(0, n - (k2 - k1)) for n in news]  # re-run the k2 - k1 steps before the new ones
    return [(starts[i], starts[i + 1] if i + 1 < len(stops) else stop, news[i], stop)
            for i, stop in enumerate(stops)]


@dataclass
class Window:
    """One TBPTT window (see ``tbptt_windows``)."""

    index: int
    start: int          #: first step run in this window (from ``state_in``)
    stop: int           #: one past the last step
    loss_start: int     #: first step whose outputs are in ``outputs`` (the new steps)
    inputs: np.ndarray  #: the input values of steps start..stop-1 (a view, for inspection)
    outputs: Any        #: the model's outputs for steps loss_start..stop-1
    targets: Any        #: the targets of steps loss_start..stop-1 (None without targets)
    state_in: Any       #: the detached state the window started from (leaves: no gradient crosses)
    state: Any          #: the state after step stop-1 (attached to this window's graph)


def _slicer(time_axis: int, a: int, b: int) -> tuple:
    return (slice(None),) * time_axis + (slice(a, b),)


def _take(x: Any, time_axis: int, a: int, b: int, dtype: Any = None) -> Any:
    """Steps a..b-1 of x. A Tensor that requires grad is sliced in the graph (its gradient flows to
    the window's steps only); anything else becomes a fresh constant."""
    if x is None:
        return None
    idx = _slicer(time_axis, a, b)
    if isinstance(x, Tensor):
        return x[idx] if x.requires_grad else Tensor(x.data[idx])
    arr = np.asarray(x)
    if dtype is not None and arr.dtype.kind == "f":
        arr = arr.astype(dtype, copy=False)
    return Tensor(arr[idx])


def _takes_t0(model: Any) -> bool:
    fn = getattr(model, "forward", model)
    try:
        return "t0" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _model_dtype(model: Any) -> Any:
    params = getattr(model, "parameters", None)
    if params is None:
        return None
    p = next(iter(params()), None)
    return None if p is None else p.dtype


def tbptt_windows(model: Callable[..., tuple[Any, Any]], inputs: Any, targets: Any = None, *, k1: int,
                  k2: int | None = None, state: Any = None, time_axis: int = 0) -> Iterator[Window]:
    """Yield the windows of TBPTT(k1, k2) one at a time, running the model forward for each.

    Between two ``next()`` calls the caller backpropagates the window's loss and updates the weights;
    the next window then starts from the state carried (detached) from the previous one. With
    ``k2 > k1`` a window is run as two pieces so that the state at the next window's start can be
    carried without a second forward pass.
    """
    if not isinstance(inputs, Tensor):
        inputs = np.asarray(inputs)
    if inputs.ndim <= time_axis:
        raise mg.ShapeError(f"tbptt: inputs of shape {inputs.shape} have no time axis {time_axis}")
    seq_len = inputs.shape[time_axis]
    if targets is not None and np.shape(targets.data if isinstance(targets, Tensor) else targets)[
            time_axis] != seq_len:
        raise mg.ShapeError(f"tbptt: targets {np.shape(targets)} and inputs {inputs.shape} differ in "
                            f"length along time axis {time_axis}")
    t0 = _takes_t0(model)
    dtype = _model_dtype(model)
    carried = detach_state(state)
    for i, (start, carry, loss_start, stop) in enumerate(window_bounds(seq_len, k1, k2)):
        state_in = carried
        pieces = [(start, carry), (carry, stop)] if start < carry < stop else [(start, stop)]
        outs, st = [], state_in
        for a, b in pieces:
            kw = {"t0": a} if t0 else {}
            out, st = model(_take(inputs, time_axis, a, b, dtype), st, **kw)
            outs.append(out)
            if b == carry:
                carried = detach_state(st)
        out = outs[0] if len(outs) == 1 else mg.concatenate(outs, axis=time_axis)
        if loss_start > start:
            out = out[_slicer(time_axis, loss_start - start, stop - start)]
        raw = inputs.data if isinstance(inputs, Tensor) else inputs
        yield Window(i, start, stop, loss_start, raw[_slicer(time_axis, start, stop)], out,
                     _take(targets, time_axis, loss_start, stop), state_in, st)


@dataclass
class TBPTTResult:
    """What ``tbptt`` returns: the loss of every window, the steps each covered, the final state
    (detached), and the gradient norm before clipping per window (when ``clip`` was given)."""

    losses: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    state: Any = None
    grad_norms: list[float] = field(default_factory=list)

    @property
    def mean_loss(self) -> float:
        """The losses averaged over steps (each window weighted by its number of new steps)."""
        return float(np.average(self.losses, weights=self.steps)) if self.losses else float("nan")


def tbptt(model: Callable[..., tuple[Any, Any]], inputs: Any, targets: Any,
          loss_fn: Callable[[Any, Any], Tensor], optimizer: Any = None, k1: int = 32,
          k2: int | None = None, clip: float | None = None, state: Any = None,
          time_axis: int = 0) -> TBPTTResult:
    """Train ``model`` on one long sequence with truncated BPTT; returns ``TBPTTResult``.

    For every window: ``loss = loss_fn(outputs, targets)`` of the window's new steps,
    ``optimizer.zero_grad()``, ``loss.backward()``, ``clip_grad_norm_(..., clip)`` if ``clip``, then
    ``optimizer.step()``. With ``optimizer=None`` gradients are only accumulated into ``.grad`` (no
    zeroing, no step): with ``k1 >= T`` that is exactly full BPTT.
    """
    from minigrad.nn.utils import clip_grad_norm_

    if clip is not None and clip <= 0:
        raise ValueError(f"tbptt: clip must be a positive max norm, got {clip}")
    if optimizer is not None:
        params = [p for g in optimizer.param_groups for p in g["params"]]
    elif hasattr(model, "parameters"):
        params = list(model.parameters())
    else:
        params = []
    res = TBPTTResult()
    final = None
    for w in tbptt_windows(model, inputs, targets, k1=k1, k2=k2, state=state, time_axis=time_axis):
        loss = loss_fn(w.outputs, w.targets)
        if not isinstance(loss, Tensor) or loss.size != 1:
            raise TypeError(f"tbptt: loss_fn must return a scalar Tensor, got {type(loss).__name__} "
                            f"{getattr(loss, 'shape', '')}")
        if optimizer is not None:
            optimizer.zero_grad()
        loss.backward()
        if clip is not None:
            res.grad_norms.append(float(clip_grad_norm_(params, clip)))
        if optimizer is not None:
            optimizer.step()
        res.losses.append(float(loss.item()))
        res.steps.append(w.stop - w.loss_start)
        final = w.state
    res.state = detach_state(final)
    return res

"""In-place updates of tensors (``+=``, ``add_``, ``zero_``, ``x[i] = v``, ...) with PyTorch's rules,
so that an update is never a silent wrong gradient:

- a leaf that requires grad may be updated only under ``no_grad()`` (an optimiser step);
- otherwise, in grad mode, an update that involves a tensor requiring grad (``loss += l`` on a graph
  tensor, or ``total += loss`` on a plain one) is recorded as the out-of-place op on a copy of the
  old value, and the tensor takes the result's place in the graph. minigrad's nodes find their inputs'
  producers through the tensor objects, so that is only sound while no recorded op has used the
  tensor yet: updating a graph tensor that an op already consumed is an error that says to write
  ``x = x + y``;
- every update bumps a version shared by the tensor and its views (reshape, transpose, slices,
  ``detach``); a node whose saved array was updated after it ran refuses to backward, naming the op.

Writing into ``t.data`` directly bypasses all of this (as ``.data`` does in PyTorch).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import _state
from .tensor import Tensor

__all__ = ["check_writable", "record_update", "update"]


def check_writable(t: Tensor, op: str) -> None:
    """Raise unless ``t`` may be updated in place now."""
    if not (_state.grad_enabled and t.requires_grad):
        return
    if t.node is None:
        raise RuntimeError(f"{op}: a leaf tensor that requires grad (shape {t.shape} [{t.dtype}]) cannot be "
                           "updated in place while grad mode is on; do it inside `with mg.no_grad():` "
                           "(as an optimiser step does)")
    if t.consumed:
        raise RuntimeError(f"{op}: the tensor (shape {t.shape} [{t.dtype}], made by op '{t.node.name}') is "
                           "part of the graph and an op has already used it; minigrad cannot update it in "
                           "place, write it out of place (x = x + y) or update a .clone()")


def record_update(t: Tensor, op: str) -> None:
    """Bump the version of ``t`` (and its views); mark the nodes whose saved arrays it overwrote."""
    _state.version += 1
    box = t.version_box()
    box[0] = _state.version
    for ref in box[1:]:
        node = ref()
        if node is not None and not node.released and node.saves(t.data):
            node.corrupted = f"'{op}' updated a tensor of shape {t.shape} in place"


def update(t: Tensor, op: str, ufunc: Callable[..., Any] | None, other: Any,
           out_of_place: Callable[[Tensor, Any], Tensor]) -> Tensor:
    """``t <op>= other``: ``ufunc(t.data, other, out=t.data)`` (``ufunc`` None: copy ``other`` in),
    following the rules of the module docstring. Returns ``t``."""
    check_writable(t, op)
    if _state.grad_enabled and (t.requires_grad or (isinstance(other, Tensor) and other.requires_grad)):
        old = Tensor._make(t.data.copy(), t.node, t.output_index)
        old.requires_grad = t.requires_grad
        new = out_of_place(old, other)                           # recorded; t takes its place
        _write(t, op, None, new.data)
        t.rebind(new)
    else:
        _write(t, op, ufunc, other.data if isinstance(other, Tensor) else other)
    record_update(t, op)
    return t


def _write(t: Tensor, op: str, ufunc: Callable[..., Any] | None, value: Any) -> None:
    try:
        if ufunc is None:
            np.copyto(t.data, value, casting="same_kind")
        else:
            ufunc(t.data, value, out=t.data, casting="same_kind")
    except (TypeError, ValueError) as exc:  # dtype casting, broadcasting, read-only memory
        v = np.asarray(value)
        kind = TypeError if isinstance(exc, TypeError) else ValueError
        raise kind(f"{op}: cannot update a tensor of shape {t.shape} [{t.dtype}] in place with a value "
                   f"of shape {v.shape} [{v.dtype}]: {exc}") from None

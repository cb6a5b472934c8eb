"""``mg.unroll(node)``: a compiled recurrence rebuilt as the eager graph it stands for, to draw it.

A ``compile_scan`` node is ONE node; its body's ops exist only as generated code. ``unroll`` runs the
prologue (if any) and the body again, eagerly, over the node's own inputs: step ``t`` in scope
``mg.step_name(t0 + t)`` under the scope the node was made in, its outputs in the node's order (the
final carry, then every ``y`` stacked). The graph is the one ``compile=False`` records, values equal to
the compiled ones to rounding. It is built on stand-in leaves that share the inputs' data (``sources``
maps each back to the real input), so it is a separate graph: nothing of the user's graph or gradients
changes.

Given the cotangents of the node's outputs (``seeds``: what backward sent into the node, e.g. the
outputs' retained ``.grad``), every tensor of the unrolled graph gets ``.grad`` = its derivative under
the same seeds: the per-step gradients the compiled backward went through.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _state
from ..autograd import output_grads
from ..function import Node
from ..scopes import step_scopes
from ..tensor import Tensor


@dataclass
class Unrolled:
    """The eager graph of one compiled recurrence."""

    #: one Tensor per output of the node, same order, shapes and dtypes
    outputs: tuple[Tensor, ...]
    #: ``id(stand-in leaf)`` -> the node's input it stands for
    sources: dict[int, Tensor] = field(default_factory=dict)


def unroll(node: Node, seeds: Sequence[np.ndarray | None] | None = None) -> Unrolled | None:
    """The eager graph behind a ``compile_scan`` node, or None for any other node (see the module
    docstring). ``seeds``: one cotangent (or None: zero) per output of the node."""
    mod = sys.modules.get(f"{__package__}.recurrence")
    if mod is None or node.fn is not mod.ScanCall:
        return None
    p, reverse, t0 = node.program, node.reverse, node.t0
    body = p.body
    n_in = body.n_xs + body.n_carry
    stand = [Tensor(t.data, requires_grad=t.requires_grad) for t in node.inputs[:n_in]]
    prev = _state.scope
    _state.scope = node.scope
    xs = stand[:body.n_xs]
    try:
        with _state.enable_grad():
            if node.pre is not None:  # the prologue's ops, eagerly, in the node's scope
                xs = _prologue(node.pre.fn, xs, body.x_tensor)
            outputs = _run(body, xs, stand[body.n_xs:], reverse, t0)
    finally:
        _state.scope = prev
    got = Unrolled(outputs, {id(s): t for s, t in zip(stand, node.inputs)})
    if seeds is not None and any(s is not None for s in seeds):
        _set_grads(outputs, seeds)
    return got


def _prologue(fn: Any, xs: list[Tensor], x_tensor: bool) -> list[Tensor]:
    out = fn(xs[0] if x_tensor else tuple(xs))
    return [out] if isinstance(out, Tensor) else list(out)


def _run(body: Any, xs: list[Tensor], carry: list[Tensor], reverse: bool, t0: int) -> tuple[Tensor, ...]:
    """``carry, y_t = fn(carry, x_t)`` over every step, eagerly: (final carry..., stacked ys...)."""
    from ..ops import stack

    # an x that carries gradient is cut into steps by one node (as a layer splits its projection); a
    # constant one (a mask) is sliced inside each step, where the eager loop makes its constants
    pieces = [x.unbind(0) if x.requires_grad else None for x in xs]
    T = xs[0].shape[0]
    state: Any = carry[0] if body.carry_tensor else tuple(carry)
    ys: list[tuple[Tensor, ...]] = [()] * T
    with step_scopes() as enter:
        for t in (range(T - 1, -1, -1) if reverse else range(T)):
            enter(t0 + t)
            x_t = [Tensor(x.data[t]) if p is None else p[t] for x, p in zip(xs, pieces)]
            state, y = body.fn(state, x_t[0] if body.x_tensor else tuple(x_t))
            ys[t] = (y,) if isinstance(y, Tensor) else tuple(y)
    final = (state,) if isinstance(state, Tensor) else tuple(state)
    return (*final, *(stack([y[k] for y in ys], axis=0) for k in range(len(ys[0]))))


def _set_grads(outputs: tuple[Tensor, ...], seeds: Sequence[np.ndarray | None]) -> None:
    """``.grad`` of every non-leaf tensor behind ``outputs`` under the cotangents ``seeds``."""
    pairs = [(o, np.asarray(s, o.dtype)) for o, s in zip(outputs, seeds) if s is not None]
    grads = output_grads([o for o, _ in pairs], [s for _, s in pairs])
    seen: set[int] = set()
    todo = list(outputs)
    while todo:
        t = todo.pop()
        node = t.node
        if node is None or id(t) in seen:
            continue
        seen.add(id(t))
        g = grads.get(id(node), [None] * node.n_out)[t.output_index]
        if g is not None:  # as with retain_grad: no gradient reached it, no .grad
            t.grad = Tensor(np.array(g, dtype=t.dtype))
        todo.extend(node.inputs)

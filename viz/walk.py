"""Iterative traversal of the graph minigrad recorded, and :func:`retain_grads`.

The graph is read through the structure of the engine: ``Tensor.node`` (the op application that
produced a tensor, None for a leaf), ``Node.inputs``, ``Node.scope``, ``Node.name``, ``Node.n_out``, and
which output of its node a tensor is (:func:`output_index`). Nothing is modified except that
:func:`retain_grads` asks tensors to keep their gradient (``Tensor.retain_grad``, a hook).

A compiled recurrence (``mg.compile_scan``, ``rnn`` layers with ``compile=True``) is one node; with
``unroll`` (the default) it is replaced by its eager graph (``mg.unroll``: every step in its ``t=``
scope, over the node's own inputs), with gradients when the node's outputs retained theirs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import minigrad as mg
from minigrad import Node, Tensor


@dataclass
class Walk:
    """The reachable graph. Sources in ``edges`` are encoded as ints: ``i >= 0`` is ``nodes[i]``,
    ``i < 0`` is ``leaves[-i - 1]``."""

    nodes: list[Node] = field(default_factory=list)
    leaves: list[Tensor] = field(default_factory=list)
    #: (node index, output index) -> the Tensor object of that output (as seen by a consumer or a root)
    outputs: dict[tuple[int, int], Tensor] = field(default_factory=dict)
    #: (source, consumer node index, output index of the source) for every input of every node
    edges: list[tuple[int, int, int]] = field(default_factory=list)
    #: the roots as sources
    roots: list[tuple[int, int]] = field(default_factory=list)


def output_index(t: Tensor) -> int:
    """Which output of ``t.node`` the tensor ``t`` is."""
    return t.output_index


def as_roots(tensor: Any) -> list[Tensor]:
    """``tensor`` as a non-empty list of Tensors (one Tensor or a sequence of them)."""
    if isinstance(tensor, Tensor):
        return [tensor]
    if isinstance(tensor, (list, tuple)) and tensor and all(isinstance(t, Tensor) for t in tensor):
        return list(tensor)
    raise TypeError(f"viz: expected a minigrad Tensor or a non-empty list/tuple of Tensors, "
                    f"got {type(tensor).__name__}")


def walk(roots: Sequence[Tensor], unroll: bool = True) -> Walk:
    """Every node and leaf reachable from ``roots`` (explicit stack, no recursion). Leaves are
    referred to as ``-j - 1`` (j their index in ``leaves``), nodes by their index in ``nodes``.
    ``unroll``: compiled recurrences as their eager graphs (module docstring)."""
    w = _walk(roots, {}, {})
    if not unroll:
        return w
    swap: dict[int, tuple[Tensor, ...]] = {}  # id(scan node) -> its unrolled outputs
    sources: dict[int, Tensor] = {}  # id(stand-in leaf) -> the real input
    for i, n in enumerate(w.nodes):
        outs = [w.outputs.get((i, k)) for k in range(n.n_out)]
        u = mg.unroll(n, [None if o is None or o.grad is None else o.grad.data for o in outs])
        if u is not None:
            swap[id(n)] = u.outputs
            sources.update(u.sources)
    return _walk(roots, swap, sources) if swap else w


def _walk(roots: Sequence[Tensor], swap: dict[int, tuple[Tensor, ...]], sources: dict[int, Tensor]) -> Walk:
    w = Walk()
    nodes, leaves, outputs, edges = w.nodes, w.leaves, w.outputs, w.edges
    nid: dict[int, int] = {}
    lid: dict[int, int] = {}
    stack: list[Node] = []

    def ref(t: Tensor) -> tuple[int, int]:
        """(index, output index) of the node or leaf that made ``t``; new ones are recorded."""
        while swap:  # a stand-in is its real input; a scan's output is its unrolled output
            if id(t) in sources:
                t = sources[id(t)]
            elif t.node is not None and id(t.node) in swap:
                t = swap[id(t.node)][output_index(t)]
            else:
                break
        n = t.node
        if n is None:
            j = lid.get(id(t))
            if j is None:
                j = lid[id(t)] = len(leaves)
                leaves.append(t)
            return -j - 1, 0
        i = nid.get(id(n))
        if i is None:
            i = nid[id(n)] = len(nodes)
            nodes.append(n)
            stack.append(n)
        k = output_index(t)
        outputs.setdefault((i, k), t)
        return i, k

    w.roots.extend(ref(r) for r in roots)
    while stack:
        n = stack.pop()
        i = nid[id(n)]
        for t in n.inputs:
            src, k = ref(t)
            edges.append((src, i, k))
    return w


def retain_grads(tensor: Tensor | Iterable[Tensor]) -> int:
    """Ask every intermediate (non-leaf) tensor of the graph behind ``tensor`` to keep its gradient.

    Call it after the forward pass and before ``backward()``; then :func:`viz.draw` shows (and colours
    by) the gradient norm ``||dL/dz||`` of every intermediate ``z``, e.g. of the hidden state at every
    time step. Leaves (parameters) keep their gradient anyway. Uses ``Tensor.retain_grad`` (a backward
    hook); the engine is not modified. Returns the number of tensors that will retain their gradient.
    """
    roots = as_roots(list(tensor) if not isinstance(tensor, Tensor) else tensor)
    with mg.pause_gc():
        w = walk(roots, unroll=False)  # a compiled recurrence's outputs: its gradients, drawn unrolled
        for t in w.outputs.values():
            t.retain_grad()
    return len(w.outputs)

"""The backward pass: reverse-mode accumulation over the recorded graph.

For a root ``y`` and seed ``g = dL/dy`` every node is visited once, in reverse topological order, and
its op's ``backward`` maps the gradients of its outputs to those of its inputs (vector-Jacobian
products). A tensor used by several nodes receives the *sum* of their contributions:
``dL/dx = sum_k (dL/dz_k)(dz_k/dx)`` -- which is exactly backpropagation through time when the same
weight is used at every step of an unrolled recurrence.

The topological order is computed iteratively (an explicit stack), so a 100,000-node chain needs no
recursion. Arrays an op saved for backward are freed as soon as its node is done, unless
``retain_graph=True``.
"""

from __future__ import annotations

import gc
from typing import Any

import numpy as np

from . import _state
from .function import Node, _check_finite
from .tensor import Tensor


def toposort(root: Node) -> list[Node]:
    """Nodes reachable from ``root``, every node after all nodes it depends on (iterative DFS)."""
    # A node is marked when it is EXPANDED (not when pushed): marking at push time lets a node that is
    # also reachable through a later-expanded sibling be emitted after that sibling's consumer, e.g.
    # stack([h0, f(h0)]) would process h0 before f(h0) had sent it its gradient.
    order: list[Node] = []
    seen: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    pop, push = stack.pop, stack.append
    while stack:
        node, done = pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        push((node, True))
        for t in node.inputs:
            n = t._node
            if n is not None and id(n) not in seen:
                push((n, False))
    return order


def _freed_error(node: Node) -> RuntimeError:
    return RuntimeError(
        f"backward: trying to backward through the graph a second time: {node.where()} has already "
        "been differentiated and its saved arrays were freed. Call backward(retain_graph=True) on the "
        "first pass if you need to differentiate the same graph again."
    )


def _readonly(g: np.ndarray) -> np.ndarray:
    v = g.view()
    v.flags.writeable = False
    return v


def _check_versions(node: Node) -> None:
    """Refuse to differentiate a node an array of which was updated in place after it ran (the
    version counter of ``minigrad.inplace``), as PyTorch does."""
    what = node.corrupted
    if what is None:
        for k, t in enumerate(node.inputs):
            box = t._vbox
            if box is not None and box[0] > node.epoch and node.saves(t.data):
                what = f"its input {k} (shape {t.shape} [{t.dtype}]) was updated in place after it ran"
                break
    if what is not None:
        raise RuntimeError(f"backward: an array saved for the gradient of {node.where()} was modified: "
                           f"{what}. Update a .clone() instead, or do the update after backward.")


def _seed(root: Tensor, grad: Any) -> np.ndarray:
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward: the tensor has shape {root.shape}; backward without a gradient argument "
                "is only defined for a single-element (scalar) output. Pass grad= of the same shape."
            )
        shape = root.data.shape  # () for a loss: np.array is ~1 us cheaper than np.ones
        return np.array(1, root.dtype) if not shape else np.ones(shape, root.dtype)
    g = grad.data if isinstance(grad, Tensor) else np.asarray(grad)
    if g.shape != root.shape:
        raise ValueError(f"backward: grad has shape {g.shape} but the tensor has shape {root.shape}")
    return np.asarray(g, dtype=root.dtype)


def backward(root: Tensor, grad: Any = None, retain_graph: bool = False) -> None:
    """Accumulate ``grad * d(root)/d(leaf)`` into ``leaf.grad`` for every leaf that requires grad.

    The cyclic garbage collector is paused meanwhile: the pass allocates many small containers and
    creates no reference cycles, and collections over a large graph would make it superlinear.
    """
    if not gc.isenabled():
        return _backward(root, grad, retain_graph)
    gc.disable()
    try:
        return _backward(root, grad, retain_graph)
    finally:
        gc.enable()


def _backward(root: Tensor, grad: Any, retain_graph: bool) -> None:
    if not root.requires_grad:
        raise RuntimeError("backward: the tensor does not require grad (no input required grad, or it "
                           "was created under no_grad / from .detach())")
    seed = _seed(root, grad)
    top = root._node
    # Gradient buffers: per node a list with one slot per output; per leaf [tensor, grad].
    leaf: dict[int, list] = {}
    # ids of buffer arrays this pass allocated itself, hence safe to add into in place; any other array
    # may be aliased (an op may return its incoming gradient unchanged, e.g. add).
    owned: set[int] = set()
    if top is None:
        leaf[id(root)] = [root, seed]
        _finish_leaves(leaf, owned)
        return
    _reverse_pass(root, top, seed, leaf, owned, retain_graph)
    _finish_leaves(leaf, owned)


def _reverse_pass(root: Tensor, top: Node, seed: np.ndarray, leaf: dict[int, list], owned: set[int],
                  retain_graph: bool, seen: dict[int, list] | None = None) -> None:
    """Every node from ``top`` down, once, in reverse topological order: its VJP, accumulated into the
    gradient buffers of its inputs' nodes and into ``leaf``. ``seen``: if given, receives each node's
    output gradients by ``id(node)``."""
    anomaly = _state.anomaly
    bufs: dict[Node, list] = {top: [None] * top.n_out}
    bufs[top][root._idx] = seed
    pop = bufs.pop
    # a root whose inputs are all leaves is the whole graph (no sort needed)
    order = toposort(top) if any(t._node is not None for t in top.inputs) else (top,)
    version = _state.version
    for node in reversed(order):
        if node.released:
            raise _freed_error(node)
        if node.epoch != version or node.corrupted is not None:
            _check_versions(node)
        gl = pop(node, None)
        if gl is None:
            if not retain_graph:
                node.release()
            continue
        if node.hooks:
            _run_node_hooks(node, gl)
        if seen is not None:
            seen[id(node)] = gl
        if owned:  # the op may keep or return these arrays: they are no longer ours to add into
            for g in gl:
                owned.discard(id(g))
        if not node.fn.builtin:
            gl = [None if g is None else _readonly(g) for g in gl]
        in_grads = node.fn.backward(node, gl) if node.multi else node.fn.backward(node, gl[0])
        if type(in_grads) is not tuple and type(in_grads) is not list:
            in_grads = (in_grads,)
        inputs = node.inputs
        if len(in_grads) != len(inputs):
            raise RuntimeError(f"backward of op '{node.name}' returned {len(in_grads)} gradients "
                               f"for {len(inputs)} inputs")
        for t, g, need in zip(inputs, in_grads, node.needs_input_grad):
            if g is None or not need:
                continue
            if type(g) is not np.ndarray:
                g = np.asarray(g)
            data = t.data
            if g.shape != data.shape:
                raise RuntimeError(f"backward of op '{node.name}' returned a gradient of shape "
                                   f"{g.shape} for an input of shape {data.shape}")
            if g.dtype != data.dtype:
                g = g.astype(data.dtype)
            if anomaly:
                _check_finite(g, node, "backward")
            pn = t._node
            if pn is None:
                slot = leaf.get(id(t))
                if slot is None:
                    leaf[id(t)] = [t, g]
                    continue
                k = 1
            else:
                slot = bufs.get(pn)
                if slot is None:
                    slot = bufs[pn] = [None] * pn.n_out
                k = t._idx
            cur = slot[k]
            if cur is None:
                slot[k] = g
            elif id(cur) in owned:
                cur += g
            else:
                cur = cur + g
                if type(cur) is not np.ndarray:  # 0-d + 0-d gives a NumPy scalar: += would not be in place
                    cur = np.asarray(cur)
                owned.add(id(cur))
                slot[k] = cur
        if not retain_graph:
            node.release()


def output_grads(outputs: list[Tensor], seeds: list[np.ndarray]) -> dict[int, list]:
    """The gradient of every output of every node behind ``outputs`` (by ``id(node)``), for the
    cotangents ``seeds`` of the outputs, without touching any leaf's ``.grad`` or freeing any saved
    array: a vector-Jacobian product over the graph, as ``torch.autograd.grad`` computes."""
    terms = [(o * Tensor(s)).sum() for o, s in zip(outputs, seeds)]
    root = terms[0]
    for t in terms[1:]:
        root = root + t
    seen: dict[int, list] = {}
    if root._node is not None:
        _reverse_pass(root, root._node, np.ones((), root.dtype), {}, set(), True, seen)
    return seen


def _apply_hooks(hooks: list, g: np.ndarray, where: str) -> np.ndarray:
    """Run ``hooks`` on ``g`` in order; a non-None return replaces ``g`` (same shape, g's dtype)."""
    for h in hooks:
        r = h(g) if getattr(h, "__minigrad_retain__", False) else h(Tensor._make(_readonly(g), None, 0))
        if r is not None:
            r = np.asarray(r.data if isinstance(r, Tensor) else r, dtype=g.dtype)
            if r.shape != g.shape:
                raise RuntimeError(f"backward: a hook on {where} returned a gradient of shape {r.shape}; "
                                   f"expected {g.shape}")
            g = r
    return g


def _run_node_hooks(node: Node, gl: list) -> None:
    """User hooks in registration order, then ``retain_grad``'s (last, as in PyTorch)."""
    for k, hooks in node.hooks.items():
        if gl[k] is not None:
            order = sorted(hooks, key=lambda h: getattr(h, "__minigrad_retain__", False))
            gl[k] = _apply_hooks(order, gl[k], f"output {k} of op '{node.name}'")


def _finish_leaves(leaf: dict[int, list], owned: set[int]) -> None:
    for t, g in leaf.values():
        if t._hooks:
            new = _apply_hooks(list(t._hooks), g, f"a leaf tensor of shape {t.shape}")
            if new is not g:
                owned.discard(id(new))
                g = new
        cur = t._grad
        if cur is None:
            t._grad = Tensor._make(g if id(g) in owned else g.copy(), None, 0)
        elif cur.data.shape == g.shape and cur.data.dtype == g.dtype and cur.data.flags.writeable:
            cur.data += g  # accumulate in place: the same .grad Tensor, as in PyTorch
        else:
            t._grad = Tensor(np.asarray(cur.data + g))

"""Tracing: run ``fn`` once on its arguments with a recorder set, and build the ``Graph`` of what ran.

Every ``Function.apply`` calls ``Tracer.record`` while tracing (``minigrad._state.tracer``). A tensor
the trace has not seen is a leaf: an argument, a *capture* (a parameter or buffer ``fn`` reads through
``self`` or a closure: re-read at every call) or a *constant* (a scalar like the ``1`` of ``1 - z``, or
an array made inside ``fn``: its value is fixed by the trace). The trace runs under ``no_grad`` so that
it builds no eager graph; which values need gradients is worked out on the IR.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .. import _state
from .._state import no_grad
from ..function import Function, user_line
from ..ops import elementwise, linalg, reduction, shape
from ..ops.pointwise import Pointwise
from ..tensor import Tensor
from .ir import CompileError, Graph, Op, Value, identifier


def trace(fn: Callable[..., Any], args: Sequence[Any], flat: Sequence[Tensor],
          names: Sequence[str], constant: Sequence[bool] = ()) -> tuple[Graph, Any, list]:
    """``(graph, outputs, captured tensors)`` of one call ``fn(*args)``, where ``flat`` are the tensors
    in ``args`` (tuples opened) and ``names`` theirs; ``outputs`` is what ``fn`` returned (a Tensor or
    a tuple/list of Tensors). ``constant[k]``: flat argument k gets no gradient (else every float one
    does)."""
    # a module's method: captures named as the module calls them (a cell's ``weight_hh`` in every layer,
    # so that the layers share one generated module)
    owner = getattr(inspect.unwrap(fn), "__self__", None)
    labels = {id(p): n for n, p in owner.named_parameters()} if hasattr(owner, "named_parameters") else {}
    tracer = Tracer(flat, names, labels, constant)
    if _state.tracer is not None:
        raise CompileError("minigrad.compile: a compiled function was called while tracing another "
                           "(nested compile is not supported)")
    _state.tracer = tracer
    try:
        with no_grad():
            result = fn(*args)
    finally:
        _state.tracer = None
    outs = _flatten_outputs(result)
    tracer.graph.outputs = [tracer.output(t, k) for k, t in enumerate(outs)]
    captured = tracer.finish()
    return tracer.graph, result, captured


def _flatten_outputs(result: Any) -> list[Tensor]:
    items = list(result) if isinstance(result, (tuple, list)) else [result]
    if not items or not all(isinstance(t, Tensor) for t in items):
        raise CompileError("minigrad.compile: fn must return a Tensor or a tuple of Tensors, got "
                           f"{type(result).__name__}")
    return items


class Tracer:
    """Records ops into a ``Graph`` (see the module docstring)."""

    def __init__(self, args: Sequence[Tensor], names: Sequence[str], labels: dict[int, str],
                 constant: Sequence[bool] = ()) -> None:
        self.graph = Graph([], [], [], [], [])
        self.labels = labels
        self.base = len(_state.scope)  # scopes are recorded relative to the caller's
        self.values: dict[int, Value] = {}
        self.taken: set[str] = set()
        self.keep: list[Tensor] = []  # strong references: ids stay unique during the trace
        self.leaves: list[tuple[weakref.ref, Value, np.ndarray]] = []
        for k, (t, n) in enumerate(zip(args, names)):
            if id(t) in self.values:
                raise CompileError(f"minigrad.compile: the same tensor is passed as two arguments ({n})")
            grad = t.dtype.kind == "f" and not (k < len(constant) and constant[k])
            v = Value(t.shape, t.dtype, "arg", identifier(n, self.taken), grad)
            self._bind(t, v)
            self.graph.args.append(v)

    def _bind(self, t: Tensor, v: Value) -> None:
        self.values[id(t)] = v
        self.keep.append(t)

    def value_of(self, t: Tensor) -> Value:
        v = self.values.get(id(t))
        if v is not None:
            return v
        if t.data.ndim == 0 and not t.requires_grad:  # a scalar constant, e.g. the 1 of 1 - z
            v = Value((), t.dtype, "const", identifier("c", self.taken), const=t.data.copy())
            self.graph.consts.append(v)
        else:  # a capture, unless it turns out to be a temporary made inside fn (see finish)
            label = self.labels.get(id(t)) or t.name or "captured"
            v = Value(t.shape, t.dtype, "capture", identifier(label, self.taken),
                      t.dtype.kind == "f")
            self.graph.captures.append(v)
            self.leaves.append((weakref.ref(t), v, t.data))
        self._bind(t, v)
        return v

    def record(self, cls: type[Function], inputs: Sequence[Tensor], params: dict[str, Any],
               outs: Sequence[Tensor]) -> None:
        ins = [self.value_of(t) for t in inputs]
        line = user_line()
        grad = cls.differentiable and any(v.requires_grad for v in ins)
        for k, (kind, attrs, src) in enumerate(lower(cls, params, ins, outs, line)):
            t = outs[k]
            label = (attrs["cls"].name or attrs["cls"].__name__) if kind == "pw" else kind
            v = Value(t.shape, t.dtype, "op", identifier(label, self.taken),
                      grad and t.dtype.kind == "f")
            v.op = Op(kind, src, v, attrs, _state.scope[self.base:], line)
            self.graph.ops.append(v.op)
            self._bind(t, v)

    def concrete(self, t: Tensor, what: str) -> None:
        """``t.item()`` / ``bool(t)`` while tracing: fine for constants, an error for traced values."""
        v = self.values.get(id(t))
        if v is not None and v.kind in ("arg", "op"):
            raise CompileError(f"minigrad.compile: {what} of a traced value ({v.name}) at {user_line()}: "
                               "the trace cannot follow Python control flow on tensor values; run "
                               "this function uncompiled (compile=False)")

    def output(self, t: Tensor, k: int) -> Value:
        v = self.values.get(id(t))
        if v is None or v.kind != "op":
            raise CompileError(f"minigrad.compile: output {k} of fn is not computed by an op of fn "
                               "(it returns an argument, a captured tensor or a constant unchanged); "
                               "return t.clone() instead")
        return v

    def finish(self) -> list[Tensor]:
        """Drop the strong references; a capture that died was a temporary made inside fn, so its
        trace value is a constant. Returns the live captured tensors, in ``graph.captures`` order."""
        self.keep.clear()
        self.values.clear()
        captured: list[Tensor] = []
        g = self.graph
        g.captures = []
        for ref, v, data in self.leaves:
            t = ref()
            if t is None:
                v.kind, v.const, v.requires_grad = "const", data, False
                g.consts.append(v)
            else:
                g.captures.append(v)
                captured.append(t)
        self.leaves.clear()
        _propagate_grad(g)
        return captured


def _propagate_grad(g: Graph) -> None:
    """``requires_grad`` of op outputs again, now that temporaries became constants."""
    for op in g.ops:
        differentiable = op.attrs.get("cls") is None or op.attrs["cls"].differentiable
        op.out.requires_grad = (differentiable and op.out.dtype.kind == "f"
                                and any(v.requires_grad for v in op.ins))


def lower(cls: type[Function], params: dict[str, Any], ins: list[Value], outs: Sequence[Tensor],
          line: str) -> list[tuple[str, dict[str, Any], list[Value]]]:
    """``(kind, attrs, inputs)`` per output of one recorded op, or a ``CompileError``."""
    if issubclass(cls, Pointwise):
        return [("pw", {"cls": cls, "params": dict(params)}, ins)]
    simple = {linalg.MatMul: "matmul", shape.Transpose: "transpose", shape.Reshape: "reshape",
              shape.Concatenate: "concat", shape.Stack: "stack", reduction.Sum: "sum",
              reduction.Mean: "mean", shape.BroadcastTo: "broadcast", elementwise.AsType: "astype",
              elementwise.Clone: "copy"}
    kind = simple.get(cls)
    if kind == "matmul" and not (ins[0].shape and len(ins[0].shape) == 2 and len(ins[1].shape) == 2):
        kind = None
    if kind is not None:
        return [(kind, dict(params), ins)]
    if cls is shape.Split or (cls is shape.GetItem and _basic(params["idx"])):
        idxs = params["slices"] if cls is shape.Split else (params["idx"],)
        return [("slice", {"idx": _normal_index(i, ins[0].shape)}, ins) for i in idxs]
    name = cls.name or cls.__name__
    raise CompileError(f"minigrad.compile: op '{name}' is not supported by the compiler (at {line}); "
                       "supported: pointwise ops, matmul of 2-D arrays, transpose, reshape, slicing, "
                       "split/chunk/unbind, cat, stack, sum, mean, broadcast_to, astype, clone. "
                       "Run this function uncompiled (compile=False).")


def _basic(idx: Any) -> bool:
    idx = idx if isinstance(idx, tuple) else (idx,)
    return all(isinstance(i, (slice, int, np.integer)) for i in idx)


def _normal_index(idx: Any, shape_: tuple[int, ...]) -> tuple:
    """A basic index as a tuple of one ``slice``/``int`` per leading axis, with explicit bounds."""
    idx = idx if isinstance(idx, tuple) else (idx,)
    out = []
    for i, n in zip(idx, shape_):
        if isinstance(i, slice):
            out.append(slice(*i.indices(n)))
        else:
            out.append(int(i) % n)
    return tuple(out)

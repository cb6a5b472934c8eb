"""``minigrad.compile(fn)``: trace once per signature, generate Numba forward and backward, run them.

In the outer graph a compiled call is ONE node (``CompiledCall``) whose backward runs the generated
backward. A signature is the arguments' shapes and dtypes (arguments are Tensors or tuples of
Tensors, like an RNN state); the generated backward gives every float input its gradient and the node
passes on those the inputs want, so one program serves calls with and without ``requires_grad``.
Captured tensors (parameters read through ``self``) are re-read at every call, retraced if their shape
or dtype changed. As with
``jax.jit`` and ``torch.jit.trace``, Python control flow is frozen by the trace: ``bool(t)`` or
``t.item()`` on a traced value is an error rather than a silently wrong trace.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _state
from ..function import Function, Node
from ..tensor import Tensor
from .cache import load
from .codegen import Dims, forward_source, kernel_params, module_source, plan
from .derive import Backward
from .ir import CompileError, Graph, Value
from .trace import trace


class CompiledCall(Function):
    """One call of a compiled function: the generated forward; backward = the generated backward."""

    name = "compiled"

    @staticmethod
    def forward(ctx: Node, *arrays: np.ndarray, program: Program) -> tuple[np.ndarray, ...]:
        res = program.forward(program.dims, *arrays, *program.const_arrays)
        n = len(program.graph.outputs)
        ctx.program, ctx.saved = program, tuple(res[n:])
        return tuple(res[:n])

    @staticmethod
    def backward(ctx: Node, grads: list[np.ndarray | None]) -> tuple[np.ndarray | None, ...]:
        p: Program = ctx.program
        gs = [np.zeros(v.shape, v.dtype) if g is None else g for g, v in zip(grads, p.graph.outputs)]
        got = p.backward(p.dims, *ctx.saved, *gs)
        out: list[np.ndarray | None] = [None] * len(ctx.inputs)
        needs = ctx.needs_input_grad
        for k, i in enumerate(p.wanted):
            if needs[i]:
                out[i] = got[k]
        return tuple(out)


class Program:
    """The compiled code of one signature: graph, generated source and jitted functions."""

    #: jit the drivers too, not only the loops (a recurrence calls them from its own jitted loop)
    jit_all = False

    def __init__(self, fn: Callable[..., Any], args: tuple, flat: list[Tensor], names: list[str],
                 constant: tuple[bool, ...] = ()) -> None:
        """``constant[k]``: flat argument k gets no gradient (the backward does not compute one)."""
        graph, result, captured = trace(fn, args, flat, names, constant)
        self.graph: Graph = graph
        self.captured = captured
        self.capture_sig = [_sig(t) for t in captured]
        self.structure = type(result) if isinstance(result, (tuple, list)) else None
        ins = [*graph.args, *graph.captures]
        self.wanted = [i for i, v in enumerate(ins) if v.requires_grad]
        self.rewrite(graph)
        self.const_arrays = [v.const for v in graph.consts if not v.is_scalar_const]
        units, keep, recall = plan(graph)
        bsrc = None
        #: the forward arrays the backward reads, in the order ``forward`` returns them after the outputs
        self.saved: list[Value] = []
        #: with a recurrence's options: the adjoints the step returns, and its deferred products
        self.returned: list[Value] = []
        self.deferred: list[tuple[Value, Value, str]] = []
        #: what the backward writes into arrays its caller passes last: args' adjoints and deferred
        #: products' g (by index), as ``Backward.give`` lists them
        self.gives: list[Value | int] = []
        #: the backward's variables -> the array each holds when it returns (``Backward.arrays``)
        self.arrays: dict[str, str] = {}
        dims = Dims()
        if self.wanted:
            bw = Backward(graph, recall, dims, **self.backward_options())
            bsrc = bw.source(units)
            self.saved = list(bw.needs.values())
            self.returned, self.deferred = bw.returned, bw.deferred
            self.gives = [key for key, _ in bw.gives]
            self.arrays = bw.arrays()
        #: loop outputs the caller of ``forward`` passes in (a subclass's)
        self.given = self.given_outputs(units, keep)
        fsrc = forward_source(graph, units, keep, self.saved, kernel_params(graph), dims, tuple(self.given),
                              tuple(self.computed_by_caller()))
        extra = self.extra_source(dims)
        self.dims = dims.tuple()
        self.source = module_source(_where(fn), _summary(graph), fsrc, bsrc, *extra, in_numba=self.jit_all)
        self.bind(load(self.source, self.jit_all))
        self.node = type("CompiledCall", (CompiledCall,), {"name": f"compiled {_name(fn)}",
                                                           "__module__": __name__})

    def rewrite(self, graph: Graph) -> None:
        """Rewrite the traced graph before it is planned (a subclass's; its values and arguments stay)."""

    def given_outputs(self, units: list, keep: set[int]) -> list[str]:
        """Names of loop outputs ``forward`` takes as parameters instead of allocating them (``keep``:
        ids of the values that leave their loop as arrays)."""
        return []

    def backward_options(self) -> dict[str, Any]:
        """Options of the ``Backward`` that derives this program's backward (a subclass's)."""
        return {}

    def computed_by_caller(self) -> list[Value]:
        """Op values ``forward`` takes as parameters instead of computing them (a subclass's)."""
        return []

    def extra_source(self, dims: Dims) -> list[str]:
        """More functions for the module (a subclass's)."""
        return []

    def bind(self, mod: Any) -> None:
        self.forward = mod.forward
        self.backward = getattr(mod, "backward", None)

    def valid(self) -> bool:
        return all(_sig(t) == s for t, s in zip(self.captured, self.capture_sig))

    def run(self, flat: list[Tensor]) -> Any:
        ins = flat + self.captured
        if self.wanted and _state.grad_enabled and any(t.requires_grad for t in ins):
            outs = self.node.apply(*ins, program=self)
        else:
            res = self.forward(self.dims, *[t.data for t in ins], *self.const_arrays)
            outs = tuple(Tensor._make(a, None, 0) for a in res[:len(self.graph.outputs)])
        if self.structure is None:
            return outs[0]
        return self.structure(outs)


def _sig(t: Tensor) -> tuple:
    return (t.data.shape, t.data.dtype)


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__name__", type(fn).__name__)


def _where(fn: Callable[..., Any]) -> str:
    target = inspect.unwrap(fn)
    target = getattr(target, "__func__", target)
    try:
        return f"{target.__qualname__} ({inspect.getsourcefile(target)}:{inspect.getsourcelines(target)[1]})"
    except (TypeError, OSError):
        return getattr(target, "__qualname__", repr(target))


def _summary(graph: Graph) -> str:
    ins = ", ".join(f"{v.name} ({v.dtype}, {len(v.shape)}-D)" for v in (*graph.args, *graph.captures))
    outs = ", ".join(v.name for v in graph.outputs)
    return f"Inputs: {ins}.\nOutputs: {outs}."


def arg_names(fn: Callable[..., Any], args: tuple) -> list[str]:
    """Names for the flattened arguments: the parameter's name (``state_0``, ``state_1`` for a tuple)."""
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = []
    for k, a in enumerate(args):
        base = params[k] if k < len(params) else f"arg{k}"
        if isinstance(a, (tuple, list)):
            names += [f"{base}_{j}" for j in range(len(a))]
        else:
            names.append(base)
    return names


def _flatten(args: tuple) -> tuple[list[Tensor], tuple]:
    """The tensors of ``args`` (tuples opened) and the layout: None per Tensor, the length per tuple."""
    flat: list[Tensor] = []
    layout: list[int | None] = []
    for k, a in enumerate(args):
        if isinstance(a, Tensor):
            flat.append(a)
            layout.append(None)
        elif isinstance(a, (tuple, list)) and all(isinstance(t, Tensor) for t in a):
            flat.extend(a)
            layout.append(len(a))
        else:
            raise TypeError(f"minigrad.compile: argument {k} must be a Tensor or a tuple of Tensors, got "
                            f"{type(a).__name__}")
    return flat, tuple(layout)


_CACHE_LOCK = threading.Lock()  # one for every cache: an instance's own would make layers uncopyable


class ProgramCache:
    """Programs by argument signature, at most ``limit``, the least recently used dropped first (with
    the buffers it pooled): each new shape traces a program of its own (a few ms; the generated module
    is shared by every size), so varying shapes must not grow memory without bound."""

    def __init__(self, limit: int = 16) -> None:
        self.limit = limit
        self.entries: dict[tuple, Any] = {}

    def get(self, key: tuple, make: Callable[[], Any]) -> Any:
        """The program for ``key``; ``make()`` makes it when absent or no longer valid (a capture
        changed shape or dtype)."""
        with _CACHE_LOCK:
            prog = self.entries.pop(key, None)
            if prog is not None and prog.valid():
                self.entries[key] = prog  # now the most recently used
                return prog
        prog = make()  # outside the lock: tracing and compiling take long (two threads may both make)
        with _CACHE_LOCK:
            self.entries[key] = prog
            while len(self.entries) > self.limit:
                del self.entries[next(iter(self.entries))]
        return prog

    def __len__(self) -> int:
        return len(self.entries)


class Compiled:
    """``fn`` compiled (see the module docstring); call it like ``fn``."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        if not callable(fn):
            raise TypeError(f"minigrad.compile: expected a callable, got {type(fn).__name__}")
        self.fn = fn
        self.programs = ProgramCache()
        functools.update_wrapper(self, fn, updated=())

    def program(self, *args: Any) -> Program:
        """The compiled program for these arguments (traced and generated on first use)."""
        flat, layout = _flatten(args)
        return self._program(args, flat, layout)

    def _program(self, args: tuple, flat: list[Tensor], layout: tuple) -> Program:
        key = (layout, *[(t.data.shape, t.data.dtype) for t in flat])
        return self.programs.get(key, lambda: Program(self.fn, args, flat, arg_names(self.fn, args)))

    def __call__(self, *args: Any) -> Any:
        if _state.tracer is not None:  # inside another trace: inline
            return self.fn(*args)
        flat, layout = _flatten(args)
        return self._program(args, flat, layout).run(flat)

    def source(self, *args: Any) -> str:
        """The generated module (forward and backward) for these example arguments, with the sizes
        ``dims`` this call passes (the module itself is the same for every size)."""
        prog = self.program(*args)
        sizes = ", ".join(f"n{k} = {n}" for k, n in enumerate(prog.dims) if prog.dims != (0,))
        return prog.source + (f"\n# this call: dims = ({sizes})\n" if sizes else "")


__all__ = ["CompileError", "Compiled", "ProgramCache"]

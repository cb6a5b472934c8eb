"""``minigrad.compile_scan(fn)``: a whole recurrence as generated code (JAX's ``lax.scan``, compiled).

``carry_T, ys = compile_scan(fn)(init, xs, reverse=False)`` runs ``carry, y_t = fn(carry, x_t)`` for
t = 0 .. T-1 (T-1 .. 0 with ``reverse``), where ``x_t = xs[t]`` (``xs`` a Tensor or a tuple of
Tensors, each (T, ...)) and ``ys`` stacks every ``y_t`` into (T, ...). The body is traced ONCE into the
compiler's IR; its step forward and backward are generated as for ``minigrad.compile``; then two more
functions are generated and the four are jitted together:

    scan_forward:   w_T = W^T etc. once (C-ordered);
                    for each t: carry, y_t = forward(x_t, carry, w_T, out=saved[t])  (loops write saved[t])
    scan_backward:  for each t, last first:
                        d_x_t, d_carry, d_w_t, g_t = backward(saved[t], d_carry + d_y_t);  d_w += d_w_t
                    then, once:  d_W += h^T g  over all T*B rows;  the backward of w.T etc.

so backpropagation through time is the step's derived backward run in a loop, carrying the state's
adjoint, with the gradients of the weights (captures) summed over the steps: a product ``h @ W^T``
returns its ``g_t`` and its weight gradient is ONE product after the loop. In the outer graph the
whole recurrence is ONE node.

``compile_scan(fn, prologue=pre)`` runs ``xs = pre(xs)`` on the whole sequence first, compiled as a
program of its own (``minigrad.compile``'s) inside the same node: the part of a step that reads the
inputs alone (an input projection: ONE product over all T*B rows, ``dW_ih = X^T dP`` ONE product in
its backward), so the outer graph holds no node of it. An x that ``pre`` returns unchanged (a mask)
goes to the loop as it is.

Here: the node (``ScanCall``), the program (``ScanProgram``) and ``Scan``; the loops' source is
``scan_source``, the prologue ``prologue``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from .. import _state
from ..function import Function, Node
from ..tensor import Tensor
from .api import Program, ProgramCache
from .codegen import Dims
from .fuse import Region
from .ir import CompileError, Value
from .prologue import Prologue, plain
from .scan_source import backward_loop, forward_loop, g_shape
from .workspace import Workspace

#: array ops whose backward needs no forward value, so it can run once after the loop (``hoisted``)
HOISTABLE = {"transpose", "reshape", "astype", "copy"}


class ScanCall(Function):
    """One compiled recurrence over a sequence (after its prologue, if any); backward = the generated
    backward loop (then the prologue's backward). Inputs: xs, carry, the prologue's captures, the
    body's captures."""

    name = "compiled scan"

    @staticmethod
    def forward(ctx: Node, *arrays: np.ndarray, program: ScanProgram, pre: Prologue | None, reverse: bool,
                t0: int) -> tuple[np.ndarray, ...]:
        p = program
        xs, ctx.pre_saved, rest, res = _forward(p, pre, tuple(plain(a) for a in arrays), reverse)
        n = p.n_carry + p.n_ys
        ctx.program, ctx.pre, ctx.reverse, ctx.t0 = p, pre, reverse, t0  # t0: step 0's index (mg.unroll)
        ctx.xs, ctx.invariant, ctx.saved = xs, rest, res[n:]
        ctx.shapes = [a.shape for a in res[:n]]
        return tuple(res[:n])

    @staticmethod
    def backward(ctx: Node, grads: list[np.ndarray | None]) -> tuple[np.ndarray | None, ...]:
        p: ScanProgram = ctx.program
        outs = [*p.carry_values, *p.ys_values]
        gs = [np.zeros(shape, v.dtype) if g is None else plain(g)
              for g, v, shape in zip(grads, outs, ctx.shapes)]
        bufs = p.adjoint_space.buffers(ctx.xs[0].shape[0])
        got = p.scan_backward(p.dims, ctx.reverse, *ctx.xs, *ctx.saved, *ctx.invariant, *p.const_arrays,
                              *gs[p.n_carry:], *gs[:p.n_carry], *bufs) if p.wanted else ()
        mine: list[np.ndarray | None] = [None] * (p.n_xs + p.n_carry + len(ctx.invariant))
        for k, i in enumerate(p.wanted):
            mine[i] = got[k]
        if ctx.pre is None:
            out = mine
        else:  # d(raw xs), d(prologue captures) from the prologue's backward; the rest as they are
            d_raw = ctx.pre.backward(ctx.pre_saved, mine[:p.n_xs])
            out = [*d_raw[:p.n_xs], *mine[p.n_xs:p.n_xs + p.n_carry], *d_raw[p.n_xs:],
                   *mine[p.n_xs + p.n_carry:]]
        return tuple(g if need else None for g, need in zip(out, ctx.needs_input_grad))


def _forward(p: ScanProgram, pre: Prologue | None, arrays: tuple[np.ndarray, ...], reverse: bool) -> tuple:
    """The prologue then ``scan_forward`` on the node's input arrays: (the loop's xs, what the
    prologue's backward reads, the loop's invariant arrays, ``scan_forward``'s result)."""
    k = p.n_xs + p.n_carry
    xs, carry, rest = arrays[:p.n_xs], arrays[p.n_xs:k], arrays[k:]
    saved: tuple[np.ndarray, ...] = ()
    if pre is not None:
        n = len(pre.program.captured)
        xs, saved = pre.forward(xs, rest[:n])
        rest = rest[n:]
    bufs = p.saved_space.buffers(xs[0].shape[0])
    res = p.scan_forward(p.dims, reverse, *xs, *carry, *rest, *p.const_arrays, *bufs)
    n = p.n_carry + p.n_ys
    return xs, saved, rest, (*res[:n], *bufs, *res[n:])


class _Body:
    """``fn(carry, x) -> (carry, y)`` as a flat function of ``(*x_t, *carry)`` returning the new carry
    then the ys that are not a carry (a y that IS a carry, like an RNN's output h, is read from it)."""

    def __init__(self, fn: Callable[..., Any], n_xs: int, n_carry: int, x_tensor: bool,
                 carry_tensor: bool) -> None:
        self.fn, self.n_xs, self.n_carry = fn, n_xs, n_carry
        self.x_tensor, self.carry_tensor = x_tensor, carry_tensor
        self.y_source: list[int] = []  # per y: the index of the graph output it is
        self.y_tensor = False
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *flat: Tensor) -> tuple[Tensor, ...]:
        xs, carry = flat[:self.n_xs], flat[self.n_xs:]
        res = self.fn(carry[0] if self.carry_tensor else tuple(carry), xs[0] if self.x_tensor else tuple(xs))
        if not (isinstance(res, (tuple, list)) and len(res) == 2):
            raise CompileError("compile_scan: fn(carry, x) must return (new_carry, y), got "
                               f"{type(res).__name__}")
        new, ys = res
        new = (new,) if isinstance(new, Tensor) else tuple(new)
        self.y_tensor = isinstance(ys, Tensor)
        ys = (ys,) if self.y_tensor else tuple(ys)
        if len(new) != self.n_carry or not all(isinstance(t, Tensor) for t in (*new, *ys)):
            raise CompileError(f"compile_scan: fn must return a new carry of {self.n_carry} tensor(s) like "
                               f"init and Tensor ys, got {len(new)} and {[type(y).__name__ for y in ys]}")
        outs = list(new)
        self.y_source = []
        for y in ys:
            k = next((i for i, o in enumerate(outs) if o is y), None)
            if k is None:
                k = len(outs)
                outs.append(y)
            self.y_source.append(k)
        return tuple(outs)


class ScanProgram(Program):
    """A recurrence's compiled code: the step's forward/backward and the loops over time."""

    jit_all = True

    def __init__(self, body: _Body, flat: list[Tensor], names: list[str], recompute: bool = False) -> None:
        self.body = body
        self.n_xs, self.n_carry = body.n_xs, body.n_carry
        #: keep only the carry per step; the backward loop runs each step's forward again
        self.recompute = recompute
        super().__init__(body, tuple(flat), flat, names)
        g = self.graph
        self.carry_values = g.outputs[:self.n_carry]
        self.ys_values = [g.outputs[k] for k in body.y_source]
        self.n_ys = len(self.ys_values)
        #: memory for the saved values and the deferred products' adjoints, reused across calls
        self.saved_space = Workspace([(v.shape, v.dtype) for v in self.stored()])
        self.adjoint_space = Workspace([(g_shape(y, x), y.dtype) for j, (y, x, _) in enumerate(self.deferred)
                                        if j not in self.g_is_dx])

    def bind(self, mod: Any) -> None:
        super().bind(mod)
        self.scan_forward = mod.scan_forward
        self.scan_backward = getattr(mod, "scan_backward", None)

    def extra_source(self, dims: Dims) -> list[str]:
        g = self.graph
        xs, carry = g.args[:self.n_xs], g.args[self.n_xs:]
        for k, (v, new) in enumerate(zip(carry, g.outputs)):
            if v.dtype.kind != "f":
                raise CompileError(f"compile_scan: the carry must be float arrays, {v.name} is {v.dtype}")
            if (new.shape, new.dtype) != (v.shape, v.dtype):
                raise CompileError(f"compile_scan: fn must return a new carry like the old one: carry {k} "
                                   f"goes in as {v.shape} [{v.dtype}] and comes out as {new.shape} "
                                   f"[{new.dtype}]")
        out = [forward_loop(self, dims, xs, carry)]
        if self.wanted:
            out.append(backward_loop(self, dims, xs, carry))
        return out

    def stored(self) -> list[Value]:
        """Saved values kept per step in (T, ...) buffers: op results and the carry read by each step
        (an x is read from xs itself; weights, constants and what is made of them alone are the same
        at every step: ``invariant``)."""
        if self.recompute:  # every carry the steps read (the backward recomputes the rest from it),
            # and a recurrent product's operand made in the step (``(r * h) @ W^T``): read after the loop
            made = {id(x): x for _, x, _ in self.deferred if x.kind == "op" and id(x) not in self.invariant}
            return [*self.graph.args[self.n_xs:], *made.values()]
        carry = set(map(id, self.graph.args[self.n_xs:]))
        return [v for v in self.saved if (v.kind == "op" and id(v) not in self.invariant) or id(v) in carry]

    def kept_once(self) -> list[Value]:
        """Saved op values that are the same at every step and not made before the loop (``(w * 2).T``'s
        ``w * 2``): kept once, from the last step."""
        return [v for v in self.saved if v.kind == "op" and id(v) in self.invariant]

    def given_outputs(self, units: list, keep: set[int]) -> list[str]:
        """The stored values a fused loop writes: the step writes them straight into their (T, ...)
        buffers (``S_name[t]``), with neither an allocation nor a copy per step."""
        written = {id(op.out) for u in units if isinstance(u, Region) for op in u.ops}
        return [v.name for v in self.stored() if id(v) in written]

    def backward_options(self) -> dict[str, Any]:
        # the xs' adjoints: written straight into scan_backward's (T, ...) buffers
        return {"hoisted": self.hoisted, "invariant": frozenset(self.invariant),
                "given": frozenset(map(id, self.graph.args[:self.n_xs]))}

    def computed_by_caller(self) -> list[Value]:
        """The weight-only views and casts (``w.T``): ``scan_forward`` makes them once, before the
        loop, as C-ordered arrays (BLAS multiplies by a C-ordered ``W^T`` up to 2x faster than by the
        transposed view at B = 16)."""
        return [op.out for op in self.graph.ops if id(op.out) in self.hoisted]

    @functools.cached_property
    def g_is_dx(self) -> dict[int, Value]:
        """Deferred products whose per-step adjoint g is the very array the step returns as some x's
        gradient (an LSTM's gates: d(gx + h W^T) is both): their after-loop product reads ``dX``, with
        no (T, ...) buffer of g and no copy per step. Not a g the step writes into G[t] itself
        (``gives``), nor one of another dtype than x's (a float64 g beside a float32 x: found in review,
        the two were taken for one array and G0 was never made)."""
        xs = self.graph.args[:self.n_xs]
        held = {id(v): self.arrays.get(f"d_{v.name}") for v in self.returned}
        given = [k for k in self.gives if isinstance(k, int)]
        return {j: x for j, (y, _, g) in enumerate(self.deferred) for x in xs
                if j not in given and x.dtype == y.dtype and held.get(id(x)) is not None
                and self.arrays.get(g) == held[id(x)]}

    # both read the graph as ``plan`` left it: first used by ``backward_options``, after planning
    @functools.cached_property
    def hoisted(self) -> set[int]:
        """ids of the weight-only values made from captures by views and casts alone (``w.T``): their
        backward runs once after the loop, on adjoints summed over the steps."""
        out: set[int] = set()
        caps = {id(v) for v in self.graph.captures}
        for op in self.graph.ops:
            if op.kind in HOISTABLE and all(id(v) in caps or id(v) in out for v in op.ins):
                out.add(id(op.out))
        return out

    @functools.cached_property
    def invariant(self) -> set[int]:
        """ids of the values that are the same at every step (computed from weights and constants)."""
        g = self.graph
        fixed = {id(v) for v in (*g.captures, *g.consts)}
        for op in g.ops:
            if all(id(v) in fixed for v in op.ins):
                fixed.add(id(op.out))
        return fixed


def _as_tuple(v: Any, what: str) -> tuple[tuple[Tensor, ...], bool]:
    if isinstance(v, Tensor):
        return (v,), True
    if isinstance(v, (tuple, list)) and v and all(isinstance(t, Tensor) for t in v):
        return tuple(v), False
    raise TypeError(f"compile_scan: {what} must be a Tensor or a non-empty tuple of Tensors, got "
                    f"{type(v).__name__}")


class Scan:
    """``fn(carry, x) -> (carry, y)`` compiled as a recurrence (see the module docstring); call it as
    ``scan(init, xs, reverse=False, t0=0) -> (carry_T, ys)``."""

    def __init__(self, fn: Callable[..., Any], names: tuple[str, ...] | None = None,
                 prologue: Callable[..., Any] | None = None, recompute: bool = False) -> None:
        if not callable(fn):
            raise TypeError(f"compile_scan: expected a callable, got {type(fn).__name__}")
        if prologue is not None and not callable(prologue):
            raise TypeError(f"compile_scan: prologue must be callable, got {type(prologue).__name__}")
        if not isinstance(recompute, bool):
            raise TypeError(f"compile_scan: recompute must be True or False, got {recompute!r}")
        self.fn, self.names, self.prologue, self.recompute = fn, names, prologue, recompute
        self.programs = ProgramCache()
        self.prologues = ProgramCache()
        functools.update_wrapper(self, fn, updated=())

    def program(self, init: Any, xs: Any) -> ScanProgram:
        """The compiled program of the loop for these arguments (traced and generated on first use)."""
        return self._programs(*_as_tuple(init, "init"), *_as_tuple(xs, "xs"))[1]

    def _programs(self, carry: tuple[Tensor, ...], carry_tensor: bool, seq: tuple[Tensor, ...],
                  x_tensor: bool) -> tuple[Prologue | None, ScanProgram]:
        """(the prologue's program or None, the loop's program) for these arguments."""
        T = seq[0].shape[0] if seq[0].ndim else 0
        for k, x in enumerate(seq):
            if x.ndim < 2 or x.shape[0] != T or T == 0:
                raise ValueError(f"compile_scan: every x must be (T, ...) with the same T >= 1 and at "
                                 f"least one more axis; xs[{k}] has shape {x.shape} (T = {T})")
        pre = None
        specs = [(x.shape, x.dtype) for x in seq]
        if self.prologue is not None:
            key = (x_tensor, *specs, *[x.requires_grad for x in seq])
            pre = self.prologues.get(key, lambda: Prologue(self.prologue, seq, x_tensor))
            specs = pre.out_specs
        key = (x_tensor, carry_tensor, *[(s[1:], d) for s, d in specs], *[(c.shape, c.dtype) for c in carry])
        prog = self.programs.get(key, lambda: self._program(carry, carry_tensor, seq, x_tensor, pre, specs))
        return pre, prog

    def _program(self, carry: tuple[Tensor, ...], carry_tensor: bool, seq: tuple[Tensor, ...], x_tensor: bool,
                 pre: Prologue | None, specs: list) -> ScanProgram:
        body = _Body(self.fn, len(seq), len(carry), x_tensor, carry_tensor)
        # traced on step 0 of the real inputs (a body's log(x) sees data, not zeros); an x the prologue
        # makes is not computed yet: its step is traced on ones
        flat = [*[Tensor(np.ascontiguousarray(x.data[0]) if pre is None or pre.passed[k] is not None
                         else np.ones(s[1:], d)) for k, (x, (s, d)) in enumerate(zip(seq, specs))],
                *[Tensor(np.ascontiguousarray(c.data)) for c in carry]]
        names = self._names(len(seq), x_tensor, len(carry), carry_tensor)
        return ScanProgram(body, flat, names, self.recompute)

    def _names(self, n_xs: int, x_tensor: bool, n_carry: int, carry_tensor: bool) -> list[str]:
        """Variable names in the generated code: fn's own parameter names (``state_0``, ``gx``)."""
        if self.names is not None:
            return list(self.names)
        try:
            params = [p.name for p in inspect.signature(self.fn).parameters.values()][:2]
        except (TypeError, ValueError):
            params = []
        c, x = params if len(params) == 2 else ("carry", "x")
        xs = [x] if x_tensor else [f"{x}_{k}" for k in range(n_xs)]
        return xs + ([c] if carry_tensor else [f"{c}_{k}" for k in range(n_carry)])

    def __call__(self, init: Any, xs: Any, reverse: bool = False, t0: int = 0) -> tuple[Any, Any]:
        """Run the recurrence. ``t0`` numbers the steps when the node is unrolled for drawing
        (``mg.unroll``: step t is scope ``mg.step_name(t0 + t)``); it does not change the result."""
        carry, carry_tensor = _as_tuple(init, "init")
        seq, x_tensor = _as_tuple(xs, "xs")
        pre, prog = self._programs(carry, carry_tensor, seq, x_tensor)
        ins = [*seq, *carry, *([] if pre is None else pre.program.captured), *prog.captured]
        wanted = prog.wanted or (pre is not None and pre.program.wanted)
        if wanted and _state.grad_enabled and any(t.requires_grad for t in ins):
            outs = ScanCall.apply(*ins, program=prog, pre=pre, reverse=bool(reverse), t0=int(t0))
        else:
            res = _forward(prog, pre, tuple(plain(t.data) for t in ins), bool(reverse))[3]
            outs = tuple(Tensor._make(a, None, 0) for a in res[:prog.n_carry + prog.n_ys])
        new, ys = outs[:prog.n_carry], outs[prog.n_carry:]
        return (new[0] if carry_tensor else tuple(new)), (ys[0] if prog.body.y_tensor else tuple(ys))

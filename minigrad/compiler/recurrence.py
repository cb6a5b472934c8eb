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
from .api import Program, ProgramCache, arg_names
from .codegen import Dims, array_expr, dtype_name
from .derive import Backward
from .fuse import Region
from .ir import CompileError, Value
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
        xs, ctx.pre_saved, rest, res = _forward(p, pre, tuple(_plain(a) for a in arrays), reverse)
        n = p.n_carry + p.n_ys
        ctx.program, ctx.pre, ctx.reverse, ctx.t0 = p, pre, reverse, t0  # t0: step 0's index (mg.unroll)
        ctx.xs, ctx.invariant, ctx.saved = xs, rest, res[n:]
        ctx.shapes = [a.shape for a in res[:n]]
        return tuple(res[:n])

    @staticmethod
    def backward(ctx: Node, grads: list[np.ndarray | None]) -> tuple[np.ndarray | None, ...]:
        p: ScanProgram = ctx.program
        outs = [*p.carry_values, *p.ys_values]
        gs = [np.zeros(shape, v.dtype) if g is None else _plain(g)
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


class _PrologueFn:
    """``pre(xs) -> xs'`` as a flat function of the raw xs returning only the xs' it computes; ``passed``
    says, per x', which raw x it is when ``pre`` returned one unchanged (else None)."""

    def __init__(self, fn: Callable[..., Any], n_xs: int, x_tensor: bool) -> None:
        self.fn, self.n_xs, self.x_tensor = fn, n_xs, x_tensor
        self.passed: list[int | None] = []
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *xs: Tensor) -> tuple[Tensor, ...]:
        res = self.fn(xs[0] if self.x_tensor else tuple(xs))
        res = (res,) if isinstance(res, Tensor) else res
        if not (isinstance(res, (tuple, list)) and len(res) == self.n_xs
                and all(isinstance(t, Tensor) for t in res)):
            raise CompileError(f"compile_scan: prologue(xs) must return xs' like xs ({self.n_xs} "
                               f"tensor(s)), got {type(res).__name__}")
        self.passed = [next((i for i, x in enumerate(xs) if x is r), None) for r in res]
        made = tuple(r for r, k in zip(res, self.passed) if k is None)
        if not made:
            raise CompileError("compile_scan: the prologue returned its inputs unchanged (nothing to do)")
        return made


class _PrologueProgram(Program):
    """A prologue's compiled program: the arrays its products and fused loops write (the projection,
    then plus its bias: a whole sequence each) are given by the caller, from a ``Workspace``: allocated
    fresh, each was megabytes of new pages at every call (measured: 0.6 ms of a long LSTM step's 6,
    in page faults and in returning the memory)."""

    def given_outputs(self, units: list, keep: set[int]) -> list[str]:
        #: the values the fused loops store and the products, in the order ``forward`` takes them
        self.written = [op.out for u in units for op in (u.ops if isinstance(u, Region) else [u.op])
                        if (id(op.out) in keep if isinstance(u, Region) else op.kind == "matmul")]
        self.space = Workspace([(v.shape, v.dtype) for v in self.written])
        return [v.name for v in self.written]


class Prologue:
    """The prologue of a scan for one signature of the raw xs: a compiled ``Program`` run on the whole
    sequence before the loop, its backward run after the backward loop (inside the scan's node)."""

    def __init__(self, fn: Callable[..., Any], seq: tuple[Tensor, ...], x_tensor: bool) -> None:
        self.fn = fn
        flat_fn = _PrologueFn(fn, len(seq), x_tensor)
        flat = [Tensor(np.ascontiguousarray(x.data)) for x in seq]
        names = arg_names(fn, (flat[0] if x_tensor else tuple(flat),))
        # an x that needs no gradient (the data) gets none: no dX = dP @ W product in the backward
        constant = tuple(not x.requires_grad for x in seq)
        self.program = _PrologueProgram(flat_fn, tuple(flat), flat, names, constant)
        self.passed = flat_fn.passed
        made = iter(self.program.graph.outputs)
        #: per x' of the loop: the program's output that makes it, None for an x passed unchanged
        self.made: list[Value | None] = [None if k is not None else next(made) for k in self.passed]
        T = seq[0].shape[0]
        for v in self.made:
            if v is not None and (len(v.shape) < 2 or v.shape[0] != T):
                raise CompileError(f"compile_scan: the prologue must return (T, ...) arrays with T = {T} "
                                   f"and at least one more axis, got {v.name} of shape {v.shape}")
        #: per x' of the loop: (shape, dtype) of the whole sequence
        self.out_specs = [(seq[k].shape, seq[k].dtype) if k is not None else (v.shape, v.dtype)
                          for k, v in zip(self.passed, self.made)]

    def valid(self) -> bool:
        return self.program.valid()

    def forward(self, xs: tuple[np.ndarray, ...], caps: tuple[np.ndarray, ...]
                ) -> tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]:
        """(xs' for the loop, what the backward reads)."""
        p = self.program
        given = p.space.buffers(None)  # views of a pooled slab
        res = p.forward(p.dims, *xs, *caps, *p.const_arrays, *given)
        n = len(p.graph.outputs)
        made = iter(res[:n])
        return tuple(xs[k] if k is not None else _plain(next(made)) for k in self.passed), tuple(res[n:])

    def backward(self, saved: tuple[np.ndarray, ...], d_xs: list[np.ndarray | None]
                 ) -> list[np.ndarray | None]:
        """Gradients of the raw xs then of the prologue's captures, given those of xs'."""
        p = self.program
        out: list[np.ndarray | None] = [None] * (len(p.graph.args) + len(p.graph.captures))
        seeds = []
        for d, k, v in zip(d_xs, self.passed, self.made):
            if k is not None:  # the same x may be passed on twice: its gradients add
                out[k] = d if out[k] is None or d is None else out[k] + d
            else:
                seeds.append(np.zeros(v.shape, v.dtype) if d is None else d)
        if p.backward is not None:
            got = p.backward(p.dims, *saved, *seeds)
            for j, i in enumerate(p.wanted):
                out[i] = got[j] if out[i] is None else out[i] + got[j]
        return out

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


def _plain(a: np.ndarray) -> np.ndarray:
    """``a`` as a writeable C-contiguous array: the one array type the jitted loops are compiled for
    (a read-only or strided argument would make Numba compile them again)."""
    return a if a.flags.c_contiguous and a.flags.writeable else np.array(a, order="C")


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
        self.adjoint_space = Workspace([(_g_shape(y, x), y.dtype) for j, (y, x, _) in enumerate(self.deferred)
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
        out = [_forward_loop(self, dims, xs, carry)]
        if self.wanted:
            out.append(_backward_loop(self, dims, xs, carry))
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
        return {"hoisted": self.hoisted, "invariant": frozenset(self.invariant)}

    def computed_by_caller(self) -> list[Value]:
        """The weight-only views and casts (``w.T``): ``scan_forward`` makes them once, before the
        loop, as C-ordered arrays (BLAS multiplies by a C-ordered ``W^T`` up to 2x faster than by the
        transposed view at B = 16)."""
        return [op.out for op in self.graph.ops if id(op.out) in self.hoisted]

    @functools.cached_property
    def g_is_dx(self) -> dict[int, Value]:
        """Deferred products whose per-step adjoint g is the very array the step returns as some x's
        gradient (an LSTM's gates: d(gx + h W^T) is both): their after-loop product reads ``dX``, with
        no (T, ...) buffer of g and no copy per step."""
        xs = self.graph.args[:self.n_xs]
        adj = {id(v): f"d_{v.name}" for v in self.returned}
        return {j: x for j, (_, _, g) in enumerate(self.deferred) for x in xs
                if id(x) in adj and self.same_array(g, adj[id(x)])}

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


def _seq_shape(shape: tuple[int, ...], dims: Dims) -> str:
    return "(T, " + ", ".join(dims.int(n) for n in shape) + ")"


def _weights(p: ScanProgram) -> list[str]:
    """The scan functions' parameters that are the same at every step: captures and array constants."""
    g = p.graph
    return [v.name for v in (*g.captures, *g.consts) if not v.is_scalar_const]


def _each(shape: tuple[int, ...], dims: Dims, stmt: str, depth: int = 1) -> list[str]:
    """``stmt`` (with ``{i}`` for the index) in loops over ``shape``: a copy or a sum as loops, which
    Numba compiles several times faster than the same array expression."""
    idx = ", ".join(f"i{k}" for k in range(len(shape)))
    lines = ["    " * (depth + k) + f"for i{k} in range({dims.int(n)}):" for k, n in enumerate(shape)]
    return [*lines, "    " * (depth + len(shape)) + stmt.format(i=idx)]


def _function(name: str, params: list[str], lines: list[str], dims: Dims) -> str:
    unpack = dims.unpack()
    body = ([unpack] if unpack else []) + lines
    return f"def {name}({', '.join(params)}):\n" + "\n".join("    " + line for line in body)


def _computed(p: ScanProgram, dims: Dims) -> list[str]:
    """The weight-only values the step takes as made (``w.T``), made once before a loop (C-ordered)."""
    computed = p.computed_by_caller()
    head = ["# the weight-only values, once (C-ordered)"] if computed else []
    return head + [f"{v.name} = np.ascontiguousarray({array_expr(v.op, dims)})" for v in computed]


def _recomputed(p: ScanProgram, xs: list[Value], carry: list[Value]) -> list[str]:
    """With ``recompute``: step t's forward run again from its saved carry (``rf``: what it saves)."""
    if not p.recompute:
        return []
    args = [f"X_{v.name}[t]" for v in xs] + [f"S_{v.name}[t]" for v in carry] + _weights(p) + \
        [v.name for v in p.computed_by_caller()] + [f"S_{name}[t]" for name in p.given]
    return ["    # recomputation: step t's forward again, from the carry it read",
            f"    rf = forward(dims, {', '.join(args)})"]


def _forward_loop(p: ScanProgram, dims: Dims, xs: list[Value], carry: list[Value]) -> str:
    """``scan_forward(dims, reverse, xs..., carry..., weights..., saved buffers...)`` -> (carry_T...,
    ys..., kept once...): the (T, ...) buffers of the saved values come from the caller
    (``Workspace``), filled in place."""
    g = p.graph
    nout = len(g.outputs)
    ys = [g.outputs[k] for k in p.body.y_source]
    stored, once = p.stored(), p.kept_once()
    x0 = f"X_{xs[0].name}"
    lines = ["# the recurrence: the step's forward at every t, what the backward reads saved per step",
             f"T = {x0}.shape[0]"]
    lines += [f"Y{j} = np.empty({_seq_shape(v.shape, dims)}, {dtype_name(v.dtype)})"
              for j, v in enumerate(ys)]
    lines += _computed(p, dims)
    args = [f"X_{v.name}[t]" for v in xs] + [v.name for v in carry] + _weights(p) + \
        [v.name for v in p.computed_by_caller()] + [f"S_{name}[t]" for name in p.given]
    lines += ["for k in range(T):",
              "    t = T - 1 - k if reverse else k",
              f"    r = forward(dims, {', '.join(args)})"]
    for v in stored:
        if v.name in p.given:  # written in place by the step
            continue
        if v.kind == "arg":  # the carry this step read (not among what it saves, with recompute)
            lines += _each(v.shape, dims, f"S_{v.name}[t, {{i}}] = {v.name}[{{i}}]")
            continue
        lines += [f"    a_{v.name} = r[{nout + p.saved.index(v)}]",
                  *_each(v.shape, dims, f"S_{v.name}[t, {{i}}] = a_{v.name}[{{i}}]")]
    lines += [f"    V_{v.name} = r[{nout + p.saved.index(v)}]" for v in once]
    for j, k in enumerate(p.body.y_source):
        lines += [f"    y{j} = r[{k}]", *_each(g.outputs[k].shape, dims, f"Y{j}[t, {{i}}] = y{j}[{{i}}]")]
    lines += [f"    {v.name} = r[{k}]" for k, v in enumerate(carry)]
    # a new carry written into a saved buffer (given) is a view of the workspace: returned, a copy
    lines += [f"{v.name} = {v.name}.copy()" for v, new in zip(carry, g.outputs) if new.name in p.given]
    rets = [v.name for v in carry] + [f"Y{j}" for j in range(len(ys))] + [f"V_{v.name}" for v in once]
    lines.append(f"return {', '.join(rets)},")
    params = ["dims", "reverse", *[f"X_{v.name}" for v in xs], *[v.name for v in carry], *_weights(p),
              *[f"S_{v.name}" for v in stored]]
    return _function("scan_forward", params, lines, dims)


def _backward_loop(p: ScanProgram, dims: Dims, xs: list[Value], carry: list[Value]) -> str:
    """``scan_backward(dims, reverse, xs..., saved..., weights..., d_ys..., d_carry_T..., G...)`` -> the
    gradients of the wanted inputs (xs, initial carry, weights), in ``Program.wanted`` order; ``G``:
    (T, ...) buffers for the deferred products' adjoints, from the caller (``Workspace``)."""
    g = p.graph
    stored = p.stored()
    ins = [*g.args, *g.captures]
    wanted = [ins[i] for i in p.wanted]
    x_ids, stored_ids = {id(v) for v in xs}, {id(v) for v in stored}
    once = p.kept_once()
    lines = ["# backpropagation through time: the step's derived backward at every t, last step first,",
             "# carrying the adjoint of the state; the weights' gradients summed over the steps",
             f"T = X_{xs[0].name}.shape[0]"]
    for v in p.returned:
        if id(v) in x_ids:
            lines.append(f"dX_{v.name} = np.empty({_seq_shape(v.shape, dims)}, {dtype_name(v.dtype)})")
        elif v.kind != "arg":
            lines.append(f"d_{v.name} = np.zeros({dims.shape(v.shape)}, {dtype_name(v.dtype)})")
    lines += [f"d_{v.name} = dT_{v.name}" for v in carry]
    saved = [f"X_{v.name}[t]" if id(v) in x_ids else f"S_{v.name}[t]" if id(v) in stored_ids else
             f"V_{v.name}" if v in once else
             f"rf[{len(g.outputs) + k}]" if v.kind == "op" and id(v) not in p.invariant else v.name
             for k, v in enumerate(p.saved)]
    if p.recompute:
        lines += _computed(p, dims)
    lines += ["for k in range(T):",
              "    t = k if reverse else T - 1 - k",
              *_recomputed(p, xs, carry),
              *_seeds(p, dims, carry, saved)]
    for k, v in enumerate(p.returned):
        if id(v) in x_ids:
            lines += [f"    g{k} = r[{k}]", *_each(v.shape, dims, f"dX_{v.name}[t, {{i}}] = g{k}[{{i}}]")]
        elif v.kind != "arg":
            lines += [f"    g{k} = r[{k}]", *_each(v.shape, dims, f"d_{v.name}[{{i}}] += g{k}[{{i}}]")]
        else:
            lines.append(f"    d_{v.name} = r[{k}]")
    n = len(p.returned)
    for j, (y, x, _) in enumerate(p.deferred):
        if j not in p.g_is_dx:
            lines += [f"    g{n + j} = r[{n + j}]",
                      *_each(_g_shape(y, x), dims, f"G{j}[t, {{i}}] = g{n + j}[{{i}}]")]
    done = _after_loop(p, dims, lines, x_ids)
    lines += [f"d_{v.name} = np.zeros({dims.shape(v.shape)}, {dtype_name(v.dtype)})"
              for v in wanted if v.kind == "capture" and id(v) not in done]
    rets = [f"dX_{v.name}" if id(v) in x_ids else f"d_{v.name}" for v in wanted]
    lines.append(f"return {', '.join(rets)},")
    params = ["dims", "reverse", *[f"X_{v.name}" for v in xs], *[f"S_{v.name}" for v in stored],
              *[f"V_{v.name}" for v in once], *_weights(p),
              *[f"dY{j}" for j in range(len(p.body.y_source))], *[f"dT_{v.name}" for v in carry],
              *[f"G{j}" for j in range(len(p.deferred)) if j not in p.g_is_dx]]
    return _function("scan_backward", params, lines, dims)


def _g_shape(y: Value, x: Value) -> tuple[int, ...]:
    """Shape of the adjoint g of ``x @ y`` (x (B, k), y (k, n))."""
    return (x.shape[0], y.shape[1])


def _seeds(p: ScanProgram, dims: Dims, carry: list[Value], saved: list[str]) -> list[str]:
    """The step backward's call: each output's adjoint is the carried one plus the y's at t."""
    g = p.graph
    lines, seeds = [], []
    for k, v in enumerate(g.outputs):  # (array, indexed by t) of each term of output k's adjoint
        terms = ([(f"d_{carry[k].name}", False)] if k < p.n_carry else []) + \
            [(f"dY{j}", True) for j, src in enumerate(p.body.y_source) if src == k]
        if len(terms) == 1:  # passed as it is (the backward never writes into its seeds)
            name, at_t = terms[0]
            seeds.append(f"{name}[t]" if at_t else name)
            continue
        seeds.append(f"seed{k}")
        alloc = "empty" if terms else "zeros"
        lines.append(f"    seed{k} = np.{alloc}({dims.shape(v.shape)}, {dtype_name(v.dtype)})")
        if terms:
            total = " + ".join(f"{name}[{'t, ' if at_t else ''}{{i}}]" for name, at_t in terms)
            lines += _each(v.shape, dims, f"seed{k}[{{i}}] = {total}")
    return [*lines, f"    r = backward(dims, {', '.join(saved + seeds)})"]


def _after_loop(p: ScanProgram, dims: Dims, lines: list[str], x_ids: set[int]) -> set[int]:
    """After the loop: dy = X^T G, ONE product over all T*B rows, for each deferred ``x @ y``; then the
    backward of the hoisted weight-only ops (``w.T``) once. Returns the ids of the captures reached."""
    post = Backward(p.graph, set(), dims)
    for v in p.returned:
        if v.kind != "arg":
            post.adj[id(v)] = f"d_{v.name}"
            post.owned.add(id(v))
    if p.deferred:
        lines.append("# the weights' gradients through the recurrent products: one product over all steps")
    for j, (y, x, _) in enumerate(p.deferred):
        rows = f"T * {dims.int(x.shape[0])}"
        src = f"X_{x.name}" if id(x) in x_ids else f"S_{x.name}"
        g = f"dX_{p.g_is_dx[j].name}" if j in p.g_is_dx else f"G{j}"
        prod = (f"dot({src}.reshape({rows}, {dims.int(x.shape[1])}).T, "
                f"{g}.reshape({rows}, {dims.int(y.shape[1])}))")
        if id(y) in post.adj:
            lines.append(f"d_{y.name} = d_{y.name} + {prod}")
        else:
            lines.append(f"d_{y.name} = {prod}")
            post.adj[id(y)] = f"d_{y.name}"
            post.owned.add(id(y))
    for op in reversed(p.graph.ops):
        if id(op.out) in p.hoisted and id(op.out) in post.adj:
            post.array_op(op)
    lines += [line[4:] for line in post.code.lines]
    return {id(v) for v in p.graph.captures if id(v) in post.adj}


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
            res = _forward(prog, pre, tuple(_plain(t.data) for t in ins), bool(reverse))[3]
            outs = tuple(Tensor._make(a, None, 0) for a in res[:prog.n_carry + prog.n_ys])
        new, ys = outs[:prog.n_carry], outs[prog.n_carry:]
        return (new[0] if carry_tensor else tuple(new)), (ys[0] if prog.body.y_tensor else tuple(ys))

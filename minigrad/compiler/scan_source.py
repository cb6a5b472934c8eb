"""The source of a compiled recurrence's loops, ``scan_forward`` and ``scan_backward``, around the
step's generated forward and backward (see ``minigrad.compiler.recurrence``): the loop over T, what is
saved per step, the seeds of each step's backward, and the weights' gradients through the recurrent
products as one product each after the loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .codegen import Dims, array_expr, dtype_name
from .derive import Backward
from .ir import Value

if TYPE_CHECKING:
    from .recurrence import ScanProgram


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


def forward_loop(p: ScanProgram, dims: Dims, xs: list[Value], carry: list[Value]) -> str:
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


def backward_loop(p: ScanProgram, dims: Dims, xs: list[Value], carry: list[Value]) -> str:
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
    given = {id(key) for key in p.gives if not isinstance(key, int)}
    for k, v in enumerate(p.returned):
        if id(v) in given:  # the step wrote it into dX[t]
            continue
        if id(v) in x_ids:
            lines += [f"    g{k} = r[{k}]", *_each(v.shape, dims, f"dX_{v.name}[t, {{i}}] = g{k}[{{i}}]")]
        elif v.kind != "arg":
            lines += [f"    g{k} = r[{k}]", *_each(v.shape, dims, f"d_{v.name}[{{i}}] += g{k}[{{i}}]")]
        else:
            lines.append(f"    d_{v.name} = r[{k}]")
    n = len(p.returned)
    for j, (y, x, _) in enumerate(p.deferred):
        if j not in p.g_is_dx and j not in p.gives:  # (a given g the step wrote into G[t])
            lines += [f"    g{n + j} = r[{n + j}]",
                      *_each(g_shape(y, x), dims, f"G{j}[t, {{i}}] = g{n + j}[{{i}}]")]
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


def g_shape(y: Value, x: Value) -> tuple[int, ...]:
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
    # the arrays the step writes into (``Backward.give``): xs' adjoints, deferred products' g
    given = [f"G{key}[t]" if isinstance(key, int) else f"dX_{key.name}[t]" for key in p.gives]
    return [*lines, f"    r = backward(dims, {', '.join(saved + seeds + given)})"]


def _after_loop(p: ScanProgram, dims: Dims, lines: list[str], x_ids: set[int]) -> set[int]:
    """After the loop: dy = X^T G, ONE product over all T*B rows, for each deferred ``x @ y``; then the
    backward of the hoisted weight-only ops (``w.T``) once. Returns the ids of the captures reached."""
    post = Backward(p.graph, set(), dims)
    for v in p.returned:
        if v.kind != "arg":
            post.adj[id(v)] = f"d_{v.name}"
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
    for op in reversed(p.graph.ops):
        if id(op.out) in p.hoisted and id(op.out) in post.adj:
            post.array_op(op)
    lines += [line[4:] for line in post.code.lines]
    return {id(v) for v in p.graph.captures if id(v) in post.adj}

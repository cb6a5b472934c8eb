"""The backward, derived: reverse-mode over the fused units, written as source.

Units are visited in reverse. A pointwise region becomes ONE backward loop that recomputes the
region's scalars from its inputs (nothing inside a loop is saved) and then runs reverse mode on the
scalars, each op's contribution being its ``grads`` formula (the same formulas eager mode evaluates):
adjoints of scalars used twice add up, and the adjoint of an input broadcast over the loop is summed
into its smaller array (the unbroadcast, as index arithmetic). An array op contributes by its
vector-Jacobian rule (``RULES``). An adjoint read by several units is accumulated (``d_x = d_x + ...``);
a buffer this code allocated is updated in place.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .codegen import (
    Code,
    Dims,
    close_loops,
    describe,
    dtype_name,
    function,
    index,
    loop_dtype,
    open_loops,
    pw_expr,
    read,
    reduce_axes,
    scalar_of,
    slice_text,
    window,
)
from .fuse import Region, Unit
from .ir import Graph, Op, Value


class Backward:
    """Emits the backward function; records which forward arrays it reads (``needs``)."""

    def __init__(self, graph: Graph, keep: set[int], dims: Dims) -> None:
        self.graph, self.keep = graph, keep
        self.code = Code(dims, [], "b")
        self.dims = dims
        self.adj: dict[int, str] = {}  # id(value) -> its adjoint array variable
        self.owned: set[int] = set()  # adjoints in buffers allocated here (safe to update in place)
        self.needs: dict[int, Value] = {}  # forward arrays the backward reads

    def need(self, v: Value) -> str:
        if v.kind != "const" or not v.is_scalar_const:
            self.needs.setdefault(id(v), v)
        return v.name

    def accumulate(self, v: Value, expr: str) -> None:
        name = f"d_{v.name}"
        if id(v) in self.adj:
            self.code.add(f"{name} = {name} + {expr}")
        else:
            self.code.add(f"{name} = {expr}")
            self.adj[id(v)] = name
        self.owned.add(id(v))  # a fresh array either way (a + b, or a product / copy below)

    def alias(self, v: Value, expr: str) -> None:
        """``d_v`` (+)= ``expr`` where ``expr`` may be a view of another adjoint."""
        if id(v) in self.adj:
            self.accumulate(v, expr)
        else:
            self.code.add(f"d_{v.name} = {expr}")
            self.adj[id(v)] = f"d_{v.name}"

    def scatter(self, v: Value, idx: str, expr: str) -> None:
        """``d_v[idx] += expr`` into a buffer of v's shape (allocated, or copied, when needed)."""
        name = f"d_{v.name}"
        if id(v) not in self.adj:
            self.code.add(f"{name} = np.zeros({self.dims.shape(v.shape)}, {dtype_name(v.dtype)})")
            self.adj[id(v)] = name
        elif id(v) not in self.owned:
            self.code.add(f"{name} = {name}.copy()")
        self.owned.add(id(v))
        self.code.add(f"{name}[{idx}] += {expr}")

    # -------------------------------------------------------------- the whole function
    def source(self, units: list[Unit]) -> str:
        for v in self.graph.outputs:
            if v.requires_grad and id(v) not in self.adj:
                self.adj[id(v)] = f"d_{v.name}"
        for u in reversed(units):
            if isinstance(u, Region):
                self.region(u)
            else:
                self.array_op(u.op)
        wanted = [v for v in (*self.graph.args, *self.graph.captures) if v.requires_grad]
        rets = []
        for v in wanted:
            if id(v) in self.adj:
                rets.append(self.adj[id(v)])
            else:
                rets.append(f"np.zeros({self.dims.shape(v.shape)}, {dtype_name(v.dtype)})")
        self.code.add(f"return {', '.join(rets)}{',' if len(rets) == 1 else ''}")
        saved = [v.name for v in self.needs.values()]
        grads = [f"d_{v.name}" for v in self.graph.outputs]
        return function("backward", ["dims", *saved, *grads], self.code)

    # -------------------------------------------------------------- array ops
    def array_op(self, op: Op) -> None:
        if id(op.out) not in self.adj or not any(v.requires_grad for v in op.ins):
            return
        self.code.comment(op)
        RULES[op.kind](self, op, self.adj[id(op.out)])

    # -------------------------------------------------------------- fused regions
    def region(self, r: Region) -> None:
        seeds = [op.out for op in r.ops if id(op.out) in self.adj and op.out.requires_grad]
        targets = [v for v in r.inputs() if v.requires_grad]
        if not seeds or not targets:
            return
        dt, dims = loop_dtype(r), self.dims
        body = self.code.body()
        open_loops(body, r.shape)
        arrays: dict[int, Value] = {}
        for v in r.inputs():
            if not v.is_scalar_const:
                a, expr = read(v, r.shape, dims)
                arrays.setdefault(id(a), a)
                body.add(f"{v.name}_ = {expr}")
        for op in r.ops:  # recompute (what the adjoint formulas do not read, LLVM drops)
            body.add(f"{op.out.name}_ = {pw_expr(op, op.attrs['cls'].out, {}, dt)}")
        have: dict[int, Value | None] = {}  # scalar adjoints so far -> the seed they equal, if any
        for v in seeds:
            body.add(f"d_{v.name}_ = {index(v, r.shape, self.adj[id(v)])}")
            have[id(v)] = v
        for op in reversed(r.ops):
            self.scalar_vjp(body, op, have, dt)
        aliased = [v for v in targets if _passes(v, have, r.shape)]
        bufs = _buffers([v for v in targets if id(v) in have and v not in aliased], r.shape)
        for a, ws, zeroed in bufs.values():
            for v, starts in ws:
                shift = None if starts is None else [dims.int(k) for k in starts]
                ix = index(v, r.shape, "r_" + a.name, shift)
                body.add(f"{ix} {'+=' if zeroed else '='} d_{v.name}_")
        close_loops(body, r.shape)
        if bufs:
            body.lines[:0] = [f"    r_{a.name} = np.{'zeros' if z else 'empty'}({dims.shape(a.shape)}, "
                              f"{dtype_name(a.dtype)})" for a, _, z in bufs.values()]
            self.code.call_loop(f"backward of the fused loop over {dims.shape(r.shape)}: recompute, "
                                "then adjoints in reverse", body,
                                [self.need(a) for a in arrays.values()] + [self.adj[id(v)] for v in seeds],
                                [f"r_{a.name}" for a, _, _ in bufs.values()])
        for v in aliased:  # dL/dv is a seed's adjoint unchanged (v + w, -(-v), ...): no loop for it
            self.alias(v, self.adj[id(have[id(v)])])
        for a, _, _ in bufs.values():
            if id(a) in self.adj:
                self.accumulate(a, f"r_{a.name}")
            else:
                self._take(a, f"r_{a.name}")

    def _take(self, v: Value, buf: str) -> None:
        self.code.add(f"d_{v.name} = {buf}")
        self.adj[id(v)] = f"d_{v.name}"
        self.owned.add(id(v))

    def scalar_vjp(self, body: Code, op: Op, have: dict[int, Value | None], dt: str) -> None:
        """The contributions of one pointwise op to its inputs' scalar adjoints; ``have`` remembers
        which adjoints are still exactly a seed's (the formula ``g`` passes it through)."""
        if id(op.out) not in have:
            return
        cls = op.attrs["cls"]
        env = {"g": f"d_{op.out.name}_", "out": scalar_of(op.out)}
        first = True
        for v, formula in zip(op.ins, cls.grads):
            if formula is None or not v.requires_grad:
                continue
            if first:
                body.add("# d " + describe(op))
                first = False
            term = pw_expr(op, formula, env, dt)
            if id(v) in have:
                body.add(f"d_{v.name}_ = d_{v.name}_ + ({term})")
                have[id(v)] = None
            else:
                body.add(f"d_{v.name}_ = {term}")
                have[id(v)] = have[id(op.out)] if formula == "g" else None


def _passes(v: Value, have: dict[int, Value | None], shape: tuple[int, ...]) -> bool:
    """Whether dL/dv is a seed's adjoint array unchanged (same shape, not a window)."""
    seed = have.get(id(v))
    return seed is not None and seed is not v and v.shape == shape == seed.shape and window(v) is None


def _buffers(targets: list[Value], loop: tuple[int, ...]
             ) -> dict[int, tuple[Value, list[tuple[Value, list[int] | None]], bool]]:
    """One result buffer per array a loop writes adjoints into: ``id -> (array, [(value, window
    starts or None)], zeroed)``. A window's adjoint goes into its base's buffer. The buffer starts at
    zero (and is added into) unless the writes cover it exactly once."""
    bufs: dict[int, tuple[Value, list]] = {}
    for v in targets:
        w = window(v)
        a = v if w is None else w[0]
        bufs.setdefault(id(a), (a, []))[1].append((v, None if w is None else w[1]))
    return {k: (a, ws, not _tiles(a, ws, loop)) for k, (a, ws) in bufs.items()}


def _tiles(a: Value, ws: list[tuple[Value, list[int] | None]], loop: tuple[int, ...]) -> bool:
    """The writes ``ws`` (full-shape values or windows) cover ``a`` exactly once."""
    boxes = [(v.shape, [0] * len(a.shape) if s is None else s) for v, s in ws]
    if any(shape != loop for shape, _ in boxes):
        return False  # broadcast: several loop elements add into one
    if sum(int(np.prod(shape)) for shape, _ in boxes) != int(np.prod(a.shape)):
        return False
    for j, (s1, o1) in enumerate(boxes):
        for s2, o2 in boxes[j + 1:]:
            if all(o1[k] < o2[k] + s2[k] and o2[k] < o1[k] + s1[k] for k in range(len(a.shape))):
                return False  # overlap
    return True


# ------------------------------------------------------------------ vector-Jacobian rules of array ops
def _matmul(b: Backward, op: Op, g: str) -> None:
    """C = A B:  dA = G B^T,  dB = A^T G."""
    x, y = op.ins
    if x.requires_grad:
        b.accumulate(x, f"np.dot({g}, {b.need(y)}.T)")
    if y.requires_grad:
        b.accumulate(y, f"np.dot({b.need(x)}.T, {g})")


def _transpose(b: Backward, op: Op, g: str) -> None:
    """y = x^T (axes p):  dx = g transposed back (axes argsort(p))."""
    axes = op.attrs["axes"]
    n = len(op.ins[0].shape)
    if axes is None or list(axes) == list(range(n))[::-1]:
        b.alias(op.ins[0], f"{g}.T")
    else:
        b.alias(op.ins[0], f"np.transpose({g}, {tuple(int(a) for a in np.argsort(axes))})")


def _reshape(b: Backward, op: Op, g: str) -> None:
    """y = reshape(x):  dx = reshape(g) to x's shape."""
    b.alias(op.ins[0], f"np.ascontiguousarray({g}).reshape({b.dims.shape(op.ins[0].shape)})")


def _slice(b: Backward, op: Op, g: str) -> None:
    """y = x[idx]:  dx[idx] += g (one buffer shared by every piece of a split)."""
    b.scatter(op.ins[0], slice_text(op.attrs["idx"], b.dims), g)


def _concat(b: Backward, op: Op, g: str) -> None:
    """y = [x_1, ..., x_n] along an axis:  dx_k = the k-th slab of g."""
    ax, lo = op.attrs["axis"] % len(op.out.shape), 0
    for v in op.ins:
        hi = lo + v.shape[ax]
        if v.requires_grad:
            b.alias(v, f"{g}[{', '.join([':'] * ax + [f'{b.dims.int(lo)}:{b.dims.int(hi)}'])}]")
        lo = hi


def _stack(b: Backward, op: Op, g: str) -> None:
    """y = stack(x_k) along an axis:  dx_k = g[..., k, ...]."""
    ax = op.attrs["axis"] % len(op.out.shape)
    for k, v in enumerate(op.ins):
        if v.requires_grad:
            b.alias(v, f"{g}[{', '.join([':'] * ax + [b.dims.int(k)])}]")


def _sum(b: Backward, op: Op, g: str) -> None:
    """y = sum over axes (mean: / n):  dx = g broadcast back over them (mean: / n)."""
    x = op.ins[0]
    axes = reduce_axes(op)
    kept = tuple(1 if a in axes else n for a, n in enumerate(x.shape))
    e = f"np.ascontiguousarray({g}).reshape({b.dims.shape(kept)})"
    if op.kind == "mean":
        e = f"{e} / {dtype_name(x.dtype)}({b.dims.int(np.prod([x.shape[a] for a in axes]))})"
    b.alias(x, f"np.broadcast_to({e}, {b.dims.shape(x.shape)})")


def _broadcast(b: Backward, op: Op, g: str) -> None:
    """y = broadcast_to(x):  dx = g summed over the broadcast axes."""
    x, shape = op.ins[0], op.out.shape
    lead = len(shape) - len(x.shape)
    e = g
    for ax in reversed(range(len(shape))):
        if ax < lead or x.shape[ax - lead] == 1 != shape[ax]:
            e = f"np.sum({e}, axis={ax})"
    b.accumulate(x, f"np.ascontiguousarray({e}).reshape({b.dims.shape(x.shape)})")


def _astype(b: Backward, op: Op, g: str) -> None:
    """y = x cast:  dx = g cast back."""
    b.accumulate(op.ins[0], f"{g}.astype({dtype_name(op.ins[0].dtype)})")


def _copy(b: Backward, op: Op, g: str) -> None:
    """y = copy of x:  dx = g."""
    b.alias(op.ins[0], g)


RULES: dict[str, Callable[[Backward, Op, str], None]] = {
    "matmul": _matmul, "transpose": _transpose, "reshape": _reshape, "slice": _slice, "concat": _concat,
    "stack": _stack, "sum": _sum, "mean": _sum, "broadcast": _broadcast, "astype": _astype, "copy": _copy,
}

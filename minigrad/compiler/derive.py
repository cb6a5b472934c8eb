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

import re
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

#: a top-level statement of the generated function (one indent; loop bodies are functions of their own)
_ASSIGN = re.compile(r"    (\w+) = (.*?)(?:  #.*)?$")


def arrays_held(lines: list[str]) -> dict[str, str]:
    """The array each variable of generated top-level ``lines`` holds after them: ``a = b`` shares b's,
    any other assignment makes a new one (an unassigned name holds its own)."""
    held: dict[str, str] = {}
    for k, line in enumerate(lines):
        m = _ASSIGN.match(line)
        if m is not None:
            rhs = m.group(2)
            held[m.group(1)] = held.get(rhs, rhs) if rhs.isidentifier() else f"{m.group(1)}@{k}"
    return held


class Backward:
    """Emits the backward function; records which forward arrays it reads (``needs``)."""

    def __init__(self, graph: Graph, saved: set[int], dims: Dims, hoisted: set[int] | None = None,
                 invariant: frozenset[int] = frozenset(), given: frozenset[int] = frozenset()) -> None:
        self.graph, self.saved = graph, saved
        self.code = Code(dims, [], "b")
        self.dims = dims
        self.adj: dict[int, str] = {}  # id(value) -> its adjoint array variable
        #: adjoint variable -> the line count when it last got an array of its own (a fresh sum, or a
        #: scatter's buffer): while no statement since reads it, no other variable holds or views it
        self.sole: dict[str, int] = {}
        self.needs: dict[int, Value] = {}  # forward arrays the backward reads
        #: a recurrence's step (``recurrence.hoisted``): ids of the weight-only values whose backward
        #: runs once after the loop; a product ``x @ y`` with such a y returns its ``g`` per step
        #: (``deferred``: (y, x, g)) so that dy = sum_t x_t^T g_t is ONE product over all steps
        self.hoisted, self.invariant = hoisted, invariant
        self.deferred: list[tuple[Value, Value, str]] = []
        self.returned: list[Value] = []  # what the step returns (with ``hoisted``): adjoints present
        #: ids of args whose adjoint may end in an array the caller passes (a recurrence's dX[t]);
        #: ``gives``: those that do, with the parameter that takes the array (see ``give``)
        self.given = given
        self.gives: list[tuple[Value | int, str]] = []

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
        self.sole[name] = len(self.code.lines)  # a fresh array either way (a + b, or a product)

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
        elif not self.alone(name):
            self.code.add(f"{name} = {name}.copy()")
        self.code.add(f"{name}[{idx}] += {expr}")
        self.sole[name] = len(self.code.lines)

    def alone(self, name: str) -> bool:
        """Whether ``name`` holds an array of its own that no line has read since (``sole``), so that no
        other variable holds it or a view of it (found in review: a loop's buffer taken as the adjoint
        of both x and h @ W was written into by x's slice, changing dW and dh)."""
        k = self.sole.get(name)
        word = re.compile(rf"\b{name}\b")
        return k is not None and not any(word.search(line) for line in self.code.lines[k:])

    # -------------------------------------------------------------- the whole function
    def source(self, units: list[Unit]) -> str:
        for v in self.graph.outputs:
            if v.requires_grad and id(v) not in self.adj:
                self.adj[id(v)] = f"d_{v.name}"
        for u in reversed(units):
            if isinstance(u, Region):
                self.region(u)
            elif self.hoisted is None or id(u.op.out) not in self.hoisted:
                self.array_op(u.op)
        wanted = [v for v in (*self.graph.args, *self.graph.captures) if v.requires_grad]
        if self.hoisted is not None:  # only the adjoints present, then the hoisted values', then the g's
            frontier = [op.out for op in self.graph.ops if id(op.out) in self.hoisted]
            self.returned = [v for v in (*wanted, *frontier) if id(v) in self.adj]
            rets = [self.adj[id(v)] for v in self.returned] + [g for _, _, g in self.deferred]
        else:
            rets = [self.adj[id(v)] if id(v) in self.adj else
                    f"np.zeros({self.dims.shape(v.shape)}, {dtype_name(v.dtype)})" for v in wanted]
        self.code.add(f"return {', '.join(rets)}{',' if len(rets) == 1 else ''}")
        self.give()
        saved = [v.name for v in self.needs.values()]
        grads = self.seeds()
        return function("backward", ["dims", *saved, *grads, *[b for _, b in self.gives]], self.code)

    def seeds(self) -> list[str]:
        """The parameters taking the outputs' adjoints: ``d_<output>``; a value returned twice (a
        state ``(z, z)``) gets a parameter per place, added up first."""
        names: list[str] = []
        seen: set[int] = set()
        for k, v in enumerate(self.graph.outputs):
            name = f"d_{v.name}"
            if id(v) in seen:
                name = f"d_{v.name}_out{k}"
                if v.requires_grad:
                    self.code.lines.insert(0, f"    d_{v.name} = d_{v.name} + {name}")
            seen.add(id(v))
            names.append(name)
        return names

    def give(self) -> None:
        """The arrays a recurrence's step would allocate and its loop then copy into (T, ...) buffers:
        the adjoint of each ``given`` arg (into dX[t]) and, in a recurrence, each deferred product's g
        (into G[t]). Where that array is, when the function returns, a buffer a fused loop filled whole
        (``r_v = np.empty(...)``, made just before the loop), its allocation becomes a parameter and
        the loop writes straight into the caller's array. ``gives``: (the arg, or the deferred
        product's index; the parameter), a buffer that two share given once."""
        held = self.arrays()
        wants: list[tuple[Value | int, str, tuple[int, ...], np.dtype]] = [
            (v, self.adj[id(v)], v.shape, v.dtype) for v in self.graph.args
            if id(v) in self.given and id(v) in self.adj]
        if self.hoisted is not None:  # g of x @ y: (B, k) @ (k, n) -> (B, n)
            wants += [(j, g, (x.shape[0], y.shape[1]), y.dtype) for j, (y, x, g) in enumerate(self.deferred)]
        drop: dict[int, tuple[Value | int, str]] = {}
        for key, var, shape, dt in wants:
            buf, _, k = held.get(var, "").partition("@")
            alloc = f"    {buf} = np.empty({self.dims.shape(shape)}, {dtype_name(dt)})"
            if k and buf.startswith("r_") and self.code.lines[int(k)] == alloc and int(k) not in drop:
                drop[int(k)] = (key, buf)
        for k in sorted(drop, reverse=True):
            del self.code.lines[k]
        self.gives = [drop[k] for k in sorted(drop)]

    def arrays(self) -> dict[str, str]:
        """The array each variable holds when the function returns (``arrays_held``)."""
        return arrays_held(self.code.lines)

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
        reads: dict[str, Value] = {}  # loop scalar -> the array it is read from
        for v in r.inputs():
            if not v.is_scalar_const:
                a, expr = read(v, r.shape, dims)
                reads[f"{v.name}_"] = a
                body.add(f"{v.name}_ = {expr}")
        for op in r.ops:  # saved values read back, the rest recomputed
            if id(op.out) in self.saved:
                reads[f"{op.out.name}_"] = op.out
                body.add(f"{op.out.name}_ = {index(op.out, r.shape)}")
            else:
                body.add(f"{op.out.name}_ = {pw_expr(op, op.attrs['cls'].out, {}, dt)}")
        same: dict[int, Value] = {}  # scalar adjoint -> the value whose adjoint it equals (g passed on)
        unchanged: set[int] = set()  # scalar adjoints still equal to a seed's adjoint array
        for v in seeds:
            body.add(f"d_{v.name}_ = {index(v, r.shape, self.adj[id(v)])}")
            same[id(v)] = v
            unchanged.add(id(v))
        for op in reversed(r.ops):
            self.scalar_vjp(body, op, same, unchanged, dt)
        targets = [v for v in targets if id(v) in same]
        # one result buffer per distinct adjoint, stored at the loop's own index; the pieces of a split
        # that tile their base (an LSTM's four gates) store into ONE buffer of the base's shape at
        # their offsets (no concatenate after the loop); a seed's adjoint passed on unchanged needs no
        # buffer
        tiled = self.tiles(body, r, targets, same)
        bufs: dict[int, tuple[Value, str]] = dict(tiled)
        for v in targets:
            root = same[id(v)]
            if id(v) in bufs:
                continue
            if id(v) in unchanged and root.shape == r.shape == v.shape:
                bufs[id(v)] = (root, self.adj[id(root)])
            elif v.shape != r.shape:  # broadcast: loop elements add into one
                self.allocate(body, v, "zeros")
                body.add(f"{index(v, r.shape, 'r_' + v.name)} += d_{v.name}_")
                bufs[id(v)] = (v, f"r_{v.name}")
            elif not any(b[0] is root and b[1].startswith("r_") for b in bufs.values()):
                self.allocate(body, root, "empty")
                body.add(f"{index(root, r.shape, 'r_' + root.name)} = d_{v.name}_")
                bufs[id(v)] = (root, f"r_{root.name}")
            else:
                bufs[id(v)] = (root, f"r_{root.name}")
        close_loops(body, r.shape)
        used = _drop_dead(body)
        arrays = {id(a): a for name, a in reads.items() if name in used}
        outs = list(dict.fromkeys(b for _, b in bufs.values() if b.startswith("r_")))
        if outs:
            self.code.call_loop(f"backward of the fused loop over {dims.shape(r.shape)}: recompute, "
                                "then adjoints in reverse", body,
                                [self.need(a) for a in arrays.values()] + [self.adj[id(v)] for v in seeds],
                                outs)
        self.gather(targets, {k: b for k, (_, b) in bufs.items()}, {b for _, b in tiled.values()})

    def tiles(self, body: Code, r: Region, targets: list[Value], same: dict[int, Value]
              ) -> dict[int, tuple[Value, str]]:
        """Stores of the pieces that tile a base into ``r_<base>`` at their offsets (a base whose
        pieces have the same adjoints as an earlier one's, as ``gx`` and ``h @ W^T`` in
        ``gates = gx + h @ W^T``, shares its buffer). Pieces broadcast over the loop (a GRU's
        ``b_hh`` chunked with ``h @ W_hh^T + b_hh``) add into one zeroed buffer of the base's shape:
        no buffer per piece, no concatenate after the loop. Returns their entries of ``bufs``."""
        groups: dict[int, tuple[Value, list[Value]]] = {}
        for v in targets:
            w = window(v)
            if w is not None:
                groups.setdefault(id(w[0]), (w[0], []))[1].append(v)
        bufs: dict[int, tuple[Value, str]] = {}
        made: dict[tuple, str] = {}  # the pieces' (base shape, adjoint, offsets) -> the buffer holding them
        direct = {id(v) for v in targets}
        for base, pieces in groups.values():
            kinds = {v.shape != r.shape for v in pieces}  # broadcast pieces add up, the others are stored
            if id(base) in direct or len(kinds) != 1 or _tiling_axis(base, pieces) is None:
                continue  # a base also read whole adds its own adjoint: not tiled (gather joins pieces)
            adds = kinds.pop()
            key = (base.shape, *sorted((id(same[id(v)]), tuple(window(v)[1])) for v in pieces))
            buf = made.get(key)
            if buf is None:
                buf = made[key] = f"r_{base.name}"
                self.allocate(body, base, "zeros" if adds else "empty")
                for v in pieces:
                    starts = [self.dims.int(k) for k in window(v)[1]]
                    body.add(f"{index(v, r.shape, buf, starts)} {'+=' if adds else '='} d_{v.name}_")
            bufs.update({id(v): (base, buf) for v in pieces})
        return bufs

    def allocate(self, body: Code, v: Value, how: str) -> None:
        """``r_v = np.<how>(v's shape)`` at the top of a loop function."""
        body.lines.insert(0, f"    r_{v.name} = np.{how}({self.dims.shape(v.shape)}, {dtype_name(v.dtype)})")

    def gather(self, targets: list[Value], bufs: dict[int, str], whole: set[str]) -> None:
        """Adjoints of the loop's arrays from its buffers: a direct input takes its buffer; a base
        takes the buffer of its shape its windows were stored into (``whole``, from ``tiles``), else
        its windows are joined (``np.concatenate`` when they tile it in order, else scattered); a base
        whose pieces are the same buffers as another's shares that array."""
        by_base: dict[int, tuple[Value, list[Value]]] = {}
        for v in targets:
            w = window(v)
            if w is None and bufs[id(v)].startswith("r_"):
                self._add(v, bufs[id(v)])
            elif w is None:  # a seed's adjoint array, unchanged
                self.alias(v, bufs[id(v)])
            else:
                by_base.setdefault(id(w[0]), (w[0], []))[1].append(v)
        joined: dict[tuple, Value] = {}
        for base, pieces in by_base.values():
            held = {bufs[id(v)] for v in pieces}
            stored = len(held) == 1 and held <= whole  # into one buffer of the base's shape
            key = tuple(held) if stored else tuple((bufs[id(v)], tuple(window(v)[1])) for v in pieces)
            if key in joined:
                self.alias(base, f"d_{joined[key].name}")
                continue
            if stored:
                self._add(base, key[0])
                joined[key] = base
                continue
            axis = _tiling_axis(base, pieces)
            if axis is None:
                for v in pieces:
                    self.scatter(base, slice_text(v.op.attrs["idx"], self.dims), bufs[id(v)])
            else:
                order = sorted(pieces, key=lambda v: window(v)[1][axis])
                self._add(base, f"np.concatenate(({', '.join(bufs[id(v)] for v in order)},), {axis})")
            joined[key] = base

    def _add(self, v: Value, expr: str) -> None:
        """d_v (+)= a fresh array ``expr``."""
        if id(v) in self.adj:
            self.accumulate(v, expr)
        else:
            self._take(v, expr)

    def _take(self, v: Value, buf: str) -> None:
        self.code.add(f"d_{v.name} = {buf}")
        self.adj[id(v)] = f"d_{v.name}"

    def scalar_vjp(self, body: Code, op: Op, same: dict[int, Value], unchanged: set[int], dt: str) -> None:
        """The contributions of one pointwise op to its inputs' scalar adjoints; ``same`` maps each
        adjoint computed so far to the value whose adjoint it equals (itself, or the op output whose
        adjoint the formula ``g`` passed on unchanged)."""
        if id(op.out) not in same:
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
            if id(v) in same:
                body.add(f"d_{v.name}_ = d_{v.name}_ + ({term})")
                same[id(v)] = v
                unchanged.discard(id(v))
            else:
                body.add(f"d_{v.name}_ = {term}")
                same[id(v)] = same[id(op.out)] if formula == "g" else v
                if formula == "g" and id(op.out) in unchanged:
                    unchanged.add(id(v))


def _drop_dead(body: Code) -> set[str]:
    """Remove the scalar assignments nothing reads (recomputed values and loads the adjoints do not
    need, so their arrays are neither passed nor saved); returns the scalars still assigned."""
    assign = re.compile(r"\s*(\w+_) = ")
    while True:
        text = "\n".join(body.lines)
        counts = {m: len(re.findall(rf"\b{m}\b", text)) for line in body.lines
                  if (m := (assign.match(line) or [None, None])[1])}
        dead = {m for m, n in counts.items() if n == 1}
        if not dead:
            return set(counts)
        body.lines = [line for line in body.lines if (assign.match(line) or [None, None])[1] not in dead]


def _tiling_axis(base: Value, pieces: list[Value]) -> int | None:
    """The axis along which the windows ``pieces`` tile ``base`` exactly (full on every other axis)."""
    n = len(base.shape)
    for axis in range(n):
        spans = sorted((window(v)[1][axis], v.shape[axis]) for v in pieces)
        full = all(window(v)[1][k] == 0 and v.shape[k] == base.shape[k]
                   for v in pieces for k in range(n) if k != axis)
        pos = 0
        for start, size in spans:
            if start != pos:
                break
            pos += size
        else:
            if full and pos == base.shape[axis]:
                return axis
    return None


# ------------------------------------------------------------------ vector-Jacobian rules of array ops
def _matmul(b: Backward, op: Op, g: str) -> None:
    """C = A B:  dA = G B^T,  dB = A^T G.  (With B = W^T, B^T is W itself: the backward reads W, a
    C-ordered array, whatever layout the forward gave W^T.)"""
    x, y = op.ins
    if x.requires_grad:
        w = y.op.ins[0] if y.kind == "op" and _is_matrix_transpose(y.op) else None
        b.accumulate(x, f"dot({g}, {b.need(y)}.T)" if w is None else f"dot({g}, {b.need(w)})")
    if y.requires_grad and b.hoisted is not None and (id(y) in b.hoisted or y.kind == "capture") \
            and id(x) not in b.invariant and len(x.shape) == 2:
        b.need(x)
        name = f"g_{y.name}_{len(b.deferred)}"  # read here: a later scatter into g's array copies it first
        b.code.add(f"{name} = {g}  # d{y.name} = sum over t of {x.name}^T g: after the loop")
        b.deferred.append((y, x, name))
    elif y.requires_grad:
        b.accumulate(y, f"dot({b.need(x)}.T, {g})")


def _is_matrix_transpose(op: Op) -> bool:
    axes = op.attrs.get("axes")
    return op.kind == "transpose" and len(op.out.shape) == 2 and (axes is None or list(axes) == [1, 0])


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

"""Fusion: the graph's ops grouped into units, each one loop or one array statement.

A ``Region`` is a maximal run of pointwise ops with one output shape: ONE loop over that shape, every
intermediate a scalar in registers; a value leaves the loop as an array only when something outside
reads it (``materialised``). Every other op is a ``Single`` unit (a BLAS call, a view, a reduction).
Units come out in a valid order: an op that does not read an open region is emitted before that
region's loop, so a region stays open across a matmul it does not depend on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ir import Graph, Op, Value, identifier


@dataclass(eq=False)
class Region:
    shape: tuple[int, ...]
    ops: list[Op] = field(default_factory=list)

    def inputs(self) -> list[Value]:
        """Values the loop reads from outside, in first-use order."""
        inside = {id(op.out) for op in self.ops}
        seen: dict[int, Value] = {}
        for op in self.ops:
            for v in op.ins:
                if id(v) not in inside:
                    seen.setdefault(id(v), v)
        return list(seen.values())


@dataclass(eq=False)
class Single:
    op: Op


Unit = Region | Single


def schedule(graph: Graph) -> list[Unit]:
    """The ops of ``graph`` as fused units, in execution order (see the module docstring)."""
    units: list[Unit] = []
    open_: dict[tuple[int, ...], Region] = {}
    home: dict[int, Region] = {}  # id(value) -> its region

    def flush(r: Region) -> None:
        if open_.get(r.shape) is r:
            del open_[r.shape]
            units.append(r)

    for op in graph.ops:
        mine = open_.get(op.out.shape) if op.kind == "pw" else None
        for v in op.ins:
            src = home.get(id(v))
            if src is not None and src is not mine:
                flush(src)
        if op.kind != "pw":
            units.append(Single(op))
            continue
        if mine is None:
            mine = open_[op.out.shape] = Region(op.out.shape)
        mine.ops.append(op)
        home[id(op.out)] = mine
    units.extend(open_.values())
    return units


def materialised(graph: Graph, units: list[Unit]) -> set[int]:
    """ids of the region values read outside their region (or returned): these become arrays."""
    unit_of = {id(op.out): u for u in units if isinstance(u, Region) for op in u.ops}
    out = {id(v) for v in graph.outputs}
    for u in units:
        ops = u.ops if isinstance(u, Region) else [u.op]
        for op in ops:
            for v in op.ins:
                if id(v) in unit_of and unit_of[id(v)] is not u:
                    out.add(id(v))
    return out


def push_slices(graph: Graph) -> None:
    """Rewrite ``x[idx] <op> y[idx]`` for ``(x <op> y)[idx]`` when a pointwise value is read only through
    step-1 slices (the gates of an LSTM cut by ``chunk``): each piece is then computed inside the loop
    that uses it, reading its inputs as windows, and the whole-gate array is never made. Repeats until
    no such value is left."""
    taken = {v.name for op in graph.ops for v in (*op.ins, op.out)}
    taken |= {v.name for v in (*graph.args, *graph.captures, *graph.consts)}
    changed = True
    while changed:
        changed = False
        users = graph.consumers()
        outs = {id(v) for v in graph.outputs}
        for op in list(graph.ops):
            readers = users.get(id(op.out), [])
            if (op.kind == "pw" and readers and id(op.out) not in outs
                    and all(_window_slice(r, op.out) for r in readers)):
                for r in readers:
                    _push(graph, op, r, taken)
                changed = True
                break


def _window_slice(op: Op, base: Value) -> bool:
    return (op.kind == "slice" and op.ins[0] is base and len(op.out.shape) == len(base.shape)
            and all(isinstance(i, slice) and i.step == 1 for i in op.attrs["idx"]))


def _push(graph: Graph, pw: Op, sl: Op, taken: set[str]) -> None:
    """Turn the slice op ``sl`` of ``pw``'s output into ``pw`` applied to slices of its inputs."""
    idx, out = sl.attrs["idx"], pw.out
    new_ins, new_ops = [], []
    for x in pw.ins:
        lead = len(out.shape) - len(x.shape)
        xi = tuple(slice(None) if j < 0 or x.shape[j] == 1 else s
                   for j, s in ((k - lead, s) for k, s in enumerate(idx)) if j >= 0)
        xi = tuple(slice(*s.indices(x.shape[j])) for j, s in enumerate(xi))
        if all(s == slice(0, n, 1) for s, n in zip(xi, x.shape)):
            new_ins.append(x)  # broadcast along the cut (or a scalar): read whole
            continue
        shape = tuple(len(range(*s.indices(n))) for s, n in zip(xi, x.shape)) + x.shape[len(xi):]
        v = Value(shape, x.dtype, "op", identifier(f"{x.name}_piece", taken), x.requires_grad)
        v.op = Op("slice", [x], v, {"idx": xi}, pw.scope, pw.line)
        new_ops.append(v.op)
        new_ins.append(v)
    sl.kind, sl.ins, sl.attrs, sl.scope, sl.line = "pw", new_ins, dict(pw.attrs), pw.scope, pw.line
    at = graph.ops.index(sl)
    graph.ops[at:at] = new_ops

"""Fusion: the graph's ops grouped into units, each one loop or one array statement.

A ``Region`` is a maximal run of pointwise ops with one output shape: ONE loop over that shape, every
intermediate a scalar in registers; a value leaves the loop as an array only when something outside
reads it (``materialised``). Every other op is a ``Single`` unit (a BLAS call, a view, a reduction).
Units come out in a valid order: an op that does not read an open region is emitted before that
region's loop, so a region stays open across a matmul it does not depend on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ir import Graph, Op, Value


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

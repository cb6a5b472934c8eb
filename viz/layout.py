"""Where every node and leaf of the walked graph belongs: its time step, read from the step scopes
(``mg.find_step``), and for a leaf its kind and the cluster it sits in.

A *sequence* is the scope path above a step scope (``("LSTM", "layer0")`` for ``("LSTM", "layer0",
"t=3")``); its steps are the ``t`` found below it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import minigrad as mg

from .walk import Walk

Scope = tuple[str, ...]
#: (sequence, t) of a scope path; (None, -1) outside any step
StepOf = Callable[[Scope], tuple[Scope | None, int]]


@dataclass
class Layout:
    """Steps of the nodes and placement of the leaves; list indices follow ``Walk.nodes``/``leaves``."""

    node_seq: list[Scope | None] = field(default_factory=list)
    node_t: list[int] = field(default_factory=list)
    #: the time indices present in each sequence
    seq_steps: dict[Scope, set[int]] = field(default_factory=dict)
    leaf_kind: list[str] = field(default_factory=list)  # param | leaf | input | const
    leaf_seq: list[Scope | None] = field(default_factory=list)  # set for a const (made in a step)
    leaf_t: list[int] = field(default_factory=list)
    #: the deepest cluster shared by all consumers of a leaf (the sequence for a consumer in a step)
    leaf_home: dict[int, Scope] = field(default_factory=dict)
    #: (sequence, t) if every consumer of a leaf is in that one step, else False
    leaf_step: dict[int, tuple[Scope, int] | bool] = field(default_factory=dict)
    #: the inputs (sources, as in ``Walk.edges``) of each op node outside time steps
    node_srcs: dict[int, list[int]] = field(default_factory=dict)


def step_finder() -> StepOf:
    """``step_of(scope) -> (sequence, t)``, memoised: scopes repeat across the nodes of a step."""
    cache: dict[Scope, tuple[Scope | None, int]] = {}

    def step_of(scope: Scope) -> tuple[Scope | None, int]:
        got = cache.get(scope)
        if got is None:
            found = mg.find_step(scope)
            got = cache[scope] = (scope[:found[0]], found[1]) if found is not None else (None, -1)
        return got

    return step_of


def layout(w: Walk, names: Mapping[int, str]) -> Layout:
    """Steps of the op nodes, then kind and placement of the leaves (``names``: id -> given name)."""
    lay = Layout()
    step_of = step_finder()
    for n in w.nodes:
        seq, t = step_of(n.scope)
        lay.node_seq.append(seq)
        lay.node_t.append(t)
        if seq is not None:
            lay.seq_steps.setdefault(seq, set()).add(t)
    _leaf_kinds(w, names, lay, step_of)
    _leaf_homes(w, lay)
    return lay


def _leaf_kinds(w: Walk, names: Mapping[int, str], lay: Layout, step_of: StepOf) -> None:
    """A leaf that requires grad is a parameter (named) or a leaf; one made inside a time step is a
    constant of that step (the 1 in 1 - z); any other is an input."""
    for lf in w.leaves:
        seq, t = step_of(lf.scope)
        if lf.requires_grad:
            kind = "param" if (id(lf) in names or lf.name) else "leaf"
            seq, t = None, -1
        elif seq is not None and seq in lay.seq_steps:
            kind = "const"
        else:
            kind = "input"
            seq, t = None, -1
        lay.leaf_kind.append(kind)
        lay.leaf_seq.append(seq)
        lay.leaf_t.append(t)


def _leaf_homes(w: Walk, lay: Layout) -> None:
    """A param/input leaf sits in the deepest cluster shared by all its consumers (outside any step);
    the expanded view puts a leaf used by a single time step inside that step's cluster."""
    homes, steps, srcs_of = lay.leaf_home, lay.leaf_step, lay.node_srcs
    for src, dst, _ in w.edges:
        seq = lay.node_seq[dst]
        if seq is None:
            srcs_of.setdefault(dst, []).append(src)
        if src >= 0:
            continue
        j = -src - 1
        sc = seq if seq is not None else w.nodes[dst].scope
        cur = homes.get(j)
        if cur is None:
            homes[j] = sc
        elif cur != sc:
            k = 0
            while k < len(cur) and k < len(sc) and cur[k] == sc[k]:
                k += 1
            homes[j] = cur[:k]
        st = (seq, lay.node_t[dst]) if seq is not None else False
        if steps.get(j, st) != st:
            st = False
        steps[j] = st

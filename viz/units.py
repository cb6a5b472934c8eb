"""The boxes of a drawing (*units*) and the edges between them: what is folded, elided and capped.

Every op node and leaf maps to a unit. ``expanded``: one unit per op node. ``collapsed``: one unit per
time step, and a chain of one-input ops outside the steps applied to a parameter (the transpose
``W_hh^T`` done once per sequence) is drawn inside the parameter's box, so the parameter's own edges
go into every step that uses it. Parameters are drawn once, with an edge into every unit that uses
them; constants made inside a step belong to it.

Long unrolls: per sequence only the first and last steps are kept; every node of the steps in between
(and every input used by one of them only) maps to ONE elision unit "... n steps ...", so edges,
including the shared weights' fan-out, are rerouted to it. Two caps protect ``dot`` from graphs
without step scopes: at most ``max_nodes`` units (the rest, farthest from the roots, become one
"... n more nodes ..." unit) and at most ``max_fanout`` edges out of a unit towards units outside steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import minigrad as mg

from .layout import Layout, Scope
from .walk import Walk

#: Steps kept per sequence when max_steps is not given: dot's layout time grows steeply with the
#: number of long edges (an input split fanning out to every step, every step feeding one stack),
#: e.g. a collapsed LSTM with 80 steps drawn takes dot 80 s, with 24 steps 0.15 s.
DEFAULT_STEPS = {"collapsed": 24, "expanded": 8}


class Unit:
    """One box of the drawing."""

    __slots__ = ("cluster", "key", "kind", "nodes", "outs", "seq", "state", "step", "uid")

    def __init__(self, uid: int, kind: str, key: Any, cluster: Scope,
                 seq: Scope | None = None, step: int | None = None) -> None:
        self.uid = uid
        self.kind = kind  # op | step | elide | param | leaf | input | const | trunc
        self.key = key
        self.cluster = cluster
        self.seq = seq  # the sequence scope (parent of the t=... scope) for step-like units
        self.step = step  # the time index; None for an elision unit
        self.nodes: list[int] = []  # op node indices (op: 1, step: all in the step)
        self.outs: set[tuple[int, int]] = set()  # (node, out idx) consumed outside this unit
        self.state = False  # produces a tensor consumed by another step of the same sequence


@dataclass
class Units:
    """The units, the edges between them, and what was left out to keep the drawing small."""

    expanded: bool = False  # the view: one unit per op node (True) or per time step
    units: list[Unit] = field(default_factory=list)
    #: (source uid, target uid) -> number of tensor uses the edge stands for
    edges: dict[tuple[int, int], int] = field(default_factory=dict)
    node_unit: list[Unit] = field(default_factory=list)  # by op node index
    root_units: list[Unit] = field(default_factory=list)
    max_steps: int | None = None  # as given, or chosen from the node budget
    kept: dict[Scope, set[int]] = field(default_factory=dict)  # steps drawn, per sequence
    elided: dict[Scope, list[int]] = field(default_factory=dict)  # steps elided, per sequence
    n_trunc: int = 0  # units merged into the "... more nodes ..." unit
    hidden_in: dict[int, list[int]] = field(default_factory=dict)  # uid -> sources whose edge was dropped
    fan_hidden: dict[int, int] = field(default_factory=dict)  # uid -> number of its edges dropped
    #: uid of a weight's box -> the (sequence, t) of a first step it has no edge into although it feeds
    #: every other drawn step of that sequence (the product with a zero initial state was skipped)
    skipped_first: dict[int, list[tuple[Scope, int]]] = field(default_factory=dict)


def build_units(w: Walk, lay: Layout, view: str, max_steps: int | None, node_budget: int,
                max_nodes: int, max_fanout: int) -> Units:
    """Fold, elide, connect and cap: the passes of the module docstring, in order."""
    expanded = view == "expanded"
    fold_to = {} if expanded else _fold_chains(w, lay)
    if max_steps is None and lay.seq_steps:
        max_steps = _budget_steps(w, lay, view, node_budget)
    res = Units(expanded=expanded, max_steps=max_steps)
    res.kept, res.elided = _split_steps(lay.seq_steps, max_steps)
    leaf_unit = _Builder(res).assign(w, lay, fold_to)
    res.edges = _connect(w, res.node_unit, leaf_unit)
    res.root_units = [res.node_unit[s] if s >= 0 else leaf_unit[-s - 1] for s, _ in w.roots]
    if len(res.units) > max_nodes:
        _cap_nodes(res, max_nodes)
    _cap_fanout(res, max_fanout)
    res.skipped_first = _skipped_first(res, lay)
    return res


def _skipped_first(res: Units, lay: Layout) -> dict[int, list[tuple[Scope, int]]]:
    """Weights that feed every drawn step of a sequence but its first (or, for a reverse direction, its
    last): rnn skips ``h_0 W_hh^T`` when the initial state is the constant zero, so ``W_hh`` has no edge
    into that step. A weight reached through ops outside the steps (the hoisted ``W_hh^T`` of the
    expanded view) counts as the weight. Returns uid of the weight's box -> [(sequence, t)]."""
    by_uid = {u.uid: u for u in res.units}
    preds: dict[int, list[int]] = {}
    for a, b in res.edges:
        preds.setdefault(b, []).append(a)

    def weight_of(u: Unit) -> Unit | None:
        seen = set()
        while u.kind == "op" and u.seq is None and u.uid not in seen:
            seen.add(u.uid)
            srcs = preds.get(u.uid, [])
            if len(srcs) != 1:
                return None
            u = by_uid[srcs[0]]
        return u if u.kind in ("param", "leaf") else None

    fed: dict[tuple[int, Scope], set[int]] = {}
    for a, b in res.edges:
        ua, ub = by_uid[a], by_uid[b]
        if ub.seq is None or ub.step is None or ua.seq is not None:
            continue
        wt = weight_of(ua)
        if wt is not None:
            fed.setdefault((wt.uid, ub.seq), set()).add(ub.step)
    found: dict[int, list[tuple[Scope, int]]] = {}
    for (uid, seq), ts in fed.items():
        kept, steps = res.kept.get(seq, set()), lay.seq_steps.get(seq, set())
        missing = kept - ts
        if len(kept) >= 2 and len(missing) == 1 and ts <= kept:
            (t,) = missing
            if t in (min(steps), max(steps)):
                found.setdefault(uid, []).append((seq, t))
    return found


def _fold_chains(w: Walk, lay: Layout) -> dict[int, int]:
    """op node -> the leaf (param or leaf) at the end of its chain of one-input ops outside steps,
    or -1 if the chain does not start at one."""
    fold_to: dict[int, int] = {}
    srcs_of = lay.node_srcs
    for i in srcs_of:
        if i in fold_to:
            continue
        chain, cur, res = [], i, -1
        while True:
            srcs = srcs_of.get(cur)
            if srcs is None or len(srcs) != 1 or w.nodes[cur].n_out != 1:
                break
            if cur in fold_to:
                res = fold_to[cur]
                break
            chain.append(cur)
            s0 = srcs[0]
            if s0 < 0:
                if lay.leaf_kind[-s0 - 1] in ("param", "leaf"):
                    res = -s0 - 1
                break
            cur = s0
        for c in chain:
            fold_to[c] = res
    return fold_to


def _budget_steps(w: Walk, lay: Layout, view: str, node_budget: int) -> int:
    """As many steps per sequence as fit in ``node_budget`` boxes, between 2 and DEFAULT_STEPS."""
    in_steps = sum(1 for s in lay.node_seq if s is not None)
    # leaves made in a step (constants) or used by one step only (x_t) go with their step
    per_leaf = sum(1 for j, k in enumerate(lay.leaf_kind) if k == "const" or lay.leaf_step.get(j))
    outside = len(w.nodes) - in_steps + len(w.leaves) - per_leaf
    n_st = max(sum(len(s) for s in lay.seq_steps.values()), 1)
    if view == "expanded":
        per_step = (in_steps + per_leaf) / n_st
    else:
        step_inputs = sum(1 for j, k in enumerate(lay.leaf_kind) if k != "const" and lay.leaf_step.get(j))
        per_step = 1.0 + step_inputs / n_st
    room = max(node_budget - outside, 0)
    budget_steps = int(room / (per_step * len(lay.seq_steps)))
    return max(2, min(budget_steps, DEFAULT_STEPS[view]))


def _split_steps(seq_steps: dict[Scope, set[int]], max_steps: int | None,
                 ) -> tuple[dict[Scope, set[int]], dict[Scope, list[int]]]:
    """Steps kept (the first half and the last half of ``max_steps``) and elided, per sequence."""
    kept: dict[Scope, set[int]] = {}
    elided: dict[Scope, list[int]] = {}
    for seq, ts in seq_steps.items():
        order = sorted(ts)
        if max_steps is not None and len(order) > max_steps:
            head = (max_steps + 1) // 2
            tail = max_steps // 2
            kept[seq] = set(order[:head]) | set(order[len(order) - tail:])
            elided[seq] = order[head:len(order) - tail]
        else:
            kept[seq] = ts
    return kept, elided


class _Builder:
    """Creates the units, one per key, in the order things are met (which numbers them)."""

    def __init__(self, res: Units) -> None:
        self.res = res
        self.by_key: dict[Any, Unit] = {}

    def unit(self, key: Any, kind: str, cluster: Scope, seq: Scope | None = None,
             step: int | None = None) -> Unit:
        u = self.by_key.get(key)
        if u is None:
            u = self.by_key[key] = Unit(len(self.res.units), kind, key, cluster, seq, step)
            self.res.units.append(u)
        return u

    def elision(self, seq: Scope) -> Unit:
        return self.unit(("e", seq), "elide", seq, seq, None)

    def step_unit(self, seq: Scope, t: int) -> Unit | None:
        """The unit for something in step t of seq, or None if expanded and kept (own unit)."""
        if t not in self.res.kept[seq]:
            return self.elision(seq)
        if self.res.expanded:
            return None
        return self.unit(("s", seq, t), "step", seq, seq, t)

    def assign(self, w: Walk, lay: Layout, fold_to: dict[int, int]) -> list[Unit]:
        """The unit of every leaf (returned) and of every op node (``res.node_unit``)."""
        leaf_unit = [self._leaf(j, lf.scope, lay) for j, lf in enumerate(w.leaves)]
        for i, n in enumerate(w.nodes):
            seq, t = lay.node_seq[i], lay.node_t[i]
            u = None
            if seq is not None:
                u = self.step_unit(seq, t)
            elif fold_to.get(i, -1) >= 0:
                u = leaf_unit[fold_to[i]]
            if u is None:
                u = self.unit(("n", i), "op", n.scope, seq, t if seq is not None else None)
            u.nodes.append(i)
            self.res.node_unit.append(u)
        return leaf_unit

    def _leaf(self, j: int, scope: Scope, lay: Layout) -> Unit:
        kind = lay.leaf_kind[j]
        if kind == "const":
            seq, t = lay.leaf_seq[j], lay.leaf_t[j]
            return self.step_unit(seq, t) or self.unit(("l", j), "const", scope, seq, t)
        st = lay.leaf_step.get(j)
        if st and st[1] not in self.res.kept[st[0]]:  # used by one elided step only: part of the elision
            return self.elision(st[0])
        home = (*st[0], mg.step_name(st[1])) if self.res.expanded and st else lay.leaf_home.get(j, ())
        return self.unit(("l", j), kind, home)


def _connect(w: Walk, node_unit: list[Unit], leaf_unit: list[Unit]) -> dict[tuple[int, int], int]:
    """Edges between units (A -> B if a node of B consumes a tensor made in A), counted; marks the
    outputs each unit hands to others, and the units whose output goes to another step."""
    edges: dict[tuple[int, int], int] = {}
    for src, dst, idx in w.edges:
        us = node_unit[src] if src >= 0 else leaf_unit[-src - 1]
        ud = node_unit[dst]
        if us is ud:
            continue
        key = (us.uid, ud.uid)
        edges[key] = edges.get(key, 0) + 1
        if src >= 0:
            us.outs.add((src, idx))
            if us.seq is not None and us.seq == ud.seq and us.step != ud.step:
                us.state = True
    return edges


def _cap_nodes(res: Units, max_nodes: int) -> None:
    """Keep the ``max_nodes - 1`` units nearest the roots (breadth first against the edges) and merge
    the others into one "... n more nodes ..." unit."""
    preds: dict[int, list[int]] = {}
    for a, b in res.edges:
        preds.setdefault(b, []).append(a)
    keep: set[int] = set()
    queue = [u.uid for u in res.root_units]
    qi = 0
    while qi < len(queue) and len(keep) < max_nodes - 1:
        uid = queue[qi]
        qi += 1
        if uid in keep:
            continue
        keep.add(uid)
        queue.extend(p for p in preds.get(uid, ()) if p not in keep)
    trunc = Unit(len(res.units), "trunc", ("t",), ())
    res.n_trunc = len(res.units) - len(keep)
    remap = {u.uid: (u if u.uid in keep else trunc) for u in res.units}
    res.units = [u for u in res.units if u.uid in keep] + [trunc]
    edges: dict[tuple[int, int], int] = {}
    for (a, b), c in res.edges.items():
        ua, ub = remap[a], remap[b]
        if ua is not ub:
            k2 = (ua.uid, ub.uid)
            edges[k2] = edges.get(k2, 0) + c
    res.edges = edges
    res.root_units = [remap[u.uid] for u in res.root_units]


def _cap_fanout(res: Units, max_fanout: int) -> None:
    """A unit feeding hundreds of others (a weight used at every op of a loop without step scopes)
    makes dot's layout crawl: keep ``max_fanout`` of its edges (nearest the output and farthest from
    it) and record the dropped ones, which the labels name. Edges into time steps are never dropped
    (their number is bounded by the elision: max_steps per sequence)."""
    outs_by: dict[int, list[int]] = {}
    seq_of = {u.uid: u.seq for u in res.units}
    for a, b in res.edges:
        if seq_of[b] is None:
            outs_by.setdefault(a, []).append(b)
    for a, bs in outs_by.items():
        if len(bs) > max_fanout:
            bs = sorted(bs)
            head = max_fanout // 2
            keep_b = set(bs[:head]) | set(bs[len(bs) - (max_fanout - head):])
            for b in bs:
                if b not in keep_b:
                    del res.edges[(a, b)]
                    res.hidden_in.setdefault(b, []).append(a)
            res.fan_hidden[a] = len(bs) - len(keep_b)

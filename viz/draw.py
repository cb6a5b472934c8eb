"""``viz.draw``: the computation graph minigrad recorded, clustered by scope, as a ``graphviz.Digraph``.

The picture is built in three passes over the graph (all iterative):

1. :func:`viz._walk.walk` collects the reachable op nodes, leaves and data-flow edges.
2. Every node is mapped to a *unit*, i.e. one box in the drawing. ``expanded``: one unit per op node.
   ``collapsed``: one unit per time-step scope (``t=3`` as opened by ``rnn``), op nodes outside steps
   stay individual. Parameters (leaves that require grad) are one unit each, drawn once, with an edge
   into every unit that consumes them: the weights shared by all time steps. Constants created inside a
   step belong to it. Long unrolls: per sequence (the scope that holds the ``t=...`` scopes) only the
   first and last steps are kept; all nodes of the steps in between map to ONE elision unit
   "... n steps ...", so edges (including the shared weights' fan-out) are rerouted to it.
3. Edges between units are the data flow (A -> B if a node of B consumes a tensor produced in A),
   de-duplicated. Each unit is emitted into the cluster of its scope (nested: layer > direction > step).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

import minigrad as mg
from minigrad import Tensor

from ._labels import (
    PALETTE,
    ZERO_COLOR,
    ColorScale,
    esc,
    fmt_num,
    fmt_shape,
    fmt_value,
    font_for,
    html,
    norm,
    small,
)
from ._walk import as_roots, walk
from .render import Drawing

STEP_RE = re.compile(r"^t=(\d+)$")
VIEWS = ("collapsed", "expanded")
SHOW = ("shape", "value", "grad", "dtype")
RANKDIRS = ("LR", "RL", "TB", "BT")
#: Steps kept per sequence when max_steps is not given: dot's layout time grows steeply with the
#: number of long edges (an input split fanning out to every step, every step feeding one stack),
#: e.g. a collapsed LSTM with 80 steps drawn takes dot 80 s, with 24 steps 0.15 s.
DEFAULT_STEPS = {"collapsed": 24, "expanded": 8}

FONT = "Helvetica"
STYLE = {
    "param": dict(shape="box", style="rounded,filled,bold", color="#e65100", fillcolor="#ffe0b2"),
    "leaf": dict(shape="box", style="rounded,filled,bold", color="#e65100", fillcolor="#ffe0b2"),
    "input": dict(shape="parallelogram", style="filled", color="#2e7d32", fillcolor="#c8e6c9"),
    "const": dict(shape="plaintext", style="", color="#757575", fillcolor="white", fontsize="9"),
    "op": dict(shape="box", style="filled", color="#616161", fillcolor="white"),
    "step": dict(shape="box", style="rounded,filled", color="#1565c0", fillcolor="#e3f2fd",
                 penwidth="1.5"),
    "elide": dict(shape="box", style="rounded,dashed", color="#757575", fillcolor="white",
                  fontcolor="#424242"),
    "trunc": dict(shape="box", style="rounded,dashed", color="#b71c1c", fillcolor="white",
                  fontcolor="#b71c1c"),
}
STATE_COLOR = "#1565c0"
OUTPUT_COLOR = "#ad1457"
PARAM_EDGE = "#ef6c00"


class _Unit:
    """One box of the drawing."""

    __slots__ = ("cluster", "key", "kind", "nodes", "outs", "seq", "state", "step", "uid")

    def __init__(self, uid: int, kind: str, key: Any, cluster: tuple[str, ...],
                 seq: tuple[str, ...] | None = None, step: int | None = None) -> None:
        self.uid = uid
        self.kind = kind  # op | step | elide | param | leaf | input | const | trunc
        self.key = key
        self.cluster = cluster
        self.seq = seq  # the sequence scope (parent of the t=... scope) for step-like units
        self.step = step  # the time index; None for an elision unit
        self.nodes: list[int] = []  # op node indices (op: 1, step: all in the step)
        self.outs: set[tuple[int, int]] = set()  # (node, out idx) consumed outside this unit
        self.state = False  # produces a tensor consumed by another step of the same sequence


def _param_names(params: Any) -> dict[int, str]:
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        items: Iterable = params.named_parameters()
    elif isinstance(params, Mapping):
        items = params.items()
    else:
        items = params
    names: dict[int, str] = {}
    for item in items:
        try:
            name, t = item
        except (TypeError, ValueError):
            raise TypeError("draw: params must be a Module, a mapping name -> Tensor or an iterable of "
                            "(name, Tensor) pairs") from None
        if not isinstance(t, Tensor):
            raise TypeError(f"draw: params[{name!r}] is a {type(t).__name__}, not a Tensor")
        names[id(t)] = str(name)
    return names


def _check_args(view: str, show: Iterable[str], rankdir: str, max_steps: int | None,
                node_budget: int, max_nodes: int) -> set[str]:
    if view not in VIEWS:
        raise ValueError(f"draw: view must be 'collapsed' or 'expanded', got {view!r}")
    if isinstance(show, str):
        show = (show,)
    show_set = set(show)
    bad = show_set - set(SHOW)
    if bad:
        raise ValueError(f"draw: show may contain {', '.join(SHOW)}; got unknown {sorted(bad)}")
    if rankdir not in RANKDIRS:
        raise ValueError(f"draw: rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 2):
        raise ValueError(f"draw: max_steps must be an int >= 2 (the first and last steps are always "
                         f"kept), got {max_steps!r}")
    if not isinstance(node_budget, int) or node_budget < 1:
        raise ValueError(f"draw: node_budget must be a positive int, got {node_budget!r}")
    if not isinstance(max_nodes, int) or max_nodes < 10:
        raise ValueError(f"draw: max_nodes must be an int >= 10, got {max_nodes!r}")
    return show_set


def draw(tensor: Tensor | list[Tensor] | tuple[Tensor, ...], *, params: Any = None,
         view: str = "collapsed", show: Iterable[str] = ("shape", "value", "grad"),
         max_steps: int | None = None, rankdir: str = "LR", color_by_grad: bool = True,
         node_budget: int = 150, max_nodes: int = 300, max_fanout: int = 8, value_size: int = 6,
         grad_range: tuple[float, float] | None = None, legend: bool = True,
         title: str | None = None) -> Drawing:
    """Draw the graph that produced ``tensor`` (one Tensor or a list of roots).

    - ``params``: names for leaves (a Module, ``{name: tensor}`` or ``(name, tensor)`` pairs); by
      default a leaf's own ``.name`` (``nn.Parameter`` gets it when registered).
    - ``view``: ``"collapsed"`` draws one box per time step ("LSTM layer0 t=3"), ``"expanded"`` every op
      node inside a cluster per step (the gates).
    - ``show``: what labels say: ``shape``, ``value`` (values of tensors with at most ``value_size``
      elements, else norm and mean), ``grad`` (``||grad||``), ``dtype``.
    - ``max_steps``: keep at most this many time steps per sequence (first and last halves); the rest
      become one "... n steps ..." node. Default: as many as fit in ``node_budget`` boxes, at most
      24 (collapsed) or 8 (expanded), which ``dot`` lays out in about a second.
    - ``max_nodes``: hard cap on boxes; beyond it the boxes farthest from the output are merged into
      one "... n more nodes ..." box (protects ``dot`` from graphs without time-step scopes).
    - ``max_fanout``: at most this many edges leave one box towards boxes outside time steps (a weight
      used by hundreds of ops of a loop without ``t=`` scopes); the other uses are named in the
      consumers' labels ("also uses W"). Both caps keep ``dot`` to about a second: its layout time
      grows steeply with long edges (a 300-op chain with a weight feeding 32 of them: 100 s).
    - ``color_by_grad``: fill boxes by gradient norm on a log scale, blue (small, vanishing) to red
      (large, exploding), over ``grad_range`` (default: the range present). Intermediate gradients
      exist only if :func:`viz.retain_grads` was called before ``backward()``.

    Returns a :class:`viz.Drawing` (a ``graphviz.Digraph``): ``.source`` is the DOT text,
    :func:`viz.render` writes SVG/PNG/PDF, Jupyter displays it; ``.info`` says what was drawn.
    """
    with mg.pause_gc():
        return _draw(tensor, params=params, view=view, show=show, max_steps=max_steps, rankdir=rankdir,
                     color_by_grad=color_by_grad, node_budget=node_budget, max_nodes=max_nodes,
                     max_fanout=max_fanout, value_size=value_size, grad_range=grad_range, legend=legend,
                     title=title)


def _draw(tensor: Any, *, params: Any, view: str, show: Iterable[str], max_steps: int | None,
          rankdir: str, color_by_grad: bool, node_budget: int, max_nodes: int, max_fanout: int,
          value_size: int, grad_range: tuple[float, float] | None, legend: bool,
          title: str | None) -> Drawing:
    t0 = time.perf_counter()
    show_set = _check_args(view, show, rankdir, max_steps, node_budget, max_nodes)
    if not isinstance(max_fanout, int) or max_fanout < 2:
        raise ValueError(f"draw: max_fanout must be an int >= 2, got {max_fanout!r}")
    roots = as_roots(tensor)
    names = _param_names(params)
    w = walk(roots)
    nodes, leaves = w.nodes, w.leaves
    expanded = view == "expanded"

    # ---------------------------------------------------------------- scopes -> (sequence, step)
    scope_info: dict[tuple[str, ...], tuple[tuple[str, ...] | None, int]] = {}

    def info_of(scope: tuple[str, ...]) -> tuple[tuple[str, ...] | None, int]:
        got = scope_info.get(scope)
        if got is None:
            got = (None, -1)
            for k in range(len(scope) - 1, -1, -1):
                m = STEP_RE.match(scope[k])
                if m:
                    got = (scope[:k], int(m.group(1)))
                    break
            scope_info[scope] = got
        return got

    node_seq: list[tuple[str, ...] | None] = []
    node_t: list[int] = []
    seq_steps: dict[tuple[str, ...], set[int]] = {}
    for n in nodes:
        seq, t = info_of(n.scope)
        node_seq.append(seq)
        node_t.append(t)
        if seq is not None:
            s = seq_steps.get(seq)
            if s is None:
                s = seq_steps[seq] = set()
            s.add(t)

    # ---------------------------------------------------------------- leaves: kind and placement
    leaf_kind: list[str] = []
    leaf_seq: list[tuple[str, ...] | None] = []
    leaf_t: list[int] = []
    for lf in leaves:
        seq, t = info_of(lf.scope)
        if lf.requires_grad:
            kind = "param" if (id(lf) in names or lf.name) else "leaf"
            seq, t = None, -1
        elif seq is not None and seq in seq_steps:
            kind = "const"  # made inside a time step (e.g. the 1 in 1 - z)
        else:
            kind = "input"
            seq, t = None, -1
        leaf_kind.append(kind)
        leaf_seq.append(seq)
        leaf_t.append(t)
    # a param/input leaf sits in the deepest cluster shared by all its consumers (outside any step);
    # in the expanded view a leaf used by a single time step sits inside that step's cluster
    leaf_home: dict[int, tuple[str, ...]] = {}
    leaf_step: dict[int, Any] = {}
    node_srcs: dict[int, list[int]] = {}  # inputs of the op nodes outside time steps
    for src, dst, _ in w.edges:
        seq = node_seq[dst]
        if seq is None:
            lst = node_srcs.get(dst)
            if lst is None:
                lst = node_srcs[dst] = []
            lst.append(src)
        if src < 0:
            j = -src - 1
            sc = seq if seq is not None else nodes[dst].scope
            cur = leaf_home.get(j)
            if cur is None:
                leaf_home[j] = sc
            elif cur != sc:
                k = 0
                while k < len(cur) and k < len(sc) and cur[k] == sc[k]:
                    k += 1
                leaf_home[j] = cur[:k]
            st = (seq, node_t[dst]) if seq is not None else False
            if leaf_step.get(j, st) != st:
                st = False
            leaf_step[j] = st

    # collapsed view: a chain of one-input ops outside the steps applied to a parameter (the transpose
    # W_hh^T done once per sequence) is drawn inside the parameter's box, so the parameter's own edges
    # go into every step that uses it
    fold_to: dict[int, int] = {}
    if not expanded:
        for i in node_srcs:
            if i in fold_to:
                continue
            chain, cur, res = [], i, -1
            while True:
                srcs = node_srcs.get(cur)
                if srcs is None or len(srcs) != 1 or nodes[cur].n_out != 1:
                    break
                if cur in fold_to:
                    res = fold_to[cur]
                    break
                chain.append(cur)
                s0 = srcs[0]
                if s0 < 0:
                    if leaf_kind[-s0 - 1] in ("param", "leaf"):
                        res = -s0 - 1
                    break
                cur = s0
            for c in chain:
                fold_to[c] = res

    # ---------------------------------------------------------------- elision of middle steps
    n_steps_total = sum(len(s) for s in seq_steps.values())
    if max_steps is None and seq_steps:
        in_steps = sum(1 for s in node_seq if s is not None)
        # leaves made in a step (constants) or used by one step only (x_t) go with their step
        per_leaf = sum(1 for j, k in enumerate(leaf_kind) if k == "const" or leaf_step.get(j))
        outside = len(nodes) - in_steps + len(leaves) - per_leaf
        n_st = max(n_steps_total, 1)
        if expanded:
            per_step = (in_steps + per_leaf) / n_st
        else:
            step_inputs = sum(1 for j, k in enumerate(leaf_kind) if k != "const" and leaf_step.get(j))
            per_step = 1.0 + step_inputs / n_st
        room = max(node_budget - outside, 0)
        budget_steps = int(room / (per_step * len(seq_steps)))
        max_steps = max(2, min(budget_steps, DEFAULT_STEPS[view]))
    kept: dict[tuple[str, ...], set[int]] = {}
    elided: dict[tuple[str, ...], list[int]] = {}
    for seq, ts in seq_steps.items():
        order = sorted(ts)
        if max_steps is not None and len(order) > max_steps:
            head = (max_steps + 1) // 2
            tail = max_steps // 2
            kept[seq] = set(order[:head]) | set(order[len(order) - tail:])
            elided[seq] = order[head:len(order) - tail]
        else:
            kept[seq] = ts

    # ---------------------------------------------------------------- units
    units: list[_Unit] = []
    by_key: dict[Any, _Unit] = {}

    def unit(key: Any, kind: str, cluster: tuple[str, ...], seq: tuple[str, ...] | None = None,
             step: int | None = None) -> _Unit:
        u = by_key.get(key)
        if u is None:
            u = by_key[key] = _Unit(len(units), kind, key, cluster, seq, step)
            units.append(u)
        return u

    def step_unit(seq: tuple[str, ...], t: int) -> _Unit | None:
        """The unit for something in step t of seq, or None if expanded and kept (own unit)."""
        if t not in kept[seq]:
            return unit(("e", seq), "elide", seq, seq, None)
        if expanded:
            return None
        return unit(("s", seq, t), "step", seq, seq, t)

    leaf_unit: list[_Unit] = []
    for j, lf in enumerate(leaves):
        kind = leaf_kind[j]
        u = None
        if kind == "const":
            u = step_unit(leaf_seq[j], leaf_t[j])
            if u is None:
                u = unit(("l", j), "const", lf.scope, leaf_seq[j], leaf_t[j])
        else:
            home = leaf_home.get(j, ())
            st = leaf_step.get(j)
            if st and st[1] not in kept[st[0]]:  # used by one elided step only: part of the elision
                u = unit(("e", st[0]), "elide", st[0], st[0], None)
            else:
                if expanded and st:
                    home = (*st[0], f"t={st[1]}")
                u = unit(("l", j), kind, home)
        leaf_unit.append(u)
    node_unit: list[_Unit] = []
    for i, n in enumerate(nodes):
        seq = node_seq[i]
        u = None
        if seq is not None:
            u = step_unit(seq, node_t[i])
        elif fold_to.get(i, -1) >= 0:
            u = leaf_unit[fold_to[i]]
        if u is None:
            u = unit(("n", i), "op", n.scope, seq, node_t[i] if seq is not None else None)
        u.nodes.append(i)
        node_unit.append(u)

    # ---------------------------------------------------------------- edges between units
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
            if (us.seq is not None and us.seq == ud.seq and us.step != ud.step):
                us.state = True

    # ---------------------------------------------------------------- hard cap on the number of boxes
    n_trunc = 0
    root_units = [node_unit[s] if s >= 0 else leaf_unit[-s - 1] for s, _ in w.roots]
    if len(units) > max_nodes:
        preds: dict[int, list[int]] = {}
        for a, b in edges:
            preds.setdefault(b, []).append(a)
        keep: set[int] = set()
        queue = [u.uid for u in root_units]
        qi = 0
        while qi < len(queue) and len(keep) < max_nodes - 1:
            uid = queue[qi]
            qi += 1
            if uid in keep:
                continue
            keep.add(uid)
            queue.extend(p for p in preds.get(uid, ()) if p not in keep)
        trunc = _Unit(len(units), "trunc", ("t",), None, None)
        n_trunc = len(units) - len(keep)
        remap = {u.uid: (u if u.uid in keep else trunc) for u in units}
        units = [u for u in units if u.uid in keep] + [trunc]
        new_edges: dict[tuple[int, int], int] = {}
        for (a, b), c in edges.items():
            ua, ub = remap[a], remap[b]
            if ua is not ub:
                k2 = (ua.uid, ub.uid)
                new_edges[k2] = new_edges.get(k2, 0) + c
        edges = new_edges
        root_units = [remap[u.uid] for u in root_units]

    # ---------------------------------------------------------------- fan-out cap
    # A box feeding hundreds of others (a weight used at every op of a loop without t= scopes) makes
    # dot's layout crawl: keep max_fanout of its edges (nearest the output and farthest from it) and
    # say in the labels which uses are not drawn as edges. Edges into time steps are never dropped
    # (their number is bounded by the elision: max_steps per sequence).
    hidden_in: dict[int, list[int]] = {}
    fan_hidden: dict[int, int] = {}
    outs_by: dict[int, list[int]] = {}
    seq_of = {u.uid: u.seq for u in units}
    for a, b in edges:
        if seq_of[b] is None:
            outs_by.setdefault(a, []).append(b)
    for a, bs in outs_by.items():
        if len(bs) > max_fanout:
            bs = sorted(bs)
            head = max_fanout // 2
            keep_b = set(bs[:head]) | set(bs[len(bs) - (max_fanout - head):])
            for b in bs:
                if b not in keep_b:
                    del edges[(a, b)]
                    hidden_in.setdefault(b, []).append(a)
            fan_hidden[a] = len(bs) - len(keep_b)

    # ---------------------------------------------------------------- gradient norms
    def grad_norm_of(pairs: Iterable[tuple[int, int]]) -> float | None:
        total, found = 0.0, False
        for i, k in pairs:
            t = w.outputs.get((i, k))
            if t is not None and t.grad is not None:
                total += norm(t.grad) ** 2
                found = True
        return math.sqrt(total) if found else None

    root_pairs = {(s, k) for s, k in w.roots if s >= 0}
    gnorm: dict[int, float | None] = {}
    for u in units:
        g: float | None = None
        if u.kind in ("param", "leaf", "input", "const"):
            if u.kind != "const" or expanded:
                lf = leaves[u.key[1]]
                g = norm(lf.grad) if lf.grad is not None else None
        elif u.kind == "op":
            i = u.nodes[0]
            g = grad_norm_of((i, k) for k in range(nodes[i].n_out))
        elif u.kind == "step":
            g = grad_norm_of(u.outs | {p for p in root_pairs if node_unit[p[0]] is u})
        gnorm[u.uid] = g
    colour = color_by_grad and "grad" in show_set and any(v is not None for v in gnorm.values())
    scale = ColorScale([v for v in gnorm.values() if v is not None], grad_range) if colour else None

    # ---------------------------------------------------------------- labels and styles
    def out_shapes(i: int) -> list[tuple[tuple[int, ...], Any]]:
        n = nodes[i]
        meta = getattr(n, "out_meta", None)
        if meta:
            return [(tuple(s), d) for s, d in meta]
        res = []
        for k in range(n.n_out):
            t = w.outputs.get((i, k))
            res.append((t.shape, t.dtype) if t is not None else ((), None))
        return res

    def tensor_lines(shape: tuple[int, ...], dtype: Any, t: Tensor | None, g: float | None) -> list[str]:
        lines = []
        if "shape" in show_set:
            lines.append(small(esc(fmt_shape(shape)) + (f" {esc(dtype)}" if "dtype" in show_set and
                                                       dtype is not None else "")))
        elif "dtype" in show_set and dtype is not None:
            lines.append(small(esc(str(dtype))))
        if "value" in show_set and t is not None:
            lines.append(small(esc(fmt_value(t.data, value_size))))
        if "grad" in show_set and g is not None:
            lines.append(small("‖grad‖ " + esc(fmt_num(g))))
        return lines

    seq_elided = {seq: ts for seq, ts in elided.items()}

    def label_of(u: _Unit) -> str:
        g = gnorm.get(u.uid)
        if u.kind in ("param", "leaf", "input", "const"):
            lf = leaves[u.key[1]]
            name = names.get(id(lf)) or lf.name
            if u.kind == "const":
                return html(small(esc(fmt_value(lf.data, value_size)), 9))
            if name:
                head = f"<B>{esc(name)}</B>"
            elif u.kind == "leaf":
                head = "<B>leaf</B>"
            else:
                first = leaf_step.get(u.key[1])
                ts = seq_steps.get(first[0], ()) if first else ()
                head = ("<B>initial state</B>" if lf.scope in seq_steps and ts and first[1] in (
                    min(ts), max(ts)) else "<B>input</B>")
            lines = [head, *tensor_lines(lf.shape, lf.dtype, lf, g)]
            if u.nodes:
                ops = list(dict.fromkeys(nodes[i].name for i in u.nodes))
                lines.append(small(esc("used as " + " → ".join(reversed(ops)))))
            return html(*lines)
        if u.kind == "op":
            i = u.nodes[0]
            n = nodes[i]
            head = f"<B>{esc(n.name)}</B>"
            shapes = out_shapes(i)
            if len(shapes) == 1:
                return html(head, *tensor_lines(shapes[0][0], shapes[0][1], w.outputs.get((i, 0)), g))
            uniq = sorted({s for s, _ in shapes})
            desc = (f"{len(shapes)} outputs " + ", ".join(fmt_shape(s) for s in uniq[:3])
                    + (" ..." if len(uniq) > 3 else ""))
            lines = [head, small(esc(desc))] if "shape" in show_set else [head]
            if "grad" in show_set and g is not None:
                lines.append(small("‖grad‖ " + esc(fmt_num(g))))
            return html(*lines)
        if u.kind == "step":
            head = "<B>" + esc(" ".join((*u.seq, f"t={u.step}"))) + "</B>"
            lines = [head]
            if "shape" in show_set:
                outs = sorted(u.outs)
                shp = []
                for i, k in outs:
                    shp.append(fmt_shape(out_shapes(i)[k][0]))
                ops = len(u.nodes)
                desc = f"{ops} op{'s' if ops != 1 else ''}"
                if shp:
                    desc += " · out " + ", ".join(shp[:4]) + (" ..." if len(shp) > 4 else "")
                lines.append(small(esc(desc)))
            if "grad" in show_set and g is not None:
                lines.append(small("‖grad out‖ " + esc(fmt_num(g))))
            return html(*lines)
        if u.kind == "elide":
            ts = seq_elided[u.seq]
            return html(f"<B>… {len(ts):,} steps …</B>",
                        small(esc(f"t={ts[0]} … t={ts[-1]} not drawn")))
        return html(f"<B>… {n_trunc:,} more nodes …</B>",
                    small(esc("not drawn (raise max_nodes or use max_steps)")))

    def short_name(u: _Unit) -> str:
        if u.kind in ("param", "leaf", "input", "const"):
            lf = leaves[u.key[1]]
            return names.get(id(lf)) or lf.name or u.kind
        if u.kind == "op":
            return nodes[u.nodes[0]].name
        if u.kind == "step":
            return f"t={u.step}"
        return "elided nodes"

    uid_map = {u.uid: u for u in units}

    def full_label(u: _Unit) -> str:
        lab = label_of(u)
        extra = []
        if u.uid in fan_hidden:
            extra.append(small(esc(f"{fan_hidden[u.uid]:,} more uses not drawn as edges")))
        if u.uid in hidden_in:
            srcs = list(dict.fromkeys(short_name(uid_map[a]) for a in hidden_in[u.uid]))
            extra.append(small(esc("also uses " + ", ".join(srcs)), 10, "#e65100"))
        if not extra:
            return lab
        body = lab[1:-1]
        if body.startswith("<TABLE"):
            rows = "".join(f"<TR><TD>{x}</TD></TR>" for x in extra)
            return "<" + body.replace("</TABLE>", rows + "</TABLE>") + ">"
        return html(body, *extra)

    roots_set = {u.uid for u in root_units}

    def attrs_of(u: _Unit) -> dict[str, str]:
        a = dict(STYLE[u.kind])
        if u.kind == "op" and u.state:
            a.update(color=STATE_COLOR, penwidth="2.5")
        if u.kind == "step" and u.state:
            a.update(penwidth="2")
        if u.uid in roots_set:
            a.update(peripheries="2", color=OUTPUT_COLOR, penwidth="2")
            if not colour:
                a["fillcolor"] = "#f8bbd0"
        g = gnorm.get(u.uid)
        if scale is not None and g is not None and u.kind not in ("const", "elide", "trunc"):
            fill = scale.color(g)
            a["fillcolor"] = fill
            a["fontcolor"] = font_for(fill)
            if "filled" not in a["style"]:
                a["style"] = (a["style"] + ",filled").strip(",")
        return a

    # ---------------------------------------------------------------- emit DOT
    g = Drawing(name="minigrad", engine="dot")
    g.attr(rankdir=rankdir, fontname=FONT, newrank="true", nodesep="0.25", ranksep="0.35",
           compound="true")
    g.attr("node", fontname=FONT, fontsize="11", margin="0.08,0.04", height="0.3")
    g.attr("edge", fontname=FONT, fontsize="9", color="#616161", arrowsize="0.7")
    if title is not None:
        g.attr(label=html(f"<B>{esc(title)}</B>"), labelloc="t", fontsize="16")

    members: dict[tuple[str, ...], list[_Unit]] = {}
    for u in units:
        members.setdefault(tuple(u.cluster) if u.kind != "trunc" else (), []).append(u)
    # every prefix of a used cluster path is a cluster too
    paths = set()
    for p in members:
        for k in range(1, len(p) + 1):
            paths.add(p[:k])
    cluster_id = {p: f"cluster_{k}" for k, p in enumerate(sorted(paths, key=lambda p: (len(p), p)))}
    built: dict[tuple[str, ...], Drawing] = {}

    def emit_units(target: Any, us: list[_Unit]) -> None:
        for u in sorted(us, key=lambda u: -u.uid):
            target.node(f"n{u.uid}", full_label(u), **attrs_of(u))

    # deepest clusters first, so a parent attaches complete children (no recursion)
    for p in sorted(paths, key=lambda p: -len(p)):
        sub = Drawing(name=cluster_id[p])
        _, t = info_of(p)
        is_step = STEP_RE.match(p[-1]) is not None
        sub.attr(label=html(f"<B>{esc(p[-1])}</B>"), fontname=FONT, fontsize="11" if is_step else "12",
                 style="rounded,filled" if not is_step else "rounded,filled,bold",
                 color="#90caf9" if is_step else "#bdbdbd",
                 fillcolor="#fbfdff" if is_step else ("#f7f7f7" if len(p) % 2 else "#eeeeee"),
                 labeljust="l")
        emit_units(sub, members.get(p, []))
        for c in sorted((c for c in built if len(c) == len(p) + 1 and c[:len(p)] == p),
                        key=lambda c: cluster_id[c]):
            sub.subgraph(built.pop(c))
        built[p] = sub
    emit_units(g, members.get((), []))
    for p in sorted(built, key=lambda c: cluster_id[c]):
        g.subgraph(built[p])

    kinds = {u.kind for u in units}
    for (a, b), c in sorted(edges.items(), key=lambda e: (e[0][1], e[0][0])):
        ua, ub = uid_map[a], uid_map[b]
        ea: dict[str, str] = {}
        if ua.kind in ("param", "leaf"):
            ea.update(color=PARAM_EDGE, penwidth="1.2")
            if ub.kind == "elide":
                ea["style"] = "dashed"
        elif ua.seq is not None and ua.seq == ub.seq and ua.step != ub.step:
            ea.update(color=STATE_COLOR, penwidth="2.2")
        if ua.kind == "elide" or ub.kind == "elide" or "trunc" in (ua.kind, ub.kind):
            ea["style"] = "dashed"
        if c > 1 and expanded:
            ea["label"] = f"×{c}"
        g.edge(f"n{a}", f"n{b}", **ea)

    if legend:
        _legend(g, kinds, expanded, scale, any(u.state for u in units))

    g.info = dict(
        view=view, roots=len(roots), graph_nodes=len(nodes), graph_leaves=len(leaves),
        sequences=len(seq_steps), steps=n_steps_total,
        steps_drawn=sum(len(k) for k in kept.values()),
        elided_steps=sum(len(v) for v in elided.values()), max_steps=max_steps,
        units=len(units), edges=len(edges), truncated_nodes=n_trunc,
        grad_range=(scale.lo, scale.hi) if scale is not None else None,
        seconds=time.perf_counter() - t0,
    )
    return g


def _legend(g: Drawing, kinds: set[str], expanded: bool, scale: ColorScale | None, state: bool) -> None:
    """A small cluster with one sample of each kind of box present, and the gradient colour bar."""
    items: list[tuple[str, str, dict[str, str]]] = []
    if "param" in kinds or "leaf" in kinds:
        items.append(("lg_param", "<B>parameter</B><BR/>" + small("drawn once, shared"),
                      dict(STYLE["param"])))
    if "input" in kinds:
        items.append(("lg_input", "<B>input</B>", dict(STYLE["input"])))
    if "step" in kinds:
        items.append(("lg_step", "<B>time step</B><BR/>" + small("one cell application"),
                      dict(STYLE["step"])))
    if "op" in kinds:
        items.append(("lg_op", "<B>op</B>", dict(STYLE["op"])))
    if state and expanded:
        items.append(("lg_state", "<B>state</B><BR/>" + small("goes to the next step"),
                      dict(STYLE["op"], color=STATE_COLOR, penwidth="2.5")))
    items.append(("lg_out", "<B>output</B>", dict(STYLE["op"], peripheries="2", color=OUTPUT_COLOR,
                                                  penwidth="2", fillcolor="#f8bbd0")))
    if "elide" in kinds:
        items.append(("lg_elide", "<B>… n steps …</B><BR/>" + small("elided"), dict(STYLE["elide"])))
    sub = Drawing(name="cluster_legend")
    sub.attr(label=html("<B>legend</B>"), fontname=FONT, fontsize="11", style="rounded,dashed",
             color="#9e9e9e", labeljust="l")
    prev = None
    for name, lab, a in items:
        sub.node(name, "<" + lab + ">", **a)
        if prev is not None:
            sub.edge(prev, name, style="invis")
        prev = name
    if state:
        sub.node("lg_s1", "", shape="point", width="0.05", color="#9e9e9e")
        sub.node("lg_s2", html(small("state edge")), shape="plaintext")
        sub.edge("lg_s1", "lg_s2", color=STATE_COLOR, penwidth="2.2")
    if scale is not None:
        cells = "".join(f'<TD BGCOLOR="{c}" WIDTH="16" HEIGHT="12"></TD>' for c in PALETTE)
        n = len(PALETTE)
        bar = (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2">'
               f'<TR><TD COLSPAN="{n}">‖grad‖ (log scale)</TD></TR><TR>{cells}</TR>'
               f'<TR><TD COLSPAN="{n // 2}" ALIGN="LEFT">{esc(fmt_num(scale.lo))}</TD>'
               f'<TD COLSPAN="{n - n // 2}" ALIGN="RIGHT">{esc(fmt_num(scale.hi))}</TD></TR>'
               f'<TR><TD COLSPAN="{n // 2}" ALIGN="LEFT">{small("vanishing")}</TD>'
               f'<TD COLSPAN="{n - n // 2}" ALIGN="RIGHT">{small("exploding")}</TD></TR>'
               f'<TR><TD BGCOLOR="{ZERO_COLOR}" HEIGHT="12"></TD>'
               f'<TD COLSPAN="{n - 1}" ALIGN="LEFT">{small("exactly 0")}</TD></TR></TABLE>>')
        sub.node("lg_scale", bar, shape="plaintext")
        if prev is not None:
            sub.edge(prev, "lg_scale", style="invis")
    g.subgraph(sub)

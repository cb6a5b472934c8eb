"""``viz.draw``: the computation graph minigrad recorded, clustered by scope, as a ``graphviz.Digraph``.

The passes, one module each (all iterative):

1. :mod:`viz.walk` collects the reachable op nodes, leaves and data-flow edges;
2. :mod:`viz.layout` reads each node's time step from its scope (``mg.find_step``) and places leaves;
3. :mod:`viz.units` maps nodes and leaves to boxes (one per op, or per time step when collapsed),
   elides the middle of long unrolls, connects the boxes and caps their number and fan-out;
4. :mod:`viz.labels` and :mod:`viz.style` say what each box shows and how it looks;
5. here, each box is emitted into the cluster of its scope (nested: layer > direction > step).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

import minigrad as mg
from minigrad import Tensor

from .labels import Labels, grad_norms
from .layout import Scope, layout
from .render import Drawing
from .style import FONT, ColorScale, box_attrs, check_rankdir, cluster_attrs, edge_attrs, set_title
from .style import legend as add_legend
from .units import Unit, Units, build_units
from .walk import as_roots, walk

VIEWS = ("collapsed", "expanded")
SHOW = ("shape", "value", "grad", "dtype")


def draw(tensor: Tensor | list[Tensor] | tuple[Tensor, ...], *, params: Any = None,
         view: str = "collapsed", show: Iterable[str] = ("shape", "value", "grad"),
         max_steps: int | None = None, rankdir: str = "LR", color_by_grad: bool = True,
         node_budget: int = 150, max_nodes: int = 300, max_fanout: int = 8, value_size: int = 6,
         grad_range: tuple[float, float] | None = None, legend: bool = True,
         title: str | None = None, unroll: bool = True) -> Drawing:
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
    - ``unroll``: a compiled recurrence (``rnn`` layers with ``compile=True``, ``mg.compile_scan``) is
      one node of the graph; it is drawn as the eager graph it stands for (``mg.unroll``: the same
      per-step boxes as ``compile=False``, values equal to rounding, gradients from what its backward
      received), or as one box with ``unroll=False``.

    Time steps are the scopes named by ``mg.step_name(t)`` (``"t=3"``), as ``rnn`` opens them.
    Returns a :class:`viz.Drawing` (a ``graphviz.Digraph``): ``.source`` is the DOT text,
    :func:`viz.render` writes SVG/PNG/PDF, Jupyter displays it; ``.info`` says what was drawn.
    """
    t0 = time.perf_counter()
    show_set = _check_args(view, show, rankdir, max_steps, node_budget, max_nodes, max_fanout)
    roots = as_roots(tensor)
    names = _param_names(params)
    with mg.pause_gc():
        w = walk(roots, unroll)
        lay = layout(w, names)
        res = build_units(w, lay, view, max_steps, node_budget, max_nodes, max_fanout)
        gnorm = grad_norms(w, res)
        known = [v for v in gnorm.values() if v is not None]
        scale = ColorScale(known, grad_range) if color_by_grad and "grad" in show_set and known else None
        labels = Labels(w, lay, res, names, show_set, value_size, gnorm)
        g = _emit(res, labels, scale, rankdir, title)
        if legend:
            add_legend(g, {u.kind for u in res.units}, res.expanded, scale,
                       any(u.state for u in res.units))
    g.info = dict(
        view=view, roots=len(roots), graph_nodes=len(w.nodes), graph_leaves=len(w.leaves),
        sequences=len(lay.seq_steps), steps=sum(len(s) for s in lay.seq_steps.values()),
        steps_drawn=sum(len(k) for k in res.kept.values()),
        elided_steps=sum(len(v) for v in res.elided.values()), max_steps=res.max_steps,
        units=len(res.units), edges=len(res.edges), truncated_nodes=res.n_trunc,
        grad_range=(scale.lo, scale.hi) if scale is not None else None,
        seconds=time.perf_counter() - t0,
    )
    return g


def _check_args(view: str, show: Iterable[str], rankdir: str, max_steps: int | None,
                node_budget: int, max_nodes: int, max_fanout: int) -> set[str]:
    """Clear errors for bad arguments; returns ``show`` as a set."""
    if view not in VIEWS:
        raise ValueError(f"draw: view must be 'collapsed' or 'expanded', got {view!r}")
    show_set = {show} if isinstance(show, str) else set(show)
    bad = show_set - set(SHOW)
    if bad:
        raise ValueError(f"draw: show may contain {', '.join(SHOW)}; got unknown {sorted(bad)}")
    check_rankdir("draw", rankdir)
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 2):
        raise ValueError(f"draw: max_steps must be an int >= 2 (the first and last steps are always "
                         f"kept), got {max_steps!r}")
    if not isinstance(node_budget, int) or node_budget < 1:
        raise ValueError(f"draw: node_budget must be a positive int, got {node_budget!r}")
    if not isinstance(max_nodes, int) or max_nodes < 10:
        raise ValueError(f"draw: max_nodes must be an int >= 10, got {max_nodes!r}")
    if not isinstance(max_fanout, int) or max_fanout < 2:
        raise ValueError(f"draw: max_fanout must be an int >= 2, got {max_fanout!r}")
    return show_set


def _param_names(params: Any) -> dict[int, str]:
    """id(leaf) -> name, from a Module, a mapping name -> Tensor or (name, Tensor) pairs."""
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


def _emit(res: Units, labels: Labels, scale: ColorScale | None, rankdir: str, title: str | None,
          ) -> Drawing:
    """The Digraph: every box in the cluster of its scope (each prefix of a used scope is a cluster
    too, nested), then the edges between boxes, by target then source."""
    g = Drawing(name="minigrad", engine="dot")
    g.attr(rankdir=rankdir, fontname=FONT, newrank="true", nodesep="0.25", ranksep="0.35",
           compound="true")
    g.attr("node", fontname=FONT, fontsize="11", margin="0.08,0.04", height="0.3")
    g.attr("edge", fontname=FONT, fontsize="9", color="#616161", arrowsize="0.7")
    set_title(g, title)
    roots = {u.uid for u in res.root_units}

    def emit(target: Drawing, units: list[Unit]) -> None:
        for u in sorted(units, key=lambda u: -u.uid):
            target.node(f"n{u.uid}", labels(u), **box_attrs(u, u.uid in roots, labels.gnorm[u.uid], scale))

    members: dict[Scope, list[Unit]] = {}
    for u in res.units:
        members.setdefault(u.cluster, []).append(u)
    paths = {p[:k] for p in members for k in range(1, len(p) + 1)}
    cluster_id = {p: f"cluster_{k}" for k, p in enumerate(sorted(paths, key=lambda p: (len(p), p)))}
    built: dict[Scope, Drawing] = {}
    for p in sorted(paths, key=lambda p: -len(p)):  # deepest first: a parent gets complete children
        sub = Drawing(name=cluster_id[p])
        sub.attr(**cluster_attrs(p, mg.parse_step(p[-1]) is not None))
        emit(sub, members.get(p, []))
        for c in sorted((c for c in built if len(c) == len(p) + 1 and c[:len(p)] == p),
                        key=lambda c: cluster_id[c]):
            sub.subgraph(built.pop(c))
        built[p] = sub
    emit(g, members.get((), []))
    for p in sorted(built, key=lambda c: cluster_id[c]):
        g.subgraph(built[p])
    for (a, b), c in sorted(res.edges.items(), key=lambda e: (e[0][1], e[0][0])):
        g.edge(f"n{a}", f"n{b}", **edge_attrs(labels.by_uid[a], labels.by_uid[b], c, res.expanded))
    return g

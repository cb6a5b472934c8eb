"""``viz.draw_rolled``: the folded diagram of a recurrent model (the cell with its feedback loop).

Read from the modules and their parameter names (no forward pass), for any cell. The naming rule of
recurrent layers: ``[prefix.]<name>_l<k>`` is parameter ``<name>`` of the cell of layer ``k`` of the
layer stack at ``prefix``, and ``..._l<k>_reverse`` of its reverse direction (``rnn.Recurrent`` names
any cell's parameters so: ``w_f_l0``; the built-ins keep PyTorch's ``weight_ih_l0``). A module that is a
cell itself (it has ``init_state``, the ``rnn.Cell`` protocol) holds the one cell of its stack.

Each layer and direction is a cluster with its cell, the cell's parameters (edges into the cell), its
output and the feedback edge carrying the state to the next step. The boxes say what the modules say:
the cell's class (``MGUCell`` -> "MGU cell"), ``input_size``, ``hidden_size``/``output_size``, the state
tensors (``init_state``: h, c, ...). A cell whose parameters are PyTorch's (``weight_ih``, ``weight_hh``,
``bias_ih``, ``bias_hh``) also shows PyTorch's equations for its gate count
``G = weight_hh.shape[0] / weight_hh.shape[1]`` (1: Elman, 3: GRU, 4: LSTM).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from minigrad import Tensor

from .render import Drawing
from .style import (
    FONT,
    OUTPUT_COLOR,
    OUTPUT_FILL,
    PARAM_EDGE,
    STATE_COLOR,
    STATE_EDGE,
    STYLE,
    check_rankdir,
    set_title,
)
from .text import bold, esc, fmt_shape, html, small

_LAYER_RE = re.compile(r"^(?P<base>.+?)_l(?P<layer>\d+)(?P<rev>_reverse)?$")
_TORCH_NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
_STATE_NAMES = ("h", "c")


@dataclass
class _Cell:
    """The cell of one layer and direction: its parameters ``(full name, tensor)`` by cell parameter
    name, and the deepest module holding them all (the cell module under ``rnn.Recurrent``)."""

    layer: int
    reverse: bool
    params: dict[str, tuple[str, Tensor]]
    owner: Any = None


def draw_rolled(model: Any, *, rankdir: str = "LR", title: str | None = None, legend: bool = True) -> Drawing:
    """The rolled (folded) picture of every recurrent layer stack in ``model``.

    ``model``: any minigrad ``Module`` with recurrent parameters named by the rule of the module
    docstring (``rnn.Recurrent`` of any cell, ``rnn.LSTM``, a model holding them, a cell). Layers are
    stacked (layer k reads layer k-1's output; bidirectional layers read both directions
    concatenated); other parameters are listed in their own cluster. Returns a :class:`viz.Drawing`;
    raises ``TypeError`` for a non-module and ``ValueError`` when no recurrent parameters are found.
    """
    if not hasattr(model, "named_parameters"):
        raise TypeError(f"draw_rolled: expected a minigrad Module, got {type(model).__name__}")
    check_rankdir("draw_rolled", rankdir)
    modules = dict(model.named_modules())
    stacks, others = _group(model, modules)
    if not stacks:
        raise ValueError(f"draw_rolled: {type(model).__name__} has no recurrent parameters named "
                         "<name>_l<layer>[_reverse] (weight_ih_l0, w_f_l1_reverse, ...) and no cell")
    _find_owners(modules, stacks)
    g = Drawing(name="rolled", engine="dot")
    g.attr(rankdir=rankdir, fontname=FONT, nodesep="0.3", ranksep="0.45", newrank="true")
    g.attr("node", fontname=FONT, fontsize="11", margin="0.1,0.05")
    g.attr("edge", fontname=FONT, fontsize="10", color="#616161", arrowsize="0.7")
    set_title(g, title)
    counter = itertools.count(1)

    def nid() -> str:
        return f"n{next(counter)}"

    for s_idx, (prefix, cells) in enumerate(sorted(stacks.items())):
        g.subgraph(_stack(f"cluster_s{s_idx}", prefix, modules[prefix], cells, nid))
    if others:
        oc = Drawing(name="cluster_other")
        oc.attr(label=html(bold("other parameters")), style="rounded,dashed", color="#bdbdbd",
                labeljust="l")
        for name, p in others:
            oc.node(nid(), _param_label(name, p), **STYLE["param"])
        g.subgraph(oc)
    if legend:
        _legend(g)
    g.info = dict(stacks=len(stacks), cells=sum(len(v) for v in stacks.values()), other_params=len(others))
    return g


def _group(model: Any, modules: dict[str, Any]) -> tuple[dict[str, dict[tuple[int, bool], _Cell]],
                                                         list[tuple[str, Tensor]]]:
    """The parameters by stack (module path) and (layer, reverse), and the other parameters."""
    stacks: dict[str, dict[tuple[int, bool], _Cell]] = {}
    others: list[tuple[str, Tensor]] = []
    for name, p in model.named_parameters():
        prefix, _, own = name.rpartition(".")
        m = _LAYER_RE.match(own)
        if m is not None:
            key, base = (int(m["layer"]), m["rev"] is not None), m["base"]
        elif callable(getattr(modules.get(prefix), "init_state", None)):
            key, base = (0, False), own
        else:
            others.append((name, p))
            continue
        cell = stacks.setdefault(prefix, {}).setdefault(key, _Cell(key[0], key[1], {}))
        cell.params[base] = (name, p)
    return stacks, others


def _find_owners(modules: dict[str, Any], stacks: dict[str, dict[tuple[int, bool], _Cell]]) -> None:
    """Each cell's owner: of the modules holding all its parameters, the one holding fewest (the
    deepest of equals: a one-layer ``Recurrent`` and its cell hold the same parameters)."""
    held = [(m, {id(p) for p in m.parameters()}) for m in reversed(modules.values())]
    for cells in stacks.values():
        for cell in cells.values():
            ids = {id(p) for _, p in cell.params.values()}
            cell.owner = min((h for h in held if ids <= h[1]), key=lambda h: len(h[1]))[0]


def _first(mods: tuple[Any, ...], *attrs: str) -> Any:
    """The first of ``attrs`` that one of ``mods`` has (not None), trying the modules in order."""
    for mod in mods:
        for a in attrs:
            v = getattr(mod, a, None)
            if v is not None:
                return v
    return None


def _stack(cid: str, prefix: str, mod: Any, cells: dict[tuple[int, bool], _Cell],
           nid: Callable[[], str]) -> Drawing:
    """The cluster of one layer stack: input, the cell of every layer and direction, output."""
    n_layers = 1 + max(k[0] for k in cells)
    bidir = any(k[1] for k in cells)
    first = cells.get((0, False)) or next(iter(cells.values()))
    hidden = _first((mod, first.owner), "hidden_size")
    sub = ", ".join([*([f"hidden {hidden}"] if hidden is not None else []),
                     f"{n_layers} layer{'s' if n_layers > 1 else ''}", *(["bidirectional"] if bidir else [])])
    stack = Drawing(name=cid)
    stack.attr(label=html(bold(type(mod).__name__ + (f" ({prefix})" if prefix else "")), small(esc(sub))),
               style="rounded,filled", fillcolor="#f7f7f7", color="#bdbdbd", labeljust="l", fontname=FONT)
    in_size = _first((first.owner, mod), "input_size")
    x = nid()
    stack.node(x, html(bold("x_t"), small(esc("input" + (f" ({in_size},)" if in_size is not None else "")))),
               **STYLE["input"])
    prev_out = [x]
    for layer in range(n_layers):
        outs = []
        for rev in (False, True):
            cell = cells.get((layer, rev))
            if cell is None:
                continue
            cl, c, h, size = _layer(f"{cid}_layer{layer}" + ("_reverse" if rev else ""), cell, mod, nid)
            for src in prev_out:
                stack.edge(src, c)
            stack.subgraph(cl)
            outs.append((h, size))
        if len(outs) > 1:
            cat = nid()
            sizes = [s for _, s in outs]
            total = f" ({sum(sizes)},)" if None not in sizes else ""
            stack.node(cat, html(bold("concat"), small(esc(f"[h→ ; h←]{total}"))), **STYLE["op"])
            for o, _ in outs:
                stack.edge(o, cat)
            outs = [(cat, None)]
        prev_out = [o for o, _ in outs]
    out = nid()
    stack.node(out, html(bold("output"), small("h_t of the last layer, every t")),
               **dict(STYLE["op"], peripheries="2", color=OUTPUT_COLOR, fillcolor=OUTPUT_FILL))
    for o in prev_out:
        stack.edge(o, out)
    return stack


def _layer(cid: str, cell: _Cell, mod: Any, nid: Callable[[], str]) -> tuple[Drawing, str, str, int | None]:
    """The cluster of one layer and direction (its cell, parameters and feedback loop), with the ids
    of its cell and output boxes and the output size."""
    lname = f"layer{cell.layer}" + ("_reverse" if cell.reverse else "")
    cl = Drawing(name=cid)
    cl.attr(label=html(bold(lname)), style="rounded,filled", fillcolor="#fbfdff", color="#90caf9",
            labeljust="l")
    c = nid()
    runs = "t = T−1, …, 0" if cell.reverse else "t = 0, …, T−1"
    name = type(cell.owner).__name__
    name = name[:-4] if name.endswith("Cell") and len(name) > 4 else name
    lines = [bold(f"{name} cell"), small(esc(f"runs {runs}"))]
    lines += [small(esc(e)) for e in _torch_equations(cell, _first((cell.owner, mod), "nonlinearity"))]
    cl.node(c, html(*lines), **dict(STYLE["step"], penwidth="2"))
    for pname, p in cell.params.values():
        pn = nid()
        cl.node(pn, _param_label(pname, p), **STYLE["param"])
        cl.edge(pn, c, color=PARAM_EDGE)
    cl.edge(c, c, label=html(small(esc(f"{_state_label(cell)} (next step)"), 10, STATE_COLOR)),
            **STATE_EDGE, dir="forward")
    h = nid()
    size = _first((cell.owner, mod), "output_size", "hidden_size")
    cl.node(h, html(bold("h_t"), *([small(esc(f"({size},)"))] if size is not None else [])), **STYLE["op"])
    cl.edge(c, h)
    return cl, c, h, size


def _param_label(name: str, p: Tensor) -> str:
    return html(bold(name), small(esc(fmt_shape(p.shape))))


def _state_label(cell: _Cell) -> str:
    """The state carried to the next step: ``h_{t−1}``, and ``c_{t−1}``, ... for more state tensors."""
    n = 1
    if callable(getattr(cell.owner, "init_state", None)):
        n = len(cell.owner.init_state(1, next(iter(cell.params.values()))[1].dtype))
    names = [_STATE_NAMES[k] if k < len(_STATE_NAMES) else f"s{k}" for k in range(n)]
    return ", ".join(s + "_{t−1}" for s in names)


def _torch_equations(cell: _Cell, nonlinearity: str | None) -> list[str]:
    """PyTorch's equations of a cell with PyTorch's parameter names, by gate count; else none."""
    if "weight_hh" not in cell.params or not set(cell.params) <= set(_TORCH_NAMES):
        return []
    w_hh = cell.params["weight_hh"][1]
    gates = w_hh.shape[0] // max(w_hh.shape[1], 1)
    if gates == 4:
        return ["i, f, g, o = σ, σ, tanh, σ(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)",
                "c_t = f ⊙ c_{t−1} + i ⊙ g",
                "h_t = o ⊙ tanh(c_t)"]
    if gates == 3:
        return ["r = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)",
                "z = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)",
                "n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t−1} + b_hn))",
                "h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}"]
    if gates == 1:
        return [f"h_t = {nonlinearity or 'tanh'}(W_ih x_t + b_ih + W_hh h_{{t−1}} + b_hh)"]
    return []


def _legend(g: Drawing) -> None:
    lg = Drawing(name="cluster_legend")
    lg.attr(label=html(bold("legend")), style="rounded,dashed", color="#9e9e9e", labeljust="l")
    lg.node("lg_param", html(bold("parameter"), small("shared by every step")), **STYLE["param"])
    lg.node("lg_cell", html(bold("cell"), small("applied once per step")), **STYLE["step"])
    lg.node("lg_a", "", shape="point", width="0.05", color="#9e9e9e")
    lg.node("lg_b", html(small("state fed back")), shape="plaintext")
    lg.edge("lg_param", "lg_cell", style="invis")
    lg.edge("lg_a", "lg_b", **STATE_EDGE)
    g.subgraph(lg)

"""``viz.draw_rolled``: the folded diagram of a recurrent model (the cell with its feedback loop).

Read from the parameters only (no forward pass): every group of PyTorch-named recurrent parameters
``[prefix.]weight_ih[_l{k}][_reverse]``, ``weight_hh...``, ``bias_ih...``, ``bias_hh...`` is one recurrent
layer stack; the gate count ``G = weight_hh.shape[0] / weight_hh.shape[1]`` tells the cell (1: RNN,
3: GRU, 4: LSTM). Each layer and direction is a cluster holding its cell (with the equations), its
four parameters (with edges into the cell) and the feedback edge carrying the state to the next step.
"""

from __future__ import annotations

import re
from typing import Any

from minigrad import Tensor

from .render import Drawing
from .style import FONT, STATE_COLOR, STYLE
from .text import esc, fmt_shape, html, small

_PARAM_RE = re.compile(r"^(?P<prefix>(?:.*\.)?)(?P<kind>weight|bias)_(?P<which>ih|hh)"
                       r"(?:_l(?P<layer>\d+))?(?P<rev>_reverse)?$")
_CELLS = {1: "RNN", 3: "GRU", 4: "LSTM"}


def _equations(cell: str, nonlinearity: str) -> list[str]:
    if cell == "LSTM":
        return ["i, f, g, o = σ, σ, tanh, σ(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)",
                "c_t = f ⊙ c_{t−1} + i ⊙ g",
                "h_t = o ⊙ tanh(c_t)"]
    if cell == "GRU":
        return ["r = σ(W_ir x_t + b_ir + W_hr h_{t−1} + b_hr)",
                "z = σ(W_iz x_t + b_iz + W_hz h_{t−1} + b_hz)",
                "n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t−1} + b_hn))",
                "h_t = (1 − z) ⊙ n + z ⊙ h_{t−1}"]
    return [f"h_t = {nonlinearity}(W_ih x_t + b_ih + W_hh h_{{t−1}} + b_hh)"]


def _module_at(model: Any, prefix: str) -> Any:
    mod = model
    for part in [p for p in prefix.rstrip(".").split(".") if p]:
        sub = getattr(mod, "_modules", {}).get(part)
        if sub is None:
            return None
        mod = sub
    return mod


def draw_rolled(model: Any, *, rankdir: str = "LR", title: str | None = None, legend: bool = True) -> Drawing:
    """The rolled (folded) picture of every recurrent layer stack in ``model``.

    ``model``: any minigrad ``Module`` whose recurrent parameters have PyTorch's names
    (``weight_ih_l0``, ``weight_hh_l0_reverse``, cells' ``weight_ih``...), e.g. ``rnn.LSTM`` or a model
    holding one. Layers are stacked (layer k reads layer k-1's output; bidirectional layers read both
    directions concatenated); other parameters are listed in their own cluster. Returns a
    :class:`viz.Drawing`; raises ``TypeError`` for a non-module and ``ValueError`` when no recurrent
    parameters are found.
    """
    if not hasattr(model, "named_parameters"):
        raise TypeError(f"draw_rolled: expected a minigrad Module, got {type(model).__name__}")
    if rankdir not in ("LR", "RL", "TB", "BT"):
        raise ValueError(f"draw_rolled: rankdir must be LR, RL, TB or BT, got {rankdir!r}")
    stacks: dict[str, dict[tuple[int, bool], dict[str, tuple[str, Tensor]]]] = {}
    others: list[tuple[str, Tensor]] = []
    for name, p in model.named_parameters():
        m = _PARAM_RE.match(name)
        if m is None:
            others.append((name, p))
            continue
        key = (int(m["layer"] or 0), bool(m["rev"]))
        stacks.setdefault(m["prefix"], {}).setdefault(key, {})[f"{m['kind']}_{m['which']}"] = (name, p)
    stacks = {k: v for k, v in stacks.items() if any("weight_hh" in d for d in v.values())}
    if not stacks:
        raise ValueError(f"draw_rolled: {type(model).__name__} has no recurrent parameters named like "
                         "PyTorch's (weight_ih_l0, weight_hh_l0, ... or a cell's weight_ih, weight_hh)")

    g = Drawing(name="rolled", engine="dot")
    g.attr(rankdir=rankdir, fontname=FONT, nodesep="0.3", ranksep="0.45", newrank="true")
    g.attr("node", fontname=FONT, fontsize="11", margin="0.1,0.05")
    g.attr("edge", fontname=FONT, fontsize="10", color="#616161", arrowsize="0.7")
    if title is not None:
        g.attr(label=html(f"<B>{esc(title)}</B>"), labelloc="t", fontsize="16")
    counter = [0]

    def nid() -> str:
        counter[0] += 1
        return f"n{counter[0]}"

    for s_idx, (prefix, layers) in enumerate(sorted(stacks.items())):
        mod = _module_at(model, prefix)
        any_hh = next(d["weight_hh"][1] for d in layers.values() if "weight_hh" in d)
        hidden = any_hh.shape[1]
        gates = any_hh.shape[0] // max(hidden, 1)
        cell = _CELLS.get(gates, f"{gates}-gate")
        nonlin = str(getattr(mod, "nonlinearity", "tanh"))
        kind = type(mod).__name__ if mod is not None else cell
        n_layers = 1 + max(k[0] for k in layers)
        bidir = any(k[1] for k in layers)
        stack = Drawing(name=f"cluster_s{s_idx}")
        head = f"{kind}" + (f" ({prefix.rstrip('.')})" if prefix else "")
        sub = f"hidden {hidden}, {n_layers} layer{'s' if n_layers > 1 else ''}" + (
            ", bidirectional" if bidir else "")
        stack.attr(label=html(f"<B>{esc(head)}</B>", small(esc(sub))), style="rounded,filled",
                   fillcolor="#f7f7f7", color="#bdbdbd", labeljust="l", fontname=FONT)
        first = layers.get((0, False)) or next(iter(layers.values()))
        in_size = first["weight_ih"][1].shape[1] if "weight_ih" in first else "?"
        x = nid()
        stack.node(x, html("<B>x_t</B>", small(esc(f"input ({in_size},)"))), **STYLE["input"])
        prev_out = [x]
        for layer in range(n_layers):
            outs = []
            for rev in (False, True):
                d = layers.get((layer, rev))
                if d is None:
                    continue
                lname = f"layer{layer}" + ("_reverse" if rev else "")
                cl = Drawing(name=f"cluster_s{s_idx}_{lname}")
                cl.attr(label=html(f"<B>{esc(lname)}</B>"), style="rounded,filled", fillcolor="#fbfdff",
                        color="#90caf9", labeljust="l")
                c = nid()
                runs = "t = T−1, …, 0" if rev else "t = 0, …, T−1"
                lines = [f"<B>{esc(cell)} cell</B>", small(esc(f"runs {runs}"))]
                lines += [small(esc(e)) for e in _equations(cell, nonlin)]
                cl.node(c, html(*lines), **dict(STYLE["step"], penwidth="2"))
                for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    if k not in d:
                        continue
                    pname, p = d[k]
                    pn = nid()
                    cl.node(pn, html(f"<B>{esc(pname)}</B>", small(esc(fmt_shape(p.shape)))),
                            **STYLE["param"])
                    cl.edge(pn, c, color="#ef6c00")
                state = "h_{t−1}, c_{t−1}" if cell == "LSTM" else "h_{t−1}"
                cl.edge(c, c, label=html(small(esc(f"{state} (next step)"), 10, STATE_COLOR)),
                        color=STATE_COLOR, penwidth="2.2", dir="forward")
                h = nid()
                cl.node(h, html("<B>h_t</B>", small(esc(f"({hidden},)"))), **STYLE["op"])
                cl.edge(c, h)
                for src in prev_out:
                    stack.edge(src, c)
                stack.subgraph(cl)
                outs.append(h)
            if len(outs) > 1:
                cat = nid()
                stack.node(cat, html("<B>concat</B>", small(esc(f"[h→ ; h←] ({2 * hidden},)"))),
                           **STYLE["op"])
                for o in outs:
                    stack.edge(o, cat)
                outs = [cat]
            prev_out = outs
        out = nid()
        stack.node(out, html("<B>output</B>", small("h_t of the last layer, every t")),
                   **dict(STYLE["op"], peripheries="2", color="#ad1457", fillcolor="#f8bbd0"))
        for o in prev_out:
            stack.edge(o, out)
        g.subgraph(stack)
    if others:
        oc = Drawing(name="cluster_other")
        oc.attr(label=html("<B>other parameters</B>"), style="rounded,dashed", color="#bdbdbd",
                labeljust="l")
        for name, p in others:
            oc.node(nid(), html(f"<B>{esc(name)}</B>", small(esc(fmt_shape(p.shape)))), **STYLE["param"])
        g.subgraph(oc)
    if legend:
        lg = Drawing(name="cluster_legend")
        lg.attr(label=html("<B>legend</B>"), style="rounded,dashed", color="#9e9e9e", labeljust="l")
        lg.node("lg_param", html("<B>parameter</B>", small("shared by every step")), **STYLE["param"])
        lg.node("lg_cell", html("<B>cell</B>", small("applied once per step")), **STYLE["step"])
        lg.node("lg_a", "", shape="point", width="0.05", color="#9e9e9e")
        lg.node("lg_b", html(small("state fed back")), shape="plaintext")
        lg.edge("lg_param", "lg_cell", style="invis")
        lg.edge("lg_a", "lg_b", color=STATE_COLOR, penwidth="2.2")
        g.subgraph(lg)
    g.info = dict(stacks=len(stacks), cells=sum(len(v) for v in stacks.values()), other_params=len(others))
    return g

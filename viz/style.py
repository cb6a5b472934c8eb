"""How boxes and edges look: the style of each kind of box, the gradient colour scale, and the legend.

Kinds of box: ``param`` (a named leaf that requires grad), ``leaf`` (an unnamed one), ``input``,
``const`` (made inside a time step), ``op``, ``step`` (a whole time step, collapsed view), ``elide``
("... n steps ...") and ``trunc`` ("... n more nodes ...").
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .render import Drawing
from .text import bold, esc, fmt_num, html, small

if TYPE_CHECKING:
    from .units import Unit

FONT = "Helvetica"
RANKDIRS = ("LR", "RL", "TB", "BT")
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
OUTPUT_FILL = "#f8bbd0"
PARAM_EDGE = "#ef6c00"
#: an op whose output goes to the next step; a root (the output); an edge carrying the state
STATE_OP = dict(color=STATE_COLOR, penwidth="2.5")
OUTPUT = dict(peripheries="2", color=OUTPUT_COLOR, penwidth="2")
STATE_EDGE = dict(color=STATE_COLOR, penwidth="2.2")

#: Blue (small gradient: vanishing) -> pale yellow -> red (large: exploding); ColorBrewer RdYlBu, reversed.
PALETTE = ("#4575b4", "#74add1", "#abd9e9", "#e0f3f8", "#ffffbf", "#fee090", "#fdae61", "#f46d43",
           "#d73027")
ZERO_COLOR = "#bdbdbd"


def check_rankdir(who: str, rankdir: str) -> None:
    if rankdir not in RANKDIRS:
        raise ValueError(f"{who}: rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")


def set_title(g: Drawing, title: str | None) -> None:
    """A bold title above the drawing, if one is given."""
    if title is not None:
        g.attr(label=html(bold(title)), labelloc="t", fontsize="16")


def _luma(hex_color: str) -> float:
    r, g, b = (int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def font_for(fill: str) -> str:
    """Black or white text, whichever reads on ``fill``."""
    return "white" if _luma(fill) < 0.45 else "black"


class ColorScale:
    """Maps gradient norms to :data:`PALETTE` on a log10 scale between ``lo`` and ``hi``."""

    def __init__(self, values: list[float], grad_range: tuple[float, float] | None = None) -> None:
        pos = [v for v in values if v > 0 and math.isfinite(v)]
        if grad_range is not None:
            lo, hi = (float(v) for v in grad_range)
            if not (0 < lo <= hi):
                raise ValueError(f"draw: grad_range must be (lo, hi) with 0 < lo <= hi, got {grad_range}")
        elif pos:
            lo, hi = min(pos), max(pos)
        else:
            lo = hi = 1.0
        if grad_range is None and hi < 10 * lo:  # span at least one decade: small ratios stay pale
            mid = math.sqrt(lo * hi)
            lo, hi = mid / math.sqrt(10), mid * math.sqrt(10)
        self.lo, self.hi = lo, hi
        self.llo, self.lhi = math.log10(lo), math.log10(hi)

    def color(self, v: float) -> str:
        if not math.isfinite(v):
            return PALETTE[-1]
        if v <= 0:
            return ZERO_COLOR
        span = self.lhi - self.llo
        if span < 1e-12:
            return PALETTE[len(PALETTE) // 2]
        f = (math.log10(v) - self.llo) / span
        k = round(min(max(f, 0.0), 1.0) * (len(PALETTE) - 1))
        return PALETTE[k]


def box_attrs(u: Unit, is_root: bool, grad: float | None, scale: ColorScale | None) -> dict[str, str]:
    """DOT attributes of a box: its kind's style, state and output marks, the gradient fill."""
    a = dict(STYLE[u.kind])
    if u.kind == "op" and u.state:
        a.update(STATE_OP)
    if u.kind == "step" and u.state:
        a.update(penwidth="2")
    if is_root:  # neutral: an output's gradient is the seed of backward (1 for a loss), not a measurement
        a.update(OUTPUT)
        if u.kind != "step":
            a["fillcolor"] = OUTPUT_FILL
            return a
    if scale is not None and grad is not None and u.kind not in ("const", "elide", "trunc"):
        fill = scale.color(grad)
        a["fillcolor"] = fill
        a["fontcolor"] = font_for(fill)
        if "filled" not in a["style"]:
            a["style"] = (a["style"] + ",filled").strip(",")
    return a


def edge_attrs(ua: Unit, ub: Unit, count: int, expanded: bool) -> dict[str, str]:
    """DOT attributes of the edge from box ``ua`` to box ``ub`` that stands for ``count`` uses."""
    ea: dict[str, str] = {}
    if ua.kind in ("param", "leaf"):
        ea.update(color=PARAM_EDGE, penwidth="1.2")
        if ub.kind == "elide":
            ea["style"] = "dashed"
    elif ua.seq is not None and ua.seq == ub.seq and ua.step != ub.step:
        ea.update(STATE_EDGE)
    if {ua.kind, ub.kind} & {"elide", "trunc"}:
        ea["style"] = "dashed"
    if count > 1 and expanded:
        ea["label"] = f"×{count}"
    return ea


def cluster_attrs(path: tuple[str, ...], is_step: bool) -> dict[str, str]:
    """DOT attributes of the cluster of scope ``path`` (a time step's cluster is drawn bolder)."""
    return dict(label=html(bold(path[-1])), fontname=FONT, fontsize="11" if is_step else "12",
                style="rounded,filled" if not is_step else "rounded,filled,bold",
                color="#90caf9" if is_step else "#bdbdbd",
                fillcolor="#fbfdff" if is_step else ("#f7f7f7" if len(path) % 2 else "#eeeeee"),
                labeljust="l")


def legend(g: Drawing, kinds: set[str], expanded: bool, scale: ColorScale | None, state: bool) -> None:
    """A small cluster with one sample of each kind of box present, and the gradient colour bar."""
    items: list[tuple[str, str, dict[str, str]]] = []
    if "param" in kinds or "leaf" in kinds:
        items.append(("lg_param", bold("parameter") + "<BR/>" + small("drawn once, shared"), STYLE["param"]))
    if "input" in kinds:
        items.append(("lg_input", bold("input"), STYLE["input"]))
    if "step" in kinds:
        items.append(("lg_step", bold("time step") + "<BR/>" + small("one cell application"), STYLE["step"]))
    if "op" in kinds:
        items.append(("lg_op", bold("op"), STYLE["op"]))
    if state and expanded:
        items.append(("lg_state", bold("state") + "<BR/>" + small("goes to the next step"),
                      dict(STYLE["op"], **STATE_OP)))
    out_note = ("<BR/>" + small("its ‖grad‖ is the seed of backward") + "<BR/>"
                + small("(1 for a loss): not coloured") if scale is not None else "")
    items.append(("lg_out", bold("output") + out_note, dict(STYLE["op"], **OUTPUT, fillcolor=OUTPUT_FILL)))
    if "elide" in kinds:
        items.append(("lg_elide", bold("… n steps …") + "<BR/>" + small("elided"), STYLE["elide"]))
    sub = Drawing(name="cluster_legend")
    sub.attr(label=html(bold("legend")), fontname=FONT, fontsize="11", style="rounded,dashed",
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
        sub.edge("lg_s1", "lg_s2", **STATE_EDGE)
    if scale is not None:
        sub.node("lg_scale", _colour_bar(scale), shape="plaintext")
        if prev is not None:
            sub.edge(prev, "lg_scale", style="invis")
    g.subgraph(sub)


def _colour_bar(scale: ColorScale) -> str:
    """The palette as an HTML table, with the range of the scale and the colour of an exact 0."""
    cells = "".join(f'<TD BGCOLOR="{c}" WIDTH="16" HEIGHT="12"></TD>' for c in PALETTE)
    n = len(PALETTE)
    return (f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="2">'
            f'<TR><TD COLSPAN="{n}">‖grad‖ (log scale)</TD></TR><TR>{cells}</TR>'
            f'<TR><TD COLSPAN="{n // 2}" ALIGN="LEFT">{esc(fmt_num(scale.lo))}</TD>'
            f'<TD COLSPAN="{n - n // 2}" ALIGN="RIGHT">{esc(fmt_num(scale.hi))}</TD></TR>'
            f'<TR><TD COLSPAN="{n // 2}" ALIGN="LEFT">{small("vanishing")}</TD>'
            f'<TD COLSPAN="{n - n // 2}" ALIGN="RIGHT">{small("exploding")}</TD></TR>'
            f'<TR><TD BGCOLOR="{ZERO_COLOR}" HEIGHT="12"></TD>'
            f'<TD COLSPAN="{n - 1}" ALIGN="LEFT">{small("exactly 0")}</TD></TR></TABLE>>')

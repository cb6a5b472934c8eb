"""What each box says: names, shapes, values, gradient norms, and what was left out of the drawing."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import minigrad as mg
from minigrad import Tensor

from .layout import Layout, Scope
from .text import bold, esc, fmt_num, fmt_shape, fmt_value, html, norm, small
from .units import Unit, Units
from .walk import Walk

LEAF_KINDS = ("param", "leaf", "input", "const")


def grad_norms(w: Walk, res: Units) -> dict[int, float | None]:
    """uid -> the gradient norm a box is coloured by: of its leaf, of its op's outputs, or of the outputs
    a step hands on (including the roots made in it); None where no gradient is known. An output op
    (a root: the loss) gets None: its gradient is the seed of backward (1 for a scalar loss), not a
    measure of vanishing or exploding, so it is neither coloured nor part of the colour scale; its label
    shows the seed (``seed_norm``)."""
    root_pairs = {(s, k) for s, k in w.roots if s >= 0}
    root_ops = {u.uid for u in res.root_units if u.kind == "op"}
    gnorm: dict[int, float | None] = {}
    for u in res.units:
        g: float | None = None
        if u.uid in root_ops:
            pass
        elif u.kind in LEAF_KINDS:
            if u.kind != "const" or res.expanded:
                lf = w.leaves[u.key[1]]
                g = norm(lf.grad) if lf.grad is not None else None
        elif u.kind == "op":
            i = u.nodes[0]
            g = _norm_of(w, ((i, k) for k in range(w.nodes[i].n_out)))
        elif u.kind == "step":
            g = _norm_of(w, u.outs | {p for p in root_pairs if res.node_unit[p[0]] is u})
        gnorm[u.uid] = g
    return gnorm


def italic(fragment: str) -> str:
    """An already-escaped fragment in italics (the notes that explain a missing edge)."""
    return f"<I>{fragment}</I>"


def seed_norm(w: Walk, u: Unit) -> float | None:
    """The norm of the gradient held by the outputs of the op of an output box (the seed), if kept."""
    return _norm_of(w, ((u.nodes[0], k) for k in range(w.nodes[u.nodes[0]].n_out))) if u.nodes else None


def _norm_of(w: Walk, pairs: Iterable[tuple[int, int]]) -> float | None:
    """The norm of the gradients of the outputs ``(node, index)`` together, None if none has one."""
    total, found = 0.0, False
    for i, k in pairs:
        t = w.outputs.get((i, k))
        if t is not None and t.grad is not None:
            total += norm(t.grad) ** 2
            found = True
    return math.sqrt(total) if found else None


class Labels:
    """``labels(unit)`` is the HTML-like label of a box."""

    def __init__(self, w: Walk, lay: Layout, res: Units, names: Mapping[int, str], show: set[str],
                 value_size: int, gnorm: Mapping[int, float | None]) -> None:
        self.w, self.lay, self.res, self.names = w, lay, res, names
        self.show, self.value_size, self.gnorm = show, value_size, gnorm
        self.by_uid = {u.uid: u for u in res.units}
        self.root_ops = {u.uid for u in res.root_units if u.kind == "op"}
        #: (sequence, t) -> names of the weights with no edge into that first step (see skipped_first)
        self.skipped_at: dict[tuple[Scope, int], list[str]] = {}
        for uid, where in res.skipped_first.items():
            for key in where:
                self.skipped_at.setdefault(key, []).append(self.short_name(self.by_uid[uid]))

    def __call__(self, u: Unit) -> str:
        if u.kind in LEAF_KINDS:
            lines = self._leaf(u)
        elif u.kind == "op":
            lines = self._op(u)
        elif u.kind == "step":
            lines = self._step(u)
        elif u.kind == "elide":
            ts = self.res.elided[u.seq]
            lines = [bold(f"… {len(ts):,} steps …"),
                     small(esc(f"{mg.step_name(ts[0])} … {mg.step_name(ts[-1])} not drawn"))]
        else:
            lines = [bold(f"… {self.res.n_trunc:,} more nodes …"),
                     small(esc("not drawn (raise max_nodes or use max_steps)"))]
        return html(*lines, *self._left_out(u))

    def short_name(self, u: Unit) -> str:
        """How another box's label refers to this one ("also uses W")."""
        if u.kind in LEAF_KINDS:
            lf = self.w.leaves[u.key[1]]
            return self.names.get(id(lf)) or lf.name or u.kind
        if u.kind == "op":
            return self.w.nodes[u.nodes[0]].name
        if u.kind == "step":
            return mg.step_name(u.step)
        return "elided nodes"

    def _leaf(self, u: Unit) -> list[str]:
        lf = self.w.leaves[u.key[1]]
        if u.kind == "const":
            return [small(esc(fmt_value(lf.data, self.value_size)), 9)]
        name = self.names.get(id(lf)) or lf.name
        lines = [bold(name or self._unnamed(u, lf)),
                 *self._tensor(lf.shape, lf.dtype, lf, self.gnorm.get(u.uid))]
        if u.nodes:  # ops folded into the box
            ops = list(dict.fromkeys(self.w.nodes[i].name for i in u.nodes))
            lines.append(small(esc("used as " + " → ".join(reversed(ops)))))
        for _seq, t in self.res.skipped_first.get(u.uid, ()):
            lines.append(small(italic(esc(f"no edge into {mg.step_name(t)}: the state entering it is 0,"))))
            lines.append(small(italic(esc("so its product with this weight is skipped (no gradient)"))))
        return lines

    def _unnamed(self, u: Unit, lf: Tensor) -> str:
        """``leaf``; an input made in a sequence's scope and used by its first or last step only is
        its ``initial state``."""
        if u.kind == "leaf":
            return "leaf"
        first = self.lay.leaf_step.get(u.key[1])
        ts = self.lay.seq_steps.get(first[0], ()) if first else ()
        if lf.scope in self.lay.seq_steps and ts and first[1] in (min(ts), max(ts)):
            return "initial state"
        return "input"

    def _op(self, u: Unit) -> list[str]:
        i = u.nodes[0]
        head = bold(self.w.nodes[i].name)
        g = self.gnorm.get(u.uid)
        shapes = self._out_shapes(i)
        if u.uid in self.root_ops:
            return [head, *self._root(u, shapes)]
        if len(shapes) == 1:
            return [head, *self._tensor(shapes[0][0], shapes[0][1], self.w.outputs.get((i, 0)), g)]
        uniq = sorted({s for s, dt in shapes if dt is not None})  # the shapes of the outputs used
        unused = sum(dt is None for _, dt in shapes)
        desc = (f"{len(shapes)} outputs " + ", ".join(fmt_shape(s) for s in uniq[:3])
                + (" ..." if len(uniq) > 3 else "") + (f" ({unused} unused)" if unused else ""))
        lines = [head, small(esc(desc))] if "shape" in self.show else [head]
        return lines + self._grad("‖grad‖", g)

    def _root(self, u: Unit, shapes: list[tuple[tuple[int, ...], Any]]) -> list[str]:
        """An output box: shape and value as usual; its gradient is the seed of backward, said so."""
        i = u.nodes[0]
        lines = self._tensor(shapes[0][0], shapes[0][1], self.w.outputs.get((i, 0)), None)
        seed = seed_norm(self.w, u)
        if "grad" in self.show and seed is not None:
            scalar = shapes[0][0] == () and len(shapes) == 1
            lines.append(small(esc(f"‖grad‖ {fmt_num(seed)}: the seed of backward"
                                   + (" (dL/dL = 1)" if scalar and seed == 1.0 else "")
                                   + ", not coloured")))
        return lines

    def _step(self, u: Unit) -> list[str]:
        lines = [bold(" ".join((*u.seq, mg.step_name(u.step))))]
        if "shape" in self.show:
            shp = [fmt_shape(self._out_shapes(i)[k][0]) for i, k in sorted(u.outs)]
            ops = len(u.nodes)
            desc = f"{ops} op{'s' if ops != 1 else ''}"
            if shp:
                desc += " · out " + ", ".join(shp[:4]) + (" ..." if len(shp) > 4 else "")
            lines.append(small(esc(desc)))
        skipped = self.skipped_at.get((u.seq, u.step))
        if skipped:
            lines.append(small(italic(esc(f"no edge from {', '.join(skipped)}: the incoming state is 0,"))))
            lines.append(small(italic(esc("so its product with the state is skipped"))))
        return lines + self._grad("‖grad out‖", self.gnorm.get(u.uid))

    def _tensor(self, shape: tuple[int, ...], dtype: Any, t: Tensor | None, g: float | None) -> list[str]:
        """Shape and dtype, values, gradient norm of one tensor, as ``show`` asks."""
        lines = []
        dt = f" {esc(dtype)}" if "dtype" in self.show and dtype is not None else ""
        if "shape" in self.show:
            lines.append(small(esc(fmt_shape(shape)) + dt))
        elif dt:
            lines.append(small(dt[1:]))
        if "value" in self.show and t is not None:
            lines.append(small(esc(fmt_value(t.data, self.value_size))))
        return lines + self._grad("‖grad‖", g)

    def _grad(self, what: str, g: float | None) -> list[str]:
        return [small(f"{what} " + esc(fmt_num(g)))] if "grad" in self.show and g is not None else []

    def _out_shapes(self, i: int) -> list[tuple[tuple[int, ...], Any]]:
        """(shape, dtype) of each output of node ``i``; ``((), None)`` for an output nobody uses."""
        res = []
        for k in range(self.w.nodes[i].n_out):
            t = self.w.outputs.get((i, k))
            res.append((t.shape, t.dtype) if t is not None else ((), None))
        return res

    def _left_out(self, u: Unit) -> list[str]:
        """Lines naming the uses that the fan-out cap did not draw as edges."""
        extra = []
        if u.uid in self.res.fan_hidden:
            extra.append(small(esc(f"{self.res.fan_hidden[u.uid]:,} more uses not drawn as edges")))
        if u.uid in self.res.hidden_in:
            srcs = list(dict.fromkeys(self.short_name(self.by_uid[a]) for a in self.res.hidden_in[u.uid]))
            extra.append(small(esc("also uses " + ", ".join(srcs)), 10, "#e65100"))
        return extra

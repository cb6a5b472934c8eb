"""Helpers for the viz tests: a hand-written scoped recurrence and a small parser of the DOT text that
graphviz emits (one statement per line), so tests can assert on clusters, nodes and edges."""

from __future__ import annotations

import contextlib
import html as _html
import re
from dataclasses import dataclass, field

import numpy as np

import minigrad as mg
from minigrad.nn import Parameter


def recurrence(T: int = 4, H: int = 3, I: int = 2, seed: int = 0, scopes=("RNN", "layer0"),  # noqa: E741
               zero_h0: bool = True):
    """h_t = tanh(x_t Wx + h_{t-1} Wh + b) with rnn's scope convention; loss = sum(h_T ** 2)."""
    rng = np.random.default_rng(seed)
    wx = Parameter(rng.normal(size=(I, H)) * 0.5, name="weight_ih_l0")
    wh = Parameter(rng.normal(size=(H, H)) * 0.5, name="weight_hh_l0")
    b = Parameter(rng.normal(size=(H,)) * 0.1, name="bias_l0")
    xs = [mg.tensor(rng.normal(size=(1, I))) for _ in range(T)]
    h = mg.tensor(np.zeros((1, H)) if zero_h0 else rng.normal(size=(1, H)))
    hs = []
    with contextlib.ExitStack() as st:
        for s in scopes:
            st.enter_context(mg.scope(s))
        for t in range(T):
            with mg.scope(mg.step_name(t)):
                h = (xs[t] @ wx + h @ wh + b).tanh()
            hs.append(h)
    loss = (hs[-1] ** 2).sum()
    return dict(params=(wx, wh, b), xs=xs, hs=hs, loss=loss)


def text_of(label: str) -> str:
    """The literal text a Graphviz HTML label shows (tags dropped, entities decoded, and Graphviz's own
    escape ``\\\\`` for one backslash undone)."""
    if label.startswith("<") and label.endswith(">"):
        label = label[1:-1]
    s = re.sub(r"<[^<>]*>", " ", label)
    s = _html.unescape(s).replace("\\\\", "\\")
    return " ".join(s.split())


@dataclass
class Dot:
    nodes: dict[str, dict] = field(default_factory=dict)  # id -> {label, text, line, cluster}
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (a, b, attribute text)
    clusters: dict[str, dict] = field(default_factory=dict)  # id -> {label, text, parent}

    def out_edges(self, nid: str) -> list[str]:
        return [b for a, b, _ in self.edges if a == nid]

    def in_edges(self, nid: str) -> list[str]:
        return [a for a, b, _ in self.edges if b == nid]

    def find(self, pred) -> list[str]:
        return [k for k, v in self.nodes.items() if v["text"] and pred(v["text"])]

    def one(self, pred) -> str:
        got = self.find(pred)
        assert len(got) == 1, (got, [self.nodes[g]["text"] for g in got])
        return got[0]

    def cluster_path(self, nid: str) -> list[str]:
        out, c = [], self.nodes[nid]["cluster"]
        while c is not None:
            out.append(self.clusters[c]["text"])
            c = self.clusters[c]["parent"]
        return out[::-1]


def _html_attr(line: str, name: str = "label") -> str | None:
    """The HTML-like value ``<...>`` of attribute ``name`` in a DOT line (balanced angle brackets)."""
    m = re.search(rf"\b{name}=<", line)
    if not m:
        return None
    i, depth = m.end() - 1, 0
    for j in range(i, len(line)):
        if line[j] == "<":
            depth += 1
        elif line[j] == ">":
            depth -= 1
            if depth == 0:
                return line[i:j + 1]
    raise AssertionError(f"unbalanced HTML label in {line!r}")


def parse_dot(src: str) -> Dot:
    d = Dot()
    stack: list[str] = []
    for raw in src.splitlines():
        line = raw.strip()
        m = re.match(r"^subgraph (cluster_\w+) \{$", line)
        if m:
            d.clusters[m.group(1)] = dict(label="", text="", parent=stack[-1] if stack else None)
            stack.append(m.group(1))
            continue
        if line == "}":
            if stack:
                stack.pop()
            continue
        m = re.match(r"^(\w+) -> (\w+)(?: \[(.*)\])?$", line)
        if m:
            d.edges.append((m.group(1), m.group(2), m.group(3) or ""))
            continue
        m = re.match(r"^(\w+) \[", line)
        if m and m.group(1) not in ("graph", "node", "edge"):
            lab = _html_attr(line) or ""
            d.nodes[m.group(1)] = dict(label=lab, text=text_of(lab), line=line,
                                       cluster=stack[-1] if stack else None)
            continue
        if stack and "label=" in line and not line.startswith(("node ", "edge ")):
            lab = _html_attr(line) or ""
            d.clusters[stack[-1]].update(label=lab, text=text_of(lab))
    return d

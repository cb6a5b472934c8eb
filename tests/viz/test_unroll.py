"""Compiled recurrences in drawings: ``viz.draw`` unrolls a ``compile=True`` layer (one graph node)
into the same per-step boxes, values and gradient norms as the eager layer (``mg.unroll``)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

import minigrad as mg
import rnn
import viz


def drawn(compile: bool, view: str, kind=rnn.GRU, **draw_kw) -> viz.Drawing:
    mg.manual_seed(0)
    layer = kind(3, 4, num_layers=2, bidirectional=True, compile=compile, dtype=np.float64)
    x = mg.tensor(np.random.default_rng(1).normal(size=(5, 2, 3)))
    out, _ = layer(x, lengths=[5, 3], t0=2)
    loss = (out[-1] ** 2).sum()
    viz.retain_grads(loss)
    loss.backward()
    return viz.draw(loss, view=view, **draw_kw)


def step_boxes(d: viz.Drawing) -> list[tuple[str, ...]]:
    """(title, op count, every number shown) of every time-step box (collapsed view)."""
    out = []
    for title, body in re.findall(r"<B>([^<]* t=\d+)</B>(.*?)</TABLE>", d.source):
        out.append((title, *re.findall(r"\d+ ops?|[0-9]+\.[0-9e+-]+", body)))
    return sorted(out)


@pytest.mark.parametrize("kind", [rnn.GRU, rnn.LSTM])
def test_a_compiled_layer_is_drawn_step_by_step_as_the_eager_one(kind) -> None:
    eager, compiled = drawn(False, "collapsed", kind), drawn(True, "collapsed", kind)
    boxes = step_boxes(compiled)
    assert len(boxes) == 2 * 2 * 5 and boxes == step_boxes(eager)  # titles t=2..6, ops, values, grads
    assert "compiled scan" not in compiled.source
    # the only extra box per sequence: the reshape of the projection into (T, B, 3H)
    labels = Counter(re.findall(r"<B>([^<]*)</B>", compiled.source))
    labels.subtract(Counter(re.findall(r"<B>([^<]*)</B>", eager.source)))
    assert +labels == Counter({"Reshape": 4})


def test_expanded_view_and_one_box_on_request() -> None:
    eager, compiled = drawn(False, "expanded"), drawn(True, "expanded")
    ops = lambda d: Counter(re.findall(r"<B>([A-Z][a-z]+)</B>.*?‖grad‖ ([0-9.e+-]+)", d.source))  # noqa: E731
    extra = ops(compiled)
    extra.subtract(ops(eager))  # every op node with its gradient norm; plus the 4 reshapes
    assert sum(ops(eager).values()) > 150 and {k[0] for k in +extra} == {"Reshape"} and -extra == Counter()
    one = drawn(True, "collapsed", unroll=False)
    assert one.source.count("compiled scan") == 4 and " t=" not in one.source

"""viz.draw_rolled: the folded cell with its feedback loop, from any module with rnn-style names."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from viz_helpers import parse_dot

import viz
from minigrad.nn import Module, Parameter

rnn = pytest.importorskip("rnn")


def _cells(d):
    return [k for k, v in d.nodes.items() if " cell " in v["text"] + " " and not k.startswith("lg_")]


def test_lstm_rolled_cell_params_and_feedback_loop():
    d = parse_dot(viz.draw_rolled(rnn.LSTM(2, 3)).source)
    (cell,) = _cells(d)
    text = d.nodes[cell]["text"]
    assert text.startswith("LSTM cell") and "c_t = f ⊙ c_{t−1} + i ⊙ g" in text
    params = {v["text"].split(" ")[0]: k for k, v in d.nodes.items() if v["text"].split(" ")[0]
              in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")}
    assert len(params) == 4
    assert d.nodes[params["weight_ih_l0"]]["text"] == "weight_ih_l0 (12, 2)"
    assert d.nodes[params["weight_hh_l0"]]["text"] == "weight_hh_l0 (12, 3)"
    for p in params.values():
        assert d.out_edges(p) == [cell]
    loops = [a for a, b, attrs in d.edges if a == b == cell]
    assert len(loops) == 1  # the state fed back into the cell
    assert "h_{t−1}, c_{t−1}" in next(attrs for a, b, attrs in d.edges if a == b == cell)
    x = d.one(lambda s: s.startswith("x_t"))
    assert d.out_edges(x) == [cell]


def test_gru_two_layers_bidirectional():
    m = rnn.GRU(2, 3, num_layers=2, bidirectional=True)
    g = viz.draw_rolled(m)
    assert g.info == dict(stacks=1, cells=4, other_params=0)
    d = parse_dot(g.source)
    cells = _cells(d)
    assert len(cells) == 4 and all(d.nodes[c]["text"].startswith("GRU cell") for c in cells)
    assert sorted(v["text"] for v in d.clusters.values() if v["text"].startswith("layer")) == [
        "layer0", "layer0_reverse", "layer1", "layer1_reverse"]
    rev = [c for c in cells if "runs t = T−1, …, 0" in d.nodes[c]["text"]]
    assert len(rev) == 2
    # layer 1 reads the concatenation of both directions of layer 0
    cats = d.find(lambda s: s.startswith("concat"))
    assert len(cats) == 2
    layer1 = [c for c in cells if d.cluster_path(c)[-1].startswith("layer1")]
    first_cat = [c for c in cats if set(d.out_edges(c)) == set(layer1)]
    assert len(first_cat) == 1
    assert sum(1 for v in d.nodes.values() if v["text"].startswith(("weight_", "bias_"))) == 16
    w = d.one(lambda s: s.startswith("weight_ih_l1_reverse"))
    assert d.nodes[w]["text"] == "weight_ih_l1_reverse (9, 6)"


def test_model_holding_a_layer_and_a_head_and_a_cell():
    class Net(Module):
        def __init__(self):
            super().__init__()
            self.rnn = rnn.RNN(4, 5, nonlinearity="relu")
            self.cell = rnn.LSTMCell(5, 2)
            self.head = Parameter(np.zeros((5, 7)))

    g = viz.draw_rolled(Net())
    assert g.info == dict(stacks=2, cells=2, other_params=1)
    d = parse_dot(g.source)
    texts = [d.nodes[c]["text"] for c in _cells(d)]
    assert any(t.startswith("RNN cell") and "h_t = relu(" in t for t in texts)
    assert any(t.startswith("LSTM cell") for t in texts)
    assert d.find(lambda s: s == "rnn.weight_hh_l0 (5, 5)")
    assert d.find(lambda s: s == "cell.weight_ih (8, 5)")
    other = [c for c, v in d.clusters.items() if v["text"] == "other parameters"]
    assert [v["text"] for v in d.nodes.values() if v["cluster"] == other[0]] == ["head (5, 7)"]


def test_errors():
    class Plain(Module):
        def __init__(self):
            super().__init__()
            self.w = Parameter(np.zeros(3))

    with pytest.raises(ValueError, match="no recurrent parameters"):
        viz.draw_rolled(Plain())
    with pytest.raises(TypeError, match="expected a minigrad Module"):
        viz.draw_rolled(object())


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")
def test_rolled_renders(tmp_path):
    out = viz.render(viz.draw_rolled(rnn.LSTM(2, 3, num_layers=2)), tmp_path / "r.svg")
    text = "".join(ET.parse(out).getroot().itertext())
    assert "LSTM cell" in text and "weight_hh_l1" in text

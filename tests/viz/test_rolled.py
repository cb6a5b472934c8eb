"""viz.draw_rolled: the folded cell with its feedback loop, from any module with rnn-style names."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from viz_helpers import parse_dot

import minigrad as mg
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


class _HandMade(Module):
    """A two-layer recurrent module written by hand, its parameters named by the layer rule
    (``<cell parameter>_l<layer>[_reverse]``), with no cell sub-modules and no rnn."""

    def __init__(self):
        super().__init__()
        self.input_size, self.hidden_size = 2, 3
        for sfx, n_in in (("_l0", 2), ("_l0_reverse", 2), ("_l1", 6)):
            setattr(self, f"w_f{sfx}", Parameter(np.zeros((3, n_in))))
            setattr(self, f"u_f{sfx}", Parameter(np.zeros((3, 3))))
            setattr(self, f"b_f{sfx}", Parameter(np.zeros(3)))
        self.scale = Parameter(np.ones(1))  # not a recurrent parameter


def _is_param(text):
    return text.split()[0][:2] in ("w_", "u_", "b_")


def test_any_cell_grouped_by_layer_and_direction_from_names():
    g = viz.draw_rolled(_HandMade())
    assert g.info == dict(stacks=1, cells=3, other_params=1)
    d = parse_dot(g.source)
    by_layer = {}
    for v in d.nodes.values():
        where = d.clusters[v["cluster"]]["text"] if v["cluster"] is not None else ""
        if where.startswith("layer"):
            by_layer.setdefault(where, []).append(v["text"])
    assert sorted(by_layer) == ["layer0", "layer0_reverse", "layer1"]
    assert sorted(t.split()[0] for t in by_layer["layer0_reverse"] if _is_param(t)) == [
        "b_f_l0_reverse", "u_f_l0_reverse", "w_f_l0_reverse"]
    assert "w_f_l1 (3, 6)" in by_layer["layer1"]
    cells = _cells(d)
    assert len(cells) == 3
    for c in cells:
        text = d.nodes[c]["text"]
        assert text.startswith("_HandMade cell") and "σ" not in text  # no PyTorch equations guessed
        assert len([a for a in d.in_edges(c) if _is_param(d.nodes[a]["text"])]) == 3
        (loop,) = [attrs for a, b, attrs in d.edges if a == b == c]
        assert "h_{t−1} (next step)" in loop
    # layer 1 reads both directions of layer 0, concatenated (sizes from hidden_size)
    (cat,) = d.find(lambda s: s.startswith("concat"))
    assert d.nodes[cat]["text"] == "concat [h→ ; h←] (6,)"
    assert d.nodes[d.one(lambda s: s.startswith("x_t"))]["text"] == "x_t input (2,)"
    other = [c for c, v in d.clusters.items() if v["text"] == "other parameters"]
    assert [v["text"] for v in d.nodes.values() if v["cluster"] == other[0]] == ["scale (1,)"]


def test_user_cell_under_recurrent():
    if not hasattr(rnn, "Recurrent"):
        pytest.skip("rnn.Recurrent not available")

    class MGUCell(rnn.Cell):  # minimal gated unit: two states here, to show them on the loop
        def __init__(self, input_size, hidden_size):
            super().__init__(input_size, hidden_size)
            self.w_f = Parameter(np.zeros((hidden_size, input_size)))
            self.u_f = Parameter(np.zeros((hidden_size, hidden_size)))
            self.b_f = Parameter(np.zeros(hidden_size))

        def init_state(self, batch, dtype):
            return (mg.zeros((batch, self.hidden_size), dtype=dtype),) * 2

        def forward(self, x, state):
            h, c = state
            f = (x @ self.w_f.T + h @ self.u_f.T + self.b_f).sigmoid()
            return (f * h, c)

    class Net(Module):
        def __init__(self):
            super().__init__()
            self.enc = rnn.Recurrent(lambda n: MGUCell(n, 4), 3, num_layers=2, bidirectional=True)

    g = viz.draw_rolled(Net())
    assert g.info == dict(stacks=1, cells=4, other_params=0)
    d = parse_dot(g.source)
    assert d.find(lambda s: s == "enc.w_f_l1_reverse (4, 8)")
    cells = _cells(d)
    assert len(cells) == 4 and all(d.nodes[c]["text"].startswith("MGU cell") for c in cells)
    loops = [attrs for a, b, attrs in d.edges if a == b and a in cells]
    assert len(loops) == 4 and all("h_{t−1}, c_{t−1} (next step)" in a for a in loops)
    stack = next(v["text"] for v in d.clusters.values() if v["text"].startswith("Recurrent (enc)"))
    assert "hidden 4, 2 layers, bidirectional" in stack

"""viz.draw: DOT structure (clusters per step, parameters drawn once with one edge per using step,
edges that follow the data flow), labels (shapes, values, gradients) and gradient colouring."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from viz_helpers import parse_dot, recurrence

import minigrad as mg
import viz
from viz.style import OUTPUT_FILL, PALETTE
from viz.text import fmt_num

T = 5


def _steps(d, prefix="RNN layer0"):
    """step-box node id by time index (collapsed view)."""
    out = {}
    for k, v in d.nodes.items():
        m = re.match(rf"^{prefix} t=(\d+)\b", v["text"])
        if m:
            assert int(m.group(1)) not in out
            out[int(m.group(1))] = k
    return out


@pytest.fixture
def rec():
    r = recurrence(T=T)
    viz.retain_grads(r["loss"])
    r["loss"].backward()
    return r


def test_collapsed_one_box_per_step_and_params_once(rec):
    g = viz.draw(rec["loss"])
    assert isinstance(g, viz.Drawing) and g.info["steps"] == T and g.info["elided_steps"] == 0
    d = parse_dot(g.source)
    steps = _steps(d)
    assert sorted(steps) == list(range(T))
    for name in ("weight_ih_l0", "weight_hh_l0", "bias_l0"):
        pid = d.one(lambda s, n=name: s.split()[0] == n)
        # drawn once, one edge into every step that uses it (each step uses every parameter here)
        assert sorted(d.out_edges(pid)) == sorted(steps.values())
        assert d.cluster_path(pid) == ["RNN", "layer0"]
    # the state flows t -> t+1 and never backwards
    for t in range(T - 1):
        assert steps[t + 1] in d.out_edges(steps[t])
        assert steps[t] not in d.out_edges(steps[t + 1])
    for t in range(T):
        later = {steps[u] for u in range(t + 2, T)}
        assert not later & set(d.out_edges(steps[t]))
    # the last step feeds the loss ops (pow, sum) at the top level, outside the clusters
    pow_id = d.one(lambda s: s.startswith("pow"))
    assert d.in_edges(pow_id) == [steps[T - 1]]
    assert d.nodes[pow_id]["cluster"] is None
    # the zero initial state (made outside the scopes: an input) goes into step 0 only
    h0 = d.one(lambda s: s.startswith("input (1, 3)"))
    assert d.out_edges(h0) == [steps[0]]


def test_expanded_one_cluster_per_step_with_every_op(rec):
    g = viz.draw(rec["loss"], view="expanded")
    d = parse_dot(g.source)
    step_clusters = {c: v for c, v in d.clusters.items() if re.fullmatch(r"t=\d+", v["text"])}
    assert sorted(v["text"] for v in step_clusters.values()) == [f"t={t}" for t in range(T)]
    for c in step_clusters:
        names = sorted(v["text"].split()[0] for v in d.nodes.values() if v["cluster"] == c)
        # two matmuls, two adds, one tanh per step, plus the step's x_t (a leaf used by this step only)
        assert [n for n in names if n != "input" and n != "initial"] == ["Add", "Add", "MatMul", "MatMul",
                                                                        "Tanh"]
        assert d.clusters[d.clusters[c]["parent"]]["text"] == "layer0"
    wh = d.one(lambda s: s.startswith("weight_hh_l0"))
    targets = d.out_edges(wh)
    assert len(targets) == T
    assert sorted(d.cluster_path(n)[-1] for n in targets) == [f"t={t}" for t in range(T)]
    assert all(d.nodes[n]["text"].startswith("MatMul") for n in targets)
    # data flow: tanh of step t feeds the MatMul of step t+1 (blue state edge)
    for t in range(T - 1):
        tanh = [k for k, v in d.nodes.items() if v["text"].startswith("Tanh")
                and d.cluster_path(k)[-1] == f"t={t}"]
        nxt = d.out_edges(tanh[0])
        assert any(d.cluster_path(n)[-1] == f"t={t + 1}" and d.nodes[n]["text"].startswith("MatMul")
                   for n in nxt)
        assert any("#1565c0" in a for x, y, a in d.edges if x == tanh[0])
    # every op node of the graph is drawn exactly once
    ops = [v for v in d.nodes.values() if v["text"].split(" ")[0] in ("Add", "MatMul", "Tanh", "pow", "Sum")]
    assert len(ops) == g.info["graph_nodes"] == 5 * T + 2


def test_labels_show_shapes_values_and_grad_norms(rec):
    _, wh, b = rec["params"]
    d = parse_dot(viz.draw(rec["loss"], view="collapsed").source)
    wh_text = d.nodes[d.one(lambda s: s.startswith("weight_hh_l0"))]["text"]
    assert "(3, 3)" in wh_text
    assert f"‖grad‖ {fmt_num(np.linalg.norm(wh.grad))}" in wh_text
    assert "norm " in wh_text  # 9 values > value_size: summarised
    b_text = d.nodes[d.one(lambda s: s.startswith("bias_l0"))]["text"]
    assert "[" + ", ".join(fmt_num(v) for v in b.data) + "]" in b_text  # small: values
    # the gradient of h_T (retained) is dL/dh_T = 2 h_T for L = sum(h_T^2)
    hT = rec["hs"][-1]
    np.testing.assert_allclose(hT.grad, 2 * hT.data, rtol=1e-12)
    last = d.nodes[_steps(d)[T - 1]]["text"]
    assert "out (1, 3)" in last and f"‖grad out‖ {fmt_num(np.linalg.norm(2 * hT.data))}" in last
    # the retained grad of every step's output is shown, and it equals the engine's value
    for t, h in enumerate(rec["hs"]):
        assert h.grad is not None
        assert f"‖grad out‖ {fmt_num(np.linalg.norm(h.grad))}" in d.nodes[_steps(d)[t]]["text"]


def test_show_controls_labels_and_no_grads_before_backward():
    r = recurrence(T=3)
    d = parse_dot(viz.draw(r["loss"], view="expanded").source)
    assert not any("grad" in v["text"] for v in d.nodes.values() if not v["text"].startswith("‖"))
    assert not any("fillcolor=\"#4575b4\"" in v["line"] for v in d.nodes.values())
    viz.retain_grads(r["loss"])
    r["loss"].backward()
    d = parse_dot(viz.draw(r["loss"], view="expanded", show=("shape",)).source)
    tanh = [v["text"] for v in d.nodes.values() if v["text"].startswith("Tanh")]
    assert tanh and all(t == "Tanh (1, 3)" for t in tanh)
    d = parse_dot(viz.draw(r["loss"], view="expanded", show=("grad", "dtype")).source)
    tanh = [v["text"] for v in d.nodes.values() if v["text"].startswith("Tanh")]
    assert all("float64" in t and "‖grad‖" in t and "(1, 3)" not in t for t in tanh)


def test_colour_by_gradient_norm_log_scale():
    # a contracting recurrence: dL/dh_t shrinks geometrically going back in time (vanishing)
    r = recurrence(T=6, seed=3)
    for p in r["params"]:
        p.data *= 0.4
    viz.retain_grads(r["loss"])
    r["loss"].backward()
    norms = [np.linalg.norm(h.grad) for h in r["hs"]]
    assert norms[0] < norms[-1] / 10
    g = viz.draw(r["loss"], show=("grad",))
    d = parse_dot(g.source)
    steps = _steps(d)
    lo, hi = g.info["grad_range"]
    assert lo == pytest.approx(min(norms)) and hi >= max(norms)
    fill = {t: re.search(r'fillcolor="(#[0-9a-f]+)"', d.nodes[n]["line"]).group(1) for t, n in steps.items()}
    assert PALETTE.index(fill[0]) < PALETTE.index(fill[T - 1 if T - 1 in fill else 5])
    ranks = [PALETTE.index(fill[t]) for t in range(6)]
    assert ranks == sorted(ranks)  # colour follows the norm monotonically
    # a fixed range: everything above hi is the top colour, below lo the bottom one
    d2 = parse_dot(viz.draw(r["loss"], grad_range=(1e3, 1e4)).source)
    assert all('fillcolor="#4575b4"' in d2.nodes[n]["line"] for n in _steps(d2).values())
    d3 = parse_dot(viz.draw(r["loss"], color_by_grad=False).source)
    assert not any("#4575b4" in v["line"] for v in d3.nodes.values())
    with pytest.raises(ValueError, match="grad_range"):
        viz.draw(r["loss"], grad_range=(0, 1))


def test_legend_lists_kinds_and_colour_bar(rec):
    d = parse_dot(viz.draw(rec["loss"]).source)
    legend = [c for c, v in d.clusters.items() if v["text"] == "legend"]
    assert len(legend) == 1
    texts = " | ".join(v["text"] for v in d.nodes.values() if v["cluster"] == legend[0])
    for word in ("parameter", "input", "time step", "output", "state edge", "‖grad‖ (log scale)",
                 "vanishing", "exploding"):
        assert word in texts
    assert "legend" not in {v["text"] for v in parse_dot(viz.draw(rec["loss"], legend=False).source)
                            .clusters.values()}


def test_real_lstm_layers_directions_and_shared_weights():
    rnn = pytest.importorskip("rnn")
    mg.manual_seed(0)
    T2 = 3
    m = rnn.LSTM(2, 3, num_layers=2, bidirectional=True)
    x = mg.randn(T2, 1, 2)
    h0 = mg.randn(4, 1, 3)
    out, _ = m(x, (h0, mg.zeros((4, 1, 3))))
    loss = (out ** 2).sum()
    viz.retain_grads(loss)
    loss.backward()
    d = parse_dot(viz.draw(loss).source)
    for seq in ("layer0", "layer0_reverse", "layer1", "layer1_reverse"):
        steps = _steps(d, f"LSTM {seq}")
        assert sorted(steps) == list(range(T2)), seq
        assert all(d.cluster_path(n) == ["LSTM", seq] for n in steps.values())
        # W_hh, drawn once, feeds every step
        suffix = seq.replace("layer", "_l")
        wh = d.one(lambda s, suffix=suffix: s.split()[0] == f"weight_hh{suffix}")
        assert sorted(d.out_edges(wh)) == sorted(steps.values())
        # reverse directions run backwards in time
        order = [steps[t] for t in (range(T2) if "reverse" not in seq else range(T2 - 1, -1, -1))]
        for a, b in itertools.pairwise(order):
            assert b in d.out_edges(a)


def test_ops_on_a_parameter_outside_the_steps_are_drawn_in_its_box():
    # W_hh^T computed once per sequence, outside the steps (as a loop that hoists it would do)
    rng = np.random.default_rng(0)
    wh = mg.tensor(rng.normal(size=(3, 3)), requires_grad=True)
    wh.name = "W_hh"
    h = mg.tensor(np.ones((1, 3)))
    with mg.scope("RNN"), mg.scope("layer0"):
        wh_t = wh.T
        for t in range(T):
            with mg.scope(mg.step_name(t)):
                h = (h @ wh_t).tanh()
    loss = h.sum()
    d = parse_dot(viz.draw(loss).source)
    steps = _steps(d)
    wid = d.one(lambda s: s.startswith("W_hh"))
    # collapsed: the transpose is drawn inside the parameter's box, whose edges go into every step
    assert "used as Transpose" in d.nodes[wid]["text"]
    assert sorted(d.out_edges(wid)) == sorted(steps.values())
    assert not d.find(lambda s: s.startswith("Transpose"))
    # expanded: every op is its own box, the transpose too
    d = parse_dot(viz.draw(loss, view="expanded").source)
    wid = d.one(lambda s: s.startswith("W_hh"))
    (tr,) = d.out_edges(wid)
    assert d.nodes[tr]["text"].startswith("Transpose") and len(d.out_edges(tr)) == T
    assert "used as" not in d.nodes[wid]["text"]


def test_real_lstm_zero_state_skips_first_recurrent_product():
    rnn = pytest.importorskip("rnn")
    mg.manual_seed(1)
    m = rnn.LSTM(2, 3)
    out, _ = m(mg.randn(4, 1, 2))
    d = parse_dot(viz.draw(out.sum()).source)
    steps = _steps(d, "LSTM layer0")
    wh = d.one(lambda s: s.split()[0] == "weight_hh_l0")
    # h_0 = 0: rnn skips h_0 W_hh at t=0, so W_hh is used by steps 1..3 only -- the drawing says so
    assert sorted(d.out_edges(wh)) == sorted(steps[t] for t in (1, 2, 3))
    # ... and says why: on the weight's box and on the first step's box, nowhere else
    assert "no edge into t=0: the state entering it is 0" in d.nodes[wh]["text"]
    assert "product with this weight is skipped" in d.nodes[wh]["text"]
    assert "no edge from weight_hh_l0: the incoming state is 0" in d.nodes[steps[0]]["text"]
    assert not any("incoming state is 0" in d.nodes[steps[t]]["text"] for t in (1, 2, 3))
    assert sum("state entering it is 0" in v["text"] for v in d.nodes.values()) == 1
    # expanded: the note sits on the weight's box as well
    d = parse_dot(viz.draw(out.sum(), view="expanded").source)
    wh = d.one(lambda s: s.split()[0] == "weight_hh_l0")
    assert "no edge into t=0: the state entering it is 0" in d.nodes[wh]["text"]


def test_no_skip_note_with_a_given_initial_state_or_a_hand_written_loop(rec):
    rnn = pytest.importorskip("rnn")
    mg.manual_seed(1)
    m = rnn.GRU(2, 3)
    out, _ = m(mg.randn(4, 1, 2), mg.randn(1, 1, 3))      # h_0 given: W_hh is used at t=0 too
    for loss in (out.sum(), rec["loss"]):
        src = viz.draw(loss).source
        assert "state entering it is 0" not in src and "incoming state is 0" not in src


def test_skip_note_names_the_first_step_of_each_direction():
    rnn = pytest.importorskip("rnn")
    mg.manual_seed(2)
    m = rnn.RNN(2, 3, num_layers=2, bidirectional=True)
    out, _ = m(mg.randn(3, 1, 2))
    d = parse_dot(viz.draw(out.sum(), params=m).source)
    for seq, first in (("layer0", 0), ("layer0_reverse", 2), ("layer1", 0), ("layer1_reverse", 2)):
        suffix = seq.replace("layer", "_l")
        wh = d.one(lambda s, suffix=suffix: s.split()[0] == f"weight_hh{suffix}")
        assert f"no edge into t={first}:" in d.nodes[wh]["text"], seq
        steps = _steps(d, f"RNN {seq}")
        assert sorted(d.out_edges(wh)) == sorted(n for t, n in steps.items() if t != first)
        assert f"no edge from weight_hh{suffix}:" in d.nodes[steps[first]]["text"]


def test_the_output_is_not_coloured_by_its_seed_gradient(rec):
    # every gradient in the graph is far below the loss's own dL/dL = 1
    r = recurrence(T=4, seed=5)
    loss = r["hs"][-1].sum() * 1e-3                        # the output op is this Mul
    viz.retain_grads(loss)
    loss.backward()
    g = viz.draw(loss)
    d = parse_dot(g.source)
    (root,) = [n for n, v in d.nodes.items() if "peripheries=2" in v["line"] and not n.startswith("lg_")]
    assert f'fillcolor="{OUTPUT_FILL}"' in d.nodes[root]["line"]
    assert "‖grad‖ 1: the seed of backward (dL/dL = 1), not coloured" in d.nodes[root]["text"]
    assert g.info["grad_range"][1] < 0.1  # the seed is not part of the colour scale
    ops = [v for n, v in d.nodes.items() if n != root and v["text"].startswith(("Sum", "Mul", "pow"))]
    assert ops and all(f'fillcolor="{OUTPUT_FILL}"' not in v["line"] for v in ops)
    legend = " ".join(v["text"] for n, v in d.nodes.items() if n == "lg_out")
    assert "seed of backward" in legend and "not coloured" in legend
    # without gradients the output keeps its plain output fill and no seed line
    d = parse_dot(viz.draw(recurrence(T=2)["loss"]).source)
    assert not any("seed of backward" in v["text"] for v in d.nodes.values())


def test_multiple_roots_leaf_root_and_params_names():
    r = recurrence(T=2)
    wx, wh, b = r["params"]
    d = parse_dot(viz.draw([r["hs"][0], r["hs"][1]]).source)
    assert len(_steps(d)) == 2
    assert sum("peripheries=2" in v["line"] for v in d.nodes.values() if v["cluster"] is None
               or "legend" not in d.clusters[v["cluster"]]["text"]) == 2
    d = parse_dot(viz.draw(r["loss"], params={"Wx": wx, "Wh": wh, "b": b}).source)
    assert d.find(lambda s: s.startswith("Wh ")) and not d.find(lambda s: s.startswith("weight_hh"))
    d = parse_dot(viz.draw(wx).source)
    assert d.find(lambda s: s.startswith("weight_ih_l0"))
    anon = mg.tensor([1.0, 2.0], requires_grad=True)
    d = parse_dot(viz.draw((anon * 3).sum()).source)
    assert d.find(lambda s: s.startswith("leaf (2,)"))


def test_bad_arguments_are_clear_errors():
    r = recurrence(T=2)
    with pytest.raises(ValueError, match="view must be"):
        viz.draw(r["loss"], view="folded")
    with pytest.raises(ValueError, match="show may contain"):
        viz.draw(r["loss"], show=("shape", "colour"))
    with pytest.raises(ValueError, match="max_steps must be an int >= 2"):
        viz.draw(r["loss"], max_steps=1)
    with pytest.raises(ValueError, match="rankdir"):
        viz.draw(r["loss"], rankdir="XY")
    with pytest.raises(TypeError, match="expected a minigrad Tensor"):
        viz.draw(np.ones(3))
    with pytest.raises(TypeError, match="params"):
        viz.draw(r["loss"], params={"w": np.ones(2)})


def test_retain_grads_counts_intermediates_and_does_not_touch_leaves():
    r = recurrence(T=3)
    n = viz.retain_grads(r["loss"])
    assert n == 5 * 3 + 2  # every op output (one output per op here)
    r["loss"].backward()
    assert all(h.grad is not None for h in r["hs"])
    assert all(x.grad is None for x in r["xs"])  # inputs did not require grad


def test_draw_and_retain_grads_restore_the_garbage_collector():
    import gc

    r = recurrence(T=2)
    assert gc.isenabled()
    viz.retain_grads(r["loss"])
    viz.draw(r["loss"])
    assert gc.isenabled()
    with pytest.raises(ValueError):
        viz.draw(r["loss"], view="nope")
    assert gc.isenabled()
    gc.disable()
    try:
        viz.draw(r["loss"])
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()

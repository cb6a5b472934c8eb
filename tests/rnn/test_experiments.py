"""rnn.experiments: the vanishing experiment's table and its matplotlib figures (PNG and SVG)."""

import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from rnn import experiments
from rnn.experiments import PlottingUnavailableError, plot_grad_norms, save_figure, table

pytest.importorskip("matplotlib")

CURVES = {4: {"rnn": np.array([1e-6, 1e-4, 1e-2, 1.0]), "lstm": np.array([0.5, 0.6, 0.8, 1.0])},
          8: {"rnn": np.geomspace(1e-9, 2.0, 8), "lstm": np.linspace(0.1, 2.0, 8)}}


def test_table_from_known_rows():
    md = table([{"cell": "rnn", "T": 4, "ratio": 1e-6, "mse": 0.1234, "baseline": 0.1667}], steps=10)
    assert "| tanh RNN | 4 | 1.00e-06 | - | 0.123 | 0.167 |" in md


def test_plot_grad_norms_draws_the_ratios_on_a_log_scale():
    fig = plot_grad_norms(CURVES, "a <title> & more")
    axes = fig.get_axes()
    assert len(axes) == 2 and all(ax.get_yscale() == "log" for ax in axes)
    assert [ax.get_title() for ax in axes] == ["T = 4", "T = 8"]
    lines = {ln.get_label(): ln for ln in axes[0].get_lines()}
    assert set(lines) == {"tanh RNN", "LSTM"}
    np.testing.assert_allclose(lines["tanh RNN"].get_ydata(), [1e-6, 1e-4, 1e-2, 1.0])
    np.testing.assert_allclose(lines["LSTM"].get_xdata(), [1, 2, 3, 4])
    for ln in axes[1].get_lines():                 # normalised to 1 at the last step
        assert ln.get_ydata()[-1] == pytest.approx(1.0)
    assert lines["tanh RNN"].get_color() == experiments.color("rnn")


def test_plot_with_trained_curves_dashes_them():
    trained = {T: {c: v[::-1].copy() for c, v in per.items()} for T, per in CURVES.items()}
    fig = plot_grad_norms(CURVES, "t", trained)
    styles = sorted((ln.get_label(), ln.get_linestyle()) for ln in fig.get_axes()[0].get_lines())
    assert ("LSTM (at init)", "-") in styles and ("LSTM (trained)", "--") in styles


def test_save_figure_writes_png_and_reproducible_svg(tmp_path):
    paths = save_figure(plot_grad_norms(CURVES, "a <title> & more"), tmp_path / "g")
    assert [p.name for p in paths] == ["g.png", "g.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = paths[1].read_text()
    root = ET.fromstring(svg)                      # well-formed, the title escaped
    assert root.tag.endswith("svg") and "a &lt;title&gt; &amp; more" in svg
    again = save_figure(plot_grad_norms(CURVES, "a <title> & more"), tmp_path / "h")[1].read_text()
    assert again == svg                            # no date, stable ids: figures can be committed


def test_missing_matplotlib_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib -> ImportError
    with pytest.raises(PlottingUnavailableError, match=r"pip install 'minigrad\[plot\]'"):
        plot_grad_norms(CURVES, "t")
    with pytest.raises(PlottingUnavailableError):             # before any training or writing
        experiments.vanishing(tmp_path / "v", cells=["rnn"], lengths=[3], steps=1, hidden=2, batch=2)
    assert not (tmp_path / "v").exists()
    res = experiments.vanishing(tmp_path / "v", cells=["rnn"], lengths=[3], steps=0, hidden=2, batch=2,
                                quiet=True, draw=False, plot=False)
    assert [p.name for p in res["files"]] == ["vanishing.md", "vanishing.json"]

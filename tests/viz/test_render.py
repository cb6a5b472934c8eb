"""viz.render: real rendering with dot (SVG parsed as XML, PNG/PDF signatures), escaping of hostile
names, and one clear RenderError for a missing binary, a timeout and a crash of dot."""

from __future__ import annotations

import os
import re
import shutil
import stat
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from viz_helpers import parse_dot, recurrence

import minigrad as mg
import viz
from minigrad.nn import Parameter

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")
SVG = "{http://www.w3.org/2000/svg}"

HOSTILE = ['<IMG SRC="/etc/passwd"/>', "a:b", "\\N", "trail\\", 'say "hi"', "x&amp;y", "<b>bold</b>",
           "\\G\\L\\l", "]; n0 -> n1 [", "it's", "new\\nline", "&#60;script&#62;", "{}|%3"]


def _svg_texts(path) -> str:
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG}svg"
    return "\n".join("".join(t.itertext()) for t in root.iter(f"{SVG}text"))


@pytest.fixture(scope="module")
def small_graph():
    r = recurrence(T=3)
    viz.retain_grads(r["loss"])
    r["loss"].backward()
    return viz.draw(r["loss"], view="expanded")


@needs_dot
def test_render_svg_parses_and_has_every_node(tmp_path, small_graph):
    out = viz.render(small_graph, tmp_path / "g.svg")
    assert out == tmp_path / "g.svg"
    root = ET.parse(out).getroot()
    titles = {"".join(g.find(f"{SVG}title").itertext()) for g in root.iter(f"{SVG}g")
              if g.get("class") == "node"}
    d = parse_dot(small_graph.source)
    assert set(d.nodes) <= titles
    clusters = [g for g in root.iter(f"{SVG}g") if g.get("class") == "cluster"]
    assert len(clusters) == len(d.clusters)
    text = _svg_texts(out)
    for t in range(3):
        assert f"t={t}" in text
    assert "weight_hh_l0" in text and "‖grad‖" in text
    assert [p.name for p in tmp_path.iterdir()] == ["g.svg"]  # no temporary file left behind


@needs_dot
def test_render_png_pdf_dot_and_format_inference(tmp_path, small_graph):
    assert viz.render(small_graph, tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert viz.render(small_graph, tmp_path / "g.pdf").read_bytes()[:5] == b"%PDF-"
    assert viz.render(small_graph, tmp_path / "g.bin", format="svg").read_bytes().lstrip().startswith(b"<")
    assert viz.render(small_graph, tmp_path / "g.gv").read_text() == small_graph.source
    assert viz.pipe(small_graph, "svg").startswith(b"<?xml")
    with pytest.raises(ValueError, match="cannot tell the format"):
        viz.render(small_graph, tmp_path / "g.jpeg")
    with pytest.raises(ValueError, match="format must be one of"):
        viz.render(small_graph, tmp_path / "g.svg", format="gif")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        viz.render(small_graph, tmp_path / "nope" / "g.svg")
    with pytest.raises(TypeError, match=r"graphviz\.Digraph"):
        viz.render(42, tmp_path / "g.svg")


class Named(mg.Function):
    """identity with a user-chosen display name"""

    @staticmethod
    def forward(ctx, x):
        return x.copy()

    @staticmethod
    def backward(ctx, g):
        return g


@needs_dot
@pytest.mark.parametrize("view", ["collapsed", "expanded"])
def test_hostile_names_are_literal_text(tmp_path, view):
    op = type("Hostile", (Named,), {"name": '<op "x"> & \\N'})
    params = [Parameter(np.full((1, 2), 0.5), name=n) for n in HOSTILE]
    h = mg.tensor(np.ones((1, 2)))
    with mg.scope('<IMG SRC="/etc/passwd"/>'), mg.scope("a:b\\"):
        for t in range(2):
            with mg.scope(f"t={t}"):
                for p in params:
                    h = h * p
                h = op.apply(h)
    loss = h.sum()
    loss.backward()
    g = viz.draw(loss, view=view, show=("shape",))
    src = g.source
    assert "<IMG" not in src and '"/etc/passwd"' not in src
    d = parse_dot(src)
    # ids are generated, never user text; the injected "]; n0 -> n1 [" made no edge of its own
    assert all(re.fullmatch(r"n\d+|lg_\w+", k) for k in d.nodes)
    assert all(re.fullmatch(r"n\d+|lg_\w+", k) for a, b, _ in d.edges for k in (a, b))
    assert all(re.fullmatch(r"cluster_(\d+|legend)", c) for c in d.clusters)
    n_edges = sum(1 for line in src.splitlines() if re.match(r"^\s*\w+ -> \w+", line))
    assert n_edges == len(d.edges)
    texts = [v["text"] for v in d.nodes.values()]
    for name in HOSTILE:
        assert sum(t == name + " (1, 2)" for t in texts) == 1, name
    out = viz.render(g, tmp_path / "h.svg")
    svg_text = _svg_texts(out)
    for name in HOSTILE:
        assert name in svg_text, name
    assert '<IMG SRC="/etc/passwd"/>' in svg_text  # the scope name, as a cluster label
    assert "a:b\\" in svg_text
    if view == "expanded":
        assert '<op "x"> & \\N' in svg_text
    root = ET.parse(out).getroot()
    assert not [e for e in root.iter() if e.tag.lower().endswith("img")]


@needs_dot
def test_control_characters_are_shown_visibly(tmp_path):
    p = Parameter(np.ones(2), name="bell\x07tab\tend")
    g = viz.draw((p * 2).sum())
    line = next(x for x in g.source.splitlines() if "bell" in x)
    assert "\x07" not in line and "\t" not in line.strip()
    svg_text = _svg_texts(viz.render(g, tmp_path / "c.svg"))
    assert "bell\\x07tab\\x09end" in svg_text


# ------------------------------------------------------------------------------ RenderError
SLEEP, CAT = shutil.which("sleep") or "/bin/sleep", shutil.which("cat") or "/bin/cat"


def _fake_dot(tmp_path, body: str):
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    f = d / "dot"
    f.write_text("#!/bin/sh\n" + body + "\n")
    f.chmod(f.stat().st_mode | stat.S_IXUSR)
    return d


def _only_path(monkeypatch, directory):
    monkeypatch.setenv("PATH", str(directory))


def _assert_install_hint(msg: str) -> None:
    assert "apt-get install graphviz" in msg and "brew install graphviz" in msg
    assert "https://graphviz.org/download/" in msg and "graph.source" in msg


def test_missing_dot_is_a_render_error_and_writes_nothing(tmp_path, monkeypatch, small_graph):
    empty = tmp_path / "empty"
    empty.mkdir()
    _only_path(monkeypatch, empty)
    target = tmp_path / "g.svg"
    with pytest.raises(viz.RenderError) as ei:
        viz.render(small_graph, target)
    assert "was not found on PATH" in str(ei.value)
    _assert_install_hint(str(ei.value))
    assert not target.exists()
    # the DOT source needs no binary, and Jupyter display degrades to a clear text message
    assert small_graph.source.startswith("digraph")
    assert viz.render(small_graph, tmp_path / "g.dot").read_text() == small_graph.source
    bundle = small_graph._repr_mimebundle_()
    assert list(bundle) == ["text/plain"] and "not found" in bundle["text/plain"]
    with pytest.raises(viz.RenderError):
        small_graph._repr_svg_()


def test_timeout_kills_dot_and_raises(tmp_path, monkeypatch, small_graph):
    _only_path(monkeypatch, _fake_dot(tmp_path, f"{SLEEP} 30"))
    target = tmp_path / "g.svg"
    target.write_text("old picture")
    t0 = time.monotonic()
    with pytest.raises(viz.RenderError) as ei:
        viz.render(small_graph, target, timeout=0.5)
    assert time.monotonic() - t0 < 10
    assert "timed out" in str(ei.value) and "0.5 s" in str(ei.value) and ei.value.cause == "timeout"
    assert "apt-get install" not in str(ei.value)  # issue 15 item 7: the real cause, not "install it"
    assert target.read_text() == "old picture"  # atomic: the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "g.svg"]


@pytest.mark.parametrize("sig", ["SEGV", "KILL"])
def test_crash_by_signal_is_a_render_error(tmp_path, monkeypatch, small_graph, sig):
    _only_path(monkeypatch, _fake_dot(tmp_path, f"echo 'Segmentation fault in mincross' >&2\nkill -{sig} $$"))
    with pytest.raises(viz.RenderError) as ei:
        viz.render(small_graph, tmp_path / "g.png")
    msg = str(ei.value)
    assert f"killed by SIG{sig}" in msg and "crashed with signal" in msg and "mincross" in msg
    assert ei.value.cause == "crashed" and "apt-get install" not in msg
    assert not (tmp_path / "g.png").exists()


def test_nonzero_exit_and_empty_output_are_render_errors(tmp_path, monkeypatch, small_graph):
    script = f"{CAT} >/dev/null; echo 'syntax error in line 3' >&2; exit 3"
    _only_path(monkeypatch, _fake_dot(tmp_path, script))
    with pytest.raises(viz.RenderError, match=r"exit status 3.*syntax error in line 3"):
        viz.render(small_graph, tmp_path / "g.svg")
    _only_path(monkeypatch, _fake_dot(tmp_path, f"{CAT} >/dev/null; exit 0"))
    with pytest.raises(viz.RenderError, match="produced no output"):
        viz.render(small_graph, tmp_path / "g.svg")
    assert not (tmp_path / "g.svg").exists()


def test_not_executable_dot_is_a_render_error(tmp_path, monkeypatch, small_graph):
    d = tmp_path / "bin"
    d.mkdir()
    (d / "dot").write_text("not a program")
    with pytest.raises(viz.RenderError, match=r"could not be executed"):
        viz.render(small_graph, tmp_path / "g.svg", dot=str(d / "dot"))
    (d / "dot").chmod(0o755)  # executable, but not a program (no #! line, not a binary)
    with pytest.raises(viz.RenderError, match=r"could not be executed.*Exec format error"):
        viz.render(small_graph, tmp_path / "g.svg", dot=str(d / "dot"))
    assert not (tmp_path / "g.svg").exists()


def test_bad_timeout_is_value_error(small_graph):
    with pytest.raises(ValueError, match="timeout"):
        viz.pipe(small_graph, "svg", timeout=0)


@needs_dot
def test_jupyter_display_svg(small_graph):
    bundle = small_graph._repr_mimebundle_()
    assert list(bundle) == ["image/svg+xml"]
    ET.fromstring(bundle["image/svg+xml"].encode())
    assert os.environ.get("PATH")


def test_render_refuses_links_devices_and_directories(tmp_path):
    g = "digraph { a -> b }"
    target = tmp_path / "real.dot"
    target.write_text("keep")
    link = tmp_path / "link.dot"
    os.symlink(target, link)
    for bad in (link, tmp_path, "/dev/null"):
        with pytest.raises(ValueError, match="not a regular file"):
            viz.render(g, bad, format="dot")
    assert link.is_symlink() and target.read_text() == "keep"
    assert os.path.islink("/dev/stdout") or not os.path.exists("/dev/stdout")


# ------------------------------------------------------------------------------ issue 15 item 8
@needs_dot
def test_lone_surrogate_name_renders_escaped(tmp_path):
    p = Parameter(np.ones(2), name="bad\ud800name")
    g = viz.draw((p * 2).sum())
    svg_text = _svg_texts(viz.render(g, tmp_path / "s.svg"))
    assert "bad\\ud800name" in svg_text
    assert viz.render(g, tmp_path / "s.dot").read_text(encoding="utf-8").count("ud800") >= 1


@needs_dot
def test_huge_name_is_truncated_with_an_ellipsis(tmp_path):
    from viz.text import MAX_CHARS

    p = Parameter(np.ones(2), name="w" * 100_000)
    g = viz.draw((p * 2).sum(), title="t" * 50_000)
    assert len(g.source) < 20_000
    svg_text = _svg_texts(viz.render(g, tmp_path / "h.svg"))
    assert "w" * (MAX_CHARS - 1) + "…" in svg_text and "w" * MAX_CHARS not in svg_text


@pytest.mark.parametrize("name", ["\ud800", "\udfff" * 3, "a\ud83d", "\x00", "\x00\ud800<>&\\", "é" * 500,
                                  "\u202e", "\ufeff", "💥" * 300, "\r\n\t", "" ])
def test_any_string_renders_or_raises_render_error(tmp_path, name):
    from viz.text import esc

    out = esc(name)
    out.encode("utf-8")  # never a UnicodeEncodeError
    assert len(out) < 8 * 200 + 50
    p = Parameter(np.ones(2), name=name or None)
    g = viz.draw((p * 2).sum(), title=name or None)
    assert viz.pipe(g, "dot").startswith(b"digraph")
    if shutil.which("dot"):
        try:
            viz.render(g, tmp_path / "a.svg", timeout=30)
        except viz.RenderError:
            pass

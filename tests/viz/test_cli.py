"""python -m viz: draws small rnn models; --help documents every option; bad arguments write nothing."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from viz_helpers import parse_dot

from viz.cli import build_parser, main

pytest.importorskip("rnn")
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")
ROOT = Path(__file__).resolve().parents[2]


def _dot_of(capsys, argv):
    assert main(argv) == 0
    return parse_dot(capsys.readouterr().out)


def test_collapsed_prints_dot_with_one_box_per_step(capsys):
    d = _dot_of(capsys, ["lstm", "--steps", "5"])
    steps = d.find(lambda s: re.match(r"LSTM layer0 t=\d+ ", s) is not None)
    assert len(steps) == 5
    assert not any("‖grad" in v["text"] for v in d.nodes.values())  # no --grads: no backward
    d = _dot_of(capsys, ["gru", "--steps", "3", "--grads", "--layers", "2", "--bidirectional"])
    steps = d.find(lambda s: re.match(r"GRU layer\d(_reverse)? t=\d+ ", s) is not None)
    assert len(steps) == 3 * 4
    assert all("‖grad out‖" in d.nodes[s]["text"] for s in steps)


def test_expanded_uses_unfused_cells(capsys):
    assert main(["lstm", "--steps", "2", "--view", "expanded", "--grads", "--show", "shape,grad"]) == 0
    src = capsys.readouterr().out
    assert "rankdir=TB" in src  # the expanded view reads top to bottom by default
    d = parse_dot(src)
    clusters = sorted(v["text"] for v in d.clusters.values() if re.fullmatch(r"t=\d+", v["text"]))
    assert clusters == ["t=0", "t=1"]
    ops = [v["text"].split(" ")[0] for v in d.nodes.values()]
    assert ops.count("Sigmoid") == 2 * 3 and ops.count("Tanh") == 2 * 2  # every gate is its own node


def test_rnn_max_steps_elides(capsys):
    d = _dot_of(capsys, ["rnn", "--steps", "30", "--max-steps", "4"])
    assert d.find(lambda s: s.startswith("… 26 steps …"))


@needs_dot
@pytest.mark.parametrize("argv,magic", [
    (["lstm", "--steps", "3", "--grads"], b"<?xml"),
    (["gru", "--steps", "2", "--view", "expanded", "--grads", "--format", "png"], b"\x89PNG"),
    (["rnn", "--rolled", "--layers", "2"], b"%PDF"),
])
def test_writes_pictures(tmp_path, argv, magic):
    ext = {b"<?xml": "svg", b"\x89PNG": "png", b"%PDF": "pdf"}[magic]
    out = tmp_path / f"pic.{ext}"
    assert main([*argv, "-o", str(out)]) == 0
    assert out.read_bytes().startswith(magic)
    if ext == "svg":
        text = "".join(ET.parse(out).getroot().itertext())
        assert "LSTM layer0 t=2" in text and "‖grad out‖" in text
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["--help"])
    assert ei.value.code == 0
    text = capsys.readouterr().out
    parser = build_parser()
    for action in parser._actions:
        assert action.help, action.dest
        for opt in action.option_strings:
            assert opt in text
    for word in ("rnn", "gru", "lstm", "collapsed", "expanded", "--grads", "--rolled", "--max-steps"):
        assert word in text


@pytest.mark.parametrize("argv,msg", [
    (["lstm", "--steps", "0"], "--steps must be between 1"),
    (["lstm", "--steps", "four"], "--steps must be an integer"),
    (["tcn"], "invalid choice"),
    (["lstm", "--view", "folded"], "invalid choice"),
    (["lstm", "--format", "png", "-o", "{tmp}/x.svg"], "does not match the file name"),
    (["lstm", "-o", "{tmp}/x.jpeg"], "cannot tell the format"),
    (["lstm", "-o", "{tmp}/missing/x.svg"], "does not exist"),
    (["lstm", "--rolled", "--grads", "-o", "{tmp}/x.svg"], "--rolled draws the folded cell"),
    (["lstm", "--show", "shape,colour", "-o", "{tmp}/x.svg"], "unknown colour"),
    (["lstm", "--max-steps", "1"], "--max-steps must be between 2"),
    (["lstm", "--timeout", "-1"], "timeout must be positive"),
])
def test_bad_arguments_are_clear_and_write_nothing(tmp_path, capsys, argv, msg):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    with pytest.raises(SystemExit) as ei:
        main(argv)
    assert ei.value.code == 2
    err = capsys.readouterr()
    assert msg in err.err and err.out == ""
    assert list(tmp_path.iterdir()) == []


def test_missing_dot_exit_1_with_install_hint(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["rnn", "--steps", "2", "-o", str(tmp_path / "x.svg")]) == 1
    err = capsys.readouterr().err
    assert "not found on PATH" in err and "apt-get install graphviz" in err
    assert not (tmp_path / "x.svg").exists()


def test_python_dash_m_and_viz_does_not_import_rnn():
    code = "import sys, viz; print('rnn' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr
    r = subprocess.run([sys.executable, "-m", "viz", "rnn", "--steps", "2"], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("digraph"), r.stderr

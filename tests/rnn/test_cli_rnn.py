"""``python -m rnn``: every command with tiny budgets, exact resume, Ctrl-C, and bad arguments that write
nothing."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
import rnn
from rnn.cli import build_parser, main
from rnn.tasks import adding
from rnn.tasks.trainer import (
    CHECKPOINT,
    FORMAT,
    LOSSES,
    TrainConfig,
    TrainingInterrupted,
    load_checkpoint,
    train,
)

TINY = ["--task", "adding", "--hidden", "4", "--seq-len", "5", "--batch", "4", "--quiet"]
ROOT = Path(__file__).resolve().parents[2]


def losses(run: Path) -> list[tuple[int, float, float]]:
    rows = [ln.split("\t") for ln in (run / LOSSES).read_text().splitlines() if not ln.startswith("#")]
    return [(int(s), float(v), float(g)) for s, v, g in rows]


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "rnn", "--help"], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0
    for cmd in ("train", "sample", "evaluate", "draw", "experiment", "demo"):
        assert cmd in out.stdout


def test_train_writes_checkpoint_log_results(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "6", "--out", str(run)]) == 0
    assert (run / CHECKPOINT).is_file() and (run / "results.json").is_file()
    assert [s for s, _, _ in losses(run)] == [1, 2, 3, 4, 5, 6]
    res = json.loads((run / "results.json").read_text())
    assert res["steps"] == 6 and res["config"]["hidden"] == 4 and "metric" in res and "baseline" in res
    ck = load_checkpoint(run)
    assert ck["step"] == 6 and ck["config"]["task"] == "adding" and "state" in ck["optimizer"]
    assert "test MSE" in capsys.readouterr().out
    # a second train into the same directory is refused (nothing overwritten) unless --overwrite
    before = (run / LOSSES).read_text()
    assert main(["train", *TINY, "--steps", "2", "--out", str(run)]) == 2
    assert "already holds a run" in capsys.readouterr().err and (run / LOSSES).read_text() == before
    assert main(["train", *TINY, "--steps", "2", "--out", str(run), "--overwrite"]) == 0
    assert len(losses(run)) == 2


def test_resume_gives_exactly_the_uninterrupted_losses(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    args = ["train", "--task", "charlm", "--cell", "gru", "--hidden", "6", "--seq-len", "6", "--batch", "3",
            "--quiet", "--bptt", "3", "--schedule", "constant"]  # cosine would depend on the total steps
    assert main([*args, "--steps", "8", "--out", str(full)]) == 0
    assert main([*args, "--steps", "4", "--out", str(part)]) == 0
    assert main(["train", "--resume", "--steps", "8", "--out", str(part), "--quiet"]) == 0
    a, b = losses(full), losses(part)
    assert len(a) == 8 and a == b  # exact float equality, grad norms too
    ca, cb = load_checkpoint(full), load_checkpoint(part)
    for k in ca["model"]:
        assert np.array_equal(ca["model"][k], cb["model"][k]), k


def test_ctrl_c_saves_checkpoint_exits_130_and_resume_is_exact(tmp_path, monkeypatch, capsys):
    ref, run = tmp_path / "ref", tmp_path / "run"
    args = ["train", *TINY, "--cell", "lstm", "--steps", "7", "--checkpoint-every", "2",
            "--schedule", "cosine"]
    assert main([*args, "--out", str(ref)]) == 0
    real = adding.AddingTask.batch

    def interrupting(self, step, size, split="train"):
        if step == 5 and split == "train":
            raise KeyboardInterrupt
        return real(self, step, size, split)

    monkeypatch.setattr(adding.AddingTask, "batch", interrupting)
    assert main([*args, "--out", str(run)]) == 130
    assert "--resume" in capsys.readouterr().err
    assert load_checkpoint(run)["step"] == 5  # the last finished step, not the last periodic save (4)
    monkeypatch.setattr(adding.AddingTask, "batch", real)
    assert main(["train", "--resume", "--out", str(run), "--quiet"]) == 0
    assert losses(run) == losses(ref)


def test_resume_after_crash_drops_log_lines_past_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    cfg = TrainConfig(task="adding", hidden=4, seq_len=4, batch=2, steps=6, checkpoint_every=2)

    def crash(step, loss):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as exc:
        train(cfg, run, quiet=True, on_step=crash)
    assert exc.value.step == 5
    ref = train(TrainConfig(task="adding", hidden=4, seq_len=4, batch=2, steps=6), tmp_path / "ref",
                quiet=True)
    res = train(TrainConfig(task="adding"), run, resume=True, quiet=True)
    assert res.losses == ref.losses and [s for s, _, _ in losses(run)] == list(range(1, 7))


def test_sample_evaluate_draw(tmp_path, capsys):
    run = tmp_path / "lm"
    assert main(["train", "--task", "charlm", "--hidden", "8", "--seq-len", "8", "--batch", "2",
                 "--steps", "2", "--quiet", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["sample", "--checkpoint", str(run), "--length", "15", "--prime", "Mac", "--seed", "1"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("Mac") and len(text.rstrip("\n")) >= 15
    assert main(["sample", "--checkpoint", str(run / CHECKPOINT), "--prime", "\u00e9"]) == 2
    assert "not in the corpus" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(run), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["task"] == "charlm" and r["metric"] > 0 and r["baseline"] > 0 and "perplexity" in r
    svg = tmp_path / "pictures" / "g.svg"
    assert main(["draw", "--checkpoint", str(run), "--steps", "3", "-o", str(svg)]) == 0
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg") and "t=2" in svg.read_text()
    assert main(["draw", "--checkpoint", str(run), "--out", str(tmp_path / "g.txt")]) == 2


@pytest.mark.parametrize("task", ["copy", "forecast", "seq2seq", "classify"])
def test_every_task_trains_and_evaluates_from_the_cli(task, tmp_path, capsys):
    run = tmp_path / task
    seq = {"seq2seq": "2", "forecast": "6"}.get(task, "4")
    assert main(["train", "--task", task, "--hidden", "6", "--seq-len", seq, "--batch", "3", "--steps", "2",
                 "--quiet", "--out", str(run)]) == 0
    assert main(["sample", "--checkpoint", str(run)]) == 0
    assert main(["evaluate", "--checkpoint", str(run)]) == 0
    assert "baseline" in capsys.readouterr().out


def test_experiment_vanishing_tiny(tmp_path, capsys):
    out = tmp_path / "van"
    assert main(["experiment", "vanishing", "--T", "3,6", "--steps", "2", "--hidden", "4", "--batch", "4",
                 "--out", str(out), "--quiet"]) == 0
    cells = list(rnn.CELLS)  # default: every registered cell (the 3 built-ins at least)
    assert {"rnn", "gru", "lstm"} <= set(cells)
    md = (out / "vanishing.md").read_text()
    assert md.count("\n| ") == 1 + 2 * len(cells)  # header + cells x 2 lengths
    data = json.loads((out / "vanishing.json").read_text())
    expected = {(c, T) for c in cells for T in (3, 6)}
    assert {(r["cell"], r["T"]) for r in data["rows"]} == expected
    for r in data["rows"]:
        assert len(r["norms"]) == r["T"] == len(r["norms_trained"]) and r["mse"] is not None
        assert r["ratio_trained"] > 0
    ET.parse(out / "grad_norms.svg")  # matplotlib's figure (tests/rnn/test_experiments.py checks its lines)
    assert (out / "grad_norms.png").read_bytes()[:4] == b"\x89PNG"
    for cell in cells:
        ET.parse(out / f"unrolled_{cell}.svg")
    assert "| LSTM | 6 |" in capsys.readouterr().out
    assert main(["experiment", "vanishing", "--T", "3", "--steps", "0", "--cells", "gru", "--hidden", "4",
                 "--batch", "2", "--out", str(tmp_path / "one"), "--quiet"]) == 0
    assert (tmp_path / "one" / "vanishing.md").read_text().count("\n| ") == 1 + 1


def test_demo_tiny(tmp_path, capsys):
    out = tmp_path / "main"
    assert main(["demo", "--out", str(out), "--steps", "3"]) == 0
    text = capsys.readouterr().out
    assert "test MSE" in text and "predicted" in text and "demo finished" in text
    assert (out / CHECKPOINT).is_file()
    ET.parse(out / "unrolled.svg")


@pytest.mark.parametrize("argv, message", [
    (["train", "--task", "nope"], "unknown task 'nope'"),
    (["train", "--cell", "transformer"], "unknown cell"),
    (["train", "--dtype", "float16"], "unknown dtype"),
    (["train", "--task", "seq2seq", "--bptt", "3"], "does not support truncated BPTT"),
    (["train", "--task", "adding", "--seq-len", "1"], "--seq-len must be >= 2"),
    (["train", "--resume"], "no checkpoint"),
    (["train", "--resume", "--hidden", "8"], "cannot be combined with --hidden"),
])
def test_bad_arguments_write_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "never"
    assert main([*argv, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("argv", [
    ["train", "--hidden", "-3"], ["train", "--steps", "0"], ["train", "--lr", "-1"],
    ["train", "--clip", "nan"], ["train", "--batch", "x"], ["experiment", "vanishing", "--T", "1,5"],
    ["experiment", "vanishing", "--cells", "rnn,foo"],
])
def test_negative_or_malformed_numbers_are_usage_errors(argv, tmp_path, capsys):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(out)])
    assert exc.value.code == 2 and "error" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("cmd", ["sample", "evaluate", "draw"])
def test_missing_checkpoint(cmd, tmp_path, capsys):
    assert main([cmd, "--checkpoint", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_not_a_checkpoint(tmp_path, capsys):
    bogus = tmp_path / "x.mg"
    bogus.write_bytes(b"hello")
    assert main(["evaluate", "--checkpoint", str(bogus)]) == 2
    assert "error" in capsys.readouterr().err


def test_old_checkpoint_format_is_refused_naming_both_versions(tmp_path, capsys):
    from minigrad.serialization import load_safetensors, save_safetensors

    run = tmp_path / "run"
    train(TrainConfig(task="adding", hidden=4, seq_len=4, batch=2, steps=1), run, quiet=True, evaluate=False)
    ckpt = load_checkpoint(run)
    assert ckpt["format"] == FORMAT == "minigrad-rnn-checkpoint/3"
    tensors, meta = load_safetensors(run / CHECKPOINT)
    save_safetensors(tensors, run / CHECKPOINT, {**meta, "format": "minigrad-rnn-checkpoint/2"})
    with pytest.raises(ValueError, match=r"format minigrad-rnn-checkpoint/2.*reads "
                                         r"minigrad-rnn-checkpoint/3"):
        load_checkpoint(run)
    for cmd in (["evaluate"], ["sample"], ["draw"]):
        assert main([*cmd, "--checkpoint", str(run)]) == 2
        err = capsys.readouterr().err
        assert "minigrad-rnn-checkpoint/2" in err and "minigrad-rnn-checkpoint/3" in err
    assert main(["train", "--resume", "--out", str(run), "--quiet"]) == 2
    assert "minigrad-rnn-checkpoint/2" in capsys.readouterr().err


def test_legacy_checkpoint_mg_run_is_refused_naming_its_format(tmp_path, capsys):
    """A run directory of format /2 (checkpoint.mg, minigrad's container) is refused, never misread."""
    run = tmp_path / "old"
    run.mkdir()
    mg.save({"format": "minigrad-rnn-checkpoint/2", "step": 1, "model": {}, "config": {}},
            run / "checkpoint.mg")
    before = sorted(p.name for p in run.iterdir())
    for argv in (["evaluate", "--checkpoint", str(run)],
                 ["evaluate", "--checkpoint", str(run / "checkpoint.mg")],
                 ["train", "--resume", "--out", str(run), "--quiet"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "format minigrad-rnn-checkpoint/2" in err and "minigrad-rnn-checkpoint/3" in err, err
    assert main(["train", *TINY, "--steps", "1", "--out", str(run)]) == 2
    assert "already holds a run (checkpoint.mg)" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == before


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_real_sigint_in_a_subprocess(tmp_path):
    """A real Ctrl-C (SIGINT) mid-run: exit status 130, a loadable checkpoint of the last finished step,
    and a resume that continues the log from there."""
    import os
    import signal
    import time

    run = tmp_path / "run"
    # started as a terminal starts a foreground job, with SIGINT's default action: a process whose SIGINT
    # is ignored (a background job of a shell without job control, nohup'ed CI steps) passes SIG_IGN on
    # to its children, and Python then leaves Ctrl-C ignored
    boot = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "runpy.run_module('rnn', run_name='__main__', alter_sys=True)")
    cmd = [sys.executable, "-c", boot, "train", *TINY, "--steps", "100000", "--out", str(run)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            log = run / LOSSES
            if log.is_file() and log.read_text().count("\n") >= 4:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "--resume" in err
    step = load_checkpoint(run)["step"]
    assert step >= 3
    assert main(["train", "--resume", "--steps", str(step + 2), "--out", str(run), "--quiet"]) == 0
    assert [s for s, _, _ in losses(run)] == list(range(1, step + 3))


# ------------------------------------------------------------------------------------------ draw
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz dot not installed")


def _dot(capsys, argv) -> str:
    assert main(["draw", *argv]) == 0
    return capsys.readouterr().out


def _boxes(src: str, pattern: str) -> list[str]:
    """The bold titles of the DOT source's boxes (node and cluster labels) that match ``pattern``."""
    return [t for t in re.findall(r"<B>(.*?)</B>", src) if re.fullmatch(pattern, t)]


def test_draw_fresh_collapsed_prints_dot_with_one_box_per_step(capsys):
    src = _dot(capsys, ["--cell", "lstm", "--steps", "5"])
    assert src.startswith("digraph")
    assert len(_boxes(src, r"LSTM layer0 t=\d+")) == 5
    assert "‖grad" not in src  # no --grads: no backward
    src = _dot(capsys, ["--cell", "gru", "--steps", "3", "--grads", "--layers", "2", "--bidirectional"])
    assert len(_boxes(src, r"GRU layer\d(_reverse)? t=\d+")) == 3 * 4
    assert src.count("‖grad out‖") >= 3 * 4


def test_draw_fresh_expanded_draws_every_gate(capsys):
    src = _dot(capsys, ["--cell", "lstm", "--steps", "2", "--view", "expanded", "--grads",
                        "--show", "shape,grad"])
    assert "rankdir=TB" in src  # the expanded view reads top to bottom by default
    assert sorted(_boxes(src, r"t=\d+")) == ["t=0", "t=1"]
    assert len(_boxes(src, "Sigmoid")) == 2 * 3 and len(_boxes(src, "Tanh")) == 2 * 2  # every gate a node


def test_draw_fresh_max_steps_elides(capsys):
    src = _dot(capsys, ["--cell", "rnn", "--steps", "30", "--max-steps", "4"])
    assert "… 26 steps …" in src


@pytest.mark.parametrize("cell", list(rnn.CELLS))
def test_draw_every_registered_cell(cell, capsys):
    """--cell takes any name in rnn.CELLS: unrolled with gradients, and rolled."""
    src = _dot(capsys, ["--cell", cell, "--steps", "2", "--grads", "--layers", "2"])
    assert len(_boxes(src, r".* layer1 t=1")) == 1 and "‖grad out‖" in src
    assert _dot(capsys, ["--cell", cell, "--rolled"]).startswith("digraph")


@needs_dot
@pytest.mark.parametrize("argv,magic", [
    (["--cell", "lstm", "--steps", "4", "--view", "expanded", "--grads"], b"<?xml"),  # the command
    (["--cell", "gru", "--steps", "2", "--view", "expanded", "--grads", "--format", "png"], b"\x89PNG"),
    (["--cell", "rnn", "--rolled", "--layers", "2"], b"%PDF"),
])
def test_draw_writes_pictures(tmp_path, capsys, argv, magic):
    ext = {b"<?xml": "svg", b"\x89PNG": "png", b"%PDF": "pdf"}[magic]
    out = tmp_path / f"pic.{ext}"
    assert main(["draw", *argv, "-o", str(out)]) == 0
    assert out.read_bytes().startswith(magic)
    if ext == "svg":
        text = "".join(ET.parse(out).getroot().itertext())
        assert "t=3" in text and "‖grad" in text and "Sigmoid" in text
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
    assert f"wrote {out}" in capsys.readouterr().out


def test_draw_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["draw", "--help"])
    assert ei.value.code == 0
    text = capsys.readouterr().out
    draw = build_parser()._subparsers._group_actions[0].choices["draw"]
    for action in draw._actions:
        assert action.help, action.dest
        for opt in action.option_strings:
            assert opt in text
    for word in ("collapsed", "expanded", "--grads", "--rolled", "--max-steps", "--checkpoint", *rnn.CELLS):
        assert word in text


@pytest.mark.parametrize("argv,msg", [
    (["--cell", "lstm", "--steps", "0"], "between 1 and 10000"),
    (["--cell", "lstm", "--steps", "four"], "between 1 and 10000"),
    (["--cell", "lstm", "--view", "folded"], "invalid choice"),
    (["--cell", "lstm", "--max-steps", "1"], "between 2 and 100000"),
    (["--cell", "lstm", "--timeout", "-1"], "positive number"),
    (["--cell", "lstm", "--hidden", "65"], "between 1 and 64"),
    (["--steps", "3"], "one of the arguments --checkpoint --cell is required"),
    (["--cell", "lstm", "--checkpoint", "{tmp}"], "not allowed with argument"),
])
def test_draw_usage_errors_write_nothing(tmp_path, capsys, argv, msg):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    with pytest.raises(SystemExit) as ei:
        main(["draw", *argv, "-o", str(tmp_path / "x.svg")])
    assert ei.value.code == 2
    err = capsys.readouterr()
    assert msg in err.err and err.out == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv,msg", [
    (["--cell", "tcn"], "unknown cell 'tcn'"),
    (["--cell", "lstm", "--format", "png", "-o", "{tmp}/x.svg"], "does not match the file name"),
    (["--cell", "lstm", "-o", "{tmp}/x.jpeg"], "cannot tell the format"),
    (["--cell", "lstm", "--format", "png"], "needs -o FILE"),
    (["--cell", "lstm", "--rolled", "--grads", "-o", "{tmp}/x.svg"], "--rolled draws the folded cell"),
    (["--cell", "lstm", "--show", "shape,colour", "-o", "{tmp}/x.svg"], "unknown colour"),
    (["--checkpoint", "{tmp}/run", "--hidden", "8", "-o", "{tmp}/x.svg"], "--hidden describe a fresh layer"),
])
def test_draw_bad_arguments_are_clear_and_write_nothing(tmp_path, capsys, argv, msg):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["draw", *argv]) == 2
    err = capsys.readouterr()
    assert msg in err.err and err.out == ""
    assert list(tmp_path.iterdir()) == []


def test_draw_missing_dot_is_an_error_with_install_hint(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert main(["draw", "--cell", "rnn", "--steps", "2", "-o", str(tmp_path / "x.svg")]) == 1  # run time
    err = capsys.readouterr().err
    assert "not found on PATH" in err and "apt-get install graphviz" in err
    assert not (tmp_path / "x.svg").exists()


def test_draw_checkpoint_options(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "1", "--out", str(run)]) == 0
    assert main(["draw", "--checkpoint", str(run), "--steps", "3", "--format", "dot", "-o",
                 str(tmp_path / "g.gv"), "--title", "trained <model>"]) == 0
    src = (tmp_path / "g.gv").read_text()
    assert "trained &lt;model&gt;" in src and len(_boxes(src, r"LSTM layer0 t=\d+")) == 3
    assert main(["draw", "--checkpoint", str(run), "-o", str(tmp_path)]) == 2  # a directory
    assert "not a regular file" in capsys.readouterr().err
    assert main(["draw", "--checkpoint", str(run), "--rolled", "-o", str(tmp_path / "r.dot")]) == 0
    assert (tmp_path / "r.dot").read_text().startswith("digraph")
    assert main(["draw", "--checkpoint", str(run), "--steps", "30", "--max-steps", "4",
                 "-o", str(tmp_path / "e.dot")]) == 0
    assert "… 26 steps …" in (tmp_path / "e.dot").read_text()


def test_python_dash_m_rnn_draw_prints_dot():
    r = subprocess.run([sys.executable, "-m", "rnn", "draw", "--cell", "rnn", "--steps", "2"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("digraph"), r.stderr

"""``python -m rnn``: every command with tiny budgets, exact resume, Ctrl-C, and bad arguments that write
nothing."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from rnn.cli import main
from rnn.tasks import adding
from rnn.tasks.trainer import (
    CHECKPOINT,
    LOSSES,
    Progress,
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


def test_progress_lines_when_not_a_tty_and_quiet():
    buf = io.StringIO()
    p = Progress(20, stream=buf, every=5)
    for s in range(1, 21):
        p.update(s, 1.0 / s)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 4 and "steps/s" in lines[0] and "\r" not in buf.getvalue()
    q = io.StringIO()
    p = Progress(5, stream=q, quiet=True)
    p.update(5, 1.0)
    assert q.getvalue() == ""

    class Tty(io.StringIO):
        def isatty(self):
            return True

    t = Tty()
    p = Progress(3, stream=t)
    for s in (1, 2, 3):
        p.update(s, 0.5)
    p.close()
    assert t.getvalue().startswith("\r") and t.getvalue().endswith("\n")


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
    md = (out / "vanishing.md").read_text()
    assert md.count("\n| ") == 1 + 6  # header + 3 cells x 2 lengths
    data = json.loads((out / "vanishing.json").read_text())
    expected = {(c, T) for c in ("rnn", "gru", "lstm") for T in (3, 6)}
    assert {(r["cell"], r["T"]) for r in data["rows"]} == expected
    for r in data["rows"]:
        assert len(r["norms"]) == r["T"] == len(r["norms_trained"]) and r["mse"] is not None
        assert r["ratio_trained"] > 0
    root = ET.parse(out / "grad_norms.svg").getroot()
    assert len([e for e in root.iter() if e.tag.endswith("polyline")]) == 6
    for cell in ("rnn", "gru", "lstm"):
        ET.parse(out / f"unrolled_{cell}.svg")
    assert "| LSTM | 6 |" in capsys.readouterr().out


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


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_svg_plot_and_table_from_known_curves():
    from rnn.experiments import svg_plot, table

    curves = {4: {"rnn": np.array([1e-6, 1e-4, 1e-2, 1.0]), "lstm": np.array([0.5, 0.6, 0.8, 1.0])}}
    root = ET.fromstring(svg_plot(curves, "a <title> & more"))
    lines = [e for e in root.iter() if e.tag.endswith("polyline")]
    assert len(lines) == 2
    ys = [[float(p.split(",")[1]) for p in ln.get("points").split()] for ln in lines]
    assert ys[0][0] > ys[0][-1] + 100      # the vanishing curve starts far below its end (SVG y grows down)
    assert abs(ys[1][0] - ys[1][-1]) < 40  # the LSTM one stays near 1
    assert ys[0][-1] == ys[1][-1]          # both normalised to 1 at the last step
    md = table([{"cell": "rnn", "T": 4, "ratio": 1e-6, "mse": 0.1234, "baseline": 0.1667}], steps=10)
    assert "| tanh RNN | 4 | 1.00e-06 | - | 0.123 | 0.167 |" in md


def test_real_sigint_in_a_subprocess(tmp_path):
    """A real Ctrl-C (SIGINT) mid-run: exit status 130, a loadable checkpoint of the last finished step,
    and a resume that continues the log from there."""
    import os
    import signal
    import time

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "rnn", "train", *TINY, "--steps", "100000", "--out", str(run)]
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

"""Issue 15: trustworthy runs. Validated checkpoints, exclusive run directories, append-only logs, one
``error:`` line with a documented status for every failure, sizes refused before allocating."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from minigrad.serialization import load_safetensors, save_safetensors
from rnn.cli import main
from rnn.tasks.checkpoint import CHECKPOINT, MODEL, CheckpointInvalid, load_checkpoint
from rnn.tasks.rundir import RunDir, RunDirBusy, remove_stale_temps, write_atomic
from rnn.tasks.trainer import LOSSES, TrainConfig, train

TINY = ["--task", "adding", "--hidden", "4", "--seq-len", "5", "--batch", "4", "--quiet"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("good") / "run"
    train(TrainConfig(task="adding", hidden=4, seq_len=5, batch=4, steps=3), run, quiet=True, evaluate=False)
    return run


def snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file() and p.name != ".lock"}


def clone(good_run: Path, dst: Path) -> Path:
    dst.mkdir()
    for p in good_run.iterdir():
        (dst / p.name).write_bytes(p.read_bytes())
    return dst


def rewrite(run: Path, meta_update=None, tensor_update=None, drop=()):
    tensors, meta = load_safetensors(run / CHECKPOINT)
    meta.update(meta_update or {})
    tensors.update(tensor_update or {})
    for k in drop:
        tensors.pop(k, None) if k in tensors else meta.pop(k, None)
    save_safetensors(tensors, run / CHECKPOINT, meta)


def config_of(run: Path) -> dict:
    return json.loads(load_safetensors(run / CHECKPOINT)[1]["config"])


# --------------------------------------------------------------------------- item 1: schema
BAD_CONFIG = [
    ({"hidden": 12000}, "hidden"),
    ({"hidden": 0}, "hidden"),
    ({"hidden": -3}, "hidden"),
    ({"hidden": "4"}, "config.hidden: expected int"),
    ({"hidden": 4.0}, "config.hidden: expected int"),
    ({"hidden": True}, "config.hidden: expected int"),
    ({"hidden": None}, "config.hidden: expected int"),
    ({"layers": 100}, "layers"),
    ({"layers": 3, "hidden": 40}, "config does not match the weights"),
    ({"batch": 10**12}, "batch"),
    ({"seq_len": 10**9}, "seq-len"),
    ({"seq_len": 1}, "seq-len must be >= "),
    ({"steps": -5}, "steps"),
    ({"seed": -1}, "seed"),
    ({"bptt": -1}, "bptt"),
    ({"lr": -1.0}, "lr"),
    ({"lr": "fast"}, "config.lr: expected a number"),
    ({"clip": -2.0}, "clip"),
    ({"task": "nope"}, "unknown task"),
    ({"task": 7}, "config.task: expected str"),
    ({"cell": "transformer"}, "unknown cell"),
    ({"optimizer": "lbfgs"}, "unknown optimizer"),
    ({"schedule": "step"}, "unknown schedule"),
    ({"dtype": "int8"}, "unknown dtype"),
    ({"dtype": "float64"}, "dtype float32, but config.dtype is float64"),
    ({"checkpoint_every": -1}, "checkpoint-every"),
    ({"checkpoint_minutes": -1.0}, "checkpoint-minutes"),
    ({"extra": 1}, "unknown field 'extra'"),
]


@pytest.mark.parametrize("update, msg", BAD_CONFIG, ids=[str(u) for u, _ in BAD_CONFIG])
def test_bad_config_in_checkpoint_is_one_error_line_before_building(good_run, tmp_path, capsys, update, msg,
                                                                     monkeypatch):
    run = clone(good_run, tmp_path / "run")
    cfg = {**config_of(run), **update}
    rewrite(run, {"config": json.dumps(cfg)})
    before = snapshot(run)
    import rnn.tasks.trainer as trainer
    monkeypatch.setattr(trainer, "build", lambda *a: pytest.fail("a model was built"))
    for argv in (["evaluate", "--checkpoint", str(run)], ["train", "--resume", "--out", str(run), "--quiet"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and msg in err, err
        assert "Traceback" not in err and str(run / CHECKPOINT) in err
    assert snapshot(run) == before


def test_missing_config_field(good_run, tmp_path, capsys):
    run = clone(good_run, tmp_path / "run")
    cfg = config_of(run)
    del cfg["hidden"]
    rewrite(run, {"config": json.dumps(cfg)})
    assert main(["evaluate", "--checkpoint", str(run)]) == 2
    assert "missing field 'hidden'" in capsys.readouterr().err


BAD_META = [
    ({"step": "-5"}, "step: expected an integer"),
    ({"step": "abc"}, "step: expected an integer"),
    ({"step": "1" * 30}, "step: expected an integer"),
    ({"config": "{not json"}, "config: not valid JSON"),
    ({"config": "[1, 2]"}, "config: expected a JSON dict"),
    ({"config": "NaN"}, "config: not valid JSON"),
    ({"rng": "{}"}, "rng: expected a PCG64"),
    ({"rng": json.dumps({"bit_generator": "PCG64", "state": {"state": -1, "inc": 1}, "has_uint32": 0,
                         "uinteger": 0})}, "rng: state values out of range"),
    ({"rng": json.dumps({"bit_generator": "PCG64", "state": {"state": 2**200, "inc": 1}, "has_uint32": 0,
                         "uinteger": 0})}, "rng: state values out of range"),
    ({"rng": json.dumps({"bit_generator": "MT19937", "state": {}, "has_uint32": 0, "uinteger": 0})}, "PCG64"),
    ({"optimizer": "{}"}, "optimizer: expected"),
    ({"optimizer": json.dumps({"param_groups": [{"lr": "x", "params": [0]}], "scalars": {}})},
     "not a finite number"),
    ({"optimizer": json.dumps({"param_groups": [{"lr": 1.0, "params": [-1]}], "scalars": {}})},
     "list of indices"),
    ({"optimizer": json.dumps({"param_groups": [{"lr": 1.0, "params": [0]}], "scalars": {"x": {}}})},
     "optimizer.scalars"),
    ({"format": "minigrad-rnn-checkpoint/99"}, "format minigrad-rnn-checkpoint/99"),
    ({"format": "something else"}, "not a minigrad rnn checkpoint"),
]


@pytest.mark.parametrize("update, msg", BAD_META, ids=[str(u)[:50] for u, _ in BAD_META])
def test_bad_training_state_is_one_error_line(good_run, tmp_path, capsys, update, msg):
    run = clone(good_run, tmp_path / "run")
    rewrite(run, update)
    before = snapshot(run)
    for argv in (["evaluate", "--checkpoint", str(run)], ["train", "--resume", "--out", str(run), "--quiet"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and msg in err, err
    assert snapshot(run) == before


def test_tensors_checked_against_the_rebuilt_model(good_run, tmp_path, capsys):
    cases = [
        ({"model/head.weight": np.zeros((3, 4), np.float32)}, (), "model/head.weight: float32[3, 4], but"),
        ({"model/bogus": np.zeros(3, np.float32)}, (), "unexpected 'bogus'"),
        ({}, ("model/head.bias",), "missing 'head.bias'"),
        ({"model/head.bias": np.zeros(1, np.float64)}, (), "dtype float64, but config.dtype is float32"),
        ({"optimizer/0/exp_avg": np.zeros(7, np.float32)}, (), "optimizer"),
        ({"stray": np.zeros(1, np.float32)}, (), "unexpected tensor 'stray'"),
        ({"optimizer/x/exp_avg": np.zeros(1, np.float32)}, (), "optimizer/<index>/<key>"),
    ]
    for i, (upd, drop, msg) in enumerate(cases):
        run = clone(good_run, tmp_path / f"run{i}")
        rewrite(run, tensor_update=upd, drop=drop)
        assert main(["train", "--resume", "--out", str(run), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and msg in err, (msg, err)


def test_tiny_file_claiming_a_huge_model_is_refused_fast(good_run, tmp_path, capsys):
    """Issue 15 item 1: a 7 KB checkpoint whose config says hidden=4000 (within the limit) is refused
    from the sizes, without building the model."""
    run = clone(good_run, tmp_path / "run")
    rewrite(run, {"config": json.dumps({**config_of(run), "hidden": 4000})})
    t0 = time.perf_counter()
    tracemalloc.start()
    try:
        assert main(["evaluate", "--checkpoint", str(run)]) == 2
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "does not match the weights" in capsys.readouterr().err
    assert time.perf_counter() - t0 < 5 and peak < 20e6


def test_huge_header_is_refused_before_parsing(good_run, tmp_path, capsys):
    """Item 2: a header length past the bound is refused from the 8-byte prefix."""
    run = clone(good_run, tmp_path / "run")
    (run / CHECKPOINT).write_bytes((60 * 2**20).to_bytes(8, "little") + b"{" + b" " * 1000)
    assert main(["evaluate", "--checkpoint", str(run)]) == 2
    assert "exceeds the limit" in capsys.readouterr().err


def test_corrupt_checkpoint_under_resume_is_an_error_line(good_run, tmp_path, capsys):
    run = clone(good_run, tmp_path / "run")
    blob = bytearray((run / CHECKPOINT).read_bytes())
    blob[-5] ^= 0xFF
    (run / CHECKPOINT).write_bytes(bytes(blob))
    before = snapshot(run)
    assert main(["train", "--resume", "--out", str(run), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "digest mismatch" in err and "Traceback" not in err
    assert snapshot(run) == before


def test_model_safetensors_alone_evaluates(good_run, capsys):
    assert main(["evaluate", "--checkpoint", str(good_run / MODEL), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 3


# --------------------------------------------------------------------------- item 3: the log
def test_resume_with_bad_step_never_touches_the_log(good_run, tmp_path):
    run = clone(good_run, tmp_path / "run")
    rewrite(run, {"step": "-5"})
    log = (run / LOSSES).read_bytes()
    assert main(["train", "--resume", "--out", str(run), "--quiet"]) == 2
    assert (run / LOSSES).read_bytes() == log


def test_resume_appends_when_the_log_is_clean_and_replaces_it_atomically_otherwise(good_run, tmp_path,
                                                                                monkeypatch):
    run = clone(good_run, tmp_path / "run")
    ino = (run / LOSSES).stat().st_ino
    assert main(["train", "--resume", "--out", str(run), "--steps", "4", "--quiet"]) == 0
    assert (run / LOSSES).stat().st_ino == ino  # appended in place
    assert [ln.split("\t")[0] for ln in (run / LOSSES).read_text().splitlines()[1:]] == ["1", "2", "3", "4"]
    with open(run / LOSSES, "a") as f:  # rows past the checkpoint and a line cut by a kill
        f.write("5\t0.5\t0.1\n6\t0.")
    (run / CHECKPOINT).write_bytes((good_run / CHECKPOINT).read_bytes())  # back to step 3
    import rnn.tasks.rundir as rundir
    calls = []
    real = rundir.write_atomic
    monkeypatch.setattr("rnn.tasks.trainer.write_atomic",
                        lambda p, d: (calls.append(Path(p).name), real(p, d)))
    assert main(["train", "--resume", "--out", str(run), "--steps", "4", "--quiet"]) == 0
    assert LOSSES in calls
    assert [ln.split("\t")[0] for ln in (run / LOSSES).read_text().splitlines()[1:]] == ["1", "2", "3", "4"]


def test_write_atomic_failure_keeps_the_old_file(tmp_path, monkeypatch):
    p = tmp_path / "f"
    p.write_text("old")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError):
        write_atomic(p, "new")
    assert p.read_text() == "old" and sorted(os.listdir(tmp_path)) == ["f"]


# --------------------------------------------------------------------------- item 4: exclusive runs
def test_second_run_into_a_busy_directory_fails_at_once(tmp_path, capsys):
    run = tmp_path / "run"
    with RunDir(run):
        t0 = time.perf_counter()
        assert main(["train", *TINY, "--steps", "2", "--out", str(run)]) == 1
        err = capsys.readouterr().err
        assert err == f"error: {run} is in use by process {os.getpid()}\n"
        assert time.perf_counter() - t0 < 5
        assert sorted(p.name for p in run.iterdir()) == [".lock"]
        with pytest.raises(RunDirBusy):
            train(TrainConfig(task="adding", hidden=4, seq_len=5, batch=4, steps=1), run, quiet=True)
    assert main(["train", *TINY, "--steps", "2", "--out", str(run)]) == 0  # free again


def test_lock_held_by_another_process(tmp_path):
    run = tmp_path / "run"
    code = ("import sys, time; from rnn.tasks.rundir import RunDir\n"
            f"with RunDir({str(run)!r}):\n    print('locked', flush=True); time.sleep(30)\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert p.stdout.readline().strip() == "locked"
        r = subprocess.run([sys.executable, "-m", "rnn", "train", *TINY, "--steps", "1", "--out", str(run)],
                           capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert r.returncode == 1 and r.stderr == f"error: {run} is in use by process {p.pid}\n"
    finally:
        p.kill()
        p.wait()
    with RunDir(run):  # a killed owner leaves no lock behind
        pass


# --------------------------------------------------------------------------- item 6: stale temps
def test_stale_temp_files_are_removed_at_the_next_start(good_run, tmp_path):
    run = clone(good_run, tmp_path / "run")
    stale = [".checkpoint.safetensors.0123456789ab.tmp", ".model.safetensors.ba9876543210.tmp",
             ".losses.tsv.aaaaaaaaaaaa.tmp"]
    for n in stale:
        (run / n).write_bytes(b"x" * 1000)
    (run / "notes.tmp").write_text("mine")  # not ours: kept
    assert main(["train", "--resume", "--out", str(run), "--steps", "4", "--quiet"]) == 0
    names = {p.name for p in run.iterdir()}
    assert not names & set(stale) and "notes.tmp" in names
    assert remove_stale_temps(run) == []


# --------------------------------------------------------------------------- item 5: error lines
def test_diverging_lr_is_reported_with_the_step_and_a_hint(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, "--steps", "20", "--lr", "1e30", "--clip", "0", "--out", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: training diverged: the loss became") and err.count("\n") == 1
    assert "at step " in err and "smaller --lr" in err


def test_batch_too_big_for_memory_is_refused_before_allocating(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY[:-3], "--batch", "1000000", "--seq-len", "100000", "--out", str(run)]) == 2
    err = capsys.readouterr().err
    assert "GiB" in err and "available" in err
    assert not run.exists()


def test_read_only_out_is_an_error_line(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert main(["train", *TINY, "--steps", "1", "--out", str(ro / "run")]) == 1
        assert "Permission denied" in capsys.readouterr().err
    finally:
        ro.chmod(0o700)


def test_os_errors_are_status_1_and_internal_errors_point_at_debug(tmp_path, capsys, monkeypatch):
    import rnn.tasks.trainer as trainer

    monkeypatch.setattr(trainer, "write_atomic",
                        lambda p, d: (_ for _ in ()).throw(OSError(28, "No space left on device", str(p))))
    assert main(["train", *TINY, "--steps", "1", "--out", str(tmp_path / "a")]) == 1
    assert capsys.readouterr().err == f"error: {tmp_path / 'a' / LOSSES}: No space left on device\n"
    monkeypatch.setattr(trainer, "write_atomic", lambda p, d: 1 / 0)
    assert main(["train", *TINY, "--steps", "1", "--out", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ZeroDivisionError") and "--debug" in err and "Traceback" not in err
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "train", *TINY, "--steps", "1", "--out", str(tmp_path / "c")])


def test_usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as ei:
        main(["train", "--hidden", "x", "--out", "nowhere"])
    err = capsys.readouterr().err
    assert ei.value.code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "usage" not in err
    assert not Path("nowhere").exists()


def test_checkpoint_invalid_is_a_value_error():
    assert issubclass(CheckpointInvalid, ValueError)
    with pytest.raises(FileNotFoundError):
        load_checkpoint("/nonexistent/run")


# --------------------------------------------------------------------------- safetensors, portable
def test_model_safetensors_loads_without_minigrad(good_run):
    """The weights load with safetensors.numpy alone, under PyTorch's names, equal to the model's."""
    code = ("import sys, json; from safetensors.numpy import load_file; from safetensors import safe_open\n"
            f"w = load_file({str(good_run / MODEL)!r})\n"
            f"meta = safe_open({str(good_run / MODEL)!r}, 'np').metadata()\n"
            "assert 'minigrad' not in sys.modules and 'rnn' not in sys.modules\n"
            "print(json.dumps({k: list(v.shape) for k, v in w.items()})); print(meta['format'])\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    shapes = json.loads(r.stdout.splitlines()[0])
    assert shapes["encoder.rnn.weight_ih_l0"] == [16, 2] and shapes["encoder.rnn.weight_hh_l0"] == [16, 4]
    assert r.stdout.splitlines()[1] == "minigrad-rnn-checkpoint/3"
    from rnn.tasks.trainer import restore

    _, _, model, _ = restore(load_checkpoint(good_run))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(load_safetensors(good_run / MODEL)[0][k], v)


def test_model_safetensors_loads_into_torch_lstm(good_run):
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    w = load_file(str(good_run / MODEL))
    lstm = torch.nn.LSTM(2, 4, batch_first=True)
    prefix = "encoder.rnn."
    lstm.load_state_dict({k[len(prefix):]: v for k, v in w.items() if k.startswith(prefix)})
    head = torch.nn.Linear(4, 1)
    head.load_state_dict({"weight": w["head.weight"], "bias": w["head.bias"]})
    from rnn.tasks.trainer import restore

    _, task, model, _ = restore(load_checkpoint(good_run))
    x = task.batch(0, 3, "test")["x"]
    ours = model(x).data
    out, _ = lstm(torch.from_numpy(x))
    np.testing.assert_allclose(head(out[:, -1]).detach().numpy(), ours, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- item 7: draw --timeout
def _fake_dot(tmp_path: Path, body: str) -> str:
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    (d / "dot").write_text("#!/bin/sh\n" + body + "\n")
    (d / "dot").chmod(0o755)
    return str(d)


def test_draw_timeout_names_the_real_cause(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", _fake_dot(tmp_path, "exec /bin/sleep 30"))
    t0 = time.perf_counter()
    argv = ["draw", "--cell", "rnn", "--steps", "2", "--timeout", "0.3", "-o", str(tmp_path / "x.svg")]
    assert main(argv) == 1
    assert time.perf_counter() - t0 < 10
    err = capsys.readouterr().err
    assert err.startswith("error: Graphviz `dot` timed out") and "0.3 s" in err and "apt-get" not in err
    assert err.count("\n") == 1 and not (tmp_path / "x.svg").exists()
    with pytest.raises(SystemExit):
        main(["draw", "--cell", "rnn", "--timeout", "0", "-o", str(tmp_path / "x.svg")])
    assert "--timeout" in capsys.readouterr().err


def test_crashing_dot_after_demo_trained_keeps_the_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", _fake_dot(tmp_path, "kill -SEGV $$"))
    run = tmp_path / "demo"
    assert main(["demo", "--steps", "2", "--quiet", "--out", str(run)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Graphviz `dot` crashed with signal 11 (SIGSEGV)") and err.count("\n") == 1
    assert load_checkpoint(run)["step"] == 2 and (run / MODEL).is_file()


# --------------------------------------------------------------------------- item 9: time-based checkpoints
def test_checkpoints_every_n_minutes_by_default(tmp_path, monkeypatch):
    import rnn.tasks.trainer as trainer

    assert TrainConfig().checkpoint_minutes == 10.0
    clock = [1000.0]

    def fake_monotonic():
        clock[0] += 4 * 60.0  # every call: four minutes later
        return clock[0]

    saved = []
    real = trainer.save_checkpoint
    monkeypatch.setattr(trainer.time, "monotonic", fake_monotonic)

    def counting(out, cfg, m, o, step):
        saved.append(step)
        return real(out, cfg, m, o, step)

    monkeypatch.setattr(trainer, "save_checkpoint", counting)
    train(TrainConfig(task="adding", hidden=4, seq_len=5, batch=4, steps=6), tmp_path / "r", quiet=True,
          evaluate=False)
    assert saved[:-1] and saved[-1] == 6 and all(s < 6 for s in saved[:-1])
    saved.clear()
    train(TrainConfig(task="adding", hidden=4, seq_len=5, batch=4, steps=6, checkpoint_minutes=0),
          tmp_path / "s", quiet=True, evaluate=False)
    assert saved == [6]


def test_out_of_memory_at_run_time_is_status_1(tmp_path, capsys, monkeypatch):
    from rnn.tasks import TASKS

    monkeypatch.setattr(TASKS["adding"], "backward", lambda *a: (_ for _ in ()).throw(MemoryError()))
    assert main(["train", *TINY, "--steps", "2", "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: out of memory") and "--batch" in err and err.count("\n") == 1


def test_model_safetensors_reproduces_the_model_with_pytorch_equations(good_run):
    """Without torch: PyTorch's LSTM equations (gates i, f, g, o) in NumPy on the weights read by
    safetensors.numpy give the trained model's predictions, so torch.nn.LSTM.load_state_dict fits."""
    from safetensors.numpy import load_file

    from rnn.tasks.trainer import restore

    w = load_file(str(good_run / MODEL))
    _, task, model, _ = restore(load_checkpoint(good_run))
    x = task.batch(0, 3, "test")["x"].astype(np.float64)
    p = {k: v.astype(np.float64) for k, v in w.items()}
    H = p["encoder.rnn.weight_hh_l0"].shape[1]
    h, c = np.zeros((3, H)), np.zeros((3, H))
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    for t in range(x.shape[1]):
        z = (x[:, t] @ p["encoder.rnn.weight_ih_l0"].T + p["encoder.rnn.bias_ih_l0"]
             + h @ p["encoder.rnn.weight_hh_l0"].T + p["encoder.rnn.bias_hh_l0"])
        i, f, g, o = np.split(z, 4, axis=1)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
    ours = model(task.batch(0, 3, "test")["x"]).data
    np.testing.assert_allclose(h @ p["head.weight"].T + p["head.bias"], ours, rtol=1e-4, atol=1e-5)


def test_truncated_or_corrupted_checkpoints_never_escape_as_tracebacks(good_run, tmp_path, capsys):
    """Cut the checkpoint at 40 places and flip a bit at 200 places: every resume is refused with one
    error line (status 2) or, if a flip left a valid file, succeeds; never a traceback, the files of
    a refused resume untouched."""
    blob = (good_run / CHECKPOINT).read_bytes()
    run = clone(good_run, tmp_path / "run")
    cases = [blob[:n] for n in range(0, len(blob), max(1, len(blob) // 40))]
    for i in range(0, len(blob), max(1, len(blob) // 200)):
        b = bytearray(blob)
        b[i] ^= 0x20
        cases.append(bytes(b))
    refused = 0
    for data in cases:
        (run / CHECKPOINT).write_bytes(data)
        before = snapshot(run)
        status = main(["evaluate", "--checkpoint", str(run), "--json"])
        out = capsys.readouterr()
        assert status in (0, 2) and "Traceback" not in out.err
        if status == 2:
            refused += 1
            assert out.err.startswith("error: ") and out.err.count("\n") == 1, out.err
            assert snapshot(run) == before
    assert refused == len(cases), (refused, len(cases))  # the digest covers the header too


def test_optimizer_groups_must_hold_the_optimizers_hyper_parameters(good_run, tmp_path, capsys):
    run = clone(good_run, tmp_path / "run")
    o = json.loads(load_safetensors(run / CHECKPOINT)[1]["optimizer"])
    o["param_groups"][0]["Eps"] = o["param_groups"][0].pop("eps")
    rewrite(run, {"optimizer": json.dumps(o)})
    assert main(["train", "--resume", "--out", str(run), "--quiet"]) == 2
    assert "optimizer.param_groups[0]: keys" in capsys.readouterr().err


def test_overwrite_removes_the_old_runs_checkpoint_first(good_run, tmp_path):
    """A run started again with --overwrite and killed before its first save must not leave the old
    run's checkpoint beside the new run's log."""
    import rnn.tasks.trainer as trainer

    run = clone(good_run, tmp_path / "run")

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trainer, "_run", interrupted)
        assert main(["train", *TINY, "--steps", "5", "--overwrite", "--out", str(run)]) == 130
    assert not (run / CHECKPOINT).exists() and not (run / MODEL).exists()

"""Issue 15: unlucky runs. kill -9 during checkpoint saves never loses or tears a checkpoint; a full disk
is one ``error:`` line with status 1 and the last checkpoint survives."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from minigrad.serialization import load_safetensors
from rnn.cli import main
from rnn.tasks.checkpoint import CHECKPOINT, MODEL, load_checkpoint
from rnn.tasks.trainer import LOSSES

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--task", "adding", "--hidden", "4", "--seq-len", "5", "--batch", "4", "--quiet"]


def logged_steps(run: Path) -> list[int]:
    return [int(ln.split("\t")[0]) for ln in (run / LOSSES).read_text().splitlines()[1:]]


def wait_for_training(run: Path, p: subprocess.Popen, timeout: float = 30.0) -> None:
    """Until the process has logged a step more than the run had (it is then saving every step)."""
    def steps() -> int:
        try:
            return len(logged_steps(run)) if (run / LOSSES).exists() else 0
        except ValueError:  # a line being written
            return 0

    before, deadline = steps(), time.monotonic() + timeout
    while p.poll() is None and time.monotonic() < deadline and steps() <= before:
        time.sleep(0.01)


def test_kill_9_during_saves_never_loses_the_checkpoint(tmp_path):
    """Ten runs (a fresh one, then resumes) saving every step, each killed with SIGKILL at a random
    moment once it trains: every time, the checkpoint that is there loads (never torn), its step never
    goes back, the log is steps 1..n without a gap, and the next start removes the killed saves'
    temporary files."""
    run = tmp_path / "run"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    rng = random.Random(15)
    last_step, t_end = 0, time.monotonic() + 5
    for i in range(10):
        if time.monotonic() > t_end and i >= 4:
            break
        argv = (["--resume"] if (run / CHECKPOINT).exists() else [*TINY[:-1], "--overwrite"])
        p = subprocess.Popen([sys.executable, "-m", "rnn", "train", *argv, "--out", str(run), "--steps",
                              "1000000", "--checkpoint-every", "1", "--quiet"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for_training(run, p)  # imports and Numba compilation are not what this test is about
        time.sleep(rng.uniform(0.0, 0.4))
        p.send_signal(signal.SIGKILL)
        _, err = p.communicate(timeout=30)
        assert p.returncode == -signal.SIGKILL, err.decode()
        if not (run / CHECKPOINT).exists():
            continue
        ck = load_checkpoint(run)  # never torn: validated, digest checked
        assert ck["step"] >= last_step
        last_step = ck["step"]
        _tensors, meta = load_safetensors(run / MODEL)
        assert int(meta["step"]) >= last_step - 1  # model.safetensors is written right after
        steps = logged_steps(run)
        assert steps[:last_step] == list(range(1, last_step + 1))
    assert last_step > 0
    assert main(["train", "--resume", "--out", str(run), "--steps", str(last_step + 1), "--quiet"]) == 0
    assert not [n for n in os.listdir(run) if n.endswith(".tmp")]
    assert logged_steps(run) == list(range(1, last_step + 2))


@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs mounted on a fresh directory (root only), always unmounted."""
    if os.geteuid() != 0 or sys.platform != "linux":
        pytest.skip("mounting a tmpfs needs root on Linux")
    mnt = tmp_path / f"disk-{uuid.uuid4().hex[:8]}"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(directory: Path) -> None:
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def test_full_disk_is_one_error_line_and_the_checkpoint_survives(tiny_disk, capsys):
    run = tiny_disk / "run"
    assert main(["train", *TINY, "--steps", "2", "--out", str(run)]) == 0
    capsys.readouterr()
    before = {n: (run / n).read_bytes() for n in (CHECKPOINT, MODEL)}
    fill(tiny_disk)
    assert main(["train", "--resume", "--out", str(run), "--steps", "40", "--checkpoint-every", "1",
                 "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {run}/") and "No space left on device" in err and err.count("\n") == 1, err
    assert load_checkpoint(run)["step"] >= 2
    assert not [n for n in os.listdir(run) if n.endswith(".tmp")]
    os.unlink(tiny_disk / "filler")
    if load_checkpoint(run)["step"] == 2:
        assert {n: (run / n).read_bytes() for n in (CHECKPOINT, MODEL)} == before
    assert main(["train", "--resume", "--out", str(run), "--steps", "3", "--quiet"]) == 0
    assert load_checkpoint(run)["step"] == 3


def test_full_disk_on_a_fresh_run(tiny_disk, capsys):
    fill(tiny_disk)
    assert main(["train", *TINY, "--steps", "2", "--out", str(tiny_disk / "run")]) == 1
    err = capsys.readouterr().err
    assert err == f"error: {tiny_disk / 'run' / '.lock'}: No space left on device\n"


def test_read_only_out_is_status_1(tiny_disk, capsys):
    run = tiny_disk / "run"
    assert main(["train", *TINY, "--steps", "1", "--out", str(run)]) == 0
    before = {n: (run / n).read_bytes() for n in os.listdir(run)}
    r = subprocess.run(["mount", "-o", "remount,ro", str(tiny_disk)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot remount read-only here")
    assert main(["train", *TINY, "--steps", "1", "--out", str(tiny_disk / "other")]) == 1
    assert capsys.readouterr().err.endswith("Read-only file system\n")
    assert main(["train", "--resume", "--out", str(run), "--steps", "2", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Read-only file system" in err and err.count("\n") == 1
    assert {n: (run / n).read_bytes() for n in os.listdir(run)} == before

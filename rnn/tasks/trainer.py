"""Training loop shared by every task: seeded batches, clipping, progress, atomic checkpoints, exact resume.

``train(config, out_dir)`` runs ``config.steps`` optimiser steps. Batch ``k`` is a pure function of
``(seed, k)`` (``rnn.tasks.base.batch_rng``), and the checkpoint holds the model, the optimiser state, the
step, the random generators' ``bit_generator.state`` and the config, so a run interrupted at any step and
resumed with ``resume=True`` logs exactly the losses an uninterrupted run would. Files in ``out_dir``:

- ``checkpoint.safetensors`` and ``model.safetensors``: the latest checkpoint (``rnn.tasks.checkpoint``),
  each replaced atomically (temporary file, fsync, ``os.replace``): a reader never sees a half-written
  checkpoint, even after Ctrl-C or kill -9; saved every ``checkpoint_every`` steps, every
  ``checkpoint_minutes`` minutes (default 10) and at the end;
- ``losses.tsv``: ``step<TAB>loss<TAB>grad_norm`` per step (floats written with ``repr``, exact), only
  ever appended to, or atomically replaced when a resume drops the steps after its checkpoint;
- ``results.json``: config, metric vs baseline and timings after the last step (written atomically);
- ``.lock``: the run's ``fcntl.flock`` (``rnn.tasks.rundir``): one process trains into a directory at a
  time; the next start removes the temporary files of saves that were killed.

Ctrl-C (``KeyboardInterrupt``) during training saves a checkpoint of the last finished step and raises
``TrainingInterrupted`` (the command line turns it into exit status 130).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

import minigrad as mg
from minigrad import nn, optim

from ..cells import CELLS
from . import get_task
from .base import Task
from .checkpoint import CHECKPOINT, FORMAT, LEGACY, MODEL, CheckpointInvalid, restore_states, save_model
from .checkpoint import load_checkpoint as _load_validated
from .checkpoint import save_checkpoint as _save_files
from .progress import Progress
from .rundir import RunDir, write_atomic

__all__ = ["CHECKPOINT", "FORMAT", "LOSSES", "MODEL", "RESULTS", "CheckpointInvalid", "TrainConfig",
           "TrainResult", "TrainingInterrupted", "build", "load_checkpoint", "restore", "train"]

LOSSES = "losses.tsv"
RESULTS = "results.json"
#: upper bounds of the sizes (a config from a file is checked against them before anything is built)
LIMITS = {"hidden": 4096, "layers": 16, "steps": 10**9, "batch": 10**7, "seq_len": 100_000,
          "bptt": 100_000, "seed": 2**63 - 1, "checkpoint_every": 10**9}
OPTIMIZERS = ("adam", "sgd", "rmsprop")
DTYPES = ("float32", "float64")
SCHEDULES = ("constant", "cosine")


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Learning rate of step ``step`` (0-based): constant, or cosine from ``lr`` down to ``0.05 lr`` at the
    last step. A function of the step alone, so resuming does not change it."""
    if cfg.schedule == "cosine":
        return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * step / max(cfg.steps, 1))))
    return cfg.lr


class TrainingInterrupted(Exception):  # noqa: N818  (it is not an error)
    """Raised after Ctrl-C once the checkpoint of the last finished step is on disk."""

    def __init__(self, step: int, path: Path) -> None:
        super().__init__(f"interrupted after step {step}; checkpoint saved to {path}")
        self.step, self.path = step, path


@dataclass
class TrainConfig:
    """Everything that defines a run. ``None`` fields take the task's tuned default (``Task.defaults``)."""

    task: str = "adding"
    cell: str | None = None          # a name in rnn.CELLS; default: the task's (lstm, except gru for copy)
    hidden: int | None = None
    layers: int | None = None
    bptt: int | None = None          # 0: full BPTT; k > 0: truncate to windows of k steps
    clip: float | None = None        # max global gradient norm; 0 disables clipping
    lr: float | None = None
    steps: int | None = None
    batch: int | None = None
    seq_len: int | None = None
    seed: int = 0
    optimizer: str = "adam"
    schedule: str | None = None      # "constant" or "cosine" (decay to 5 % of lr over the steps)
    dtype: str = "float32"
    checkpoint_every: int = 0        # also save every N steps (0: not by steps)
    checkpoint_minutes: float = 10.0  # also save when this many minutes passed since the last save (0: no)

    def resolved(self) -> TrainConfig:
        """A copy with every ``None`` replaced by the task default; validated."""
        cfg = dataclasses.replace(self)
        cfg.validate_names()
        from . import TASKS

        defaults = TASKS[cfg.task].defaults
        fallback = {"schedule": "constant", "cell": "lstm"}
        for k in ("cell", "hidden", "layers", "bptt", "clip", "lr", "steps", "batch", "seq_len", "schedule"):
            if getattr(cfg, k) is None:
                setattr(cfg, k, defaults.get(k, fallback.get(k)))
        cfg.validate()
        return cfg

    def validate_names(self) -> None:
        from . import TASKS

        if self.task not in TASKS:
            raise ValueError(f"unknown task {self.task!r}; choose one of {', '.join(sorted(TASKS))}")
        if self.cell is not None and self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r}; choose one of {', '.join(CELLS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule is not None and self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; choose one of {', '.join(DTYPES)}")

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting (before anything is created or written)."""
        self.validate_names()
        from . import TASKS

        for k, lo in (("hidden", 1), ("layers", 1), ("steps", 1), ("batch", 1), ("seq_len", 1), ("bptt", 0),
                      ("seed", 0), ("checkpoint_every", 0)):
            v, hi = getattr(self, k), LIMITS[k]
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer))
                                  or not lo <= v <= hi):
                raise ValueError(f"--{k.replace('_', '-')} must be an integer between {lo} and {hi}, "
                                 f"got {v!r}")
        for k, lo, strict in (("lr", 0.0, True), ("clip", 0.0, False), ("checkpoint_minutes", 0.0, False)):
            v = getattr(self, k)
            if v is None:
                continue
            if (isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer))
                    or not math.isfinite(v) or v < lo or (strict and v == lo)):
                what = "a positive number" if strict else "a number >= 0 (0 disables it)"
                raise ValueError(f"--{k.replace('_', '-')} must be {what}, got {v!r}")
        task = TASKS[self.task]
        if self.seq_len is not None and self.seq_len < task.min_seq_len:
            raise ValueError(f"--seq-len must be >= {task.min_seq_len} for task {self.task}, "
                             f"got {self.seq_len}")
        if self.bptt and not task.supports_bptt:
            raise ValueError(f"--bptt: task {self.task} does not support truncated BPTT (use 0)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def checked(cls, d: dict[str, Any], where: str = "config") -> TrainConfig:
        """A complete config from untrusted data (a checkpoint's): every field present with its type,
        names known, sizes within ``LIMITS``; ``CheckpointInvalid`` naming the field otherwise."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(fields))
        missing = sorted(set(fields) - set(d))
        if unknown or missing:
            raise CheckpointInvalid(f"{where}: {'unknown field ' + repr(unknown[0][:40]) if unknown else ''}"
                                    f"{'; ' if unknown and missing else ''}"
                                    f"{'missing field ' + repr(missing[0]) if missing else ''}")
        for k, v in d.items():
            kind = (str if k in ("task", "cell", "optimizer", "schedule", "dtype") else
                    float if k in ("lr", "clip", "checkpoint_minutes") else int)
            ok = (isinstance(v, str) if kind is str else
                  type(v) in (int, float) if kind is float else type(v) is int)
            if not ok:
                want = "a number" if kind is float else kind.__name__
                raise CheckpointInvalid(f"{where}.{k}: expected {want}, got {type(v).__name__} {str(v)[:40]}")
        cfg = cls(**d)
        try:
            cfg.validate()
        except ValueError as exc:
            raise CheckpointInvalid(f"{where}: {str(exc).removeprefix('--')[:300]}") from None
        return cfg


# --------------------------------------------------------------------------------------------- building
def build(cfg: TrainConfig) -> tuple[Task, nn.Module, optim.Optimizer]:
    """The task, a freshly initialised model (weights a function of the seed) and its optimiser."""
    mg.manual_seed(cfg.seed)
    task = get_task(cfg.task, seq_len=cfg.seq_len, seed=cfg.seed, dtype=cfg.dtype)
    model = task.build_model(cfg.cell, cfg.hidden, cfg.layers)
    params = list(model.parameters())
    if cfg.optimizer == "adam":
        opt: optim.Optimizer = optim.Adam(params, lr=cfg.lr)
    elif cfg.optimizer == "rmsprop":
        opt = optim.RMSprop(params, lr=cfg.lr)
    else:
        opt = optim.SGD(params, lr=cfg.lr, momentum=0.9)
    return task, model, opt


# --------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(out_dir: str | Path, cfg: TrainConfig, model: nn.Module, opt: optim.Optimizer,
                    step: int) -> Path:
    """The run's state at ``step`` into ``out_dir`` (``rnn.tasks.checkpoint``: model.safetensors and
    checkpoint.safetensors, each atomic)."""
    return _save_files(out_dir, cfg.to_dict(), model, opt, step)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The validated checkpoint at ``path`` (a run directory or a checkpoint file): a dict with the
    model's and the optimiser's state, step, RNG state, config and format (``rnn.tasks.checkpoint``)."""
    return _load_validated(path)


def restore(ckpt: dict[str, Any]) -> tuple[TrainConfig, Task, nn.Module, optim.Optimizer]:
    """Rebuild task, model and optimiser from a validated checkpoint and load their saved states."""
    cfg = TrainConfig.from_dict(ckpt["config"])
    task, model, opt = build(cfg)
    restore_states(ckpt["path"], ckpt, model, opt)
    return cfg, task, model, opt


def memory_needed(cfg: TrainConfig) -> int:
    """A rough upper estimate of the bytes one training step holds (the unrolled graph's activations and
    their gradients), to refuse a run that cannot fit before anything is allocated."""
    itemsize = np.dtype(cfg.dtype).itemsize
    per_step = cfg.layers * 16 * cfg.hidden + 2 * 128  # gates, states and inputs of one time step
    return 2 * itemsize * cfg.batch * (cfg.seq_len + 16) * per_step


def memory_available() -> int | None:
    """``MemAvailable`` of /proc/meminfo in bytes (None where there is no such file)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_memory(cfg: TrainConfig) -> None:
    """``MemoryError`` naming the sizes when a training step of ``cfg`` cannot fit in available memory."""
    need, have = memory_needed(cfg), memory_available()
    if have is not None and need > have:
        raise MemoryError(f"a training step with --batch {cfg.batch}, --seq-len {cfg.seq_len}, --hidden "
                          f"{cfg.hidden} and --layers {cfg.layers} needs about {need / 2**30:.1f} GiB, more "
                          f"than the {have / 2**30:.1f} GiB available; make them smaller")


# --------------------------------------------------------------------------------------------- training
@dataclass
class TrainResult:
    config: TrainConfig
    task: Task
    model: nn.Module
    losses: list[float]
    result: dict[str, float]
    seconds: float
    steps_per_second: float


def _prepare_log(path: Path, upto: int) -> list[float]:
    """Keep the rows of steps 1..``upto`` of the loss log (a resume starts after ``upto``): the log is
    appended to when it holds nothing else, atomically replaced otherwise (never truncated in place);
    returns the kept losses. Unreadable rows (a line cut by a kill) are dropped."""
    header = "# step\tloss\tgrad_norm\n"
    if not path.is_file():
        write_atomic(path, header)
        return []
    kept, losses, clean = [header], [], True
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f):
            if i == 0 and line == header:
                continue
            parts = line.rstrip("\n").split("\t")
            try:
                step, loss = int(parts[0]), float(parts[1])
            except (ValueError, IndexError):
                clean = False
                continue
            if step > upto or step != len(losses) + 1 or not line.endswith("\n"):
                clean = False
                continue
            kept.append(line)
            losses.append(loss)
    if not clean:
        write_atomic(path, "".join(kept))
    return losses


def train(cfg: TrainConfig, out_dir: str | Path, *, resume: bool = False, quiet: bool = False,
          stream: TextIO | None = None, evaluate: bool = True,
          on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train ``cfg`` (resolved against the task defaults) writing into ``out_dir`` (see module doc).

    ``resume=True`` continues from ``out_dir``'s checkpoint: the saved config is used except ``steps``,
    ``checkpoint_every`` and ``checkpoint_minutes``, which come from ``cfg`` when given. Raises
    ``RunDirBusy`` when another process trains into ``out_dir``, ``CheckpointInvalid`` for a bad
    checkpoint, ``MemoryError`` when a step cannot fit in memory, ``FloatingPointError`` when the loss
    diverges (the last checkpoint is kept). ``on_step(step, loss)`` is called after every step (tests use
    it to simulate Ctrl-C).
    """
    out = Path(out_dir)
    stream = stream or sys.stdout
    if resume:
        load_checkpoint(out)  # fail before taking the directory
    else:
        cfg = cfg.resolved()
        check_memory(cfg)
    with RunDir(out):
        if resume:
            ckpt = load_checkpoint(out)
            saved_cfg = TrainConfig.from_dict(ckpt["config"])
            if cfg.steps is not None:
                saved_cfg.steps = cfg.steps
            saved_cfg.checkpoint_every = cfg.checkpoint_every or saved_cfg.checkpoint_every
            if cfg.checkpoint_minutes != TrainConfig.checkpoint_minutes:
                saved_cfg.checkpoint_minutes = cfg.checkpoint_minutes
            cfg = saved_cfg.resolved()
            check_memory(cfg)
            task, model, opt = build(cfg)
            restore_states(ckpt["path"], ckpt, model, opt)
            start = ckpt["step"]
            # a run killed between its two files left model.safetensors a save behind: catch it up
            # before training, so it never lags the checkpoint by more than the save in progress
            save_model(out, cfg.to_dict(), model, start)
            losses = _prepare_log(out / LOSSES, start)
        else:
            task, model, opt = build(cfg)
            start = 0
            for name in (CHECKPOINT, MODEL, RESULTS, LEGACY):  # a run started again: never a mixture
                (out / name).unlink(missing_ok=True)
            write_atomic(out / LOSSES, "# step\tloss\tgrad_norm\n")
            losses = []
        return _run(cfg, out, task, model, opt, start, losses, quiet, stream, evaluate, on_step)


def _run(cfg: TrainConfig, out: Path, task: Task, model: nn.Module, opt: optim.Optimizer, start: int,
         losses: list[float], quiet: bool, stream: TextIO, evaluate: bool,
         on_step: Callable[[int, float], None] | None) -> TrainResult:
    log_path = out / LOSSES
    ckpt_path = out / CHECKPOINT
    params = list(model.parameters())
    progress = Progress(cfg.steps, start, quiet, stream)
    step = start
    t0 = time.perf_counter()
    model.train()
    last_save = time.monotonic()
    try:
        with open(log_path, "a") as log, np.errstate(all="ignore"):
            while step < cfg.steps:
                batch = task.batch(step, cfg.batch)
                opt.zero_grad()
                loss = task.backward(model, batch, cfg.bptt)
                if not math.isfinite(loss):
                    raise FloatingPointError(
                        f"training diverged: the loss became {loss} at step {step + 1} (lr "
                        f"{lr_at(cfg, step):g}, clip {cfg.clip:g}); try a smaller --lr or --clip 1 "
                        f"(the checkpoint of the last save is kept)")
                for group in opt.param_groups:
                    group["lr"] = lr_at(cfg, step)
                gnorm = float(nn.utils.clip_grad_norm_(params, cfg.clip) if cfg.clip > 0
                              else nn.utils.grad_norm([p for p in params if p.grad is not None]))
                opt.step()
                step += 1
                losses.append(loss)
                try:
                    log.write(f"{step}\t{loss!r}\t{gnorm!r}\n")
                    log.flush()  # `tail -f losses.tsv` follows the run
                except OSError as exc:  # say which file (a full disk)
                    raise OSError(exc.errno, exc.strerror, str(log_path)) from exc
                progress.update(step, loss)
                due = cfg.checkpoint_every and step % cfg.checkpoint_every == 0
                late = cfg.checkpoint_minutes and time.monotonic() - last_save >= 60 * cfg.checkpoint_minutes
                if (due or late) and step < cfg.steps:
                    save_checkpoint(out, cfg, model, opt, step)
                    last_save = time.monotonic()
                if on_step is not None:
                    on_step(step, loss)
    except KeyboardInterrupt:
        progress.close()
        save_checkpoint(out, cfg, model, opt, step)
        raise TrainingInterrupted(step, ckpt_path) from None
    progress.close()
    seconds = time.perf_counter() - t0
    save_checkpoint(out, cfg, model, opt, step)
    model.eval()
    result = task.evaluate(model) if evaluate else {}
    rate = (step - start) / max(seconds, 1e-9)
    summary = {"config": cfg.to_dict(), "steps": step, "train_seconds": seconds, "steps_per_second": rate,
               "final_loss": losses[-1] if losses else None, "metric_name": task.metric,
               "higher_is_better": task.higher_is_better, **result}
    write_atomic(out / RESULTS, json.dumps(summary, indent=2) + "\n")
    return TrainResult(cfg, task, model, losses, result, seconds, rate)

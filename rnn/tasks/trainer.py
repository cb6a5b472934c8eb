"""Training loop shared by every task: seeded batches, clipping, progress, atomic checkpoints, exact resume.

``train(config, out_dir)`` runs ``config.steps`` optimiser steps. Batch ``k`` is a pure function of
``(seed, k)`` (``rnn.tasks.base.batch_rng``), and the checkpoint holds the model, the optimiser state, the
step, the random generators' ``bit_generator.state`` and the config, so a run interrupted at any step and
resumed with ``resume=True`` logs exactly the losses an uninterrupted run would. Files in ``out_dir``:

- ``checkpoint.mg``: the latest checkpoint, written by ``mg.save``, which replaces it atomically (temporary
  file, fsync, ``os.replace``): a reader never sees a half-written checkpoint, even after Ctrl-C;
- ``losses.tsv``: ``step<TAB>loss<TAB>grad_norm`` per step (floats written with ``repr``, exact);
- ``results.json``: config, metric vs baseline and timings after the last step.

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

CHECKPOINT = "checkpoint.mg"
LOSSES = "losses.tsv"
RESULTS = "results.json"
#: checkpoint format; /2: models from ``rnn.models`` (parameter names such as ``encoder.rnn.weight_ih_l0``)
FORMAT = "minigrad-rnn-checkpoint/2"
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
    checkpoint_every: int = 0        # 0: only at the end (and on Ctrl-C)

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

        positive = {"hidden": self.hidden, "layers": self.layers, "steps": self.steps, "batch": self.batch,
                    "seq_len": self.seq_len}
        for k, v in positive.items():
            if v is not None and (not isinstance(v, (int, np.integer)) or v < 1):
                raise ValueError(f"--{k.replace('_', '-')} must be a positive integer, got {v!r}")
        for k, v in {"bptt": self.bptt, "seed": self.seed, "checkpoint_every": self.checkpoint_every}.items():
            if v is not None and (not isinstance(v, (int, np.integer)) or v < 0):
                raise ValueError(f"--{k.replace('_', '-')} must be an integer >= 0, got {v!r}")
        if self.lr is not None and not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"--lr must be a positive number, got {self.lr!r}")
        if self.clip is not None and not (math.isfinite(self.clip) and self.clip >= 0):
            raise ValueError(f"--clip must be a number >= 0 (0 disables clipping), got {self.clip!r}")
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
def save_checkpoint(path: Path, cfg: TrainConfig, model: nn.Module, opt: optim.Optimizer, step: int) -> None:
    """Model and optimiser state dicts, step, minigrad's generator state and config, saved atomically."""
    mg.save({"format": FORMAT, "config": cfg.to_dict(), "step": int(step), "model": model.state_dict(),
           "optimizer": opt.state_dict(), "rng": {"minigrad": mg.default_rng().bit_generator.state}}, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict at ``path`` (a file, or a run directory holding ``checkpoint.mg``)."""
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {p} does not exist")
    ckpt = mg.load(p)
    found = ckpt.get("format") if isinstance(ckpt, dict) else None
    if found != FORMAT:
        if isinstance(found, str) and found.startswith(FORMAT.rsplit("/", 1)[0] + "/"):
            raise ValueError(f"{p} is a checkpoint in format {found}, but this version of rnn reads "
                             f"{FORMAT} (the models' parameter layout changed); train the model again")
        raise ValueError(f"{p} is not a minigrad rnn checkpoint (format {FORMAT})")
    return ckpt


def restore(ckpt: dict[str, Any]) -> tuple[TrainConfig, Task, nn.Module, optim.Optimizer]:
    """Rebuild task, model and optimiser from a checkpoint and load their saved states."""
    cfg = TrainConfig.from_dict(ckpt["config"])
    task, model, opt = build(cfg)
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    mg.default_rng().bit_generator.state = ckpt["rng"]["minigrad"]
    return cfg, task, model, opt


# --------------------------------------------------------------------------------------------- progress
class Progress:
    """One carriage-return status line on a terminal; periodic plain lines otherwise; nothing if quiet."""

    def __init__(self, total: int, start: int = 0, quiet: bool = False, stream: TextIO | None = None,
                 every: int | None = None) -> None:
        self.stream = stream or sys.stdout
        self.total, self.start, self.quiet = total, start, quiet
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every = every or max(1, (total - start) // 10)
        self.t0 = self.last = time.perf_counter()
        self.avg: float | None = None
        self.width = 0

    def update(self, step: int, loss: float) -> None:
        """``step`` steps done, the latest loss ``loss``."""
        self.avg = loss if self.avg is None else 0.9 * self.avg + 0.1 * loss
        if self.quiet:
            return
        now = time.perf_counter()
        done = step - self.start
        rate = done / max(now - self.t0, 1e-9)
        eta = (self.total - step) / max(rate, 1e-9)
        msg = (f"step {step:>6d}/{self.total}  loss {loss:.4f} (avg {self.avg:.4f})  "
               f"{rate:6.1f} steps/s  eta {eta:5.0f}s")
        if self.tty:
            if now - self.last > 0.1 or step == self.total:
                self.stream.write("\r" + msg.ljust(self.width))
                self.stream.flush()
                self.width, self.last = len(msg), now
        elif done % self.every == 0 or step == self.total:
            self.stream.write(msg + "\n")
            self.stream.flush()

    def close(self) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()

    def rate(self, step: int) -> float:
        return (step - self.start) / max(time.perf_counter() - self.t0, 1e-9)


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


def _read_losses(path: Path, upto: int) -> list[str]:
    if not path.is_file():
        return []
    lines = [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]
    return [ln for ln in lines if int(ln.split("\t")[0]) <= upto]


def train(cfg: TrainConfig, out_dir: str | Path, *, resume: bool = False, quiet: bool = False,
          stream: TextIO | None = None, evaluate: bool = True,
          on_step: Callable[[int, float], None] | None = None) -> TrainResult:
    """Train ``cfg`` (resolved against the task defaults) writing into ``out_dir`` (see module doc).

    ``resume=True`` continues from ``out_dir/checkpoint.mg``: the saved config is used except ``steps``
    and ``checkpoint_every``, which come from ``cfg`` when given. ``on_step(step, loss)`` is called after
    every step (tests use it to simulate Ctrl-C).
    """
    out = Path(out_dir)
    stream = stream or sys.stdout
    if resume:
        ckpt = load_checkpoint(out / CHECKPOINT)
        saved_cfg, task, model, opt = restore(ckpt)
        if cfg.steps is not None:
            saved_cfg.steps = cfg.steps
        saved_cfg.checkpoint_every = cfg.checkpoint_every or saved_cfg.checkpoint_every
        cfg = saved_cfg.resolved()
        start = int(ckpt["step"])
        kept = _read_losses(out / LOSSES, start)
    else:
        cfg = cfg.resolved()
        task, model, opt = build(cfg)
        start, kept = 0, []
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT
    log_path = out / LOSSES
    with open(log_path, "w") as f:
        f.write("# step\tloss\tgrad_norm\n" + "".join(ln + "\n" for ln in kept))
    losses = [float(ln.split("\t")[1]) for ln in kept]
    params = list(model.parameters())
    progress = Progress(cfg.steps, start, quiet, stream)
    step = start
    t0 = time.perf_counter()
    model.train()
    try:
        with open(log_path, "a") as log:
            while step < cfg.steps:
                batch = task.batch(step, cfg.batch)
                opt.zero_grad()
                loss = task.backward(model, batch, cfg.bptt)
                if not math.isfinite(loss):
                    raise FloatingPointError(f"loss became {loss} at step {step + 1}; try a smaller --lr or "
                                             f"a --clip value")
                for group in opt.param_groups:
                    group["lr"] = lr_at(cfg, step)
                gnorm = float(nn.utils.clip_grad_norm_(params, cfg.clip) if cfg.clip > 0
                              else nn.utils.grad_norm([p for p in params if p.grad is not None]))
                opt.step()
                step += 1
                losses.append(loss)
                log.write(f"{step}\t{loss!r}\t{gnorm!r}\n")
                log.flush()  # `tail -f losses.tsv` follows the run
                progress.update(step, loss)
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                    save_checkpoint(ckpt_path, cfg, model, opt, step)
                if on_step is not None:
                    on_step(step, loss)
    except KeyboardInterrupt:
        progress.close()
        save_checkpoint(ckpt_path, cfg, model, opt, step)
        raise TrainingInterrupted(step, ckpt_path) from None
    progress.close()
    seconds = time.perf_counter() - t0
    save_checkpoint(ckpt_path, cfg, model, opt, step)
    model.eval()
    result = task.evaluate(model) if evaluate else {}
    rate = (step - start) / max(seconds, 1e-9)
    summary = {"config": cfg.to_dict(), "steps": step, "train_seconds": seconds, "steps_per_second": rate,
               "final_loss": losses[-1] if losses else None, "metric_name": task.metric,
               "higher_is_better": task.higher_is_better, **result}
    (out / RESULTS).write_text(json.dumps(summary, indent=2) + "\n")
    return TrainResult(cfg, task, model, losses, result, seconds, rate)

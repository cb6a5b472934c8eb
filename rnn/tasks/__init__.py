"""The bundled tasks (no downloads): each module has a data generator, a model from ``rnn.models`` (any
registered cell), a loss from ``minigrad.nn.functional``, a metric and a baseline to beat.
``get_task(name, seq_len=None, seed=0, dtype="float32")`` builds one by name.

| task | what | metric (baseline) |
|---|---|---|
| adding | sum of two marked numbers in a length-T sequence | test MSE (constant 1: ~0.167) |
| copy | repeat 5 symbols after T blanks | recall accuracy (chance 1/8) |
| charlm | next character of bundled Shakespeare | held-out nats/char (unigram) |
| forecast | Mackey-Glass next value, closed-loop multi-step | one-step MSE (last value) |
| seq2seq | encoder-decoder addition of digit strings | exact match (most common answer) |
| classify | most frequent symbol of variable-length sequences (lengths) | accuracy (majority class) |
"""

from __future__ import annotations

from typing import Any

from .adding import AddingTask
from .base import PerStepTask, Task, batch_rng
from .charlm import CharLMTask
from .classify import ClassifyTask
from .copy import CopyTask
from .forecast import ForecastTask
from .seq2seq import Seq2SeqTask

TASKS: dict[str, type[Task]] = {t.name: t for t in (AddingTask, CopyTask, CharLMTask, ForecastTask,
                                                    Seq2SeqTask, ClassifyTask)}
TASKS["memory"] = CopyTask  # alias


def get_task(name: str, seq_len: int | None = None, seed: int = 0, dtype: Any = "float32") -> Task:
    """The task called ``name`` (see ``TASKS``); ``seq_len`` None uses the task's default."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(sorted(TASKS))}")
    return TASKS[name](seq_len=seq_len, seed=seed, dtype=dtype)


__all__ = ["TASKS", "AddingTask", "CharLMTask", "ClassifyTask", "CopyTask", "ForecastTask", "PerStepTask",
           "Seq2SeqTask", "Task", "batch_rng", "get_task"]

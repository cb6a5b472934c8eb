"""Progress bars (tqdm) for training and experiments: shown on a terminal, silent otherwise.

``Progress(total, start, quiet, stream)`` is the training bar: ``update(step, loss)`` after every
optimiser step (the bar shows the step, steps/s, the time left, the latest loss and its running average),
``close()`` at the end (also after Ctrl-C), ``rate(step)`` the steps per second since ``start``. It draws
nothing when ``quiet=True`` (``--quiet``) or when ``stream`` (default ``sys.stdout``) is not a terminal, so
logs, pipes and CI stay clean; ``losses.tsv`` records every step either way.

``bar(iterable, total=..., desc=..., quiet=..., stream=...)`` wraps any loop the same way (the experiments'
runs); ``write(msg, stream)`` prints a line without breaking a bar that is being drawn.
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TextIO, TypeVar

from tqdm import tqdm

__all__ = ["Progress", "bar", "is_terminal", "write"]

Item = TypeVar("Item")


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (a bar is drawn only there)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def _width(stream: Any) -> dict[str, Any]:
    """tqdm's size options: follow the terminal's width, or assume 80 x 24 where it reports 0 (a pty
    whose size was never set, as under ``script``: tqdm would draw an empty bar, or hide it)."""
    try:
        size = os.get_terminal_size(stream.fileno())
        cols, rows = size.columns, size.lines
    except (AttributeError, ValueError, OSError, io.UnsupportedOperation):
        cols = rows = 0
    opts: dict[str, Any] = {"dynamic_ncols": True} if cols > 0 else {"ncols": 80}
    if rows <= 0:
        opts["nrows"] = 24
    return opts


class Progress:
    """A tqdm bar over the optimisation steps ``start+1 .. total`` (see the module doc)."""

    def __init__(self, total: int, start: int = 0, quiet: bool = False, stream: TextIO | None = None,
                 every: int | None = None) -> None:
        self.stream = stream or sys.stdout
        self.total, self.start, self.quiet = int(total), int(start), quiet
        self.every = every  # accepted for compatibility with the former hand-written line; unused
        self.tty = is_terminal(self.stream)
        self.avg: float | None = None
        self.t0 = time.perf_counter()
        self.step = self.start
        self.bar: Any = None
        if not quiet and self.tty:
            self.bar = tqdm(total=self.total, initial=self.start, file=self.stream, unit="step",
                            mininterval=0.1, leave=True, desc="train", **_width(self.stream))

    def update(self, step: int, loss: float) -> None:
        """``step`` steps done, the latest loss ``loss``."""
        self.avg = loss if self.avg is None else 0.9 * self.avg + 0.1 * loss
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {loss:.4f} (avg {self.avg:.4f})", refresh=False)
            self.bar.update(step - self.step)
        self.step = step

    def close(self) -> None:
        """Finish the bar (leaves it on screen); safe to call twice."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def rate(self, step: int) -> float:
        """Steps per second since the start."""
        return (step - self.start) / max(time.perf_counter() - self.t0, 1e-9)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def bar(iterable: Iterable[Item], *, total: int | None = None, desc: str | None = None, quiet: bool = False,
        stream: TextIO | None = None, unit: str = "it") -> Iterator[Item]:
    """``iterable`` with a tqdm bar on ``stream`` (default ``sys.stderr``), or unchanged when ``quiet`` or
    when ``stream`` is not a terminal."""
    stream = stream or sys.stderr
    if quiet or not is_terminal(stream):
        return iter(iterable)
    return iter(tqdm(iterable, total=total, desc=desc, file=stream, unit=unit, mininterval=0.1,
                     **_width(stream)))


def write(msg: str, stream: TextIO | None = None) -> None:
    """Print ``msg`` on ``stream`` (default ``sys.stderr``) without breaking a bar being drawn there."""
    tqdm.write(msg, file=stream or sys.stderr)

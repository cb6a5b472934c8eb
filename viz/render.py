"""Rendering with the system Graphviz ``dot`` binary, and Jupyter display.

``dot`` runs as a subprocess without a shell, in its own process group, with a timeout; the picture
is written atomically (temporary file in the target directory, then ``os.replace``), so a failed
render leaves no file behind. A missing ``dot``, a timeout and a crash (non-zero exit or death by a
signal) all raise :class:`RenderError`, whose message names the real cause (``cause``: ``"missing"``,
``"timeout"``, ``"crashed"``, ``"failed"``); only a missing or unrunnable ``dot`` adds how to install
Graphviz. The DOT source (``graph.source``) never needs the binary.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import graphviz

from minigrad.serialization import atomic_write

FORMATS = ("svg", "png", "pdf", "dot")
DEFAULT_TIMEOUT = 60.0
INSTALL_HINT = (
    "Install Graphviz so that the `dot` program is on PATH: `sudo apt-get install graphviz` "
    "(Debian/Ubuntu), `brew install graphviz` (macOS), or see https://graphviz.org/download/. "
    "The DOT source is available without it: `graph.source`."
)


class RenderError(RuntimeError):
    """Graphviz ``dot`` could not render the graph: not installed, timed out or crashed. ``cause`` is
    ``"missing"`` (not found or not runnable), ``"timeout"``, ``"crashed"`` (killed by a signal) or
    ``"failed"`` (a non-zero exit status or no output)."""

    def __init__(self, message: str, cause: str = "failed") -> None:
        super().__init__(message)
        self.cause = cause


def _source(graph: Any) -> str:
    if isinstance(graph, graphviz.Digraph | graphviz.Graph):
        return graph.source
    if isinstance(graph, str):
        return graph
    raise TypeError(f"render: expected a graphviz.Digraph (e.g. from viz.draw) or DOT source str, "
                    f"got {type(graph).__name__}")


def _check_format(fmt_in: str) -> str:
    fmt = str(fmt_in).lower()
    if fmt not in FORMATS:
        raise ValueError(f"render: format must be one of {', '.join(FORMATS)}, got {fmt_in!r}")
    return fmt


def _kill(proc: subprocess.Popen) -> None:
    """Kill ``proc`` and everything it started (it leads its own process group)."""
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:  # pragma: no cover
            proc.kill()
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()


def pipe(graph: Any, format: str = "svg", *,
         timeout: float = DEFAULT_TIMEOUT, dot: str = "dot") -> bytes:
    """The rendered picture as bytes (``dot -T<format>``, source on stdin, image on stdout)."""
    fmt = _check_format(format)
    # a lone surrogate cannot be UTF-8: shown as its escape rather than failing (viz escapes its labels)
    src = _source(graph).encode("utf-8", "backslashreplace")
    if fmt == "dot":
        return src
    if timeout is None or not timeout > 0:
        raise ValueError(f"render: timeout must be a positive number of seconds, got {timeout!r}")
    args = [str(dot), f"-T{fmt}"]
    try:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, shell=False,
                                start_new_session=os.name == "posix")
    except FileNotFoundError:
        raise RenderError(f"Graphviz `{dot}` was not found on PATH, so the graph cannot be rendered "
                          f"to {fmt}. {INSTALL_HINT}", "missing") from None
    except OSError as exc:  # not executable, not a program (exec format error), ...
        raise RenderError(f"Graphviz `{dot}` could not be executed ({exc}). {INSTALL_HINT}",
                          "missing") from None
    try:
        out, err = proc.communicate(src, timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.communicate()
        raise RenderError(
            f"Graphviz `{dot}` timed out: it did not finish rendering to {fmt} within {timeout:g} s and "
            f"was killed (the graph may be too large: draw with a smaller max_steps/node_budget, or pass "
            f"a longer timeout)", "timeout") from None
    except BaseException:
        _kill(proc)
        proc.communicate()
        raise
    rc = proc.returncode
    msg = err.decode("utf-8", "replace").strip()
    detail = f"; its error output was: {msg[-2000:]}" if msg else ""
    if rc < 0:
        try:
            sig = signal.Signals(-rc).name
        except ValueError:
            sig = f"signal {-rc}"
        raise RenderError(f"Graphviz `{dot}` crashed with signal {-rc} ({sig}): it was killed by {sig} "
                          f"while rendering to {fmt}{detail}. This is a bug in Graphviz; a smaller graph "
                          f"(max_steps) or another Graphviz version may work", "crashed")
    if rc != 0:
        raise RenderError(f"Graphviz `{dot}` failed with exit status {rc} while rendering to {fmt}"
                          f"{detail}", "failed")
    if not out:
        raise RenderError(f"Graphviz `{dot}` produced no output for format {fmt}{detail}", "failed")
    return out


def render(graph: Any, path: str | os.PathLike, format: str | None = None, *,
           timeout: float = DEFAULT_TIMEOUT, dot: str = "dot") -> Path:
    """Render ``graph`` (a ``graphviz.Digraph`` or DOT source) to ``path`` with Graphviz ``dot``.

    ``format`` is ``svg``, ``png``, ``pdf`` or ``dot`` (the source itself; no binary needed); by
    default it is taken from the file extension of ``path``. The file is written atomically (a path
that is a link, a device or a directory is refused with ``ValueError``). Raises
    :class:`RenderError` if ``dot`` is missing, times out (``timeout`` seconds) or crashes, and
    ``ValueError`` for an unknown format. Returns the path written.
    """
    path = Path(path)
    if format is None:
        guess = path.suffix.lstrip(".").lower()
        guess = "dot" if guess == "gv" else guess
        if guess not in FORMATS:
            raise ValueError(f"render: cannot tell the format from the file name {str(path)!r}; pass "
                             f"format= one of {', '.join(FORMATS)}")
        fmt = guess
    else:
        fmt = _check_format(format)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise FileNotFoundError(f"render: the directory {str(parent)!r} of {str(path)!r} does not exist")
    if path.is_symlink() or (path.exists() and not path.is_file()):
        # the file is replaced atomically (a rename): that must never replace a link, a device or a
        # directory (``-o /dev/stdout`` would swap the link for a regular file)
        raise ValueError(f"render: {str(path)!r} exists and is not a regular file; write to a new "
                         "or regular file (for the DOT text itself use graph.source)")
    data = pipe(graph, fmt, timeout=timeout, dot=dot)
    atomic_write(path, lambda f: f.write(data))
    return path


class Drawing(graphviz.Digraph):
    """What :func:`viz.draw` returns: a ``graphviz.Digraph`` (``.source``, ``.node``, ...) that
    displays itself in Jupyter through :func:`pipe` (timeout, :class:`RenderError`), plus ``info``:
    a dict describing what was drawn (view, steps, elided steps, node and edge counts, seconds)."""

    info: dict[str, Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.info = {}

    def render_to(self, path: str | os.PathLike, format: str | None = None, *,
                  timeout: float = DEFAULT_TIMEOUT) -> Path:
        """Same as ``viz.render(self, path, format, timeout=timeout)``."""
        return render(self, path, format, timeout=timeout)

    def _repr_svg_(self) -> str:
        return pipe(self, "svg").decode("utf-8")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **_: Any) -> dict[str, str]:
        try:
            return {"image/svg+xml": self._repr_svg_()}
        except RenderError as exc:
            return {"text/plain": f"viz: cannot display the drawing: {exc}"}

"""A run directory that one process owns at a time, and files in it that are never half-written.

``RunDir(out)`` (a context manager) takes an exclusive ``fcntl.flock`` on ``out/.lock`` without waiting:
a second ``train`` into the same directory fails at once with ``RunDirBusy`` ("runs/x is in use by process
N"). The lock is the kernel's: it goes away with the process, however it dies, so a killed run never
leaves the directory locked. Holding it, the owner removes the temporary files that killed saves left
behind (``.checkpoint.safetensors.<hex>.tmp`` and the like): nobody else can be writing them.

``write_atomic(path, data)`` writes a temporary file in the same directory, fsyncs it and renames it over
``path``: a reader (or a crash) sees the old file or the new one, never a mixture.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from types import TracebackType

from minigrad.serialization import atomic_write

try:
    import fcntl
except ImportError:  # pragma: no cover  (Windows: no advisory locks; runs are not exclusive there)
    fcntl = None  # type: ignore[assignment]

LOCK = ".lock"
#: temporary files of an atomic write (``minigrad.serialization.atomic_write``, which ``mg.save``,
#: ``write_atomic`` and ``viz.render`` share)
TEMP = re.compile(r"^\..+\.[A-Za-z0-9_]{8,12}\.tmp$")


class RunDirBusy(RuntimeError):  # noqa: N818
    """Another process holds the run directory."""


class RunDir:
    """Exclusive ownership of a run directory (created if needed) while the ``with`` block runs."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.path = Path(out)
        self.fd: int | None = None
        self.removed: list[str] = []

    def __enter__(self) -> RunDir:
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                owner = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
                os.close(fd)
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise RunDirBusy(f"{self.path} is in use by process {owner}") from None
                raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:  # a full disk: say where
            os.close(fd)
            raise OSError(exc.errno, exc.strerror, str(self.path / LOCK)) from exc
        self.fd = fd
        self.removed = remove_stale_temps(self.path)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock
            self.fd = None


def remove_stale_temps(directory: Path) -> list[str]:
    """Delete the temporary files of interrupted atomic writes in ``directory``; their names."""
    removed = []
    for entry in os.scandir(directory):
        if TEMP.match(entry.name) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed.append(entry.name)
            except FileNotFoundError:
                pass
    return sorted(removed)


def write_atomic(path: str | os.PathLike[str], data: bytes | str) -> None:
    """Replace ``path`` by ``data`` atomically (``minigrad.serialization.atomic_write``: temporary file,
    fsync, rename, fsync of the directory)."""
    raw = data.encode() if isinstance(data, str) else data
    atomic_write(path, lambda f: f.write(raw))

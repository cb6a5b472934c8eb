"""``Workspace``: reusable memory for the (T, ...) buffers only a compiled recurrence's code sees.

glibc's malloc serves a request above ~128 KiB with a fresh ``mmap``, and every page of it faults on
its first write. A long LSTM (T = 1000, B = 4, H = 32) allocated its saved values afresh at every
call: 968 page faults per ``scan_forward``, 1.2 ms of its 3 ms (measured; the backward's buffers
likewise). PyTorch's and XLA's allocators keep freed blocks for reuse; a ``Workspace`` does the same
for the buffers that never leave the recurrence's node (the saved values, the adjoints of the deferred
products), carved out of one slab per call:

    slab = a free pooled slab of >= the bytes needed, else a new one (kept in the pool, at most ``keep``)
    buffers = views of the slab at 64-byte aligned offsets

A slab is free when nothing but the pool refers to it: every view keeps its slab alive (NumPy's
``base``), so its reference count says whether any buffer made from it is still in use, and reuse can
never overwrite memory that is (a graph kept for a second backward, an unrolled drawing).
"""

from __future__ import annotations

import math
import sys
import threading

import numpy as np

ALIGN = 64  # bytes: each buffer starts on a cache line
_LOCK = threading.Lock()  # one for every workspace: an instance's own would make layers uncopyable


class Workspace:
    """(T, *shape) buffers of fixed ``(shape, dtype)`` specs, from a pool of at most ``keep`` slabs
    handed out again once every view of them is gone. Thread-safe: two threads never get one slab."""

    def __init__(self, specs: list[tuple[tuple[int, ...], np.dtype]], keep: int = 4) -> None:
        self.specs = [(tuple(shape), np.dtype(dt)) for shape, dt in specs]
        self.keep = keep
        self.slabs: list[np.ndarray] = []
        self.firsts: list[int] = []  # per slab: the offset of its first 64-byte aligned byte
        self.layouts: dict[int | None, tuple[list, int]] = {}  # T -> ([(shape, dtype, offset)], bytes)

    def buffers(self, T: int | None) -> list[np.ndarray]:
        """One uninitialised C-ordered (T, *shape) array per spec (``shape`` itself for T None), all
        views of one slab."""
        layout = self.layouts.get(T)
        if layout is None:
            shapes = [shape if T is None else (T, *shape) for shape, _ in self.specs]
            starts, end = [], 0
            for shape, (_, dt) in zip(shapes, self.specs):
                starts.append(end)
                end += -(-math.prod(shape) * dt.itemsize // ALIGN) * ALIGN
            layout = self.layouts[T] = (list(zip(shapes, [dt for _, dt in self.specs], starts)), end + ALIGN)
        views, nbytes = layout
        with _LOCK:  # the slab is taken once a view of it exists: make them before letting go
            slab, first = self._slab(nbytes)
            return [np.ndarray(shape, dt, slab, first + a) for shape, dt, a in views]

    def _slab(self, nbytes: int) -> tuple[np.ndarray, int]:
        slabs = self.slabs
        # 2 references (the list's, getrefcount's argument): no view of the slab is alive
        free = [i for i in range(len(slabs)) if sys.getrefcount(slabs[i]) == 2]
        for i in free:
            if slabs[i].nbytes >= nbytes:
                return slabs[i], self.firsts[i]
        slab = np.empty(nbytes, np.uint8)
        first = -slab.ctypes.data % ALIGN
        if free:  # a free slab too small for this call: replaced by the bigger one
            slabs[free[0]], self.firsts[free[0]] = slab, first
        elif len(slabs) < self.keep:
            slabs.append(slab)
            self.firsts.append(first)
        return slab, first

"""``Workspace``: reusable memory for the (T, ...) buffers only a compiled recurrence's code sees.

glibc's malloc serves a request above ~128 KiB with a fresh ``mmap``, and every page of it faults on
its first write. A long LSTM (T = 1000, B = 4, H = 32) allocated its saved values afresh at every
call: 968 page faults per ``scan_forward``, 1.2 ms of its 3 ms (measured; the backward's buffers
likewise). PyTorch's and XLA's allocators keep freed blocks for reuse; a ``Workspace`` does the same
for the buffers that never leave the recurrence's node (the saved values, the adjoints of the deferred
products), carved out of one slab per call:

    slab = a free pooled slab of >= the bytes needed, else a new one (kept in the pool, at most ``keep``)
    buffers = views of the slab at 64-byte aligned offsets (kept with the slab, handed out again)

A slab is free when nothing but the pool and its kept views refers to it: every view keeps its slab
alive (NumPy's ``base``), so reference counts say whether any buffer made from it is still in use,
and reuse can never overwrite memory that is (a graph kept for a second backward, an unrolled drawing).
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
    handed out again once every view of them is gone. Thread-safe: two threads never get one slab.

    The views of a slab are kept with it and handed out again as they are when the call asks for
    the same T (making them costs ~0.5 us each, ~7 us for an LSTM's seven saved values). A slab is
    then free when nothing but the pool and its kept views refers to it, and nothing but the pool to
    each kept view (a view of a view refers to the slab itself, NumPy's ``base``)."""

    def __init__(self, specs: list[tuple[tuple[int, ...], np.dtype]], keep: int = 4) -> None:
        self.specs = [(tuple(shape), np.dtype(dt)) for shape, dt in specs]
        self.keep = keep
        self.slabs: list[np.ndarray] = []
        self.firsts: list[int] = []  # per slab: the offset of its first 64-byte aligned byte
        self.kept: list[tuple[int | None, list[np.ndarray]]] = []  # per slab: (T, its views for T)
        self.layouts: dict[int | None, tuple[list, int]] = {}  # T -> ([(shape, dtype, offset)], bytes)

    def __getstate__(self) -> dict:
        """A copy (``copy.deepcopy`` of a program, a pickled layer) starts with an empty pool: copied
        views would be arrays of their own, and their copied slab never free again."""
        return {**self.__dict__, "slabs": [], "firsts": [], "kept": []}

    def buffers(self, T: int | None) -> list[np.ndarray]:
        """One uninitialised C-ordered (T, *shape) array per spec (``shape`` itself for T None), all
        views of one slab."""
        if not self.specs:
            return []
        layout = self.layouts.get(T)
        if layout is None:
            shapes = [shape if T is None else (T, *shape) for shape, _ in self.specs]
            starts, end = [], 0
            for shape, (_, dt) in zip(shapes, self.specs):
                starts.append(end)
                end += -(-math.prod(shape) * dt.itemsize // ALIGN) * ALIGN
            layout = self.layouts[T] = (list(zip(shapes, [dt for _, dt in self.specs], starts)), end + ALIGN)
        views, nbytes = layout
        with _LOCK:  # the slab is taken once a view of it is referred to: make the list before letting go
            free = [i for i in range(len(self.slabs)) if self._free(i)]
            for i in free:
                if self.kept[i][0] == T:
                    return list(self.kept[i][1])
            i = self._slab(nbytes, free)
            if i is None:  # every pooled slab busy and the pool full: a slab of this call's own
                return _views(views, *_new_slab(nbytes))
            made = _views(views, self.slabs[i], self.firsts[i])
            self.kept[i] = (T, made)
            return list(made)

    def _free(self, i: int) -> bool:
        """Whether nothing outside the pool refers to slab ``i`` or to any view of it."""
        kept = self.kept[i][1]
        # getrefcount's own argument and the pool's list count one each; each kept view is one more
        if sys.getrefcount(self.slabs[i]) != 2 + len(kept):
            return False
        for k in range(len(kept)):
            if sys.getrefcount(kept[k]) != 2:
                return False
        return True

    def _slab(self, nbytes: int, free: list[int]) -> int | None:
        """The index of a free pooled slab of at least ``nbytes`` (its kept views dropped), else of a
        new one in the pool (replacing a free smaller one, or added while the pool has fewer than
        ``keep``); None when every pooled slab is busy and the pool is full."""
        for i in free:
            if self.slabs[i].nbytes >= nbytes:
                self.kept[i] = (None, [])
                return i
        if not free and len(self.slabs) >= self.keep:
            return None
        slab, first = _new_slab(nbytes)
        if free:  # a free slab too small for this call: replaced by the bigger one
            i = free[0]
            self.slabs[i], self.firsts[i], self.kept[i] = slab, first, (None, [])
            return i
        self.slabs.append(slab)
        self.firsts.append(first)
        self.kept.append((None, []))
        return len(self.slabs) - 1


def _new_slab(nbytes: int) -> tuple[np.ndarray, int]:
    """(a new slab of ``nbytes`` bytes, the offset of its first 64-byte aligned byte)."""
    slab = np.empty(nbytes, np.uint8)
    return slab, -slab.ctypes.data % ALIGN


def _views(layout: list, slab: np.ndarray, first: int) -> list[np.ndarray]:
    """The buffers of a layout ([(shape, dtype, offset)]) as views of ``slab``."""
    return [np.ndarray(shape, dt, slab, first + a) for shape, dt, a in layout]

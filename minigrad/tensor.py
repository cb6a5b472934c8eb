"""``Tensor``: an ndarray plus what reverse-mode autodiff needs (grad, requires_grad, the op that made it).

Methods and operators mirror NumPy/PyTorch names and broadcasting; the ops themselves live in
``minigrad/ops`` (one small class each) and the backward pass in ``minigrad/autograd.py``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _state, dtypes

if TYPE_CHECKING:
    from .function import Node

Axis = int | tuple[int, ...] | None


class Tensor:
    """A node value in the graph.

    ``data``: the ndarray; ``grad``: ndarray or None (filled by ``backward`` for leaves that require grad
    and for tensors that called ``retain_grad``); ``requires_grad``; ``node``: the op application that
    produced it (None for leaves); ``scope``: the ``mg.scope`` names active when it was made.
    """

    __slots__ = (
        "__weakref__",
        "_hooks",
        "_idx",
        "_node",
        "_scope",
        "data",
        "grad",
        "name",
        "requires_grad",
    )
    __array_priority__ = 1000  # ndarray <op> Tensor defers to Tensor's reflected operator

    def __init__(self, data: Any, requires_grad: bool = False, dtype: dtypes.DTypeLike = None,
                 name: str | None = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        arr = dtypes.as_array(data, dtype)
        self.data = arr
        self.grad: np.ndarray | None = None
        self.requires_grad = False
        self._node: Node | None = None
        self._idx = 0
        self._hooks: list | None = None
        self.name = name
        self._scope = _state.scope
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, data: np.ndarray, node: Node | None, idx: int) -> Tensor:
        """Fast constructor used by ops (no conversion, no checks)."""
        t = object.__new__(cls)
        t.data = data
        t.grad = None
        t.requires_grad = node is not None
        t._node = node
        t._idx = idx
        t._hooks = None
        t.name = None
        t._scope = _state.scope
        return t

    # ----------------------------------------------------------------- properties
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def T(self) -> Tensor:
        return self.transpose()

    @property
    def node(self) -> Node | None:
        """The op application that produced this tensor (None for a leaf)."""
        return self._node

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def scope(self) -> tuple[str, ...]:
        return self._node.scope if self._node is not None else self._scope

    def __len__(self) -> int:
        if not self.data.ndim:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        """Iterate along axis 0 with ONE multi-output op (``unbind``), not one ``getitem`` per row."""
        if not self.data.ndim:
            raise TypeError("iteration over a 0-d tensor")
        return iter(ops.unbind(self, 0))

    def item(self) -> Any:
        return self.data.item()

    def numpy(self) -> np.ndarray:
        return self.data

    def tolist(self) -> Any:
        return self.data.tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", threshold=20, prefix="tensor(")
        extra = [f"dtype={self.dtype}"]
        if self._node is not None:
            extra.append(f"op={self._node.name}")
        elif self.requires_grad:
            extra.append("requires_grad=True")
        if self.name:
            extra.append(f"name={self.name!r}")
        return f"tensor({body}, {', '.join(extra)})"

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.data)

    def __int__(self) -> int:
        return int(self.data)

    def __hash__(self) -> int:
        return id(self)

    # ----------------------------------------------------------------- autograd
    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and not dtypes.is_float(self.data.dtype):
            raise TypeError(f"requires_grad: only float32/float64 tensors can require grad, "
                            f"got dtype {self.data.dtype}")
        if not flag and self._node is not None:
            raise RuntimeError("requires_grad_(False) on a non-leaf tensor; use .detach()")
        self.requires_grad = flag
        return self

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) * grad into every leaf's ``.grad`` (reverse mode)."""
        _autograd.backward(self, grad, retain_graph)

    def detach(self) -> Tensor:
        """Same data, cut from the graph (shares memory, as in PyTorch)."""
        return Tensor._make(self.data, None, 0)

    def zero_grad(self) -> None:
        self.grad = None

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward."""
        if self._node is None:
            return
        ref = weakref.ref(self)

        def _retain(g: np.ndarray) -> None:
            t = ref()
            if t is not None:
                t.grad = g.copy() if t.grad is None else t.grad + g

        _retain.__minigrad_retain__ = True  # type: ignore[attr-defined]
        if not any(getattr(h, "__minigrad_retain__", False) for h in self._hook_list()):
            self._hook_list().append(_retain)

    def _hook_list(self) -> list:
        if self._node is None:
            if self._hooks is None:
                self._hooks = []
            return self._hooks
        node = self._node
        if node.hooks is None:
            node.hooks = {}
        return node.hooks.setdefault(self._idx, [])

    def register_hook(self, fn: Callable[[np.ndarray], np.ndarray | None]) -> RemovableHandle:
        """Call ``fn(grad)`` when this tensor's gradient is computed; a non-None return replaces it.

        Returns a handle whose ``remove()`` unregisters the hook.
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook: tensor does not require grad")
        hooks = self._hook_list()
        hooks.append(fn)
        return RemovableHandle(hooks, fn)

    # ----------------------------------------------------------------- operators
    def __add__(self, o: Any) -> Tensor: return ops.add(self, o)
    def __radd__(self, o: Any) -> Tensor: return ops.add(o, self)
    def __sub__(self, o: Any) -> Tensor: return ops.sub(self, o)
    def __rsub__(self, o: Any) -> Tensor: return ops.sub(o, self)
    def __mul__(self, o: Any) -> Tensor: return ops.mul(self, o)
    def __rmul__(self, o: Any) -> Tensor: return ops.mul(o, self)
    def __truediv__(self, o: Any) -> Tensor: return ops.div(self, o)
    def __rtruediv__(self, o: Any) -> Tensor: return ops.div(o, self)
    def __pow__(self, o: Any) -> Tensor: return ops.power(self, o)
    def __rpow__(self, o: Any) -> Tensor: return ops.power(o, self)
    def __matmul__(self, o: Any) -> Tensor: return ops.matmul(self, o)
    def __rmatmul__(self, o: Any) -> Tensor: return ops.matmul(o, self)
    def __neg__(self) -> Tensor: return ops.neg(self)
    def __pos__(self) -> Tensor: return self
    def __abs__(self) -> Tensor: return ops.abs(self)
    def __getitem__(self, idx: Any) -> Tensor: return ops.getitem(self, idx)
    def __lt__(self, o: Any) -> Tensor: return ops.less(self, o)
    def __le__(self, o: Any) -> Tensor: return ops.less_equal(self, o)
    def __gt__(self, o: Any) -> Tensor: return ops.greater(self, o)
    def __ge__(self, o: Any) -> Tensor: return ops.greater_equal(self, o)
    def __eq__(self, o: Any) -> Tensor: return ops.equal(self, o)  # type: ignore[override]
    def __ne__(self, o: Any) -> Tensor: return ops.not_equal(self, o)  # type: ignore[override]

    # ----------------------------------------------------------------- methods
    def exp(self) -> Tensor: return ops.exp(self)
    def log(self) -> Tensor: return ops.log(self)
    def sqrt(self) -> Tensor: return ops.sqrt(self)
    def abs(self) -> Tensor: return ops.abs(self)
    def tanh(self) -> Tensor: return ops.tanh(self)
    def sigmoid(self) -> Tensor: return ops.sigmoid(self)
    def relu(self) -> Tensor: return ops.relu(self)
    def softplus(self) -> Tensor: return ops.softplus(self)
    def pow(self, e: Any) -> Tensor: return ops.power(self, e)
    def maximum(self, o: Any) -> Tensor: return ops.maximum(self, o)
    def minimum(self, o: Any) -> Tensor: return ops.minimum(self, o)
    def clip(self, lo: float | None = None, hi: float | None = None) -> Tensor:
        return ops.clip(self, lo, hi)
    def matmul(self, o: Any) -> Tensor: return ops.matmul(self, o)

    def sum(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return ops.sum(self, axis, keepdims)
    def mean(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return ops.mean(self, axis, keepdims)
    def max(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return ops.max(self, axis, keepdims)
    def min(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return ops.min(self, axis, keepdims)
    def logsumexp(self, axis: Axis = None, keepdims: bool = False) -> Tensor:
        return ops.logsumexp(self, axis, keepdims)
    def softmax(self, axis: int = -1) -> Tensor: return ops.softmax(self, axis)
    def log_softmax(self, axis: int = -1) -> Tensor: return ops.log_softmax(self, axis)
    def argmax(self, axis: int | None = None) -> Tensor: return ops.argmax(self, axis)
    def argmin(self, axis: int | None = None) -> Tensor: return ops.argmin(self, axis)

    def reshape(self, *shape: Any) -> Tensor:
        return ops.reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int)
                           else shape)
    def view(self, *shape: Any) -> Tensor: return self.reshape(*shape)
    def flatten(self) -> Tensor: return ops.reshape(self, (-1,))
    def transpose(self, *axes: Any) -> Tensor:
        if len(axes) == 1 and not isinstance(axes[0], int):
            axes = tuple(axes[0])  # one sequence: a permutation (NumPy)
        elif len(axes) == 2 and self.ndim >= 2:  # two ints: swap them (PyTorch; x.transpose(0, 1) on 2-D too)
            perm = list(range(self.ndim))
            perm[axes[0]], perm[axes[1]] = perm[axes[1]], perm[axes[0]]
            axes = tuple(perm)
        return ops.transpose(self, axes or None)
    def permute(self, *axes: Any) -> Tensor:
        return ops.transpose(self, tuple(axes[0]) if len(axes) == 1 and not isinstance(axes[0], int)
                             else axes)
    def expand(self, *shape: Any) -> Tensor:
        return ops.broadcast_to(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int)
                                else shape)
    def broadcast_to(self, shape: Sequence[int]) -> Tensor: return ops.broadcast_to(self, shape)
    def squeeze(self, axis: Axis = None) -> Tensor: return ops.squeeze(self, axis)
    def unsqueeze(self, axis: int) -> Tensor: return ops.expand_dims(self, axis)
    def split(self, indices_or_sections: Any, axis: int = 0) -> tuple[Tensor, ...]:
        return ops.split(self, indices_or_sections, axis)
    def chunk(self, chunks: int, axis: int = 0) -> tuple[Tensor, ...]:
        return ops.chunk(self, chunks, axis)
    def unbind(self, axis: int = 0) -> tuple[Tensor, ...]: return ops.unbind(self, axis)
    def astype(self, dtype: dtypes.DTypeLike) -> Tensor: return ops.astype(self, dtype)
    def float(self) -> Tensor: return ops.astype(self, dtypes.float32)
    def double(self) -> Tensor: return ops.astype(self, dtypes.float64)


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` unregisters the hook."""

    __slots__ = ("_fn", "_hooks")

    def __init__(self, hooks: list, fn: Callable) -> None:
        self._hooks = hooks
        self._fn = fn

    def remove(self) -> None:
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


from . import autograd as _autograd  # noqa: E402
from . import ops  # noqa: E402  (ops import Tensor from this module)

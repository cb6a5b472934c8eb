"""The cell protocol: one time step of a recurrent network, ``state_t = cell(x_t, state_{t-1})``.

A cell is a ``Module`` written from minigrad ops; ``rnn.Recurrent`` runs any cell over a sequence
(layers, directions, lengths, dropout, scopes, truncated BPTT, diagnostics, drawings), and the
engine's ``backward`` differentiates the unrolled graph: nobody writes a backward through time.

    class MGU(rnn.Cell):                         # minimal gated unit (Zhou et al. 2016)
        def __init__(self, input_size, hidden_size, *, rng=None, dtype="float32"):
            super().__init__(input_size, hidden_size)
            self.w_f = rnn.uniform_init((hidden_size, input_size), hidden_size, rng, dtype)
            ...
        def forward(self, x, state):             # x (B, input_size), state a tuple -> new state tuple
            (h,) = state
            f = (x @ self.w_f.T + h @ self.u_f.T + self.b_f).sigmoid()
            n = (x @ self.w_n.T + (f * h) @ self.u_n.T + self.b_n).tanh()
            return ((1 - f) * h + f * n,)

What a cell defines:

- ``forward(x, state) -> state'``: one step; the state is a tuple of (B, H_k) tensors.
- ``init_state(batch, dtype)``: the zero state (default: one (B, hidden_size) tensor; LSTM: (h, c)).
- ``output(state)``: what the step emits (default ``state[0]``), of size ``output_size``.
- optionally ``project(xs)`` and ``step(p, state)``: the part of a step that depends on the input
  alone, hoisted out of the time loop and computed for all T*B rows at once (one matrix product
  instead of T), and the rest of the step. ``Recurrent`` uses them when ``project`` is defined.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import minigrad as mg
from minigrad import Tensor
from minigrad.dtypes import resolve as resolve_dtype
from minigrad.nn import Module, Parameter

__all__ = ["Cell", "as_tensor_of", "check_size", "uniform_init"]


def check_size(owner: str, what: str, v: Any) -> int:
    """``v`` as a positive int, or a ``ValueError`` naming the owner and the argument."""
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"{owner}: {what} must be a positive int, got {v!r}")
    return int(v)


def as_tensor_of(owner: str, v: Any, dtype: np.dtype, what: str) -> Tensor:
    """``v`` as a Tensor of the parameters' ``dtype`` (arrays are cast, a Tensor of another dtype is a
    ``TypeError`` naming the owner, the argument, its shape and both dtypes)."""
    if not isinstance(v, Tensor):
        v = Tensor(np.asarray(v, dtype=dtype))
    if v.dtype != dtype:
        raise TypeError(f"{owner}: {what} has dtype {v.dtype} (shape {v.shape}) but the parameters are "
                        f"{dtype}; cast with .astype({str(dtype)!r})")
    return v


def uniform_init(shape: tuple[int, ...], hidden_size: int, rng: np.random.Generator | None = None,
                 dtype: Any = np.float32) -> Parameter:
    """A parameter drawn from PyTorch's recurrent default U(-1/sqrt(H), 1/sqrt(H))."""
    rng = mg.default_rng() if rng is None else rng
    k = 1.0 / math.sqrt(hidden_size)
    return Parameter(rng.uniform(-k, k, size=shape).astype(resolve_dtype(dtype)))


class Cell(Module):
    """Base class of recurrent cells (see the module docstring for the protocol)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        name = type(self).__name__
        self.input_size = check_size(name, "input_size", input_size)
        self.hidden_size = check_size(name, "hidden_size", hidden_size)

    @property
    def output_size(self) -> int:
        """Features of ``output(state)`` (the next layer's input size per direction)."""
        return self.hidden_size

    @property
    def dtype(self) -> np.dtype:
        """The parameters' dtype (float32 for a cell without parameters)."""
        for p in self.parameters():
            return p.dtype
        return np.dtype(np.float32)

    def init_state(self, batch: int, dtype: Any) -> tuple[Tensor, ...]:
        """The zero state: one (batch, hidden_size) tensor."""
        return (mg.zeros((batch, self.hidden_size), dtype=dtype),)

    def forward(self, x: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """One time step: x (B, input_size) and the state tuple -> the new state tuple (for a cell
        that hoists its input projection: ``step(project(x), state)``)."""
        if self.hoists_input():
            return self.step(self.project(x), state)
        raise NotImplementedError(f"{type(self).__name__}.forward(x, state) is not defined")

    def reset_parameters(self, rng: np.random.Generator | None = None, dtype: Any = None) -> None:
        """Re-draw every parameter (in place: identity and name kept) from a fresh cell built with the
        factory signature ``type(self)(input_size, hidden_size, rng=rng, dtype=dtype)``; a cell with
        another constructor overrides this."""
        try:
            twin = type(self)(self.input_size, self.hidden_size, rng=rng,
                              dtype=self.dtype if dtype is None else dtype)
        except TypeError as exc:
            raise TypeError(f"{type(self).__name__}.reset_parameters: the default rebuilds the cell as "
                            f"{type(self).__name__}(input_size, hidden_size, rng=, dtype=), which failed "
                            f"({exc}); define reset_parameters on the cell") from None
        new = dict(twin.named_parameters())
        for name, p in self.named_parameters():
            p.data, p.grad = new[name].data, None

    def output(self, state: tuple[Tensor, ...]) -> Tensor:
        """The step's output: ``state[0]``."""
        return state[0]

    def hoists_input(self) -> bool:
        """Whether the cell splits its step into ``project`` (all steps at once) and ``step``."""
        return type(self).project is not Cell.project

    def project(self, xs: Tensor) -> Tensor:
        """The input-only part of the step for many rows at once: xs (N, input_size) -> (N, P)."""
        raise NotImplementedError(f"{type(self).__name__} does not hoist its input projection")

    def step(self, p: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        """One time step from a row block of ``project(xs)``."""
        raise NotImplementedError(f"{type(self).__name__} does not hoist its input projection")

"""The Elman cell: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or relu), PyTorch's ``RNNCell``."""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad import Tensor

from .base import TorchCell, is_zero_state

__all__ = ["NONLINEARITIES", "RNNCell", "rnn_step"]

NONLINEARITIES = ("tanh", "relu")


def rnn_step(gx: Tensor, h: Tensor | None, w_hh: Tensor, b_hh: Tensor | None,
             nonlinearity: str = "tanh") -> Tensor:
    """h' = act(gx + h W_hh^T + b_hh), where ``gx = x W_ih^T + b_ih`` was computed by the caller.

    ``b_hh`` may be None (no bias, or already folded into ``gx``); ``h`` None means the zero state (the
    recurrent product is skipped).
    """
    pre = gx if h is None else gx + h @ w_hh.T
    if b_hh is not None:
        pre = pre + b_hh
    return pre.tanh() if nonlinearity == "tanh" else pre.relu()


class RNNCell(TorchCell):
    """Elman cell ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (``nonlinearity="relu"``: relu).

    ``cell(x, hx=None) -> h'`` with x (B, I) or unbatched (I,), h (B, H) / (H,), zeros when omitted.
    """

    n_gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 *, rng: np.random.Generator | None = None, dtype: Any = np.float32) -> None:
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(input_size, hidden_size, bias, rng=rng, dtype=dtype)
        self.nonlinearity = nonlinearity

    def extra_repr(self) -> str:
        return super().extra_repr() + ("" if self.nonlinearity == "tanh" else ", nonlinearity='relu'")

    def step(self, gx: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor]:
        (h,) = state
        return (rnn_step(gx, None if is_zero_state(h) else h, self.weight_hh, None, self.nonlinearity),)

    def forward(self, x: Any, hx: Any = None) -> Tensor:
        return self._call(x, (hx,), ("hx",))[0]

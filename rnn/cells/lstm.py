"""Long short-term memory, PyTorch's ``LSTMCell`` (gates i, f, g, o):

    i, f, g, o = split(W_ih x + b_ih + W_hh h + b_hh)
    i, f, o = sigmoid(i), sigmoid(f), sigmoid(o);  g = tanh(g)
    c' = f * c + i * g,   h' = o * tanh(c')
"""

from __future__ import annotations

from typing import Any

from minigrad import Tensor

from .base import TorchCell, is_zero_state

__all__ = ["LSTMCell", "lstm_step"]


def lstm_step(gx: Tensor, h: Tensor | None, c: Tensor, w_hh: Tensor,
              b_hh: Tensor | None) -> tuple[Tensor, Tensor]:
    """One LSTM step from ``gx = x W_ih^T + b_ih`` (B, 4H) and the previous state (h, c).

    ``h`` None means the zero state (the recurrent product is skipped); ``b_hh`` None means no bias or
    a bias already folded into ``gx``.
    """
    gates = gx if h is None else gx + h @ w_hh.T
    if b_hh is not None:
        gates = gates + b_hh
    i, f, g, o = gates.chunk(4, axis=-1)
    i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
    c = f * c + i * g
    h = o * c.tanh()
    return h, c


class LSTMCell(TorchCell):
    """Long short-term memory (see the module docstring): ``cell(x, (h, c)=None) -> (h', c')``; the
    state is the tuple (h, c) and the output h."""

    n_gates = 4
    state_count = 2

    def set_forget_bias(self, value: float) -> None:
        """Start the forget gate open: its slice of ``bias_hh`` (f, rows H:2H) set to ``value``."""
        if self.bias_hh is None:
            raise ValueError("LSTMCell.set_forget_bias: the cell was built with bias=False")
        h = self.hidden_size
        self.bias_hh.data[h:2 * h] = value

    def step(self, gx: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, Tensor]:
        h, c = state
        return lstm_step(gx, None if is_zero_state(h) else h, c, self.weight_hh, None)

    def forward(self, x: Any, hx: tuple[Any, Any] | None = None) -> tuple[Tensor, Tensor]:
        if hx is None:
            hx = (None, None)
        elif not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError(f"LSTMCell: hx must be a tuple (h, c), got {type(hx).__name__}")
        h, c = self._call(x, tuple(hx), ("h", "c"))
        return h, c

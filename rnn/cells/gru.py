"""The gated recurrent unit, PyTorch's ``GRUCell`` (gates r, z, n):

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),   z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)),   h' = (1 - z) * n + z * h
"""

from __future__ import annotations

from typing import Any

from minigrad import Tensor

from .base import TorchCell

__all__ = ["GRUCell", "gru_step"]


def gru_step(gx: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    """One GRU step from ``gx = x W_ih^T + b_ih`` (B, 3H) and the previous state ``h`` (B, H).

    ``gh = h W_hh^T + b_hh`` keeps b_hn apart from b_in because n = tanh(gx_n + r * (W_hn h + b_hn)).
    """
    gh = h @ w_hh.T
    if b_hh is not None:
        gh = gh + b_hh
    x_r, x_z, x_n = gx.chunk(3, axis=-1)
    h_r, h_z, h_n = gh.chunk(3, axis=-1)
    r = (x_r + h_r).sigmoid()
    z = (x_z + h_z).sigmoid()
    n = (x_n + r * h_n).tanh()
    return (1 - z) * n + z * h


class GRUCell(TorchCell):
    """Gated recurrent unit (see the module docstring): ``cell(x, hx=None) -> h'``."""

    n_gates = 3
    fold_hh_bias = False

    def step(self, gx: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor]:
        return (gru_step(gx, state[0], self.weight_hh, self.bias_hh),)

    def forward(self, x: Any, hx: Any = None) -> Tensor:
        return self._call(x, (hx,), ("hx",))[0]

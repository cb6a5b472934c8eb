"""PyTorch CPU train steps (optional: used only when ``torch`` is importable).

``layer``: ``nn.RNN``/``nn.GRU``/``nn.LSTM`` (one call over the sequence); ``cell``: a Python loop of
``nn.RNNCell``/``nn.GRUCell``/``nn.LSTMCell`` over the T steps, the outputs stacked. Both get the same
weights, inputs and targets as the other implementations, and the same loss (MSE on all outputs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .optional import load


def available() -> bool:
    return load("torch") is not None


def version() -> str | None:
    torch = load("torch")
    return None if torch is None else f"{torch.__version__} ({torch.get_num_threads()} threads)"


_NAMES = (("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("b_ih", "bias_ih"), ("b_hh", "bias_hh"))


def _load(mod: Any, params: dict[str, np.ndarray], suffix: str) -> None:
    import torch

    with torch.no_grad():
        for k, name in _NAMES:
            getattr(mod, name + suffix).copy_(torch.from_numpy(params[k]))


def step_fn(kind: str, x: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray], impl: str = "layer"
            ) -> Callable[[], tuple[float, dict[str, np.ndarray]]]:
    """A zero-argument train step returning (loss, grads) with the bench's parameter keys."""
    import torch
    from torch import nn

    dt = torch.float64 if x.dtype == np.float64 else torch.float32
    In, H = x.shape[2], params["w_hh"].shape[1]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    if impl == "layer":
        mod = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}[kind](In, H).to(dt)
        _load(mod, params, "_l0")

        def run() -> torch.Tensor:
            return mod(xt)[0]
        suffix = "_l0"
    else:
        mod = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}[kind](In, H).to(dt)
        _load(mod, params, "")
        B = x.shape[1]

        def run() -> torch.Tensor:
            h = torch.zeros(B, H, dtype=dt)
            c = torch.zeros(B, H, dtype=dt)
            outs = []
            for t in range(xt.shape[0]):
                if kind == "lstm":
                    h, c = mod(xt[t], (h, c))
                else:
                    h = mod(xt[t], h)
                outs.append(h)
            return torch.stack(outs)
        suffix = ""
    names = {k: n + suffix for k, n in _NAMES}

    def step() -> tuple[float, dict[str, np.ndarray]]:
        mod.zero_grad(set_to_none=True)
        loss = torch.nn.functional.mse_loss(run(), yt)
        loss.backward()
        return float(loss.detach()), {k: getattr(mod, n).grad.numpy() for k, n in names.items()}

    return step

"""``adding``: the adding problem of Hochreiter & Schmidhuber (1997), the classic long-memory test.

Each input is a length-T sequence of pairs ``(value_t, marker_t)``: values are U(0, 1), exactly two
markers are 1 (one in the first half, one in the second half) and the rest are 0. The target is the sum
of the two marked values. Predicting the constant E[sum] = 1 scores MSE = Var(u1 + u2) = 2/12 ~ 0.167, so a
model has learnt something only below that; reaching < 0.01 needs information carried over ~T/2 steps,
which a tanh RNN's vanishing gradient prevents for large T while LSTM and GRU manage.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F

from ..models import SequenceRegressor
from ..tbptt import tbptt_windows
from .base import Task, batch_rng


def generate(n: int, T: int, rng: np.random.Generator,
             dtype: Any = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """``n`` adding-problem sequences of length ``T`` >= 2: ``x`` (n, T, 2) = (value, marker), ``y`` (n, 1).

    The first marker is uniform over ``[0, T//2)``, the second over ``[T//2, T)``.
    """
    if n < 1 or T < 2:
        raise ValueError(f"adding.generate: need n >= 1 and T >= 2, got n={n}, T={T}")
    values = rng.random((n, T))
    half = T // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, T, n)
    markers = np.zeros((n, T))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(dtype)
    y = (values[rows, first] + values[rows, second])[:, None].astype(dtype)
    return x, y


class AddingTask(Task):
    name = "adding"
    summary = "sum of the two marked numbers in a length-T sequence (Hochreiter & Schmidhuber 1997)"
    metric = "test MSE"
    higher_is_better = False
    supports_bptt = True
    min_seq_len = 2
    defaults: ClassVar[dict[str, Any]] = dict(hidden=64, layers=1, lr=1e-2, steps=1500, batch=50, seq_len=100,
                                              clip=1.0, bptt=0, eval_size=1000)

    def batch(self, step: int, size: int, split: str = "train") -> dict[str, np.ndarray]:
        x, y = generate(size, self.seq_len, batch_rng(self.seed, step, split), self.dtype)
        return {"x": x, "y": y}

    def build_model(self, cell: Any, hidden: int, layers: int = 1) -> nn.Module:
        """``rnn.SequenceRegressor``: y = W h_T + b from the top layer's last state."""
        return SequenceRegressor(2, hidden, 1, **self.model_kw(cell, layers))

    def loss(self, model: nn.Module, batch: dict[str, np.ndarray]) -> mg.Tensor:
        return F.mse_loss(model(batch["x"]), batch["y"])

    def backward(self, model: nn.Module, batch: dict[str, np.ndarray], bptt: int = 0) -> float:
        """With ``0 < bptt < T`` the recurrent layer runs in windows of ``bptt`` steps
        (``rnn.tbptt_windows``); the loss sits at the last step, so only the last window is
        backpropagated: no gradient reaches the first marked value when it lies in an earlier window."""
        T = batch["x"].shape[1]
        windows = tbptt_windows(model.encoder.rnn, batch["x"], k1=bptt if 0 < bptt < T else T, time_axis=1)
        *_, last = windows  # the earlier windows only carry the state forward
        loss = F.mse_loss(model.head(last.outputs[:, -1]), batch["y"])
        loss.backward()
        return float(loss.item())

    def predict(self, model: nn.Module, x: np.ndarray, chunk: int = 500) -> np.ndarray:
        with mg.no_grad():
            return np.concatenate([model(x[i:i + chunk]).data for i in range(0, len(x), chunk)])

    def evaluate(self, model: nn.Module, n: int | None = None) -> dict[str, float]:
        """Test MSE on ``n`` held-out sequences, against predicting the constant 1 (= E[u1 + u2])."""
        n = n or self.defaults["eval_size"]
        b = self.batch(0, n, "test")
        pred = self.predict(model, b["x"])
        return {"metric": float(np.mean((pred - b["y"]) ** 2)),
                "baseline": float(np.mean((1.0 - b["y"]) ** 2))}

    def showcase(self, model: nn.Module, rng: np.random.Generator) -> str:
        x, y = generate(5, self.seq_len, rng, self.dtype)
        pred = self.predict(model, x)
        lines = [f"adding T={self.seq_len}: marked values -> target vs prediction"]
        for i in range(len(x)):
            vals = x[i, x[i, :, 1] == 1, 0]
            lines.append(f"  {vals[0]:.3f} + {vals[1]:.3f} = {y[i, 0]:.3f}   predicted {pred[i, 0]:.3f}")
        return "\n".join(lines)

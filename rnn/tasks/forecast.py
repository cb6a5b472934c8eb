"""``forecast``: one-step and multi-step forecasting of the chaotic Mackey-Glass series.

The series solves the delay differential equation (Mackey & Glass 1977)

    dx/dt = beta * x(t - tau) / (1 + x(t - tau)^n) - gamma * x(t),   beta=0.2, gamma=0.1, n=10, tau=17

integrated with Euler steps of 0.1 from a constant history 1.2, sampled once per time unit, and
standardised with the training part's mean and standard deviation. The first 80 % of the samples train,
the last 20 % test. The model is a next-step predictor ``y_t ~ x_{t+1}`` over windows; the baseline is
the last-value forecast ``x_{t+h} ~ x_t``. Multi-step forecasts feed each prediction back as the next input
(closed loop), so errors compound; the baseline repeats the last observed value.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F

from ..models import NextStepPredictor
from .base import PerStepTask, batch_rng

TRAIN_FRACTION = 0.8


@lru_cache(maxsize=4)
def mackey_glass(n: int = 6000, tau: float = 17.0, beta: float = 0.2, gamma: float = 0.1, power: float = 10.0,
                 dt: float = 0.1, x0: float = 1.2, washout: int = 500) -> np.ndarray:
    """``n`` samples (one per time unit, after ``washout`` discarded ones) of the Mackey-Glass series."""
    if n < 1 or dt <= 0 or tau <= 0:
        raise ValueError(f"mackey_glass: need n >= 1, dt > 0, tau > 0; got n={n}, dt={dt}, tau={tau}")
    per = round(1 / dt)
    lag = round(tau / dt)
    total = (n + washout) * per
    x = np.empty(total + lag + 1)
    x[: lag + 1] = x0
    for i in range(lag, lag + total):
        xd = x[i - lag]
        x[i + 1] = x[i] + dt * (beta * xd / (1.0 + xd ** power) - gamma * x[i])
    return x[lag + 1::per][washout: washout + n].copy()


class ForecastTask(PerStepTask):
    name = "forecast"
    summary = "next-value and multi-step forecasts of the Mackey-Glass series vs last-value baseline"
    metric = "test one-step MSE"
    higher_is_better = False
    min_seq_len = 2
    defaults: ClassVar[dict[str, Any]] = dict(hidden=32, layers=1, lr=1e-2, steps=400, batch=32, seq_len=50,
                                              clip=1.0, bptt=0, horizon=20)

    def __init__(self, seq_len: int | None = None, seed: int = 0, dtype: Any = "float32") -> None:
        super().__init__(seq_len, seed, dtype)
        raw = mackey_glass()
        cut = int(len(raw) * TRAIN_FRACTION)
        mu, sd = raw[:cut].mean(), raw[:cut].std()
        self.series = ((raw - mu) / sd).astype(self.dtype)
        self.train_part, self.test_part = self.series[:cut], self.series[cut:]

    def batch(self, step: int, size: int, split: str = "train") -> dict[str, np.ndarray]:
        part = self.train_part if split == "train" else self.test_part
        rng = batch_rng(self.seed, step, split)
        L = self.seq_len
        starts = rng.integers(0, len(part) - L - 1, size)
        w = part[starts[:, None] + np.arange(L + 1)]
        return {"x": w[:, :-1, None], "targets": w[:, 1:, None]}

    def build_model(self, cell: Any, hidden: int, layers: int = 1) -> nn.Module:
        """``rnn.NextStepPredictor``: y_t = W h_t + b estimates x_{t+1}."""
        return NextStepPredictor(1, hidden, **self.model_kw(cell, layers))

    def step_loss(self, y: mg.Tensor, targets: Any) -> mg.Tensor:
        return F.mse_loss(y, targets)

    def one_step(self, model: nn.Module, warmup: int = 20) -> tuple[float, float]:
        """(model, last-value) MSE of next-value forecasts over the test part, read as one sequence."""
        x = self.test_part
        with mg.no_grad():
            y = model(x[None, :-1, None])[0].data[0, :, 0]
        target = x[1:]
        return (float(np.mean((y[warmup:] - target[warmup:]) ** 2)),
                float(np.mean((x[:-1][warmup:] - target[warmup:]) ** 2)))

    def multi_step(self, model: nn.Module, horizon: int | None = None, n: int = 100,
                   context: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-horizon MSE (model, last-value) of closed-loop forecasts from ``n`` test positions: prime on
        ``context`` true values, then feed each prediction back for ``horizon`` steps."""
        horizon = horizon or self.defaults["horizon"]
        context = context or self.seq_len
        x = self.test_part
        starts = np.linspace(0, len(x) - context - horizon - 1, n).astype(int)
        ctx = x[starts[:, None] + np.arange(context)][:, :, None]
        truth = x[starts[:, None] + context + np.arange(horizon)]
        preds = model.rollout(ctx, horizon)[:, :, 0]
        last = ctx[:, -1, 0][:, None]
        return ((preds - truth) ** 2).mean(0), ((last - truth) ** 2).mean(0)

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """One-step test MSE vs last value, and the mean closed-loop MSE over the horizon vs last value."""
        m1, b1 = self.one_step(model)
        mh, bh = self.multi_step(model)
        return {"metric": m1, "baseline": b1, "multi_step_mse": float(mh.mean()),
                "multi_step_baseline": float(bh.mean()), "horizon": float(len(mh))}

    def showcase(self, model: nn.Module, rng: np.random.Generator) -> str:
        mh, bh = self.multi_step(model, n=50)
        lines = ["closed-loop forecast MSE by horizon (model vs last value):"]
        for h in sorted({0, 4, 9, len(mh) - 1}):
            if h < len(mh):
                lines.append(f"  h={h + 1:3d}: {mh[h]:.4f} vs {bh[h]:.4f}")
        return "\n".join(lines)

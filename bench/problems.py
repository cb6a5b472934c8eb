"""Workloads and the data every implementation of a train step shares (same weights, inputs, targets)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GATES = {"rnn": 1, "gru": 3, "lstm": 4}


@dataclass(frozen=True)
class Workload:
    name: str
    I: int  # noqa: E741  (input size, as in the issue's (I, H, B, T))
    H: int
    B: int
    T: int

    def label(self) -> str:
        return f"{self.name} ({self.I}, {self.H}, {self.B}, {self.T})"


WORKLOADS = {w.name: w for w in [
    Workload("tiny", 8, 16, 1, 32),
    Workload("small", 32, 64, 16, 64),
    Workload("medium", 64, 256, 32, 64),
    Workload("long", 16, 32, 4, 1000),
    Workload("large", 256, 512, 64, 32),
]}


def make_problem(kind: str, In: int, H: int, B: int, T: int, dtype: np.dtype | str = np.float32,
                 seed: int = 0) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """x (T, B, I), targets y (T, B, H) and PyTorch-shaped parameters initialised as PyTorch does
    (uniform in +-1/sqrt(H)), all of ``dtype``."""
    rng = np.random.default_rng(seed)
    G = GATES[kind]
    k = 1 / np.sqrt(H)
    dt = np.dtype(dtype)
    params = {
        "w_ih": rng.uniform(-k, k, (G * H, In)).astype(dt),
        "w_hh": rng.uniform(-k, k, (G * H, H)).astype(dt),
        "b_ih": rng.uniform(-k, k, (G * H,)).astype(dt),
        "b_hh": rng.uniform(-k, k, (G * H,)).astype(dt),
    }
    x = rng.standard_normal((T, B, In)).astype(dt)
    y = (0.5 * rng.standard_normal((T, B, H))).astype(dt)
    return x, y, params

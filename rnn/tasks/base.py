"""What every bundled task shares: the ``Task`` interface, seeded batches, and per-step training with
``rnn.tbptt``.

A task is a data generator (a deterministic function of ``(seed, split, step)``, so that a resumed run sees
exactly the batches an uninterrupted one would), a model from ``rnn.models`` built with any registered
cell (``rnn.CELLS``), a loss from ``minigrad.nn.functional``, a metric and a baseline that the metric must
beat. The command line (``python -m rnn``) only talks to this interface.

Batches are dicts of NumPy arrays, batch-first: ``x`` is ``(B, T, I)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F

from ..cells import CellFactory, cell_factory
from ..tbptt import tbptt

SPLITS = {"train": 0, "valid": 1, "test": 2}


def batch_rng(seed: int, step: int, split: str = "train") -> np.random.Generator:
    """The generator that makes batch number ``step`` of ``split``: a pure function of its arguments.

    ``np.random.default_rng([seed, split_code, step])`` hashes the three integers through NumPy's
    ``SeedSequence``, so neighbouring steps get independent streams and no state is carried between
    batches (resuming at step k needs nothing but k).
    """
    if split not in SPLITS:
        raise ValueError(f"batch_rng: split must be one of {sorted(SPLITS)}, got {split!r}")
    if seed < 0 or step < 0:
        raise ValueError(f"batch_rng: seed and step must be >= 0, got seed={seed}, step={step}")
    return np.random.default_rng([int(seed), SPLITS[split], int(step)])


def forget_bias(cell: str | CellFactory) -> float | None:
    """1.0 for a cell with a forget gate (a ``set_forget_bias`` method, e.g. the LSTM), else None: the
    usual start that lets the cell remember from the first step (Jozefowicz et al. 2015)."""
    return 1.0 if hasattr(cell_factory(cell), "set_forget_bias") else None


class Task:
    """Base class of the bundled tasks. Subclasses set the class attributes and implement ``batch``,
    ``build_model``, ``loss``, ``evaluate`` and ``showcase``.

    ``defaults`` holds the tuned training settings (``hidden``, ``layers``, ``lr``, ``steps``, ``batch``,
    ``seq_len``, ``clip``, ``bptt``) the command line uses when an option is not given.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    metric: ClassVar[str] = ""          # e.g. "test MSE"
    higher_is_better: ClassVar[bool] = False
    supports_bptt: ClassVar[bool] = False
    min_seq_len: ClassVar[int] = 1
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, seq_len: int | None = None, seed: int = 0, dtype: Any = "float32") -> None:
        seq_len = self.defaults.get("seq_len", 1) if seq_len is None else int(seq_len)
        if seq_len < self.min_seq_len:
            raise ValueError(f"task {self.name}: seq_len must be >= {self.min_seq_len}, got {seq_len}")
        if seed < 0:
            raise ValueError(f"task {self.name}: seed must be >= 0, got {seed}")
        self.seq_len, self.seed, self.dtype = seq_len, int(seed), np.dtype(dtype)

    # -- data ------------------------------------------------------------------------------------------
    def batch(self, step: int, size: int, split: str = "train") -> dict[str, np.ndarray]:
        raise NotImplementedError

    # -- model -----------------------------------------------------------------------------------------
    def init_rng(self) -> np.random.Generator:
        """The generator of the initial weights: a function of the seed alone."""
        return np.random.default_rng([self.seed, 7919])

    def model_kw(self, cell: str | CellFactory, layers: int = 1) -> dict[str, Any]:
        """The keyword arguments every ``rnn.models`` model of this task gets: the cell, the layers, the
        seeded initial weights, the dtype and (for cells with a forget gate) a forget bias of 1."""
        return dict(cell=cell, num_layers=layers, rng=self.init_rng(), dtype=self.dtype,
                    forget_bias=forget_bias(cell))

    def build_model(self, cell: str | CellFactory, hidden: int, layers: int = 1) -> nn.Module:
        """A fresh model; ``cell`` is a registered name (``rnn.CELLS``) or a cell factory."""
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: dict[str, np.ndarray]) -> mg.Tensor:
        raise NotImplementedError

    def backward(self, model: nn.Module, batch: dict[str, np.ndarray], bptt: int = 0) -> float:
        """Loss and gradients of one batch; returns the loss. ``bptt`` = k > 0 truncates backpropagation
        to windows of k steps (tasks with ``supports_bptt``)."""
        loss = self.loss(model, batch)
        loss.backward()
        return float(loss.item())

    # -- judging ---------------------------------------------------------------------------------------
    def evaluate(self, model: nn.Module) -> dict[str, float]:
        """``{"metric": ..., "baseline": ..., ...}`` on the held-out split."""
        raise NotImplementedError

    def showcase(self, model: nn.Module, rng: np.random.Generator) -> str:
        """A few predictions or a sample, as text for a person to read."""
        raise NotImplementedError

    def beats_baseline(self, result: dict[str, float]) -> bool:
        m, b = result["metric"], result["baseline"]
        return m > b if self.higher_is_better else m < b


class PerStepTask(Task):
    """A task whose model (``model(x, state, t0) -> (y, state)``, e.g. ``rnn.NextStepPredictor``) emits
    an output at every step, scored against the per-step targets ``batch["targets"]`` by ``step_loss``
    (default: cross-entropy).
    ``--bptt k`` runs each batch in windows of k steps with ``rnn.tbptt``: the state is carried and
    detached between windows, and the windows' gradients add up before the one optimiser step."""

    supports_bptt = True

    def step_loss(self, y: mg.Tensor, targets: Any) -> mg.Tensor:
        """The mean loss over the steps of ``y`` (B, T, O) against ``targets`` (B, T[, O]); here the
        cross-entropy of logits against class targets (B, T)."""
        return F.cross_entropy(y.reshape(-1, y.shape[-1]), targets.reshape(-1))

    def loss(self, model: nn.Module, batch: dict[str, np.ndarray]) -> mg.Tensor:
        y, _ = model(batch["x"])
        return self.step_loss(y, batch["targets"])

    def backward(self, model: nn.Module, batch: dict[str, np.ndarray], bptt: int = 0) -> float:
        T = batch["targets"].shape[1]

        def window_loss(y: mg.Tensor, targets: Any) -> mg.Tensor:
            # weighted by the window's share of the T steps: the shares add up to the batch loss
            return self.step_loss(y, targets) * (y.shape[1] / T)

        res = tbptt(model, batch["x"], batch["targets"], window_loss, k1=bptt or T, time_axis=1)
        return float(sum(res.losses))

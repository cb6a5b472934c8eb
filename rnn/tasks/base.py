"""What every bundled task shares: the ``Task`` interface, seeded batches, and the recurrent model bodies.

A task is a data generator (a deterministic function of ``(seed, split, step)``, so that a resumed run sees
exactly the batches an uninterrupted one would), a model factory, a loss, a metric and a baseline that the
metric must beat. The command line (``python -m rnn``) only talks to this interface.

Batches are dicts of NumPy arrays, batch-first: ``x`` is ``(B, T, I)``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

import minigrad as mg
from minigrad import nn

SPLITS = {"train": 0, "valid": 1, "test": 2}
CELLS = ("rnn", "gru", "lstm")


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


def one_hot(idx: np.ndarray, n: int, dtype: Any = np.float32) -> np.ndarray:
    """``out[..., k] = 1`` where ``idx == k``; indices < 0 give all-zero rows (padding)."""
    idx = np.asarray(idx)
    out = np.zeros((*idx.shape, n), dtype)
    valid = idx >= 0
    out[valid, idx[valid]] = 1
    return out


def detach_state(state: Any) -> Any:
    """Cut a recurrent state (a Tensor or an ``(h, c)`` tuple) from the graph (truncated BPTT)."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(detach_state(s) for s in state)
    return state.detach()


def make_recurrent(cell: str, input_size: int, hidden: int, layers: int = 1, dtype: Any = "float32",
                   rng: np.random.Generator | None = None, nonlinearity: str = "tanh") -> nn.Module:
    """``rnn.RNN`` / ``rnn.GRU`` / ``rnn.LSTM`` (batch-first) with parameters cast to ``dtype``.

    LSTMs get a forget-gate bias of 1 (``bias_hh`` slice f, Jozefowicz et al. 2015), the usual start that
    lets the cell remember from the first step.
    """
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
    if hidden < 1 or layers < 1 or input_size < 1:
        raise ValueError(f"make_recurrent: sizes must be >= 1, got input_size={input_size}, "
                         f"hidden={hidden}, layers={layers}")
    from rnn import layers as L

    dt = np.dtype(dtype)
    if cell == "rnn":
        mod = L.RNN(input_size, hidden, num_layers=layers, nonlinearity=nonlinearity, batch_first=True,
                    rng=rng, dtype=dt)
    else:
        mod = (L.GRU if cell == "gru" else L.LSTM)(input_size, hidden, num_layers=layers, batch_first=True,
                                                    rng=rng, dtype=dt)
    if cell == "lstm":
        for name, p in mod.named_parameters():
            if name.startswith("bias_hh"):
                p.data[hidden:2 * hidden] = 1.0
    return mod


def _last_h(state: Any) -> mg.Tensor:
    """The top layer's final hidden state ``(B, H)`` from ``h_n`` or ``(h_n, c_n)``."""
    h = state[0] if isinstance(state, tuple) else state
    return h[-1]


class SeqModel(nn.Module):
    """A recurrent layer stack and a linear read-out.

    ``many_to_one=False``: ``y_t = W h_t + b`` for every step, shape ``(B, T, O)`` (taggers, language models,
    forecasters). ``many_to_one=True``: ``y = W h_T + b`` from the final state, shape ``(B, O)``; with
    ``lengths`` the layer stops each sequence at its own length, so padding does not matter.
    ``forward(x, state=None, lengths=None) -> (y, state)``: the state comes back so a caller can carry it
    across windows (truncated BPTT, sampling).
    """

    def __init__(self, cell: str, input_size: int, hidden: int, output_size: int, layers: int = 1,
                 many_to_one: bool = False, dtype: Any = "float32",
                 rng: np.random.Generator | None = None) -> None:
        super().__init__()
        self.cell, self.hidden, self.many_to_one = cell, hidden, many_to_one
        self.rnn = make_recurrent(cell, input_size, hidden, layers, dtype, rng)
        self.head = nn.Linear(hidden, output_size, dtype=np.dtype(dtype), rng=rng)
        self.name_parameters()

    def forward(self, x: Any, state: Any = None, lengths: Any = None, t0: int = 0) -> tuple[mg.Tensor, Any]:
        x = x if isinstance(x, mg.Tensor) else mg.tensor(x)
        out, state = self.rnn(x, state, lengths=lengths, t0=t0)
        if self.many_to_one:
            return self.head(_last_h(state)), state
        B, T, H = out.shape
        y = self.head(out.reshape(B * T, H))
        return y.reshape(B, T, -1), state


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

    def build_model(self, cell: str, hidden: int, layers: int = 1) -> nn.Module:
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


class PerStepCETask(Task):
    """A task whose model emits logits at every step, scored by cross-entropy against per-step class
    targets ``batch["targets"]`` (B, T); long batches can be truncated to windows of ``bptt`` steps."""

    def _chunk_loss(self, y: mg.Tensor, tgt: np.ndarray, start: int, stop: int) -> mg.Tensor:
        """The loss of steps [start, stop), weighted by its share of the T steps (shares add up to 1)."""
        B, T, C = y.shape
        return cross_entropy(y.reshape(B * T, C), tgt[:, start:stop]) * ((stop - start) / tgt.shape[1])

    def loss(self, model: nn.Module, batch: dict[str, np.ndarray]) -> mg.Tensor:
        y, _ = model(batch["x"])
        return self._chunk_loss(y, batch["targets"], 0, batch["targets"].shape[1])

    def backward(self, model: nn.Module, batch: dict[str, np.ndarray], bptt: int = 0) -> float:
        tgt = batch["targets"]
        return chunked_backward(model, batch["x"], bptt, lambda y, s, e: self._chunk_loss(y, tgt, s, e))


def chunked_backward(model: nn.Module, x: np.ndarray, bptt: int, chunk_loss: Any) -> float:
    """Truncated BPTT over one batch: run ``x`` (B, T, I) in windows of ``bptt`` steps, carrying the
    detached state from window to window; ``chunk_loss(y, start, stop)`` gives each window's loss
    contribution (a Tensor, already weighted so the contributions add up to the batch loss, or None).
    Gradients of all windows accumulate; returns the summed loss.

    No gradient crosses a window boundary, so dL/dh_t is truncated to k steps (Williams & Peng 1990).
    """
    T = x.shape[1]
    k = T if bptt <= 0 else bptt
    state, total = None, 0.0
    for s in range(0, T, k):
        y, state = model(mg.tensor(x[:, s:s + k]), state, t0=s)
        loss = chunk_loss(y, s, min(s + k, T))
        if loss is not None:
            loss.backward()
            total += float(loss.item())
        state = detach_state(state)
    return total


def cross_entropy(logits: mg.Tensor, targets: np.ndarray, weights: np.ndarray | None = None) -> mg.Tensor:
    """Mean negative log-likelihood in nats: ``-sum_n w_n log softmax(z_n)[y_n] / sum_n w_n``.

    ``logits`` (N, C), ``targets`` (N,) integer classes; ``weights`` (N,) (default 1) masks padding.
    Written as ``log_softmax`` times a one-hot matrix, so its gradient is ``(softmax(z) - onehot) w / W``.
    """
    N, C = logits.shape
    targets = np.asarray(targets).reshape(-1)
    if targets.shape[0] != N:
        raise mg.ShapeError(f"cross_entropy: logits {logits.shape} but {targets.shape[0]} targets")
    w = np.ones(N, logits.dtype) if weights is None else np.asarray(weights, logits.dtype).reshape(-1)
    denom = max(float(w.sum()), 1e-12)
    pick = one_hot(targets, C, logits.dtype) * (w / denom)[:, None]
    return -(logits.log_softmax(-1) * pick).sum()


def mse(y: mg.Tensor, target: np.ndarray) -> mg.Tensor:
    """Mean squared error ``mean((y - t)^2)``."""
    d = y - mg.tensor(np.asarray(target, y.dtype))
    return (d * d).mean()

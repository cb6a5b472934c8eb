"""``classify``: many-to-one classification of variable-length sequences (uses ``lengths``).

Each sequence has a length drawn uniformly from ``[max(2, T // 4), T]`` and holds symbols from an alphabet
of ``K``; its class is the symbol that occurs most often (sequences with a tie are redrawn). Batches are
zero-padded to ``T`` and the true lengths go to the recurrent layer, which stops each sequence at its own
end, so the final state (and the prediction) is the same as for the unpadded sequence. The baseline is
always answering the most frequent class (~ 1/K).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F

from ..models import SequenceClassifier
from .base import Task, batch_rng


def generate(n: int, T: int, rng: np.random.Generator, n_classes: int = 4
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(symbols (n, T) with -1 padding, lengths (n,), labels (n,))``; label = most frequent symbol."""
    if n < 1 or T < 2 or n_classes < 2:
        raise ValueError(f"classify.generate: need n >= 1, T >= 2, n_classes >= 2; got n={n}, T={T}, "
                         f"n_classes={n_classes}")
    lo = max(2, T // 4)
    seqs = np.full((n, T), -1, np.int64)
    lengths = np.empty(n, np.int64)
    labels = np.empty(n, np.int64)
    for i in range(n):
        while True:
            L = int(rng.integers(lo, T + 1))
            s = rng.integers(0, n_classes, L)
            counts = np.bincount(s, minlength=n_classes)
            if (counts == counts.max()).sum() == 1:
                break
        seqs[i, :L] = s
        lengths[i] = L
        labels[i] = counts.argmax()
    return seqs, lengths, labels


class ClassifyTask(Task):
    name = "classify"
    summary = "many-to-one: the most frequent symbol of a variable-length sequence (lengths)"
    metric = "test accuracy"
    higher_is_better = True
    supports_bptt = False
    min_seq_len = 2
    defaults: ClassVar[dict[str, Any]] = dict(hidden=32, layers=1, lr=1e-2, steps=500, batch=32, seq_len=20,
                                              clip=1.0, bptt=0, eval_size=1000)
    n_classes = 4

    def batch(self, step: int, size: int, split: str = "train") -> dict[str, np.ndarray]:
        rng = batch_rng(self.seed, step, split)
        seqs, lengths, labels = generate(size, self.seq_len, rng, self.n_classes)
        return {"x": self.one_hot(seqs), "lengths": lengths, "labels": labels}

    def one_hot(self, seqs: np.ndarray) -> np.ndarray:
        """One-hot symbols (n, T, K); the padding (-1) becomes all-zero rows."""
        pad = seqs < 0
        x = F.one_hot(np.where(pad, 0, seqs), self.n_classes, self.dtype).data
        x[pad] = 0
        return x

    def build_model(self, cell: Any, hidden: int, layers: int = 1) -> nn.Module:
        """``rnn.SequenceClassifier``: logits from the state after each sequence's own last step."""
        return SequenceClassifier(self.n_classes, hidden, self.n_classes, **self.model_kw(cell, layers))

    def loss(self, model: nn.Module, batch: dict[str, np.ndarray]) -> mg.Tensor:
        return F.cross_entropy(model(batch["x"], lengths=batch["lengths"]), batch["labels"])

    def evaluate(self, model: nn.Module, n: int | None = None) -> dict[str, float]:
        """Accuracy on ``n`` held-out sequences vs always answering the majority class."""
        b = self.batch(0, n or self.defaults["eval_size"], "test")
        pred = model.predict(b["x"], b["lengths"])
        return {"metric": float(np.mean(pred == b["labels"])),
                "baseline": float(np.bincount(b["labels"]).max() / len(b["labels"]))}

    def showcase(self, model: nn.Module, rng: np.random.Generator) -> str:
        seqs, lengths, labels = generate(5, self.seq_len, rng, self.n_classes)
        pred = model.predict(self.one_hot(seqs), lengths)
        alpha = "abcdefghijklmnopqrstuvwxyz"
        lines = ["most frequent symbol of a variable-length sequence:"]
        for s, L, y, p in zip(seqs, lengths, labels, pred):
            lines.append(f"  {''.join(alpha[k] for k in s[:L]):<{self.seq_len}s} -> {alpha[p]} "
                         f"({'ok' if p == y else 'wrong, ' + alpha[y]})")
        return "\n".join(lines)

"""Loss modules with PyTorch's names, constructor arguments (in PyTorch's positional order) and
``forward(input, target)``: ``CrossEntropyLoss``, ``NLLLoss``, ``MSELoss``, ``L1Loss``, ``BCELoss``,
``BCEWithLogitsLoss``. Each calls the function of the same meaning in ``functional`` (where the maths
and the derivatives are); ``weight`` and ``pos_weight`` are buffers, saved by ``state_dict`` as in
PyTorch. The deprecated ``size_average``/``reduce`` pair is translated into ``reduction`` with a warning.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..tensor import Tensor
from . import _args as A
from . import functional as F
from .module import Module

__all__ = ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "L1Loss", "MSELoss", "NLLLoss"]


def _legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str, fn: str) -> str:
    """PyTorch's rule for the deprecated flags: reduce=False -> "none", else size_average=False ->
    "sum", else "mean"; ``reduction`` is used when neither flag is given."""
    if size_average is None and reduce is None:
        A.check_reduction(fn, reduction)
        return reduction
    warnings.warn(f"{fn}: size_average and reduce are deprecated; use reduction=", UserWarning,
                  stacklevel=3)
    if reduce is not None and not reduce:
        return "none"
    return "sum" if size_average is not None and not size_average else "mean"


def _array(v: Any) -> np.ndarray | None:
    """A weight given as ndarray, list, minigrad or PyTorch tensor, as a float ndarray (a buffer)."""
    if v is None:
        return None
    if isinstance(v, Tensor):
        v = v.data
    elif hasattr(v, "numpy") and not isinstance(v, np.ndarray):
        v = (v.detach().cpu() if hasattr(v, "detach") else v).numpy()
    arr = np.array(v)
    return arr if arr.dtype.kind == "f" else arr.astype(np.float32)


class _Loss(Module):
    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _legacy_reduction(size_average, reduce, reduction, type(self).__name__)

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class _WeightedLoss(_Loss):
    def __init__(self, weight: Any = None, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", _array(weight))


class MSELoss(_Loss):
    """mean/sum/none of (input - target)^2."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """mean/sum/none of |input - target|."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.l1_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Cross-entropy of logits (class axis 1) against class indices or probabilities; see
    ``functional.cross_entropy`` for ``weight``, ``ignore_index``, ``label_smoothing``."""

    def __init__(self, weight: Any = None, size_average: bool | None = None, ignore_index: int = -100,
                 reduce: bool | None = None, reduction: str = "mean", label_smoothing: float = 0.0) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}")
        self.ignore_index, self.label_smoothing = int(ignore_index), float(label_smoothing)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction,
                               self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log-likelihood of log-probabilities (class axis 1); see ``functional.nll_loss``."""

    def __init__(self, weight: Any = None, size_average: bool | None = None, ignore_index: int = -100,
                 reduce: bool | None = None, reduction: str = "mean") -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = int(ignore_index)

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class BCELoss(_WeightedLoss):
    """Binary cross-entropy of probabilities in [0, 1]; see ``functional.binary_cross_entropy``."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_WeightedLoss):
    """Sigmoid + binary cross-entropy in one stable op; see
    ``functional.binary_cross_entropy_with_logits`` for ``weight`` and ``pos_weight``."""

    def __init__(self, weight: Any = None, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean", pos_weight: Any = None) -> None:
        super().__init__(weight, size_average, reduce, reduction)
        self.register_buffer("pos_weight", _array(pos_weight))

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction,
                                                  self.pos_weight)

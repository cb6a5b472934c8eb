"""``Parameter``: a leaf Tensor that requires grad and learns its dotted name when registered."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor


class Parameter(Tensor):
    """A trainable leaf tensor. ``name`` is set to its dotted path (``rnn.weight_hh_l0``) when a
    ``Module`` registers it, so drawings and error messages can say which weight they mean."""

    __slots__ = ()

    def __init__(self, data: Any, name: str | None = None) -> None:
        if isinstance(data, Tensor):
            data = data.data
        arr = np.asarray(data)
        if arr.dtype.kind != "f":
            arr = arr.astype(np.float32)
        super().__init__(arr, requires_grad=True, name=name)

    def __repr__(self) -> str:
        return f"Parameter(name={self.name!r}, shape={self.shape}, dtype={self.dtype})"

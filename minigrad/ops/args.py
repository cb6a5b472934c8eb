"""PyTorch and NumPy spell two arguments differently; every op that takes one accepts both:
``dim=`` / ``axis=`` and ``keepdim=`` / ``keepdims=`` (giving both is an error)."""

from __future__ import annotations

from typing import Any


def dim_arg(op: str, dim: Any, axis: Any) -> Any:
    """The axis given as ``dim`` (PyTorch) or ``axis`` (NumPy)."""
    if axis is None:
        return dim
    if dim is not None:
        raise TypeError(f"{op}: pass dim= or axis=, not both (got dim={dim!r}, axis={axis!r})")
    return axis


def keepdim_arg(op: str, keepdim: bool, keepdims: bool | None) -> bool:
    """``keepdim`` (PyTorch) or ``keepdims`` (NumPy)."""
    if keepdims is None:
        return bool(keepdim)
    if keepdim:
        raise TypeError(f"{op}: pass keepdim= or keepdims=, not both")
    return bool(keepdims)

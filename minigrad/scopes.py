"""Scopes: the names every recorded node carries, and the one format of a time-step scope.

``mg.scope(name)`` nests names; every node (and tensor) created inside records the tuple of open names,
e.g. ``("LSTM", "layer0", "t=3")``. The engine gives them no meaning. Two packages agree on one:

- a *step scope* is the name ``"t=<int>"`` (``step_name(3) == "t=3"``), opened by a recurrent layer
  around the ops of one time step, and read back by drawings (``parse_step``, ``find_step``) to put
  each op into its step's box. This module is the only place that writes or parses the format.
- ``step_scopes()`` enters the step scopes of a loop cheaply (one tuple assignment per step: a
  context manager per step costs about as much as an op).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import ContextDecorator

from . import _state

__all__ = ["StepScopes", "current_scope", "find_step", "parse_step", "scope", "step_name", "step_scopes"]

STEP_PREFIX = "t="
_STEP_RE = re.compile(r"^t=(-?\d+)$")


class scope(ContextDecorator):  # noqa: N801 (used as a function: ``with mg.scope("encoder"):``)
    """Every node created inside ``with scope(name):`` (or a function decorated ``@scope(name)``)
    records ``current_scope() + (name,)``; scopes nest. (A class, not a generator: a layer enters two
    per call, and ``contextlib.contextmanager``'s cost ~1 us.)"""

    __slots__ = ("name", "prev")

    def __init__(self, name: str) -> None:
        if not isinstance(name, str):
            raise TypeError(f"scope: name must be a str, got {type(name).__name__}")
        self.name = name
        self.prev: list[tuple[str, ...]] = []  # one per open ``with`` of this object (it may nest)

    def __enter__(self) -> tuple[str, ...]:
        self.prev.append(_state.scope)
        _state.scope = (*_state.scope, self.name)
        return _state.scope

    def __exit__(self, *exc: object) -> None:
        _state.scope = self.prev.pop()


def current_scope() -> tuple[str, ...]:
    """The names of the scopes open now, outermost first."""
    return _state.scope


def step_name(t: int) -> str:
    """The scope name of time step ``t``: ``"t=3"``."""
    return f"{STEP_PREFIX}{int(t)}"


def parse_step(name: str) -> int | None:
    """The time index of a step scope name (``"t=3"`` -> 3), None for any other name."""
    m = _STEP_RE.match(name)
    return int(m.group(1)) if m else None


def find_step(path: Sequence[str]) -> tuple[int, int] | None:
    """``(position, t)`` of the innermost step scope in a scope path, or None if it has none.

    ``find_step(("GRU", "layer0", "t=4", "gate")) == (2, 4)``: the path up to ``position`` names the
    sequence the step belongs to.
    """
    for i in range(len(path) - 1, -1, -1):
        t = parse_step(path[i])
        if t is not None:
            return i, t
    return None


class StepScopes:
    """Enter the step scope of each iteration of a loop: ``enter(t)`` replaces the previous step's
    scope with ``base + ("t=<t>",)``; leaving the ``with`` block restores the scope it found."""

    def __enter__(self) -> StepScopes:
        self.base = _state.scope
        return self

    def __call__(self, t: int) -> None:
        _state.scope = (*self.base, f"{STEP_PREFIX}{t}")

    def __exit__(self, *exc: object) -> None:
        _state.scope = self.base


def step_scopes() -> StepScopes:
    """``with mg.step_scopes() as enter: for t in range(T): enter(t); ...`` records each step's ops
    in scope ``"t=<t>"`` under the scopes open at the ``with``."""
    return StepScopes()

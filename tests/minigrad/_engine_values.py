"""Deterministic test values kept away from the kinks of the ops under test (shared by engine tests)."""

from __future__ import annotations

import numpy as np

SHAPE_GROUPS = {
    "2d": [(), (3, 1), (1, 4), (3, 4)],
    "3d": [(2, 3, 4), (2, 1, 4)],
}
ALL_SHAPES = [s for group in SHAPE_GROUPS.values() for s in group]
SHAPE_PAIRS = [(a, b) for group in SHAPE_GROUPS.values() for a in group for b in group]


def values(rng: np.random.Generator, shape: tuple[int, ...], kind: str = "any",
           dtype: np.dtype | type = np.float64) -> np.ndarray:
    """Random values of a kind:

    - ``any``: |v| in [0.2, 2] with a random sign (off 0: safe for relu, abs, div);
    - ``pos``: v in [0.5, 2] (log, sqrt, pow base);
    - ``lo``/``hi``: i + 0.25 + [0, 0.1) and i + 0.75 + [0, 0.1) for integers i, so any ``lo`` value and
      any ``hi`` value differ by at least 0.4 (maximum/minimum never tie);
    - ``distinct``: a shuffled grid with spacing 0.3 (max/min reductions never tie);
    - ``offunit``: |v| in [0.2, 0.8] or [1.2, 2] (clip to [-1, 1] never sits on a bound).
    """
    if kind == "any":
        v = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.2, 2.0, size=shape)
    elif kind == "pos":
        v = rng.uniform(0.5, 2.0, size=shape)
    elif kind in ("lo", "hi"):
        v = rng.integers(-3, 3, size=shape) + (0.25 if kind == "lo" else 0.75) + rng.uniform(0, 0.1, shape)
    elif kind == "distinct":
        n = int(np.prod(shape))
        v = ((rng.permutation(n) - n / 2) * 0.3 + rng.uniform(0, 0.05, n)).reshape(shape)
    elif kind == "offunit":
        mag = np.where(rng.random(shape) < 0.5, rng.uniform(0.2, 0.8, shape), rng.uniform(1.2, 2.0, shape))
        v = rng.choice([-1.0, 1.0], size=shape) * mag
    else:
        raise ValueError(kind)
    return np.asarray(v, dtype=dtype)

"""``python -m bench.blas``: the BLAS a compiled recurrence's products call, against the alternatives.

For the LSTM's products of every workload (``bench.problems``: the step's ``h @ W_hh^T`` (B, H) @ (H, 4H),
its backward ``(B, 4H) @ (4H, H)`` and the weights' gradient after the loop ``(H, T*B) @ (T*B, 4H)``),
float32 and float64: GFLOP/s of ``minigrad.kernels.linalg.dot`` called from Numba (the generated code's
product: ``linalg.BLAS`` says which library it calls), of Numba's own ``np.dot`` called from Numba
(SciPy's BLAS) and of ``np.dot`` called from Python (NumPy's BLAS). Each figure is the median over
interleaved rounds (``bench.run``'s timer) of a block of 20 products, on one BLAS thread.
"""

from __future__ import annotations

import argparse
import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numba  # noqa: E402
import numpy as np  # noqa: E402

from minigrad.kernels import linalg  # noqa: E402

from .problems import WORKLOADS  # noqa: E402
from .run import _table, _timeit  # noqa: E402

REPEAT = 20


@numba.njit(cache=True)
def _minigrad_loop(a, b):
    for _ in range(REPEAT):
        out = linalg.dot(a, b)
    return out


@numba.njit(cache=True)
def _numba_loop(a, b):
    for _ in range(REPEAT):
        out = np.dot(a, b)
    return out


def _numpy_loop(a, b):
    for _ in range(REPEAT):
        out = np.dot(a, b)
    return out


def shapes(workload: str) -> list[tuple[str, tuple[int, int, int]]]:
    """(what, (m, k, n)) of the LSTM's three recurrent products at one workload."""
    w = WORKLOADS[workload]
    h, b, t = w.H, w.B, w.T
    return [("step h @ W^T", (b, h, 4 * h)), ("step dgates @ W", (b, 4 * h, h)),
            ("after loop h^T @ dgates", (h, t * b, 4 * h))]


def rows(workloads: list[str], dtypes: list[str], reps: int) -> list[list[str]]:
    rng = np.random.default_rng(0)
    out = []
    for w in workloads:
        for what, (m, k, n) in shapes(w):
            for dt in dtypes:
                a, b = (rng.standard_normal(s).astype(dt) for s in ((m, k), (k, n)))
                fns = {name: (lambda f=f, a=a, b=b: f(a, b)) for name, f in
                       (("minigrad", _minigrad_loop), ("numba", _numba_loop), ("numpy", _numpy_loop))}
                secs = _timeit(fns, reps, 1)
                flop = 2.0 * m * k * n * REPEAT
                gf = {name: flop / s / 1e9 for name, s in secs.items()}
                out.append([w, what, f"({m}, {k}) @ ({k}, {n})", dt, *(f"{gf[name]:.1f}" for name in fns),
                            f"{gf['minigrad'] / gf['numba']:.2f}"])
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workloads", default="tiny,small,medium,long,large")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--reps", type=int, default=5)
    args = p.parse_args(argv)
    print(f"minigrad.kernels.linalg.BLAS = {linalg.BLAS}; GFLOP/s, median over {args.reps} rounds\n")
    head = ["workload", "product", "shapes", "dtype", f"minigrad dot ({linalg.BLAS.split(':')[0]})",
            "Numba np.dot", "NumPy np.dot", "minigrad / Numba"]
    print(_table(head, rows(args.workloads.split(","), args.dtypes.split(","), args.reps)))


if __name__ == "__main__":
    main()

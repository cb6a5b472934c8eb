"""``python -m bench.blas_steps``: whole train steps of the compiled layer with two gemms, paired.

For each workload, cell and dtype, rounds of fresh processes alternate between ``MINIGRAD_BLAS=A`` and
``MINIGRAD_BLAS=B`` (default numpy against mkl; mkl needs ``pip install mkl``). Each process times the
compiled layer's train step (``bench.mg_loop.step_fn(..., "rnn")``: forward over T, MSE, full BPTT) as
the minimum over 21 blocks of back-to-back calls (~80 ms each, the collector off), so that machine load
shows as a slower block, not a slower step. The table has the median over rounds of each and B / A.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

from .problems import WORKLOADS
from .run import _table

_TIMER = """
import gc, sys, time
from bench import mg_loop, problems
kind, workload, dtype = sys.argv[1:4]
w = problems.WORKLOADS[workload]
x, y, p = problems.make_problem(kind, w.I, w.H, w.B, w.T, dtype)
step = mg_loop.step_fn(kind, x, y, p, "rnn")
for _ in range(5):
    step()
t0 = time.perf_counter(); step(); one = time.perf_counter() - t0
n = max(1, int(0.08 / max(one, 1e-6)))
best = float("inf")
gc.disable()
for _ in range(21):
    t0 = time.perf_counter()
    for _ in range(n):
        step()
    best = min(best, (time.perf_counter() - t0) / n)
from minigrad.kernels import linalg
print(linalg.BLAS, best * 1e3)
"""


def time_step(blas: str, kind: str, workload: str, dtype: str) -> float:
    """ms per train step of the compiled layer in a fresh process with ``MINIGRAD_BLAS=blas`` and one
    BLAS thread; RuntimeError if its products called another gemm (NumPy's exports none: "numba")."""
    env = {**os.environ, "MINIGRAD_BLAS": blas, "MINIGRAD_COMPILE": "1", "OPENBLAS_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    got = subprocess.run([sys.executable, "-c", _TIMER, kind, workload, dtype], env=env,
                         capture_output=True, text=True)
    if got.returncode != 0:
        raise RuntimeError(f"bench.blas_steps: MINIGRAD_BLAS={blas} failed:\n{got.stderr[-2000:]}")
    name, ms = got.stdout.split()[-2:]
    if name.split(":")[0] != blas:
        raise RuntimeError(f"bench.blas_steps: MINIGRAD_BLAS={blas} ran the gemm {name}")
    return float(ms)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blas", default="numpy,mkl", help="the two MINIGRAD_BLAS values, A,B")
    p.add_argument("--workloads", default="tiny,small,medium,long,large")
    p.add_argument("--cells", default="rnn,gru,lstm")
    p.add_argument("--dtypes", default="float32")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args(argv)
    a, b = args.blas.split(",")
    rows = []
    for w in args.workloads.split(","):
        for kind in args.cells.split(","):
            for dt in args.dtypes.split(","):
                ta, tb = [], []
                for _ in range(args.rounds):
                    ta.append(time_step(a, kind, w, dt))
                    tb.append(time_step(b, kind, w, dt))
                ma, mb = statistics.median(ta), statistics.median(tb)
                rows.append([WORKLOADS[w].label(), kind, dt, f"{ma:.3g}", f"{mb:.3g}", f"{mb / ma:.2f}"])
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    print(f"ms per train step of the compiled layer, median over {args.rounds} paired rounds of fresh "
          f"processes (each the min of 21 blocks)\n")
    print(_table(["workload (I,H,B,T)", "cell", "dtype", f"{a} ms", f"{b} ms", f"{b} / {a}"], rows))


if __name__ == "__main__":
    main()

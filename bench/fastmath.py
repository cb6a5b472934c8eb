"""ns per element of minigrad's fast pointwise maths against NumPy, in the loops the compiler generates.

    python -m bench.fastmath                 # n = 1e3 and 1e5, float32 and float64, every function
    python bench/fastmath.py --n 1000000 --reps 51 --functions tanh,sigmoid

For each function and dtype, three ways to fill ``out`` from ``x`` (flat arrays):

- NumPy: the ufunc on the whole array (``np.exp(x, out=out)``; sigmoid has no ufunc: the stable
  NumPy expression ``where(x >= 0, 1, e) / (1 + e)``, e = exp(-|x|), a few passes);
- Numba + np: ``for i in range(n): out[i] = np.<fn>(x[i])`` jitted (a libm call per element);
- Numba + fastmath: ``minigrad.kernels.fastmath.<fn>_array``, the same loop over ``fastmath.<fn>``.

Each figure is the median over ``--reps`` timed batches (each batch repeats the call until it lasts
~2 ms), the three timed round-robin so load on the shared machine hits them alike. Threads are pinned
to 1 before NumPy is imported.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numba  # noqa: E402
import numpy as np  # noqa: E402

from minigrad.kernels import fastmath  # noqa: E402

FUNCTIONS = ("exp", "log", "log1p", "tanh", "sigmoid", "softplus")


# ----------------------------------------------------------------------- the np.<fn>-in-Numba loops
# (plain njit, no cache: what the generated code would cost if it called NumPy's scalar functions)


@numba.njit
def _np_exp(x, out):
    for i in range(x.size):
        out[i] = np.exp(x[i])


@numba.njit
def _np_log(x, out):
    for i in range(x.size):
        out[i] = np.log(x[i])


@numba.njit
def _np_log1p(x, out):
    for i in range(x.size):
        out[i] = np.log1p(x[i])


@numba.njit
def _np_tanh(x, out):
    for i in range(x.size):
        out[i] = np.tanh(x[i])


@numba.njit
def _np_sigmoid(x, out):
    for i in range(x.size):
        v = x[i]
        e = np.exp(-abs(v))
        out[i] = (1.0 if v >= 0 else e) / (1.0 + e)


@numba.njit
def _np_softplus(x, out):
    for i in range(x.size):
        v = x[i]
        out[i] = (v if v > 0 else 0.0) + np.log1p(np.exp(-abs(v)))


def _numpy_sigmoid(x, out):
    e = np.exp(-np.abs(x))
    np.divide(np.where(x >= 0, x.dtype.type(1), e), 1 + e, out=out)


NUMPY = {
    "exp": lambda x, out: np.exp(x, out=out),
    "log": lambda x, out: np.log(x, out=out),
    "log1p": lambda x, out: np.log1p(x, out=out),
    "tanh": lambda x, out: np.tanh(x, out=out),
    "sigmoid": _numpy_sigmoid,
    "softplus": lambda x, out: np.logaddexp(x.dtype.type(0), x, out=out),
}
NUMBA_NP = {"exp": _np_exp, "log": _np_log, "log1p": _np_log1p, "tanh": _np_tanh,
            "sigmoid": _np_sigmoid, "softplus": _np_softplus}


def inputs(fn: str, n: int, dtype: type, seed: int = 0) -> np.ndarray:
    """Typical arguments: where the function does work (no clamped or constant region dominates)."""
    rng = np.random.default_rng(seed)
    if fn == "exp":
        x = rng.uniform(-20, 20, n)
    elif fn == "log":
        x = np.exp(rng.uniform(-20, 20, n))
    elif fn == "log1p":
        x = rng.uniform(-0.9, 10, n)
    else:  # tanh, sigmoid, softplus: pre-activations
        x = 3 * rng.standard_normal(n)
    return x.astype(dtype)


def ns_per_element(fns: dict[str, callable], x: np.ndarray, reps: int) -> dict[str, float]:
    """Median ns/element of each ``f(x, out)``, timed round-robin over ``reps`` batches."""
    out = np.empty_like(x)
    calls = {}
    for k, f in fns.items():
        f(x, out)  # compile / warm up
        t0 = time.perf_counter()
        f(x, out)
        calls[k] = max(1, int(2e-3 / max(time.perf_counter() - t0, 1e-9)))
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, f in fns.items():
            c = calls[k]
            t0 = time.perf_counter()
            for _ in range(c):
                f(x, out)
            times[k].append((time.perf_counter() - t0) / c / x.size * 1e9)
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.fastmath", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", default="1000,100000", help="comma list of array sizes")
    ap.add_argument("--dtypes", default="float32,float64")
    ap.add_argument("--functions", default=",".join(FUNCTIONS))
    ap.add_argument("--reps", type=int, default=21, help="timed batches (median reported)")
    args = ap.parse_args(argv)
    sizes = [int(float(s)) for s in args.n.split(",")]
    print(f"# fastmath: ns/element, median of {args.reps} batches")
    print(f"- {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {', '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"- NumPy {np.__version__}, Numba {numba.__version__}, Python {platform.python_version()}")
    print()
    print("| function | dtype | n | NumPy | Numba + np | Numba + fastmath | np-loop / fastmath "
          "| NumPy / fastmath |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for fn in args.functions.split(","):
        for dt in args.dtypes.split(","):
            for n in sizes:
                x = inputs(fn, n, np.dtype(dt).type)
                t = ns_per_element({"numpy": NUMPY[fn], "np_loop": NUMBA_NP[fn],
                                    "fastmath": getattr(fastmath, fn + "_array")}, x, args.reps)
                print(f"| {fn} | {dt} | {n:.0e} | {t['numpy']:.2f} | {t['np_loop']:.2f} "
                      f"| {t['fastmath']:.2f} | {t['np_loop'] / t['fastmath']:.1f}x "
                      f"| {t['numpy'] / t['fastmath']:.2f}x |", flush=True)


if __name__ == "__main__":
    main()

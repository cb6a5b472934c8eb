"""``python -m bench``: minigrad's RNN/GRU/LSTM train steps against a hand-written NumPy BPTT and PyTorch.

    python -m bench                    # everything, prints markdown tables
    python -m bench --quick            # a fast subset (tiny/small/long, 3 repetitions)
    python -m bench --workloads small,long --cells lstm --dtypes float32 --reps 7
    python -m bench --write            # also record the run in bench/RESULTS.md
    python -m bench --blas mkl --sections steps --out bench/RESULTS-mkl.md   # with oneMKL's gemm

Thread counts are fixed BEFORE NumPy is imported (``--threads``, default 1: the numbers are then
reproducible on a shared machine and every implementation runs with the same resources).
"""

from __future__ import annotations

import argparse
import os
import sys


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny/small/long only, 3 reps, shorter T-scaling")
    ap.add_argument("--workloads", default=None, help="comma list of tiny,small,medium,long,large")
    ap.add_argument("--cells", default=None,
                    help="comma list of registered cells (rnn.CELLS); default: rnn,gru,lstm (the cells with "
                         "a NumPy reference) for steps, every registered cell for the cells section")
    ap.add_argument("--dtypes", default="float32,float64", help="comma list of float32,float64")
    ap.add_argument("--reps", type=int, default=None, help="timed repetitions (median reported; default 5)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs first (compilation, caches)")
    ap.add_argument("--budget", type=float, default=1.0,
                    help="seconds a fast case may take: more repetitions (up to 10x --reps) for fast cases")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/torch threads (default 1)")
    ap.add_argument("--blas", choices=("numpy", "numba", "mkl"), default=None,
                    help="the gemm minigrad's compiled loops call (sets MINIGRAD_BLAS; default: its value, "
                         "else NumPy's); mkl needs `pip install mkl`")
    ap.add_argument("--sections", default="steps,cells,overhead,scaling,coldstart",
                    help="comma list of steps,cells,overhead,scaling,coldstart")
    ap.add_argument("--no-torch", action="store_true", help="do not benchmark PyTorch even if installed")
    ap.add_argument("--no-jax", action="store_true", help="do not benchmark JAX even if installed")
    ap.add_argument("--write", action="store_true", help="write the report to bench/RESULTS.md")
    ap.add_argument("--out", default=None, help="write the report to this file instead")
    args = ap.parse_args(argv)
    if args.workloads is None:
        args.workloads = "tiny,small,long" if args.quick else "tiny,small,medium,long,large"
    if args.reps is None:
        args.reps = 3 if args.quick else 5
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    n = str(args.threads)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = n
    if args.blas is not None:
        os.environ["MINIGRAD_BLAS"] = args.blas
    if args.threads == 1:  # JAX (XLA) too, when it is installed
        os.environ.setdefault("XLA_FLAGS",
                              "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    if "numpy" in sys.modules:
        print("bench: NumPy was imported before the thread count could be set", file=sys.stderr)
    from bench import run

    return run.main(args)


if __name__ == "__main__":
    raise SystemExit(main())

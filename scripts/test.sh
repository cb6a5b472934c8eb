#!/usr/bin/env bash
# The test command: set up, lint, then the whole suite twice -- with Numba's JIT, and with
# NUMBA_DISABLE_JIT=1 (kernels run as plain Python, which must give the same results).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export CI="${CI:-}" PYTHONHASHSEED=0
# One BLAS thread: the matrices here are small, and spinning OpenBLAS workers on a shared 2-core
# machine made small products ~100x slower (measured); set OPENBLAS_NUM_THREADS yourself to override.
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}" OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
.venv/bin/ruff check minigrad rnn viz tests bench
# Lane 1 also executes every notebook in notebooks/ (tests/test_notebooks.py, marked jit_only).
echo "== lane 1: Numba JIT"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
echo "== lane 2: NUMBA_DISABLE_JIT=1"
NUMBA_DISABLE_JIT=1 .venv/bin/python -m pytest -q -p no:cacheprovider -m "not jit_only" "$@"

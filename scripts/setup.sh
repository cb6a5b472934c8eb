#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: system Graphviz (for `dot`), a virtual environment in .venv,
# and minigrad installed into it in editable mode with the dev extras (pytest, hypothesis, ruff, and for
# the notebooks and figures matplotlib, nbclient, nbformat, ipykernel). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v dot >/dev/null 2>&1; then
  echo "setup: Graphviz 'dot' not found; installing the system package graphviz" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  if command -v apt-get >/dev/null 2>&1; then
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq graphviz >/dev/null
  elif command -v brew >/dev/null 2>&1; then
    brew install graphviz
  else
    echo "setup: please install Graphviz (https://graphviz.org/download/) so that 'dot' is on PATH" >&2
    exit 1
  fi
fi

PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[dev]"

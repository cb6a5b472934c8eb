#!/usr/bin/env bash
# The main job: set up, train an LSTM on the bundled `adding` task, sample/evaluate it, and draw its
# unrolled computation graph. Outputs land in runs/main/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/python -m rnn demo --out runs/main "$@"

#!/usr/bin/env bash
# The GPU benchmarks (benchmarks/gpu.py) on a machine with a CUDA GPU, in at most 8 minutes.
#
#   bash benchmarks/gpu.sh                   # SmolLM2-135M's architecture, random weights
#   bash benchmarks/gpu.sh --model DIR       # a saved model, e.g. SmolLM2-135M-Instruct
#   bash benchmarks/gpu.sh --cpu-smoke       # no GPU: tiny sizes on the CPU, tests the script
#
# Writes benchmarks/results/gpu.json (--cpu-smoke: benchmarks/results/quick/gpu.json; --out DIR
# to choose). Python: $PYTHON, else the checkout's .venv/bin/python, else python3 on PATH.
# Exit status: gpu.py's (3: no CUDA GPU found, 4: a package is missing), 124 when the run
# passed 8 minutes (gpu.py skips parts not started by --budget-s, 420 s, so this is a last resort).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$root/.venv/bin/python" ]]; then
        python="$root/.venv/bin/python"
    else
        python="$(command -v python3 || command -v python || true)"
    fi
fi
if [[ -z "$python" ]]; then
    echo "error: no Python found: set PYTHON=/path/to/python (with torch, transformers, peft)" >&2
    exit 4
fi
export PYTHONUNBUFFERED=1
exec timeout --signal=INT --kill-after=15 480 "$python" "$here/gpu.py" "$@"

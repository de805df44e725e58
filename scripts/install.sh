#!/usr/bin/env bash
# Creates .venv beside this repository and installs qhpo with every extra into it.
# torch is installed first from the CPU build so that pip does not pull a CUDA build;
# on a GPU machine install the CUDA build of torch into .venv before running this script.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install --quiet "torch==2.13.0"
fi
.venv/bin/python -m pip install --quiet -e ".[test,ray,qpu]"
echo "qhpo installed in $(pwd)/.venv"

#!/usr/bin/env bash
# Creates .venv beside this repository and installs qhpo with every extra (test, ray, qpu).
#
# PyTorch comes first, and you choose its build with QHPO_TORCH (or --torch BUILD):
#   QHPO_TORCH=cpu     torch 2.13.0+cpu from https://download.pytorch.org/whl/cpu:
#                      no CUDA libraries, trains on the CPU only.
#   QHPO_TORCH=cu126   torch 2.13.0+cu126 from https://download.pytorch.org/whl/cu126 (likewise
#                      cu128, cu129, ...: any CUDA build that index serves): the CUDA runtime
#                      libraries come with it (several GB); the NVIDIA driver must support that
#                      CUDA version (nvidia-smi prints the highest it supports).
#   unset              a torch already in .venv is kept; otherwise `pip install torch==2.13.0`
#                      takes whatever build pip's configured index serves for this platform: on
#                      the public PyPI a CUDA build on Linux x86-64 (with nvidia-* packages,
#                      several GB) and a CPU build on macOS, Windows and Linux ARM; from a local
#                      wheel folder or mirror, the build it holds.
# A build given with QHPO_TORCH replaces a torch of another build in .venv. The script ends
# by printing the torch it installed and whether it sees a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION=2.13.0
build="${QHPO_TORCH:-}"
while [ $# -gt 0 ]; do
    case "$1" in
        --torch) build="${2:-}"; shift 2 ;;
        --torch=*) build="${1#--torch=}"; shift ;;
        *) echo "install.sh: unknown argument $1; the only option is --torch cpu|cu126|cu128|..." >&2; exit 2 ;;
    esac
done
if [ -n "$build" ] && ! [[ "$build" =~ ^(cpu|cu[0-9]{3,4})$ ]]; then
    echo "install.sh: QHPO_TORCH must be cpu or a CUDA build such as cu126 or cu128, not '$build'." >&2
    exit 2
fi
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
installed=$(.venv/bin/python -c "import torch; print(torch.__version__)" 2>/dev/null || true)
if [ -n "$build" ]; then
    if [ "$installed" != "$TORCH_VERSION+$build" ]; then
        echo "installing torch $TORCH_VERSION+$build from https://download.pytorch.org/whl/$build"
        .venv/bin/python -m pip install --quiet "torch==$TORCH_VERSION+$build" \
            --index-url "https://download.pytorch.org/whl/$build"
    fi
elif [ -z "$installed" ]; then
    echo "installing torch==$TORCH_VERSION from pip's configured index (QHPO_TORCH=cpu or cu126 chooses a build)"
    .venv/bin/python -m pip install --quiet "torch==$TORCH_VERSION"
fi
.venv/bin/python -m pip install --quiet -e ".[test,ray,qpu]"
.venv/bin/python -c "import torch; print(f'torch {torch.__version__} (CUDA {torch.version.cuda or \"none\"}); GPU visible: {torch.cuda.is_available()}')"
echo "qhpo installed in $(pwd)/.venv"

#!/usr/bin/env bash
# Builds flotilla with the LibTorch backend (`--features tch`, CPU and CUDA).
#
# burn-tch 0.22 links LibTorch 2.9.0. Its download host is not used: LibTorch comes from
# the PyPI `torch` wheel of that version, installed in a virtual environment, and the
# build finds it with LIBTORCH_USE_PYTORCH=1. The binary keeps the wheel's library
# directory as its run path, so it runs without LD_LIBRARY_PATH. The wheel is about 3 GB
# (it carries the CUDA libraries, which also run on a CPU-only machine).
#
#   scripts/setup-libtorch.sh            # venv in .venv-torch, release build
#   TORCH_VENV=/opt/torch scripts/setup-libtorch.sh
set -euo pipefail

cd "$(dirname "$0")/.."
venv="${TORCH_VENV:-.venv-torch}"
# An absolute path stays as it is; a relative one is the repository's.
case "$venv" in
    /*) ;;
    *) venv="$PWD/$venv" ;;
esac
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.9.0")' 2>/dev/null; then
    "$venv/bin/pip" install --quiet torch==2.9.0 numpy
fi

export VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
cargo build --release --features tch

echo "built target/release/flotilla with LibTorch from $venv"
echo "run a scenario on it with: target/release/flotilla run FILE --set pool.backend=Tch"

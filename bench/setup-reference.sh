#!/usr/bin/env bash
# Makes the venv the TFT speed bench compares against (not part of the test command):
# torch 2.13.0 (the libtorch NordIQ links, from PyPI with its CUDA runtime wheels, run on
# the CPU) and pytorch-forecasting, in ~/.cache/nordiq/bench-venv (about 5 GB).
set -euo pipefail
cache="${XDG_CACHE_HOME:-$HOME/.cache}/nordiq"
venv="$cache/bench-venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --find-links "$cache/wheels" \
    "torch==2.13.0" "pytorch-forecasting==1.8.0"
"$venv/bin/python" -c 'import torch, pytorch_forecasting; print("reference ready:", torch.__version__, pytorch_forecasting.__version__)'

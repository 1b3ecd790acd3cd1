#!/usr/bin/env bash
# The authors' k=2 full protocol on one GPU (experiments/cifar10/belilovsky_k2_greedy.yaml: 4 stages x 50
# epochs, SGD lr 0.1 / 5 at 0.3/0.6/0.9 of each stage, batch 128, full CIFAR-10), with the data on the
# device, bf16 autocast and channels_last; prints images/s per stage and the total wall time.
# Runs lwt from this source tree (no install, no package index, no wandb needed: W&B is disabled).
#   scripts/gpu_belilovsky_k2.sh DATA_DIR [key=value ...]      (or set LWT_DATA_DIR and omit DATA_DIR)
# DATA_DIR holds cifar-10-batches-py. PYTHON picks the interpreter (default: python3); LWT_OUT the runs folder.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ $# -gt 0 && "$1" != *=* ]]; then data="$1"; shift; else data="${LWT_DATA_DIR:-}"; fi
if [[ -z "$data" || ! -d "$data/cifar-10-batches-py" ]]; then
    echo "usage: $0 DATA_DIR [key=value ...]: DATA_DIR (or \$LWT_DATA_DIR) must hold cifar-10-batches-py" \
         "(got '${data}')" >&2
    exit 2
fi
data="$(cd "$data" && pwd)"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" WANDB_MODE=disabled
exec "${PYTHON:-python3}" -m lwt.bench.protocol --data-root "$data" --out-dir "${LWT_OUT:-runs}" "$@"

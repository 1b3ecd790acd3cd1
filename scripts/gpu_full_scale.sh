#!/usr/bin/env bash
# One claim's full-scale sweep (experiments/sweeps/full_scale.yaml, or another sweep file) on one lent GPU, in calls
# of at most ~9.5 minutes that resume each other: the sweep skips finished runs and continues a cut one from its last
# checkpoint. bf16 autocast (trainer.precision=auto on a GPU with bf16), channels_last (lwt sweep adds it on CUDA),
# the uint8 images kept on the device (data.on_device=true), W&B disabled. Runs lwt from this source tree.
#
#   scripts/gpu_full_scale.sh pack                        here: cut $LWT_DATA_DIR/cifar-10-batches-py into parts
#   scripts/gpu_full_scale.sh run VARIANT [key=value ...] [--select key=value ...]   there: unpack, then train
#
# Data: CIFAR-10 (184 MB) does not fit one call's 64 MiB working tree, so `pack` tars it into data/gpu_parts/
# (ignored by git) as cifar10.tar.partNN of 52 MiB (4 parts: with the ~4 MiB tree a call stays under 64 MiB)
# with their SHA256SUMS. Each call carries one part
# (carry: ["data/gpu_parts/cifar10.tar.partNN", "data/gpu_parts/SHA256SUMS"]); parts stay on a warm machine
# between calls, so four calls in a row (each within the machine's idle window) bring the whole set, and the call
# that completes it checks the sums, unpacks to data/gpu_data/ and trains. A call that still lacks parts lists
# them and exits 3 without training. A fresh machine needs the parts again.
# Results: every call ends with one file, $OUT/<sweep>.tar.gz: the sweep's table and run archive (lwt results
# --update over the committed results/<sweep>_runs.jsonl, so a fresh machine skips what is committed) and its run
# folders without checkpoints; commit the archive here. runs/ (checkpoints of a cut run) stays on a warm machine
# only: a cut run restarts from scratch on a fresh one. SWEEP_FILE picks another sweep file (e.g.
# experiments/sweeps/belilovsky_cifar10.yaml with VARIANT - (no variant) for the authors' budgets); LWT_RUNS the runs folder.
# Packages: the lent machines' image has torch, lightning, torchmetrics, scipy, statsmodels, matplotlib, pyyaml but
# not pydantic (docs of the device: KINDS.md). Carry its wheels in .whl/ (ignored via .git/info/exclude), fetched
# here once:  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp
#   --platform manylinux_2_17_x86_64 -d .whl pydantic==2.14.4 pydantic-core==2.50.5 annotated-types typing-inspection
# and name .whl in carry; the script installs them into /tmp/site when .whl/ holds wheels.
# LIMIT_S (default 480) bounds the training, leaving the rest of a 10-minute call for the SIGINT, the tables
# and the tarball; PYTHON picks the interpreter (default: python3).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
parts="$repo/data/gpu_parts"
data="$repo/data/gpu_data"
py="${PYTHON:-python3}"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" WANDB_MODE=disabled
if compgen -G "$repo/.whl/*.whl" >/dev/null && [[ "${1:-}" == run ]]; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$repo"/.whl/*.whl
    export PYTHONPATH="$PYTHONPATH:/tmp/site"   # only what the image lacks
fi

usage() { echo "usage: $0 pack | run VARIANT [key=value ...] [--select key=value ...]" >&2; exit 2; }
[[ $# -ge 1 ]] || usage

case "$1" in
pack)
    src="${LWT_DATA_DIR:-}/cifar-10-batches-py"
    if [[ ! -d "$src" ]]; then
        echo "$0 pack: \$LWT_DATA_DIR must hold cifar-10-batches-py (got '${LWT_DATA_DIR:-}')" >&2; exit 2
    fi
    mkdir -p "$parts" && rm -f "$parts"/cifar10.tar.part* "$parts/SHA256SUMS"
    tar -C "$(dirname "$src")" -cf - cifar-10-batches-py | split -b 52M -d -a 2 - "$parts/cifar10.tar.part"
    (cd "$parts" && sha256sum cifar10.tar.part* > SHA256SUMS)
    ls -l "$parts"
    echo "carry one part per call, with SHA256SUMS: data/gpu_parts/<part> data/gpu_parts/SHA256SUMS"
    exit 0 ;;
run) shift; [[ $# -ge 1 ]] || usage; variant="$1"; shift ;;
*) usage ;;
esac

if [[ ! -d "$data/cifar-10-batches-py" ]]; then
    [[ -f "$parts/SHA256SUMS" ]] || { echo "no data/gpu_parts/SHA256SUMS: run '$0 pack' here and carry it" >&2; exit 3; }
    missing=$(cd "$parts" && awk '{print $2}' SHA256SUMS | while read -r f; do [[ -f "$f" ]] || echo "$f"; done)
    if [[ -n "$missing" ]]; then
        echo "data parts still missing (carry them in the next calls): $missing"; exit 3
    fi
    (cd "$parts" && sha256sum -c --quiet SHA256SUMS)
    mkdir -p "$data" && cat "$parts"/cifar10.tar.part* | tar -C "$data" -xf -
    rm -f "$parts"/cifar10.tar.part*   # the unpacked copy is what the runs read
    echo "CIFAR-10 unpacked to $data"
fi

sweep_file="${SWEEP_FILE:-experiments/sweeps/full_scale.yaml}"
vargs=(); [[ "$variant" != "-" ]] && vargs=(--variant "$variant")   # '-': the file without a variant
runs="${LWT_RUNS:-runs}"   # keep runs/: cpu_matched names its greedy sources under runs/sweeps/
cd "$repo"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi: not on a GPU"
start=$(date +%s)
set +e
timeout --signal=INT --kill-after=45 "${LIMIT_S:-480}" "$py" -m lwt sweep "$sweep_file" "${vargs[@]}" \
    --workers 1 "data.root=$data" "logging.out_dir=$runs" data.on_device=true trainer.progress_bar=false \
    logging.wandb=disabled "$@"
rc=$?
set -e
echo "[gpu_full_scale] sweep exit $rc after $(( $(date +%s) - start )) s (124/130: cut at LIMIT_S; call again)"

# what comes back, as one file: the sweep's table and run archive (the committed archive updated with this
# machine's runs) and its run folders without checkpoints
out="${OUT:-$repo/runs/gpu_out}"
name=$("$py" -c "import sys; from lwt.sweep.spec import load_sweep; print(load_sweep(sys.argv[1], None if sys.argv[2] == \"-\" else sys.argv[2]).name)" \
       "$sweep_file" "$variant")
stage="${TMPDIR:-/tmp}/lwt_gpu_stage/$name"
if [[ -d "$runs/sweeps/$name" ]]; then
    rm -rf "$stage" && mkdir -p "$stage" "$out"
    update=()
    if [[ -f "results/${name}_runs.jsonl" ]]; then cp "results/${name}_runs.jsonl" "$stage/"; update=(--update); fi
    "$py" -m lwt results "$runs" --sweep "$name" "${update[@]}" --out "$stage/$name.csv" || true
    mkdir -p "$stage/runs" && tar -C "$runs/sweeps/$name" -cf - --exclude='*.ckpt' . | tar -C "$stage/runs" -xf -
    tar -C "$(dirname "$stage")" -czf "$out/$name.tar.gz" "$name"
    ls -l "$out/$name.tar.gz"
fi
"$py" -m lwt sweep "$sweep_file" "${vargs[@]}" "data.root=$data" "logging.out_dir=$runs" "$@" --dry-run | head -60 || true
exit $(( rc == 124 || rc == 130 ? 0 : rc ))

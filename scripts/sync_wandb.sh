#!/usr/bin/env bash
# Upload lwt's offline W&B runs (runs/<experiment>/<run_name>/wandb/offline-run-*) with one `wandb sync` call.
#   scripts/sync_wandb.sh [--dry-run] [RUNS_DIR] [-- WANDB_SYNC_OPTIONS...]
# RUNS_DIR defaults to runs (logging.out_dir). --dry-run lists the runs found and uploads nothing. Options after
# `--` go to `wandb sync` (see `wandb sync --help`), e.g. `-- --project lwt --entity my-team` or
# `-- --include-synced`. Runs already uploaded (wandb marks them) are skipped by `wandb sync` itself, so
# rerunning this after more training uploads only the new runs. Log in once first: `wandb login`.
set -euo pipefail

usage() { sed -n '2,7s/^# \{0,1\}//p' "$0"; }

dry_run=0
runs_dir=runs
runs_dir_given=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) dry_run=1 ;;
        -h | --help) usage; exit 0 ;;
        --) shift; break ;;
        -*) echo "sync_wandb: unknown option $1 (wandb sync options go after --)" >&2; usage >&2; exit 2 ;;
        *)
            if [ $runs_dir_given -eq 1 ]; then
                echo "sync_wandb: one RUNS_DIR only (got $runs_dir and $1)" >&2; exit 2
            fi
            runs_dir=$1 runs_dir_given=1 ;;
    esac
    shift
done

if [ ! -d "$runs_dir" ]; then
    echo "sync_wandb: $runs_dir is not a directory" >&2
    exit 1
fi
mapfile -d '' runs < <(find "$runs_dir" -type d -name 'offline-run-*' -print0 | sort -z)
if [ ${#runs[@]} -eq 0 ]; then
    echo "sync_wandb: no offline W&B runs (offline-run-*) under $runs_dir" >&2
    exit 1
fi
echo "sync_wandb: ${#runs[@]} offline W&B run(s) under $runs_dir"
if [ $dry_run -eq 1 ]; then
    printf '%s\n' "${runs[@]}"
    exit 0
fi
if ! command -v wandb > /dev/null; then
    echo "sync_wandb: 'wandb' is not on PATH: activate the environment lwt is installed in" >&2
    exit 1
fi
# one call: folders of one resumed run (same id) are then uploaded in order of their start time
exec wandb sync "$@" "${runs[@]}"

#!/usr/bin/env python
"""The view cache's accuracy check: test accuracy per depth of greedy runs with ``trainer.prefix_views=V``
minus the same seed's run without the cache, paired by seed, from the committed run archives only.

    python scripts/view_cache_paired.py [--margin 1.0]

Cache arm: results/view_cache_cpu_runs.jsonl; no-cache arm: the greedy runs of the same cell in
results/early_overfitting_all_stages_cpu_runs.jsonl (1,000 images, k=2; same lr, overrides and seeds). Each
interval is lwt's paired interval (lwt.report.stats.paired_effect) with the test-set term estimated from the
archived per-image test outputs (the same 10,000 images in both arms) and the seeds-and-images bootstrap. A V
passes when every depth's 95 % interval lies inside +-margin points (docs/scaling.md): only then may claim runs
use it.
"""

import argparse
from pathlib import Path

from lwt.report.stats import paired_effect
from lwt.report.tables import read_archive
from lwt.run.per_image import read_archived

RESULTS = Path(__file__).resolve().parents[1] / "results"


def correct(jsonl: Path, run: dict, depth: int):
    """(N_test,) 0/1 of the run's prediction at ``depth`` on each test image, from its archived per-image file."""
    return read_archived(jsonl, run).correct("test", depth).astype(float)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--margin", type=float, default=1.0, help="points (default 1.0)")
    args = parser.parse_args()
    base_jsonl = RESULTS / "early_overfitting_all_stages_cpu_runs.jsonl"
    cached_jsonl = RESULTS / "view_cache_cpu_runs.jsonl"
    base = {r["result"].seed: r for r in read_archive(base_jsonl)
            if r["result"].mode == "greedy" and r["config"].get("data.train_subset") == 1000
            and r["config"].get("model.aux.k") == 2}
    cached = read_archive(cached_jsonl)
    views = sorted({r["config"]["trainer.prefix_views"] for r in cached})
    print(f"| V | seeds | {' | '.join(f'depth {d}' for d in range(1, 9))} | passes (+-{args.margin:g}) |")
    print("|---|---|" + "---|" * 8 + "---|")
    for v in views:
        runs = [r for r in cached if r["config"]["trainer.prefix_views"] == v and r["result"].seed in base]
        cells, passes = [], True
        for d in range(1, 9):
            images = [100 * (correct(cached_jsonl, r, d) - correct(base_jsonl, base[r["result"].seed], d))
                      for r in runs]
            effect = paired_effect([float(x.mean()) for x in images], images=images)
            if effect.lo is None:
                cells.append(f"{effect.mean:+.2f}")
                passes = False
                continue
            cells.append(f"{effect.mean:+.2f} [{effect.lo:+.2f}, {effect.hi:+.2f}]")
            passes = passes and -args.margin < effect.lo and effect.hi < args.margin
        seeds = " ".join(str(r["result"].seed) for r in runs)
        print(f"| {v} | {seeds} | {' | '.join(cells)} | {'yes' if passes else 'no'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``lwt bench``: is greedy training as cheap as one block, and is lwt's machinery free? Measured in one
process, back to back, on the same models and real CIFAR-10 batches; prints ratios, writes JSON.

Sections: (a) greedy.py, a greedy stage with cached / recomputed prefix / a naive loop; (b, c) e2e.py, E2E
through Lightning / a bare loop, and the data path's share of a step; (d) memory.py, peak memory of a greedy
stage / E2E; (e) floor.py, a stage against its floor (block + head alone) and what its evaluation costs; (f)
cpu.py, opt-in (``--sections cpu``): CPU settings for sweeps; (g) views.py, opt-in (``--sections views``):
augmented training from cached views (trainer.prefix_views) per stage against the floor. Throughputs are the
best of alternating rounds: other load on the machine only slows a round.
"""

from __future__ import annotations

import operator
import os
import platform
import time
from functools import reduce
from pathlib import Path

from lwt.console import add_quiet_flag

TARGETS = {  # what lwt's speed and memory must reach: (result key, comparison, bound)
    "greedy cached, float32 / naive (belilovsky_k2 stage 3)": ("greedy.cached_over_naive", ">=", 2.5),
    "greedy cached, lwt default precision / naive": ("greedy.default_over_naive", ">=", 2.5),
    "E2E Lightning / bare loop (vgg11)": ("e2e.lightning_over_bare", ">=", 0.95),
    "data path share of a step (vgg11)": ("e2e.data_share", "<=", 0.05),
    "greedy stage peak memory / E2E (vgg16, b128)": ("memory.greedy_over_e2e", "<=", 0.5),
    # a cached greedy stage near its floor, and incremental caches at least as fast as recomputing the prefix
    "lwt cached stage / floor (belilovsky_k2 stage 3)": ("floor.training.lwt_over_floor", ">=", 0.8),
    "stage 4 wall time, recompute / incremental": ("floor.evaluation.stage_recompute_over_incremental", ">=", 1.0),
    "stage 4 eval prefix cost / one block's forward": ("floor.evaluation.build_over_block", "<=", 1.1),
    # augmented training from cached views (trainer.prefix_views), the views' build amortised over the stage
    "stage 3 with view cache / floor, build amortised": ("views.by_stage.3.amortised.over_floor", ">=", 0.85),
    "stage 4 with view cache / floor, build amortised": ("views.by_stage.4.amortised.over_floor", ">=", 0.85),
}
SECTIONS = ("greedy", "e2e", "memory", "floor")  # the default; "views" and "cpu" only when asked for
ALL_SECTIONS = (*SECTIONS, "views", "cpu")


def add_subparser(sub) -> None:
    p = sub.add_parser("bench", help="speed and memory of greedy stages vs naive and E2E (ratios + JSON)")
    p.add_argument("--quick", action="store_true", help="fewer steps and rounds, 1 memory stage (2 cores: ~14 min)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {','.join(ALL_SECTIONS)} (default: all but views, cpu)")
    p.add_argument("--out", default="runs/bench/bench.json", help="JSON output (default: runs/bench/bench.json)")
    p.add_argument("--data-root", help="where cifar-10-batches-py is (default: $LWT_DATA_DIR, else ./data)")
    add_quiet_flag(p)
    p.set_defaults(func=cmd_bench)


def table(result: dict) -> str:
    lines = [f"lwt bench on {result['device']} ({result['host']}), {'quick' if result['quick'] else 'full'}"]
    g, e, m, f = (result.get(k) for k in SECTIONS)
    if g:
        ips = g["images_per_s"]
        lines += [f"  greedy stage {g['stage']} of {g['model']}, images/s: cached {ips['cached']:.0f} "
                  f"({g['default_precision']}: {ips['default']:.0f}), "
                  f"recompute {ips['recompute']:.0f}, naive {ips['naive']:.0f}; "
                  f"cache built once in {g['cache_build_s']:.2f}s for {g['cache_build_images']} images",
                  f"    cached / recompute {g['cached_over_recompute']:.2f}x, recompute / naive "
                  f"{g['recompute_over_naive']:.2f}x"]
    if e:
        lines.append(f"  E2E {e['model']}, images/s: Lightning {e['images_per_s']['lightning']:.0f}, "
                     f"bare loop {e['images_per_s']['bare']:.0f}")
    if m:
        per = ", ".join(f"{k}: {v / 2**20:.0f}" for k, v in m["stage_bytes"].items())
        lines.append(f"  peak memory delta ({m['kind']}), MiB: E2E {m['e2e_bytes'] / 2**20:.0f}; stages {per}")
    if f:
        lines += floor_lines(f)
    if result.get("views"):
        from lwt.bench.views import lines as views_lines

        lines += views_lines(result["views"])
    if result.get("cpu"):
        from lwt.bench.cpu import lines as cpu_lines

        lines += cpu_lines(result["cpu"])
    lines.append(f"  {'ratio':<56} {'measured':>9}  target")
    for name, (key, op, bound) in TARGETS.items():
        try:
            value = reduce(operator.getitem, key.split("."), result)
        except KeyError:
            continue
        ok = value >= bound if op == ">=" else value <= bound
        lines.append(f"  {name:<56} {value:>9.3f}  {op} {bound}  {'met' if ok else 'NOT met'}")
    return "\n".join(lines)


def floor_lines(f: dict) -> list[str]:
    t, ev = f["training"], f["evaluation"]
    best, med, spr = t["images_per_s"], t["median_images_per_s"], t["round_spread"]
    inc, rec = ev["seconds"]["incremental"], ev["seconds"]["recompute"]
    return [
        f"  floor, stage {t['stage']} of {f['model']}, images/s best / median (spread over {len(t['rounds']['lwt'])} "
        f"rounds): block+head alone {best['floor']:.1f} / {med['floor']:.1f} ({spr['floor']:.1%}), "
        f"lwt cached stage {best['lwt']:.1f} / {med['lwt']:.1f} ({spr['lwt']:.1%})",
        f"  whole stage {ev['stage']} ({ev['train_images']} train, {ev['evaluated_images']} val+test images), s: "
        f"incremental {inc['stage_s']:.1f} (caches {inc['build_s']:.1f}, train {inc['train_s']:.1f}, "
        f"val {inc['val_s']:.1f}, test {inc['test_s']:.1f}), recompute {rec['stage_s']:.1f} (caches "
        f"{rec['build_s']:.1f}); evaluation {inc['eval_s']:.1f} vs {rec['eval_s']:.1f}",
        f"    one block's forward over the evaluated images {ev['block_forward_s']:.2f}s, the stage's readout "
        f"{ev['readout_forward_s']:.2f}s; caches / one block: incremental {ev['build_over_block']:.2f}x, "
        f"recompute {ev['build_recompute_over_block']:.2f}x; evaluation / (block + readout) "
        f"{ev['eval_over_floor']:.2f}x",
    ]


def pick_device(name: str):
    """``--device``; a CUDA device asked for where there is none falls back to the CPU, said in one line."""
    import re

    import torch

    from lwt.errors import LwtError

    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise LwtError(f"--device {name!r} is not a device lwt bench measures on; valid: auto, cpu, cuda, "
                       "cuda:N (a GPU's index)")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        print(f"[lwt] bench: --device {name} asked for, but torch {torch.__version__} sees no CUDA device; "
              "measuring on the CPU", flush=True)
        name = "cpu"
    return torch.device(name)


def cmd_bench(args) -> int:
    import torch

    from lwt.bench import cpu, e2e, floor, greedy, memory, views
    from lwt.bench.common import FULL, QUICK
    from lwt.console import advance, bar, set_quiet
    from lwt.errors import LwtError
    from lwt.run.dir import atomic_write_json, git_revision

    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(ALL_SECTIONS))
    if unknown:
        raise LwtError(f"--sections: unknown {', '.join(unknown)}; choose from {', '.join(ALL_SECTIONS)}")
    if args.data_root:
        os.environ["LWT_DATA_DIR"] = args.data_root
    device = pick_device(args.device)
    size = QUICK if args.quick else FULL
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    result = {"device": what,
              "host": platform.node(), "quick": args.quick, "git_revision": git_revision(),
              "torch": torch.__version__, "size": vars(size)}
    start = time.perf_counter()
    set_quiet(args.quiet)
    # one unit per measured round (a memory child process, a CPU-settings section): the ETA assumes they cost alike
    units = {"greedy": size.rounds, "e2e": size.e2e_rounds, "memory": 1 + len(size.memory_stages or [None]),
             "floor": 2 * size.floor_rounds + size.eval_rounds, "views": 2 * size.floor_rounds, "cpu": 1}
    with bar(sum(units[s] for s in sections), "bench", unit="round"):
        if "greedy" in sections:
            result["greedy"] = greedy.run(size, device)
        if "e2e" in sections:
            result["e2e"] = e2e.run(size, device)
        if "memory" in sections:
            result["memory"] = memory.run(size.memory_stages, str(device))
        if "floor" in sections:
            result["floor"] = floor.run(size, device)
        if "views" in sections:
            result["views"] = views.run(size, device)
        if "cpu" in sections:
            result["cpu"] = cpu.run(rounds=1 if args.quick else 2)
            advance(1, "cpu")
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(table(result))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, result)
    print(f"written: {out} ({result['seconds']:.0f}s)")
    return 0

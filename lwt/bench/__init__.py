"""``lwt bench``: is greedy training as cheap as one block, and is lwt's machinery free? Measured in one
process, back to back, on the same models and real CIFAR-10 batches; prints ratios, writes JSON.

Sections: (a) greedy stage throughput, cached prefix / recomputed prefix / naive loop (lwt/bench/greedy.py);
(b) E2E through Lightning / a bare loop and (c) the data path's share of a step (lwt/bench/e2e.py);
(d) peak memory of a greedy stage / E2E (lwt/bench/memory.py, one child process per measurement).
Throughputs are the best of ``rounds`` alternating rounds: other load on the machine only slows a round.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

TARGETS = {  # issue 6: (result key, comparison, bound)
    "greedy cached, float32 / naive (belilovsky_k2 stage 3)": ("greedy.cached_over_naive", ">=", 2.5),
    "greedy cached, lwt default precision / naive": ("greedy.default_over_naive", ">=", 2.5),
    "E2E Lightning / bare loop (vgg11)": ("e2e.lightning_over_bare", ">=", 0.95),
    "data path share of a step (vgg11)": ("e2e.data_share", "<=", 0.05),
    "greedy stage peak memory / E2E (vgg16, b128)": ("memory.greedy_over_e2e", "<=", 0.5),
}


def add_subparser(sub) -> None:
    p = sub.add_parser("bench", help="speed and memory of greedy stages vs naive and E2E (ratios + JSON)")
    p.add_argument("--quick", action="store_true", help="fewer steps and rounds, 2 memory stages (CPU: < 3 min)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--sections", default="greedy,e2e,memory", help="comma-separated subset of greedy,e2e,memory")
    p.add_argument("--out", default="runs/bench/bench.json", help="JSON output (default: runs/bench/bench.json)")
    p.add_argument("--data-root", help="where cifar-10-batches-py is (default: $LWT_DATA_DIR, else ./data)")
    p.set_defaults(func=cmd_bench)


def _get(result: dict, dotted: str):
    for part in dotted.split("."):
        result = result[part]
    return result


def table(result: dict) -> str:
    lines = [f"lwt bench on {result['device']} ({result['host']}), {'quick' if result['quick'] else 'full'}"]
    g, e, m = result.get("greedy"), result.get("e2e"), result.get("memory")
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
    lines.append(f"  {'ratio':<56} {'measured':>9}  target")
    for name, (key, op, bound) in TARGETS.items():
        try:
            value = _get(result, key)
        except KeyError:
            continue
        ok = value >= bound if op == ">=" else value <= bound
        lines.append(f"  {name:<56} {value:>9.3f}  {op} {bound}  {'met' if ok else 'NOT met'}")
    return "\n".join(lines)


def cmd_bench(args) -> int:
    import torch

    from lwt.bench import e2e, greedy, memory
    from lwt.bench.common import FULL, QUICK
    from lwt.errors import LwtError
    from lwt.rundir import atomic_write_json, git_revision

    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - {"greedy", "e2e", "memory"})
    if unknown:
        raise LwtError(f"--sections: unknown {', '.join(unknown)}; choose from greedy, e2e, memory")
    if args.data_root:
        os.environ["LWT_DATA_DIR"] = args.data_root
    name = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    size = QUICK if args.quick else FULL
    what = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    result = {"device": what,
              "host": platform.node(), "quick": args.quick, "git_revision": git_revision(),
              "torch": torch.__version__, "size": vars(size)}
    start = time.perf_counter()
    if "greedy" in sections:
        result["greedy"] = greedy.run(size, device)
    if "e2e" in sections:
        result["e2e"] = e2e.run(size, device)
    if "memory" in sections:
        result["memory"] = memory.run(size.memory_stages, str(device))
    result["seconds"] = round(time.perf_counter() - start, 1)
    print(table(result))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, result)
    print(f"written: {out} ({result['seconds']:.0f}s)")
    return 0

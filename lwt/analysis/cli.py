"""``lwt gap | probe | cka | critical``: measurements on finished run directories.

Each prints a table and writes its JSON into the (first) run directory, atomically. The parsers are
added to the ``lwt`` command by ``add_parsers``; heavy imports wait until a command runs.
"""

from __future__ import annotations

import re
from pathlib import Path

OVERRIDES_HELP = "analysis.* overrides (e.g. analysis.probe_epochs=5), data.root=, trainer.accelerator="


def _write(path: Path, data: dict) -> None:
    from lwt.rundir import atomic_write_json

    atomic_write_json(path, data)
    print(f"written: {path}")


def cmd_gap(args) -> int:
    from lwt.analysis.common import open_run
    from lwt.analysis.gap import gap_of_run, gap_table

    run = open_run(args.run_dir, args.overrides)
    report = gap_of_run(run)
    print(gap_table(report["rows"], f"per-layer accuracy: {report['run']} ({report['mode']}), "
                                    "train = un-augmented training images, gap = train - test"))
    _write(run.run_dir / "gap.json", report)
    return 0


def cmd_probe(args) -> int:
    from lwt.analysis.common import open_run
    from lwt.analysis.probes import probe_table, probes_of_run

    run = open_run(args.run_dir, args.overrides)
    report = probes_of_run(run)
    p = report["protocol"]
    print(probe_table(report["rows"], f"linear probes: {report['run']} ({report['mode']}); pool {p['pool']}, "
                                      f"{p['epochs']} epochs {p['optimizer']} lr {p['lr']}, seed {p['seed']}"))
    _write(run.run_dir / "probes.json", report)
    return 0


def cmd_cka(args) -> int:
    from lwt.analysis.cka import cka_of_runs, cka_table
    from lwt.analysis.common import open_run
    from lwt.plots import cka_heatmap

    a, b = open_run(args.run_a, args.overrides), open_run(args.run_b)
    report = cka_of_runs(a, b)
    print(cka_table(report))
    # greedy and E2E runs of one architecture often share a run_name, so the other's experiment is in the name
    other = re.sub(r"[^A-Za-z0-9_.=+-]", "_", f"{b.cfg.experiment}__{b.cfg.run_name}")
    _write(a.run_dir / f"cka_{other}.json", report)
    out = Path(args.out) if args.out else a.run_dir / f"cka_{other}"
    paths = cka_heatmap(report["cka"], report["depths_a"], report["depths_b"], out,
                        label_a=f"{a.cfg.experiment} ({a.mode})", label_b=f"{b.cfg.experiment} ({b.mode})",
                        title=f"linear CKA, {report['samples']} test images")
    print("figure: " + ", ".join(map(str, paths)))
    return 0


def cmd_critical(args) -> int:
    from lwt.analysis.common import open_run
    from lwt.analysis.critical import critical_report, critical_table
    from lwt.errors import LwtError
    from lwt.rundir import read_result

    run_dir = Path(args.run_dir)
    if not (run_dir / "result.json").is_file():
        open_run(run_dir)  # raises the standard "not a finished run" message
    result = read_result(run_dir / "result.json")
    try:
        report = critical_report(result)
    except (KeyError, TypeError, ValueError) as e:
        raise LwtError(f"{run_dir / 'result.json'} lacks what the critical-layer report reads ({e!r}); "
                       "it was not written by `lwt train`, or was edited") from None
    print(critical_table(report))
    _write(run_dir / "critical.json", report)
    return 0


def add_parsers(sub) -> None:
    p = sub.add_parser("gap", help="per-layer train (un-augmented) / val / test accuracy and gap of a finished run")
    p.add_argument("run_dir", help="a finished run directory (holds result.json and model.pt)")
    p.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    p.set_defaults(func=cmd_gap)

    p = sub.add_parser("probe", help="linear probes on the frozen output of every block of a finished run")
    p.add_argument("run_dir", help="a finished run directory (holds result.json and model.pt)")
    p.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("cka", help="linear CKA between every block of two finished runs, with a heatmap")
    p.add_argument("run_a", help="first run directory (rows; the JSON and figure are written here)")
    p.add_argument("run_b", help="second run directory (columns), trained on the same data")
    p.add_argument("overrides", nargs="*", help="analysis.cka_samples=, analysis.seed=, data.root=, ...")
    p.add_argument("--out", help="figure path stem (default: RUN_A/cka_<other>); .png and .pdf are written")
    p.set_defaults(func=cmd_cka)

    p = sub.add_parser("critical", help="critical-layer report of a greedy run: accuracy vs depth, marginal gains")
    p.add_argument("run_dir", help="a finished greedy run directory (only result.json is read)")
    p.set_defaults(func=cmd_critical)

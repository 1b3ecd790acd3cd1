"""``lwt gap | probe | cka | critical``: measurements on finished run directories. Each prints a table, writes its
JSON and figure into the (first) run folder and logs both as a W&B analysis run (``--wandb``); long ones draw a
progress bar (``--quiet``: none). ``add_parsers`` adds them to ``lwt``; heavy imports wait until a command runs.
"""

from __future__ import annotations

import re
from pathlib import Path

OVERRIDES_HELP = "analysis.* overrides (e.g. analysis.probe_epochs=5), data.root=, trainer.accelerator="


def _write(path: Path, data: dict) -> None:
    from lwt.run.dir import atomic_write_json

    atomic_write_json(path, data)
    print(f"written: {path}")


def _figure(run_dir: Path, name: str, rows: list[dict], colour, series: dict[str, tuple[str, dict]],
            title: str) -> Path:
    """``run_dir/name`` .png and .pdf: a line per depth series (label -> (key of ``rows``, style but colour))."""
    from lwt.analysis.plots import depth_series_figure

    paths = depth_series_figure([r["depth"] for r in rows], {
        label: ([r[key] for r in rows], dict(color=colour, **style)) for label, (key, style) in series.items()},
        run_dir / name, title=title)
    print("figure: " + ", ".join(map(str, paths)))
    return paths[0]


TRAIN, VAL, TEST = dict(linestyle="--", marker="o"), dict(linestyle=":", marker="^"), dict(marker="s")


def cmd_per_depth(args) -> int:
    """``lwt gap`` / ``lwt probe``: measure a finished run, print the table, write its JSON and figure into the
    run folder and log both as a W&B analysis run in the training run's group."""
    from lwt.analysis.gap import gap_of_run, gap_table
    from lwt.analysis.probes import probe_table, probes_of_run
    from lwt.analysis.style import MODES, arch_label
    from lwt.analysis.wandb_log import attach
    from lwt.console import set_quiet
    from lwt.run.load import open_run

    set_quiet(getattr(args, "quiet", False))
    run = open_run(args.run_dir, args.overrides)
    if args.command == "gap":
        report, name, what = gap_of_run(run), "gap", "Per-layer accuracy"
        print(gap_table(report["rows"], f"per-layer accuracy: {report['run']} ({report['mode']}), "
                                        "train = un-augmented training images, gap = train - test"))
        series = {"train (un-augmented)": ("train_acc", TRAIN), "val": ("val_acc", VAL), "test": ("test_acc", TEST)}
    else:
        report, name, what = probes_of_run(run), "probes", "Linear probes"
        p = report["protocol"]
        print(probe_table(report["rows"], f"linear probes: {report['run']} ({report['mode']}); pool {p['pool']}, "
                                          f"{p['epochs']} epochs {p['optimizer']} lr {p['lr']}, seed {p['seed']}"))
        series = {"probe train": ("train_acc", TRAIN), "probe test": ("test_acc", TEST)}
    _write(run.run_dir / f"{name}.json", report)
    png = _figure(run.run_dir, name, report["rows"], MODES[run.mode]["color"] if run.mode in MODES else None, series,
                  f"{what}, {arch_label(report)}, {MODES.get(run.mode, {}).get('label', run.mode)}")
    attach(run.run_dir, run.cfg, args.wandb, args.command, {name: report["rows"]}, {name: png})
    return 0


def cmd_cka(args) -> int:
    from lwt.analysis.cka import cka_of_runs, cka_table
    from lwt.analysis.plots import cka_heatmap
    from lwt.analysis.style import MODES, arch_label
    from lwt.analysis.wandb_log import attach
    from lwt.console import set_quiet
    from lwt.run.load import open_run

    set_quiet(getattr(args, "quiet", False))
    a, b = open_run(args.run_a, args.overrides), open_run(args.run_b)
    report = cka_of_runs(a, b)
    print(cka_table(report))
    # greedy and E2E runs of one architecture often share a run_name, so the other's experiment is in the name
    other = re.sub(r"[^A-Za-z0-9_.=+-]", "_", f"{b.cfg.experiment}__{b.cfg.run_name}")
    _write(a.run_dir / f"cka_{other}.json", report)
    out = Path(args.out) if args.out else a.run_dir / f"cka_{other}"

    def who(run, key: str) -> str:
        return (f"{arch_label({'model': report[f'model_{key}'], 'git_revision': report.get(f'git_revision_{key}')})}"
                f" ({MODES.get(run.mode, {}).get('label', run.mode)})")

    paths = cka_heatmap(report["cka"], report["depths_a"], report["depths_b"], out,
                        label_a=who(a, "a"), label_b=who(b, "b"),
                        title=f"linear CKA, {report['samples']:,} test images")
    print("figure: " + ", ".join(map(str, paths)))
    # long form, one row per pair of blocks, the other run named in each row: one key `cka` whatever B is
    # (W&B keeps each comparison as its own history step; keys longer than ~100 characters are refused)
    cells = [{"run_b": report["b"], "depth_a": da, "depth_b": db, "cka": v}
             for da, row in zip(report["depths_a"], report["cka"]) for db, v in zip(report["depths_b"], row)]
    attach(a.run_dir, a.cfg, args.wandb, "cka", {"cka": cells},
           {"cka": next(p for p in paths if p.suffix == ".png")},
           caption=f"rows: {report['a']}, columns: {report['b']}")
    return 0


def per_image_of(run_dir: Path):
    """The run folder's per-image predictions (``depths``, ``val_correct`` (D, N) bool), or None for a run that
    has none (one trained before runs recorded them)."""
    from lwt.run.per_image import has_per_image, read_per_image

    return read_per_image(run_dir) if has_per_image(run_dir) else None


def cmd_critical(args) -> int:
    from lwt.analysis.critical import critical_report, critical_table
    from lwt.analysis.style import MODES, arch_label
    from lwt.analysis.wandb_log import attach
    from lwt.config import load_config
    from lwt.errors import LwtError
    from lwt.run.load import open_run
    from lwt.run.result import RunResult

    run_dir = Path(args.run_dir)
    if not (run_dir / "result.json").is_file():
        open_run(run_dir)  # raises the standard "not a finished run" message
    if not 0 < args.alpha < 1:
        raise LwtError(f"--alpha {args.alpha} must be in (0, 1), e.g. 0.05")
    result = RunResult.read(run_dir / "result.json")
    per_image = per_image_of(run_dir)
    try:
        report = critical_report(result, per_image, args.alpha)
    except (KeyError, TypeError, ValueError) as e:
        what = f"{run_dir / 'result.json'}" + (" or the run's per-image predictions" if per_image is not None else "")
        raise LwtError(f"{what} lacks what the critical-layer report reads ({e!r}); it was not written by "
                       "`lwt train`, or was edited") from None
    print(critical_table(report))
    _write(run_dir / "critical.json", report)
    crit = report["critical_layer"]
    png = _figure(run_dir, "critical", report["curve"], MODES["greedy"]["color"],
                  {"val": ("val_acc", VAL), "test": ("test_acc", TEST)},
                  f"Critical layer, {arch_label({'model': report['model'], 'git_revision': result.git_revision})}: "
                  + (f"stage {crit}" if crit is not None else "not determined"))
    if (run_dir / "config.yaml").is_file():  # the W&B run's project and names are in it
        attach(run_dir, load_config(run_dir / "config.yaml"), args.wandb, "critical", {"critical": report["curve"]},
               {"critical": png})
    return 0


def add_parsers(sub) -> None:
    from lwt.analysis.wandb_log import add_wandb_flag
    from lwt.console import add_quiet_flag

    for name, what in (("gap", "per-layer train (un-augmented) / val / test accuracy and gap of a finished run"),
                       ("probe", "linear probes on the frozen output of every block of a finished run")):
        p = sub.add_parser(name, help=what)
        p.add_argument("run_dir", help="a finished run directory (holds result.json and model.pt)")
        p.add_argument("overrides", nargs="*", help=OVERRIDES_HELP)
        add_wandb_flag(p)
        add_quiet_flag(p)
        p.set_defaults(func=cmd_per_depth)

    p = sub.add_parser("cka", help="linear CKA between every block of two finished runs, with a heatmap")
    p.add_argument("run_a", help="first run directory (rows; the JSON and figure are written here, and its "
                                 "W&B group gets the analysis run)")
    p.add_argument("run_b", help="second run directory (columns), trained on the same data")
    p.add_argument("overrides", nargs="*", help="analysis.cka_samples=, analysis.seed=, data.root=, ...")
    p.add_argument("--out", help="figure path stem (default: RUN_A/cka_<other>); .png and .pdf are written")
    add_wandb_flag(p)
    add_quiet_flag(p)
    p.set_defaults(func=cmd_cka)

    p = sub.add_parser("critical", help="critical-layer report of a greedy run: accuracy vs depth, marginal gains, "
                                        "L* by the paired test on per-image validation correctness")
    p.add_argument("run_dir", help="a finished greedy run directory (result.json and its per-image predictions are "
                                   "read)")
    p.add_argument("--alpha", type=float, default=0.05, help="level of the paired test (default 0.05)")
    add_wandb_flag(p)
    p.set_defaults(func=cmd_critical)

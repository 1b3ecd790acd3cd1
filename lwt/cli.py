"""The ``lwt`` command: ``lwt train``, ``lwt demo``. ``python -m lwt`` is the same."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

from lwt.errors import Interrupted, LwtError, on_signal

# The demo: the protocol of docs/protocol.md in miniature: a 4-block narrow simple CNN (widths 16-128, a 2x2
# max-pool after every block but the last), greedy and end to end on the same 4,000 CIFAR-10 images, each on an
# annealed (cosine) budget long enough for its validation accuracy to flatten: greedy 8 epochs per stage, E2E
# 16 epochs. Learning rates: the protocol's validation choices (greedy 0.1, E2E 0.02). 2,000 test images.
# Sized for under 5 minutes on 2 CPU cores (docs/usage.md: measured time and numbers).
DEMO_NET = "simple_cnn"
# CIFAR-10 is downloaded with torchvision if it is not under the data root (offline: one clear message).
DEMO_OVERRIDES = ["data.download=true", "data.train_subset=4000", "data.val_size=1000", "data.test_subset=2000",
                  "model.widths=[16,32,64,128]", "trainer.progress_bar=false"]
DEMO_MODES = {"greedy": ["curriculum.stage_end=fixed", "curriculum.epochs_per_stage=8", "optim.lr=0.1"],
              "e2e": ["trainer.max_epochs=16", "optim.lr=0.02"]}


TRAIN_HELP = """Train one experiment: an experiment file (YAML) plus key=value overrides of any config key.

modes (the file's `mode:`, or mode=...):
  greedy  one stage per block: block k and its auxiliary head trained on the frozen blocks 1..k-1
  e2e     the whole network end to end (per-block readouts on detached features, for comparison)
  dgl     decoupled greedy: every stage at once, each block on the previous one's detached output

config keys: `lwt config schema [SECTION]` lists every key with its type, default, range and meaning
(the schema is lwt/config/schema.py; [how] marks keys that are not part of a run's identity), and
`lwt config show FILE [key=value ...]` prints the resolved config; an unknown key lists the valid ones.
Architectures: `lwt models`. Lists parse as YAML: model.widths=[64,128] trainer.devices=[0,1].

examples:
  lwt train experiments/cifar10/belilovsky_k2_greedy.yaml data.train_subset=10000
  lwt train cifar10/vgg11_e2e trainer.max_epochs=12 logging.wandb=disabled
  lwt train --resume runs/belilovsky_k2_greedy/seed0
"""


def cmd_train(args) -> int:
    from lwt.analysis.pipeline import run
    from lwt.config import load_config
    from lwt.run.result import stage_table
    from lwt.training.resume import resume_config

    experiment, overrides = args.experiment, list(args.overrides)
    if experiment is not None and "=" in experiment and not Path(experiment).is_file():
        experiment, overrides = None, [experiment, *overrides]  # `lwt train key=value --resume DIR`
    if args.resume is not None:
        if args.overwrite:
            raise LwtError("--resume continues a run and --overwrite starts it over; pass one of them")
        cfg = resume_config(args.resume, experiment, overrides)
        result = run(cfg, resume=args.resume, redo_stage=args.redo_stage)
    elif args.redo_stage is not None:
        raise LwtError("--redo-stage K retrains greedy stages K, K+1, ... of a resumed run; pass --resume RUN_DIR")
    elif experiment is None:
        raise LwtError("lwt train needs an experiment file, e.g. experiments/cifar10/belilovsky_k2_greedy.yaml "
                       "(or --resume RUN_DIR to continue a killed run)")
    else:
        result = run(load_config(experiment, overrides), overwrite=args.overwrite)
    print(stage_table(result))
    print(f"results: {result.run_dir}/result.json")
    return 0


def cmd_demo(args) -> int:
    from lwt.analysis.pipeline import run
    from lwt.analysis.plots import depth_figure
    from lwt.config import load_config
    from lwt.run.result import stage_table

    user = [f"logging.out_dir={args.out}", *args.overrides]  # last: they win
    results = []
    for mode, budget in DEMO_MODES.items():
        # lwt's own experiment files (lwt/config/files.py): found from any folder
        cfg = load_config(f"cifar10/{DEMO_NET}_{mode}", DEMO_OVERRIDES + budget + user)
        results.append(run(cfg, overwrite=True))
    for result in results:
        print("\n" + stage_table(result))
    from lwt.analysis.style import arch_label

    greedy, e2e = ({r.depth: r for r in result.per_layer} for result in results)
    print("\nby depth: test accuracy (%) and un-augmented train - test gap (points), greedy vs E2E")
    print("depth  greedy_test  e2e_test  greedy_gap  e2e_gap")
    for d in sorted(set(greedy) & set(e2e)):
        print(f"{d:5d}  {100 * greedy[d].test_acc:11.1f}  {100 * e2e[d].test_acc:8.1f}  "
              f"{100 * greedy[d].gap:+10.1f}  {100 * e2e[d].gap:+7.1f}")
    paths = depth_figure(results, Path(args.out) / "demo_depth_accuracy", train=True,
                         title=f"{arch_label({'model': DEMO_NET, 'git_revision': results[0].git_revision})}, "
                               f"CIFAR-10, {results[0].train_images:,} train images")
    print("\nfigure: " + ", ".join(map(str, paths)))
    return 0


def cmd_config(args) -> int:
    import yaml

    from lwt.config import load_config, schema_lines, to_dict

    if args.action == "schema" and len(args.args) < 2:
        print("\n".join(schema_lines(*args.args)))
    elif args.action == "show" and args.args:
        print(yaml.safe_dump(to_dict(load_config(args.args[0], args.args[1:])), sort_keys=False), end="")
    else:
        raise LwtError("give `lwt config show FILE [key=value ...]` or `lwt config schema [SECTION]`")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lwt", description="Greedy layerwise vs end-to-end training.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train one experiment (mode greedy, e2e or dgl, as its file says)",
                       description=TRAIN_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("experiment", nargs="?",
                   help="experiment YAML file, e.g. experiments/cifar10/belilovsky_k2_greedy.yaml, or an experiment "
                        "of lwt's by name, e.g. cifar10/belilovsky_k2_greedy")
    p.add_argument("overrides", nargs="*", help="key=value overrides (before or after the options), e.g. "
                   "data.train_subset=10000 trainer.devices=[0,1]")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished or unfinished run: deletes everything in its run directory "
                        "<logging.out_dir>/<experiment>/<run_name>, and only if lwt made that folder for a run")
    p.add_argument("--resume", metavar="RUN_DIR",
                   help="continue a killed run from its last checkpoint; its config.yaml is kept, so the "
                        "experiment file and overrides may be left out (given, they must agree with it)")
    p.add_argument("--redo-stage", type=int, metavar="K",
                   help="with --resume: forget greedy stages K, K+1, ... (rows and checkpoints) and retrain them, "
                        "e.g. when a finished stage's checkpoint is damaged")
    add_allow_class_path(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("config", help="the config schema (every key) or an experiment's resolved config",
                       description="lwt config schema [SECTION]: every key with type, default, range and meaning "
                       "([how]: not part of a run's identity). lwt config show FILE [key=value ...]: the resolved "
                       "config as YAML, as `lwt train` would save it.")
    p.add_argument("action", choices=["show", "schema"])
    p.add_argument("args", nargs="*", help="show: FILE [key=value ...]; schema: [SECTION]")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("demo", help="greedy vs E2E on a CIFAR-10 subset: tables + accuracy-vs-depth figure")
    p.add_argument("overrides", nargs="*", help="extra key=value overrides applied to both runs")
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.set_defaults(func=cmd_demo)

    from lwt.analysis.cli import add_parsers  # gap, probe, cka, critical: measurements on finished runs

    add_parsers(sub)

    from lwt import bench, sweep  # each verb's options live with its code
    from lwt.data import cli as data_cli
    from lwt.models import listing
    from lwt.report import claims, figures, wandb_runs
    from lwt.report import tables as results
    from lwt.sweep import tune

    listing.add_subparser(sub)

    sweep.add_subparser(sub)
    add_allow_class_path(sub.choices["sweep"])
    tune.add_subparser(sub)
    claims.add_subparser(sub)
    results.add_subparser(sub)
    figures.add_subparser(sub)
    wandb_runs.add_subparser(sub)  # lwt wandb export | dashboard | artifact
    bench.add_subparser(sub)
    data_cli.add_subparser(sub)
    return parser


def add_allow_class_path(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-class-path", action="store_true",
                   help="let trainer.callbacks / logging.loggers import classes outside lwt, lightning, "
                        "pytorch_lightning and torch (importing a class runs its module's code)")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    trailing = getattr(args, "trailing_overrides", None)  # lwt tune EXP --grid ... key=value: after the options
    if trailing is None and isinstance(getattr(args, "overrides", None), list):
        trailing = "overrides"  # lwt sweep FILE --variant cpu key=value: overrides may follow the options too
    if extra and not (trailing and all("=" in x and not x.startswith("-") for x in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        getattr(args, trailing).extend(extra)
    allow = os.environ.get("LWT_ALLOW_CLASS_PATH")  # --allow-class-path: for this command and its sweep workers
    if getattr(args, "allow_class_path", False):
        os.environ["LWT_ALLOW_CLASS_PATH"] = "1"
    main_thread = threading.current_thread() is threading.main_thread()  # only it may set signal handlers
    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if main_thread else {}
    try:
        code = args.func(args)
        sys.stdout.flush()  # here, where a closed pipe is caught below, not at exit
        return code
    except LwtError as e:
        print(f"lwt: error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"lwt: {interrupted_line(e)}", file=sys.stderr, flush=True)
        return 128 + e.signum  # 130 for SIGINT, 143 for SIGTERM, as a shell reports them
    except BrokenPipeError:  # `lwt ... | head`: the reader left; say nothing more (Python's recommended recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if allow is None:
            os.environ.pop("LWT_ALLOW_CLASS_PATH", None)
        else:
            os.environ["LWT_ALLOW_CLASS_PATH"] = allow


def interrupted_line(e: Interrupted) -> str:
    """Where an interrupted run stopped and how to continue it exactly (its checkpoints are atomic)."""
    what = f"stopped by {signal.Signals(e.signum).name}"
    if e.run_dir is None:
        return f"{what} before a run directory was written"
    where = f" during {e.where}" if e.where else ""
    return f"{what}{where}; continue it with: lwt train --resume {shlex.quote(str(e.run_dir))}"


if __name__ == "__main__":
    sys.exit(main())

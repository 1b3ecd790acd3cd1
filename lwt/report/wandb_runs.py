"""``lwt wandb export | dashboard | artifact``: W&B from finished run folders, and the dashboard that reads them.

``export`` turns run folders (``config.yaml`` + ``result.json``, ``metrics.jsonl`` when present) into offline W&B runs
filed and keyed as live logging files them (lwt.training.loggers: ``identity``, the axes, ``log_end``), ready for
``wandb sync``. ``dashboard`` writes the workspace's spec (``DASHBOARD``: sections of panels, each naming the keys it
plots) and, online with the ``dashboard`` extra (wandb-workspaces) installed, creates the workspace. ``artifact``
copies a model artifact of an offline run into a folder that ``lwt.load_run`` reads. docs/wandb.md says the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from lwt.errors import LwtError

EXPORT_DIR = "wandb_export"

# The dashboard: each panel names what it plots; `keys` lists every history/summary key it reads, `tables` the
# tables, `config` the config keys it groups or filters by (a test checks them against a real offline run).
DASHBOARD = [
    {"name": "Accuracy vs depth", "panels": [
        {"type": "line", "title": "test accuracy vs depth, greedy vs E2E", "x": "depth", "y": ["depth/test_acc"],
         "groupby": "mode"},
        {"type": "line", "title": "validation accuracy vs depth", "x": "depth", "y": ["depth/val_acc"],
         "groupby": "mode"},
        {"type": "line", "title": "train - test gap per depth (un-augmented train images)", "x": "depth",
         "y": ["depth/gap"], "groupby": "mode"},
    ]},
    {"name": "Training curves across stages", "panels": [
        # per epoch: train/loss_step is logged every trainer.log_every_n_steps steps, which a short stage never reaches
        {"type": "line", "title": "training loss, every stage on one axis", "x": "global_step",
         "y": ["train/loss_epoch"]},
        {"type": "line", "title": "validation accuracy", "x": "global_step", "y": ["val/acc"]},
        {"type": "line", "title": "learning rate (first optimizer)", "x": "global_step", "y": ["lr"]},
    ]},
    {"name": "Cost per stage", "panels": [
        {"type": "line", "title": "seconds per phase (greedy: per stage)", "x": "global_step",
         "y": ["cost/seconds"], "groupby": "mode"},
        {"type": "line", "title": "peak memory per phase (MB)", "x": "global_step", "y": ["cost/peak_memory_mb"],
         "groupby": "mode"},
        {"type": "table", "title": "stages: epochs, steps, seconds, images/s, FLOPs", "table": "stages"},
    ]},
    {"name": "Claims", "panels": [
        {"type": "bar", "title": "final, val-selected and ensemble test accuracy", "groupby": "mode",
         "metrics": ["final_test_acc", "selected_test_acc", "ensemble_test_acc", "best_val_acc"]},
        {"type": "bar", "title": "critical layer and training FLOPs", "groupby": "mode",
         "metrics": ["critical_layer", "train_flops"]},
        {"type": "runs", "title": "claims table: one row per run, filter by tag claim:<id>",
         "columns": ["final_test_acc", "best_val_acc", "selected_depth", "selected_test_acc", "critical_layer",
                     "train_flops"], "config": ["mode", "model.name", "data.name", "seed", "sweep"]},
    ]},
]


def spec(project: str, entity: str | None) -> dict:
    """The dashboard as data: where it goes and its sections (DASHBOARD); runs grouped by W&B group (greedy and
    E2E of one comparison together)."""
    return {"project": project, "entity": entity, "name": "lwt: greedy vs end-to-end",
            "runs": {"groupby": ["group"]}, "sections": DASHBOARD}


def referenced(dashboard: dict) -> dict[str, set[str]]:
    """Every key the dashboard's panels read: ``metrics`` (history or summary), ``tables``, ``config``."""
    out = {"metrics": set(), "tables": set(), "config": set()}
    for section in dashboard["sections"]:
        for panel in section["panels"]:
            out["metrics"].update([panel[k] for k in ("x",) if k in panel] + panel.get("y", [])
                                  + panel.get("metrics", []) + panel.get("columns", []))
            out["tables"].update([panel["table"]] if "table" in panel else [])
            out["config"].update(([panel["groupby"]] if "groupby" in panel else []) + panel.get("config", []))
    return out


# ---------------------------------------------------------------- export

def run_folders(root: Path) -> list[Path]:
    """The finished run folders under ``root`` (itself included): a ``result.json`` with a ``config.yaml`` beside."""
    if not root.is_dir():
        raise LwtError(f"{root} is not a folder; give a runs folder or a sweep folder (e.g. runs/ or "
                       "runs/sweeps/gap_cpu)")
    found = sorted(p.parent for p in root.rglob("result.json")
                   if (p.parent / "config.yaml").is_file() and "wandb" not in p.relative_to(root).parts)
    if not found:
        raise LwtError(f"no finished run under {root} (a run folder holds result.json and config.yaml)")
    return found


def export_id(run_dir: Path) -> str:
    """The W&B run id an exported run gets: the one live logging kept (``wandb_id.txt``), so the export and the
    live run are the same W&B run; else one derived from the folder, the same on every export."""
    from lwt.training.loggers import WANDB_ID

    kept = run_dir / WANDB_ID
    if kept.is_file():
        return kept.read_text().strip()
    digest = int(hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest(), 16)
    chars = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join(chars[(digest >> (6 * i)) % 36] for i in range(8))


def export_run(run_dir: Path, cfg, result, out: Path, project: str, entity: str | None) -> Path:
    """One finished run folder as an offline W&B run under ``out/wandb/``: config, name, group, job type and tags as
    live logging (``identity``), the rows of ``metrics.jsonl`` as they were logged, then what a live run ends with
    (``log_end``); its folder is returned."""
    import wandb

    from lwt.config import flatten, to_dict
    from lwt.training.loggers import METRICS, define_axes, define_step_metric, identity, log_end, read_metrics

    run = wandb.init(project=project, entity=entity, mode="offline", dir=str(out), id=export_id(run_dir),
                     **identity(cfg), config=flatten(to_dict(cfg)), settings=wandb.Settings(console="off",
                                                                                            silent=True))
    try:
        define_axes(run, cfg.mode == "greedy")
        defined = {"global_step", "depth", "stage"} | ({"test/acc", "test/loss"} if cfg.mode == "greedy" else set())
        for row in read_metrics(run_dir) if (run_dir / METRICS).is_file() else []:
            step = row.pop("step", None)
            for key in row.keys() - defined:
                define_step_metric(run, key)
                defined.add(key)
            run.log({**row, **({"trainer/global_step": step} if step is not None else {})})  # as Lightning's logger
        saved = result.to_json()
        if saved.get("per_layer"):
            rows = saved["per_layer"]
            run.log({"per_layer": wandb.Table(columns=list(rows[0]), data=[list(r.values()) for r in rows])})
        png = run_dir / "depth_accuracy.png"
        log_end(run, result, run_dir, png if png.is_file() else None,
                cfg.logging.log_model and (run_dir / "model.pt").is_file())
        where = Path(run.dir).parent
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()
    return where


def export(root: Path, out: Path | None, project: str | None, entity: str | None) -> list[Path]:
    """Every finished run under ``root`` exported (``export_run``) into ``out`` (default ``root/wandb_export``); each
    run's config and result are read first, so a bad folder stops the export before anything is written. A run
    already exported into ``out`` (its id's folder is there) is skipped."""
    from lwt.config import load_config
    from lwt.run.result import RunResult

    root = Path(root)
    out = Path(out) if out else root / EXPORT_DIR
    runs = []
    for run_dir in run_folders(root):
        if out.resolve() in run_dir.resolve().parents:
            continue
        try:
            runs.append((run_dir, load_config(run_dir / "config.yaml"), RunResult.read(run_dir / "result.json")))
        except LwtError as e:
            raise LwtError(f"{run_dir}: {e}") from None
        except (OSError, ValueError, TypeError, KeyError) as e:
            raise LwtError(f"{run_dir}: cannot read its config.yaml or result.json ({e})") from None
    written = []
    for run_dir, cfg, result in runs:
        run_id = export_id(run_dir)
        if list((out / "wandb").glob(f"offline-run-*-{run_id}")):
            print(f"skipped (already exported): {run_dir} ({run_id})")
            continue
        where = export_run(run_dir, cfg, result, out, project or cfg.logging.project, entity or cfg.logging.entity)
        print(f"exported: {run_dir} -> {where}")
        written.append(where)
    print(f"{len(written)} offline W&B run(s) in {out / 'wandb'}; upload: wandb sync {out / 'wandb'}/offline-run-*")
    return written


def export_results(table: Path, out: Path, project: str, entity: str | None) -> Path:
    """A results table of ``lwt results`` (``NAME.csv`` and, beside it, ``NAME_mean.csv``, ``NAME_paired.csv``,
    ``NAME_runs.jsonl``) as the dataset artifact ``results-NAME`` of an offline run (job type results, name
    ``results/NAME``) under ``out/wandb/``, with ``NAME.csv`` as the table ``results/NAME``; its folder."""
    import csv

    import wandb

    table = Path(table)
    if table.suffix != ".csv" or not table.is_file():
        raise LwtError(f"{table} is not a results table; give results/NAME.csv as `lwt results` writes it")
    name = table.stem
    with table.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise LwtError(f"{table} is empty")
    files = [table, *(p for p in (table.with_name(f"{name}{s}") for s in ("_mean.csv", "_paired.csv", "_runs.jsonl"))
                      if p.is_file())]
    run = wandb.init(project=project, entity=entity, mode="offline", dir=str(out), job_type="results",
                     name=f"results/{name}", tags=[f"results:{name}"], settings=wandb.Settings(console="off",
                                                                                               silent=True))
    artifact = wandb.Artifact(f"results-{name}", type="dataset", metadata={"runs": len(rows) - 1})
    for path in files:
        artifact.add_file(str(path), name=path.name)
    run.log({f"results/{name}": wandb.Table(columns=rows[0], data=rows[1:])})
    run.log_artifact(artifact, aliases=["latest"])
    where = Path(run.dir).parent
    run.finish()
    print(f"exported: {', '.join(str(p) for p in files)} -> {where} (artifact results-{name}); upload: "
          f"wandb sync {where}")
    return where


# ---------------------------------------------------------------- model artifacts of offline runs

def records(path: Path) -> list[dict]:
    """The records of an offline run (its folder or ``.wandb`` file), read by wandb's own reader (``wandb leet
    inspect --json``)."""
    out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(path)],
                         capture_output=True, text=True)
    if out.returncode:
        raise LwtError(f"wandb cannot read {path} as an offline run: {out.stderr.strip().splitlines()[-1:]}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def offline_artifact(run: Path, out: Path, name: str = "model") -> Path:
    """The files of the last artifact named ``<name>-<run id>`` that the offline run ``run`` logged, copied into
    ``out`` (from wandb's staging copies, which stay until the run is synced): for the model artifact, a folder
    that ``lwt.load_run(out)`` loads."""
    arts = [r["artifact"] for r in records(run) if r["type"] == "artifact"
            and r["artifact"].get("name", "").startswith(f"{name}-")]
    if not arts:
        raise LwtError(f"{run} logged no artifact named {name}-<run id> (trained with logging.log_model=false?)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for entry in arts[-1]["manifest"]["contents"]:
        source = Path(entry.get("local_path", ""))
        if not source.is_file():
            raise LwtError(f"the staged copy of {entry['path']} ({source}) is gone (the run was synced, or wandb's "
                           "staging folder was cleared); download the artifact instead: wandb artifact get")
        target = out / entry["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return out


# ---------------------------------------------------------------- dashboard

def online_problem(entity: str | None) -> str | None:
    """Why the workspace cannot be created now (offline, no extra, no key, no server), or None."""
    try:
        import wandb_workspaces  # noqa: F401
    except ImportError:
        return "the optional extra is not installed (pip install 'lwt[dashboard]': wandb-workspaces)"
    if os.environ.get("WANDB_MODE") in ("offline", "disabled", "dryrun"):
        return f"WANDB_MODE={os.environ['WANDB_MODE']}"
    import wandb

    from lwt.training.loggers import wandb_unreachable

    if not entity:
        return "no --entity (the workspace's team or user)"
    problem = wandb_unreachable()
    if problem:
        return problem
    try:
        wandb.Api(timeout=10)  # refuses without an API key
    except Exception as e:
        return f"W&B refuses the API ({type(e).__name__}: wandb login?)"
    return None


def create_workspace(dashboard: dict) -> str:
    """The workspace in W&B (wandb-workspaces); its URL."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    def panel(p: dict):
        if p["type"] == "line":
            return wr.LinePlot(title=p["title"], x=p["x"], y=p["y"], groupby=p.get("groupby"))
        if p["type"] == "bar":
            return wr.BarPlot(title=p["title"], metrics=p["metrics"], groupby=p.get("groupby"))
        if p["type"] == "table":
            return wr.WeavePanelSummaryTable(table_name=p["table"])
        return wr.RunComparer(diff_only="split")

    workspace = ws.Workspace(
        entity=dashboard["entity"], project=dashboard["project"], name=dashboard["name"],
        sections=[ws.Section(name=s["name"], panels=[panel(p) for p in s["panels"]], is_open=True)
                  for s in dashboard["sections"]],
        runset_settings=ws.RunsetSettings(groupby=[ws.Metric("Group")]))  # the comparison (identity's group)
    workspace.save()
    return workspace.url


def cmd_dashboard(args) -> int:
    dashboard = spec(args.project, args.entity)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(dashboard, indent=1) + "\n")
    print(f"written: {out} (the dashboard's spec: {sum(len(s['panels']) for s in dashboard['sections'])} panels)")
    problem = online_problem(args.entity)
    if problem is None:
        print(f"workspace created: {create_workspace(dashboard)}")
    else:
        print(f"not created in W&B: {problem}. To create it: pip install 'lwt[dashboard]', wandb login, then\n"
              f"  lwt wandb dashboard --project {args.project} --entity <team-or-user>")
    return 0


def cmd_export(args) -> int:
    if args.runs.endswith(".csv"):  # a results table: the dataset artifact
        out = Path(args.out) if args.out else Path("runs") / EXPORT_DIR  # never into results/ (committed files)
        export_results(Path(args.runs), out, args.project or "lwt", args.entity)
        return 0
    export(Path(args.runs), Path(args.out) if args.out else None, args.project, args.entity)
    return 0


def cmd_artifact(args) -> int:
    out = offline_artifact(Path(args.run), Path(args.out), args.name)
    print(f"written: {out}" + ("  (lwt.load_run of this folder loads the model)" if args.name == "model" else ""))
    return 0


def add_subparser(sub) -> None:
    p = sub.add_parser("wandb", help="W&B: export finished runs as offline W&B runs, write the dashboard, "
                                     "copy an offline run's model artifact")
    verbs = p.add_subparsers(dest="wandb_command", required=True)
    e = verbs.add_parser("export", help="finished run folders (or a results table) -> offline W&B runs "
                                        "(then: wandb sync)")
    e.add_argument("runs", help="a runs folder or a sweep folder (every result.json with a config.yaml beside it), "
                                "or results/NAME.csv of `lwt results` (its files as a dataset artifact)")
    e.add_argument("--out", help=f"where the offline runs go (default: RUNS/{EXPORT_DIR}; for a table "
                                 f"runs/{EXPORT_DIR}; they land in OUT/wandb/)")
    e.add_argument("--project", help="W&B project (default: each run's logging.project)")
    e.add_argument("--entity", help="W&B entity (default: each run's logging.entity)")
    e.set_defaults(func=cmd_export)
    d = verbs.add_parser("dashboard", help="write the dashboard spec; online with wandb-workspaces: create it")
    d.add_argument("--project", default="lwt", help="W&B project (default: lwt)")
    d.add_argument("--entity", help="W&B entity (team or user); needed to create the workspace")
    d.add_argument("--out", default="wandb_dashboard.json", help="the spec (JSON; default: wandb_dashboard.json)")
    d.set_defaults(func=cmd_dashboard)
    a = verbs.add_parser("artifact", help="copy a model artifact of an offline run into a folder lwt.load_run reads")
    a.add_argument("run", help="an offline W&B run folder (RUN_DIR/wandb/offline-run-*)")
    a.add_argument("--out", required=True, help="the folder to write the artifact's files into")
    a.add_argument("--name", default="model", choices=["model", "checkpoint"],
                   help="model: the final model (default); checkpoint: the last phase checkpoint (log_model=all)")
    a.set_defaults(func=cmd_artifact)

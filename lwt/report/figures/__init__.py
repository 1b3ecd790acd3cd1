"""``lwt figures``: every paper figure, rebuilt from result tables (never from typed-in numbers).

Each ``figN_<slug>.py`` here reads one kind of table and writes ``figN_<slug>.png`` and ``.pdf``:
``lwt results`` CSVs under ``results/`` (figures 1-5, 8 and 9; the full sweep's table when present, else its
``_cpu`` variant's), or the JSON reports of ``lwt cka`` / ``lwt probe`` copied into ``results/cka/``
and ``results/probes/`` (figures 6-7). paper_figures/README.md says which sweep and command made each.
A figure whose table is missing is skipped with the command that makes it.
"""

from __future__ import annotations

import csv
from contextlib import contextmanager
from pathlib import Path

from lwt.console import add_quiet_flag, bar, set_quiet
from lwt.errors import LwtError

WANDB_DIR = Path("runs") / "figures"  # lwt figures --wandb: its W&B run goes to <this>/wandb/ (docs/wandb.md)
# the full-scale sweep's table (experiments/sweeps/full_scale.yaml, every variant in one table): a figure that
# has ``full_rows`` draws its rows of it again as figN_<slug>_full, beside the CPU-subset figure
FULL_TABLES = ["full_scale.csv", "full_scale_cpu.csv"]
FIGURES = ["fig1_depth", "fig2_gap", "fig3_overfitting", "fig4_critical", "fig5_remedies", "fig6_cka", "fig7_probes",
           "fig8_intervention", "fig9_belilovsky", "fig10_swap"]


def add_subparser(sub) -> None:
    p = sub.add_parser("figures", help="rebuild every paper figure (PNG + PDF) from the result tables")
    p.add_argument("--results", default="results",
                   help="folder of result tables (default: results/), or one table, e.g. results/gap_cpu.csv, "
                        "for the figures of its sweep")
    p.add_argument("--out", default="paper_figures", help="output folder (default: paper_figures/)")
    p.add_argument("--only", help="comma-separated figure numbers, e.g. 1,3")
    p.add_argument("--wandb", choices=["offline", "online"],
                   help="also log the figures (images) and tables to one W&B run (project lwt, job_type figures, "
                        "name paper_figures), offline into --wandb-dir/wandb/")
    p.add_argument("--wandb-dir", default=str(WANDB_DIR),
                   help=f"where that W&B run is written (default: {WANDB_DIR}/, so its files stay out of "
                        "--results and --out, which hold only what is committed)")
    add_quiet_flag(p)
    p.set_defaults(func=cmd_figures)


def _source(module, results: Path) -> tuple[object, str]:
    """(what the figure reads, its name for the title) for ``module``; MissingTable if absent."""
    from lwt.report.figures.common import MissingTable

    if hasattr(module, "load"):
        folder = results if results.is_dir() else results.parent
        return module.load(folder), f"{folder.name}/{module.FOLDER}"
    if results.is_file():
        if results.name.startswith(module.SWEEP):
            return _rows(module, results), results.name
        raise MissingTable(f"{results} is not a {module.SWEEP} table")
    for name in module.TABLES:
        if (results / name).is_file():
            return _rows(module, results / name), name
    raise MissingTable(" or ".join(str(results / n) for n in module.TABLES))


def _rows(module, path: Path) -> list[dict]:
    """The table's rows as the figure reads them (a figure may add columns the table derives from its archive),
    with the cell keys the table leaves out (one value for all its runs) taken from the runs' archived configs,
    so that titles can name the training-set size."""
    from lwt.report.claims.source import archived_table, fill_constant_columns
    from lwt.report.figures.common import CELL_KEYS, read_table

    rows = getattr(module, "read", read_table)(path)
    fill_constant_columns(archived_table(path, rows), list(CELL_KEYS), required=False)
    return [{**r, **{c: float(r[c]) for c in CELL_KEYS if r.get(c) not in (None, "")}} for r in rows]


def make_figures(results: Path, out: Path, only: list[int] | None = None) -> tuple[list[Path], list[str]]:
    """Every figure (or ``only`` those numbers) from ``results``: (paths written, lines naming skipped ones)."""
    import importlib

    import matplotlib.pyplot as plt

    from lwt.analysis.style import STYLE
    from lwt.report.figures.common import MissingTable

    written, skipped = [], []
    chosen = [(i, name) for i, name in enumerate(FIGURES, start=1) if not only or i in only]
    with plt.rc_context(STYLE), bar(len(chosen), "figures", unit="fig") as b:
        for _, name in chosen:
            b.set_postfix_str(name)
            module = importlib.import_module(f"lwt.report.figures.{name}")
            written += _full_scale(module, name, results, out)
            try:
                with _readable(name, results):
                    data, source = _source(module, results)
            except MissingTable as e:
                how = (f"lwt sweep experiments/sweeps/{module.SWEEP}.yaml [--variant cpu], then lwt results runs/ "
                       f"--sweep {module.SWEEP}[_cpu] --out {results}/{module.SWEEP}[_cpu].csv"
                       if hasattr(module, "SWEEP") else f"lwt {'cka' if 'cka' in name else 'probe'} on finished runs, "
                       f"then copy the JSON into {results}/{module.FOLDER}/")
                skipped.append(f"{name}: no table ({e}); make it with: {how}")
                b.update(1)
                continue
            table = results if results.is_file() else results / getattr(module, "FOLDER", source)
            with _readable(name, table):
                written += module.make(data, out, source)
            b.update(1)
    return written, skipped


def _full_scale(module, name: str, results: Path, out: Path) -> list[Path]:
    """``name``_full from the full-scale table's rows that ``module.full_rows`` keeps (none: nothing drawn)."""
    if not hasattr(module, "full_rows") or not results.is_dir():
        return []
    for table in FULL_TABLES:
        path = results / table
        if path.is_file():
            with _readable(name, path):
                rows = module.full_rows(_rows(module, path))
                return module.make(rows, out, table, name=f"{name}_full") if rows else []
    return []


@contextmanager
def _readable(name: str, table: Path):
    """A table or report that is truncated, garbage or of another kind (the columns or keys
    the figure reads are missing or hold text) answered by one LwtError naming it."""
    try:
        yield
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, ArithmeticError, csv.Error) as e:
        raise LwtError(f"{table} is not a table {name} can read ({type(e).__name__}: {str(e)[:120]}); it is "
                       "truncated, damaged or of another kind: remake it with `lwt results` (or `lwt cka/probe`)"
                       ) from None


def log_to_wandb(paths: list[Path], results: Path, mode: str, where: Path = WANDB_DIR) -> Path:
    """One W&B run (job_type=figures) holding every PNG as an image and every results CSV as a table, written
    into ``where/wandb/``; returns the W&B run's folder."""
    import wandb

    where.mkdir(parents=True, exist_ok=True)
    run = wandb.init(project="lwt", job_type="figures", name="paper_figures", mode=mode, dir=str(where))
    for p in (p for p in paths if p.suffix == ".png"):
        run.log({f"figures/{p.stem}": wandb.Image(str(p))})
    for table in sorted(results.glob("*.csv")) if results.is_dir() else [results]:
        with table.open(newline="") as f:
            rows = list(csv.reader(f))
        if rows:
            run.log({f"tables/{table.stem}": wandb.Table(columns=rows[0], data=rows[1:])})
    folder = Path(run.dir).parent  # .../wandb/<offline-run-...>/files -> the run's folder
    run.finish()
    print(f"W&B: figures and tables logged to {folder}")
    return folder


def cmd_figures(args) -> int:
    set_quiet(args.quiet)
    results, out = Path(args.results), Path(args.out)
    if not results.exists():
        raise LwtError(f"--results {results} does not exist; give the folder of `lwt results` tables "
                       "(default results/) or one table")
    try:
        only = [int(x) for x in args.only.split(",")] if args.only else None
    except ValueError:
        raise LwtError(f"--only {args.only!r}: give figure numbers 1-{len(FIGURES)}, e.g. --only 1,3") from None
    if only and not all(1 <= i <= len(FIGURES) for i in only):
        raise LwtError(f"--only {args.only}: figures are numbered 1-{len(FIGURES)}")
    written, skipped = make_figures(results, out, only)
    for line in skipped:
        print(f"skipped {line}")
    for p in written:
        print(f"written: {p}")
    if args.wandb and written:
        log_to_wandb(written, results, args.wandb, Path(args.wandb_dir))
    return 0 if written else 1

"""Sweep files: parse, validate strictly, expand into named runs (see lwt/sweep/__init__.py for the format)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, WrapValidator

from lwt.config import Config, check_stage_lists, flatten, identity_differences, parse_overrides, to_dict
from lwt.config.files import find_file, read_data
from lwt.config.load import config_from, format_value, read_experiment, read_yaml, run_name_of
from lwt.errors import LwtError
from lwt.run.archive import read_archive, run_key
from lwt.run.dir import RunDir
from lwt.run.result import RunResult

ROOT = Path(__file__).resolve().parents[2]  # the lwt checkout: relative base paths may start here
# Set by the sweep for every run; an axis or a fixed override may not set them.
RESERVED = ("seed", "run_name", "sweep")
NAME = r"[A-Za-z0-9_.-]+"  # a sweep's name: one folder name


@dataclass
class Base:
    path: Path
    label: str  # as written in the sweep file
    overrides: list[str]
    experiment: str = ""


@dataclass
class Run:
    index: int  # 1-based, stable: the SLURM array index of --export jobs
    base: Base
    axes: dict[str, Any]  # experiment, grid and zip values, seed: what names and selects this run
    overrides: list[str]  # everything `lwt train <base>` needs to reproduce this run
    cfg: Config
    num_stages: int
    archived: dict | None = None  # its line in the sweep's run archive (``Sweep.attach_archive``), if any

    @property
    def experiment(self) -> str:
        return self.cfg.experiment

    @property
    def id(self) -> str:
        return f"{self.cfg.experiment}/{self.cfg.run_name}"

    @property
    def folder(self) -> RunDir:
        return RunDir.of(self.cfg)

    @property
    def run_dir(self) -> Path:
        return self.folder.path

    def status(self) -> str:
        """The folder's status in the sweep's words: ``done`` (finished), ``partial`` (resume it), ``todo``, or
        ``archived`` (no folder here, but the sweep's run archive holds its result: trained on another machine)."""
        status = {"finished": "done", "unfinished": "partial", "new": "todo"}[self.folder.status()]
        return "archived" if status == "todo" and self.archived else status

    def finished(self) -> bool:
        return self.status() in ("done", "archived")

    def result(self) -> RunResult:
        """Its result: the folder's ``result.json``, else its archive line's."""
        return self.archived["result"] if self.status() == "archived" else self.folder.read_result()

    def record(self) -> dict:
        """Its run archive line (``lwt.run.archive``) once finished: its folder's result and flat config, else the
        line it was found in."""
        if self.status() == "archived":
            return self.archived
        config = read_data(self.folder.config, "yaml", follow=False)
        return {"result": self.folder.read_result(), "config": flatten(config), "dir": self.run_dir}

    def differences(self) -> list[str]:
        """Identity keys on which the finished run (its folder, else its archive line) and this run's config
        disagree (``RunDir.differences``)."""
        if self.status() != "archived":
            return self.folder.differences(self.cfg)
        saved, wanted = self.archived["config"], flatten(to_dict(self.cfg))
        return [f"{k}: {saved[k]!r} there, {wanted[k]!r} now" for k in identity_differences(wanted, saved)]

    def train_args(self) -> list[str]:
        return ["train", display_path(self.base.path), *self.overrides]


@dataclass
class Sweep:
    name: str
    path: Path
    variant: str | None
    bases: list[Base]
    overrides: list[str]  # the file's (and the variant's) fixed overrides
    grid: dict[str, list]
    zip: dict[str, list]
    seeds: list[int]
    cli_overrides: list[str] = field(default_factory=list)  # the command line's: after the file's and the base's
    runs: list[Run] = field(default_factory=list)

    def attach_archive(self, path: Path) -> int:
        """Mark the runs that ``path`` (a run archive, ``results/NAME_runs.jsonl``) holds, so they count as
        finished where their folders are gone; returns how many. No file: none."""
        if not path.is_file():
            return 0
        lines = {run_key(r)[1:]: r for r in read_archive(path) if run_key(r)[0] == self.name}
        for r in self.runs:
            r.archived = lines.get((r.experiment, r.cfg.run_name))
        return sum(r.archived is not None for r in self.runs)

    @property
    def out_dir(self) -> Path:
        """``<logging.out_dir>/sweeps/<name>``: every run of this sweep lives under it."""
        return self.runs[0].run_dir.parent.parent

    def parameters(self) -> dict[str, list]:
        """The sweep's axes as independent parameters (their product is the run list): the base
        experiment when there are several, each grid key, each zip group (``k1+k2``: lists), seed."""
        params: dict[str, list] = {}
        if len(self.bases) > 1:
            params["experiment"] = [b.experiment for b in self.bases]
        params.update(self.grid)
        if self.zip:
            params["+".join(self.zip)] = [list(v) for v in zip(*self.zip.values())]
        params["seed"] = list(self.seeds)
        return params


# ---------------------------------------------------------------- names, and the file as pydantic models


def _slug(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "x".join(_slug(v) for v in value)
    if isinstance(value, str):
        return Path(value).stem if "/" in value else value
    return format_value(value)


def display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _typed(text: str, check=None) -> WrapValidator:
    """A value of the wrong type (or with entries of the wrong type) gets ``text``, written after its key (``{value}``:
    the value given); ``check`` then checks the typed value. Errors from checks and keys inside it pass through."""

    def validate(value, handler):
        try:
            typed = handler(value)
        except ValidationError as e:
            if any(x["type"] in ("value_error", "extra_forbidden") for x in e.errors()):
                raise
            raise ValueError(text.replace("{value}", repr(value))) from None
        return check(typed) if check else typed

    return WrapValidator(validate)


def _distinct(values: list, noun: str) -> list:
    if len({format_value(v) for v in values}) != len(values):
        raise ValueError(f" lists a {noun} twice: {values}")
    return values


def _values(values: list) -> list:
    if not values:
        raise ValueError(" is an empty axis: list at least one value")
    if any(isinstance(v, dict) for v in values):
        raise ValueError(": values must be scalars or lists, not mappings")
    return values


def _axis(values: list) -> list:
    return _distinct(_values(values), "value")


def _in_step(axes: dict[str, list]) -> dict[str, list]:
    """Zipped lists: equal lengths, and no two positions alike (one list may repeat a value, e.g. the same lr
    for two networks, as long as another list tells the runs apart)."""
    lengths = {key: len(values) for key, values in axes.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k}: {n}" for k, n in lengths.items())
        raise ValueError(f": zipped lists must have equal lengths; got {shown}")
    _distinct([list(combo) for combo in zip(*axes.values())], "combination")
    return axes


def _parsable(overrides: list[str]) -> list[str]:
    parse_overrides(overrides)  # format errors name the bad item
    return overrides


def _entries(value: Any) -> list[dict]:
    """``bases`` as flat entries: a nested list (a YAML alias to another list of bases) counts as its entries,
    a file path as ``{file: path}``."""
    if not isinstance(value, list) or not value:
        raise ValueError(" must be a non-empty list of experiment files")
    entries = [e for entry in value for e in (entry if isinstance(entry, list) else [entry])]
    if not all(isinstance(e, (str, dict)) for e in entries):
        raise ValueError(": each entry is a file path or {file: ..., overrides: [...]}")
    if not all(isinstance(e.get("file"), str) for e in entries if isinstance(e, dict)):
        raise ValueError("[]: a mapping entry needs file: <experiment.yaml>")  # after `bases`: the entry's key
    return [{"file": e} if isinstance(e, str) else e for e in entries]


STRICT = ConfigDict(extra="forbid", strict=True)
Overrides = Annotated[list[str], _typed(" must be a list of key=value strings, e.g. [data.train_subset=5000]",
                                        _parsable)]
def _axes(check) -> Any:
    return Annotated[dict[str, Annotated[list, _typed(" must be a list of values, e.g. [32, 64]; got {value}", check)]],
                     _typed(" must map config keys to lists of values, e.g. {model.width: [32, 64]}")]


Axes = _axes(_axis)  # a grid axis: each value once
ZipAxes = _axes(_values)  # zipped lists: each combination once (checked by _in_step)
Seeds = Annotated[list[int], Field(min_length=1),
                  _typed(" must be a non-empty list of integers, e.g. [0, 1, 2]", lambda s: _distinct(s, "seed"))]


class BaseEntry(BaseModel):
    """A base experiment file with overrides of its own."""

    model_config = STRICT
    file: str
    overrides: Overrides = []


class Variant(BaseModel):
    """The keys a variant may set; null is the same as leaving a key out."""

    model_config = STRICT
    base: Annotated[list[BaseEntry] | None, WrapValidator(lambda v, typed: typed(_entries([v])))] = None
    bases: Annotated[list[BaseEntry] | None, WrapValidator(lambda v, typed: typed(_entries(v)))] = None
    overrides: Overrides | None = None
    grid: Axes | None = None
    zip: Annotated[ZipAxes, WrapValidator(lambda v, typed: _in_step(typed(v)))] | None = None
    seeds: Seeds | None = None


BASE_KEYS, VARIANT_KEYS = tuple(BaseEntry.model_fields), tuple(Variant.model_fields)


class SweepFile(Variant):
    name: Annotated[str, _typed("={value}: use letters, digits, '_', '.', '-'")] | None = None
    variants: Annotated[dict[str, Variant], _typed(f" must map variant names to mappings of {', '.join(VARIANT_KEYS)}")
                        ] | None = None

    def with_variant(self, label: str) -> SweepFile:
        """The file as variant ``label`` changes it: its overrides come after the file's; any other key it sets
        replaces the file's."""
        variant = self.variants[label]
        changes = {key: getattr(variant, key) for key in variant.model_fields_set}
        if {"base", "bases"} & variant.model_fields_set:  # the variant's experiments replace the file's
            changes = {"base": None, "bases": None, **changes}
        changes["overrides"] = [*(self.overrides or []), *(variant.overrides or [])]
        return self.model_copy(update=changes)


SWEEP_KEYS = ("name", *VARIANT_KEYS, "variants")


def _validated(kind, value: Any, where: str, sep: str = ": "):
    """``value`` as ``kind`` (a model or a type above); LwtError with one line naming ``where`` and the key."""
    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as e:
        error = e.errors()[0]
        loc, problem = error["loc"], str(error["ctx"]["error"]) if error["type"] == "value_error" else ""
        if error["type"] == "extra_forbidden":
            keys = SWEEP_KEYS if len(loc) == 1 else BASE_KEYS if isinstance(loc[-2], int) else VARIANT_KEYS
            loc, problem = loc[:-1], f": unknown key '{loc[-1]}'; valid keys: {', '.join(keys)}"
        key = "".join("[]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        raise LwtError(f"{where}{sep if key else ''}{key}{problem or ': ' + error['msg']}") from None


# ---------------------------------------------------------------- reading and checking the file


def _resolve(label: str, sweep_path: Path) -> Path:
    path = Path(label)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, ROOT / path, sweep_path.parent / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    found = find_file(label)  # an installed lwt: its packaged experiments/
    if found is not None:
        return found.resolve()
    raise LwtError(f"{sweep_path}: base experiment file not found: {label} "
                   "(relative paths are tried from the current folder, the lwt checkout and the sweep file)")


def load_sweep(path: str | Path, variant: str | None = None, overrides: list[str] = (),
               name: str | None = None) -> Sweep:
    """Read, check and expand a sweep file. Every run's config is validated (and its network built on the
    meta device) before this returns, so a bad value anywhere fails before anything trains."""
    path = find_file(path) or Path(path)  # by name too: `lwt sweep sweeps/gap`
    if not path.is_file():
        raise LwtError(f"sweep file not found: {path}")
    raw = read_yaml(path)
    if not isinstance(raw, dict):
        raise LwtError(f"{path} must hold a mapping with keys: {', '.join(SWEEP_KEYS)}")
    spec = _validated(SweepFile, raw, str(path))
    if variant is not None:
        if variant not in (spec.variants or {}):
            known = ", ".join(spec.variants or {}) or "none"
            raise LwtError(f"{path} has no variant '{variant}'; its variants: {known}")
        spec = spec.with_variant(variant)

    where = f"{path}: {'variants.' + variant + '.' if variant else ''}"  # the keys of the variant and the file
    sweep_name = name or spec.name or path.stem
    sweep_name = f"{sweep_name}_{variant}" if variant and not name else sweep_name
    if not re.fullmatch(NAME, sweep_name):
        raise LwtError(f"{where}name={sweep_name!r}: use letters, digits, '_', '.', '-'")
    if (spec.base is None) == (spec.bases is None):
        raise LwtError(f"{path}: give exactly one of 'base' (one experiment file) or 'bases' (a list)")
    bases = [Base(_resolve(b.file, path), b.file, b.overrides) for b in spec.base or spec.bases]
    sweep = Sweep(name=sweep_name, path=path, variant=variant, bases=bases, overrides=spec.overrides or [],
                  grid=spec.grid or {}, zip=spec.zip or {}, seeds=spec.seeds or [0],
                  cli_overrides=_validated(Overrides, list(overrides), "overrides"))
    return _expanded(sweep, where)


def build_sweep(name: str, where: str, experiments: list[str], grid: dict[str, list], seeds: list[int],
                overrides: list[str] = ()) -> Sweep:
    """A sweep made without a file (``lwt tune``): these experiment files x ``grid`` x ``seeds``, checked and
    expanded as a sweep file would be; ``where`` names it in messages."""
    path = Path(where)
    if not re.fullmatch(NAME, name):
        raise LwtError(f"{where}: name {name!r}: use letters, digits, '_', '.', '-'")
    bases = [Base(_resolve(e, path), e, []) for e in experiments]
    sweep = Sweep(name=name, path=path, variant=None, bases=bases, overrides=[],
                  grid=_validated(Axes, grid, f"{where}: --grid", "."), zip={},
                  seeds=_validated(Seeds, list(seeds), f"{where}: --seeds"),
                  cli_overrides=_validated(Overrides, list(overrides), f"{where}: overrides"))
    return _expanded(sweep, f"{where}: ")


def _keys(overrides: list[str]) -> list[str]:
    return [item.partition("=")[0].strip() for item in overrides]


def _expanded(sweep: Sweep, where: str) -> Sweep:
    """``sweep`` with its runs, after checking its axes against its fixed overrides."""
    both = set(sweep.grid) & set(sweep.zip)
    if both:
        raise LwtError(f"{where}grid and zip both vary {sorted(both)[0]}; an axis belongs to one of them")
    axes = [*sweep.grid, *sweep.zip]
    fixed = sweep.overrides + sweep.cli_overrides + [o for b in sweep.bases for o in b.overrides]
    for key in axes + _keys(fixed):
        if key in RESERVED:
            hint = ("list seeds under 'seeds:' (lwt tune: --seeds)" if key == "seed"
                    else "the sweep sets it for every run")
            raise LwtError(f"{sweep.path}: '{key}' cannot be set in a sweep ({hint})")
    for key in _keys(fixed):
        if key in axes:
            raise LwtError(f"{sweep.path}: '{key}' is an axis of this sweep and cannot also be a fixed override "
                           "(in the file, a base entry or on the command line)")
    if "experiment" in axes:
        raise LwtError(f"{sweep.path}: 'experiment' cannot be an axis; list several bases instead")
    sweep.runs = expand(sweep)
    return sweep


def expand(sweep: Sweep) -> list[Run]:
    """bases x grid (cartesian) x zip (in step) x seeds, in that nesting order; each run validated."""
    grid = [dict(zip(sweep.grid, combo)) for combo in itertools.product(*sweep.grid.values())]
    zipped = [dict(zip(sweep.zip, combo)) for combo in zip(*sweep.zip.values())] or [{}]
    runs: list[Run] = []
    for base in sweep.bases:
        fixed = [*sweep.overrides, *base.overrides, *sweep.cli_overrides]  # the more specific wins
        try:
            experiment = read_experiment(base.path)  # read once: every run of this base starts from it
            first = config_from(experiment, fixed)
        except LwtError as e:
            raise LwtError(f"{sweep.path}: base {base.label} with the fixed overrides: {e}") from None
        base.experiment = first.experiment
        out_dir = Path(first.logging.out_dir) / "sweeps" / sweep.name
        for g, z, seed in itertools.product(grid, zipped, sweep.seeds):
            axes = {**g, **z}
            name = run_name_of([(key, _slug(value)) for key, value in axes.items()], seed)  # in file order
            overrides = [*(o for o in fixed if not o.startswith("logging.out_dir=")),  # set below
                         *(f"{k}={format_value(v)}" for k, v in axes.items()),
                         f"seed={seed}", f"sweep={sweep.name}", f"run_name={name}",
                         f"logging.out_dir={format_value(str(out_dir))}"]
            try:
                cfg = config_from(experiment, overrides)
                num_stages = _check_model(cfg)
                check_stage_lists(cfg, num_stages)
            except LwtError as e:
                shown = " ".join(f"{k}={format_value(v)}" for k, v in axes.items())
                raise LwtError(f"{sweep.path}: run {base.label} {shown} seed={seed}: {e}") from None
            runs.append(Run(len(runs) + 1, base, {"experiment": base.experiment, **axes, "seed": seed},
                            overrides, cfg, num_stages))
    seen: dict[str, Run] = {}
    for r in runs:
        if r.id in seen:
            raise LwtError(f"{sweep.path}: two runs would share the run directory {r.id} ({seen[r.id].base.label} "
                           f"and {r.base.label}); give one base a distinct name with overrides: [experiment=...]")
        seen[r.id] = r
    return runs


_NUM_BLOCKS: dict[tuple, int] = {}  # (repr of the model config, dataset, image size) -> blocks; seeds share it


def _check_model(cfg: Config) -> int:
    """Build the network on the meta device (no memory, no data): architecture knobs that only the builder
    checks (model.num_blocks on vgg16, ...) fail here. Returns the number of blocks (greedy stages)."""
    size = 32 if cfg.data.name.startswith("cifar") else cfg.data.image_size
    key = (repr(cfg.model), cfg.data.name, size)
    if key not in _NUM_BLOCKS:
        import torch

        from lwt.models import build_model

        with torch.device("meta"):
            net = build_model(cfg.model, {"cifar10": 10, "cifar100": 100}.get(cfg.data.name, 10), (3, size, size))
        _NUM_BLOCKS[key] = net.num_blocks
    return _NUM_BLOCKS[key]

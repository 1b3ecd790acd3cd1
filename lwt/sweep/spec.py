"""Sweep files: parse, validate strictly, expand into named runs (see lwt/sweep/__init__.py for the format)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lwt.config import Config, check_stage_lists, load_config, parse_overrides
from lwt.errors import LwtError
from lwt.run.dir import RunDir

ROOT = Path(__file__).resolve().parents[2]  # the lwt checkout: relative base paths may start here
SWEEP_KEYS = ("name", "base", "bases", "overrides", "grid", "zip", "seeds", "variants")
VARIANT_KEYS = ("base", "bases", "overrides", "grid", "zip", "seeds")
BASE_KEYS = ("file", "overrides")
# Set by the sweep for every run; an axis or a fixed override may not set them.
RESERVED = ("seed", "run_name", "sweep")


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

    @property
    def experiment(self) -> str:
        return self.cfg.experiment

    @property
    def run_name(self) -> str:
        return self.cfg.run_name

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
        """The folder's status in the sweep's words: ``done`` (finished), ``partial`` (resume it) or ``todo``."""
        return {"finished": "done", "unfinished": "partial", "new": "todo"}[self.folder.status()]

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


# ---------------------------------------------------------------- values as override text and name parts


def format_value(value: Any) -> str:
    """A value as override text that ``parse_overrides`` reads back as the same value."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9).strip()
    return text.removesuffix("...").strip()


def _slug(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "x".join(_slug(v) for v in value)
    if isinstance(value, str):
        return Path(value).stem if "/" in value else value
    return format_value(value)


def run_name(axes: dict[str, Any], seed: int) -> str:
    """Deterministic and readable: ``<last key part>-<value>`` per axis, in file order, then the seed."""
    parts = [f"{key.split('.')[-1]}-{_slug(value)}" for key, value in axes.items()] + [f"seed{seed}"]
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", "_".join(parts))[:150]


def display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------- reading and checking the file


def _where(path: Path, variant: str | None, key: str) -> str:
    return f"{path}: {'variants.' + variant + '.' if variant else ''}{key}"


def _check_keys(raw: dict, valid: tuple[str, ...], what: str) -> None:
    unknown = [k for k in raw if k not in valid]
    if unknown:
        raise LwtError(f"{what}: unknown key '{unknown[0]}'; valid keys: {', '.join(valid)}")


def _overrides(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LwtError(f"{where} must be a list of key=value strings, e.g. [data.train_subset=5000]")
    parse_overrides(value)  # format errors name the bad item
    return list(value)


def _axes(value: Any, where: str) -> dict[str, list]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LwtError(f"{where} must map config keys to lists of values, e.g. {{model.width: [32, 64]}}")
    axes = {}
    for key, values in value.items():
        if not isinstance(values, list):
            raise LwtError(f"{where}.{key} must be a list of values, e.g. [32, 64]; got {values!r}")
        if not values:
            raise LwtError(f"{where}.{key} is an empty axis: list at least one value")
        if any(isinstance(v, dict) for v in values):
            raise LwtError(f"{where}.{key}: values must be scalars or lists, not mappings")
        texts = [format_value(v) for v in values]
        if len(set(texts)) != len(texts):
            raise LwtError(f"{where}.{key} lists a value twice: {values}")
        axes[str(key)] = values
    return axes


def _resolve(label: str, sweep_path: Path) -> Path:
    path = Path(label)
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, ROOT / path, sweep_path.parent / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate.resolve()
    from lwt.config.files import find_file  # an installed lwt: its packaged experiments/

    found = find_file(label)
    if found is not None:
        return found.resolve()
    raise LwtError(f"{sweep_path}: base experiment file not found: {label} "
                   "(relative paths are tried from the current folder, the lwt checkout and the sweep file)")


def _bases(raw: dict, sweep_path: Path, where) -> list[Base]:
    if ("base" in raw) == ("bases" in raw):
        raise LwtError(f"{sweep_path}: give exactly one of 'base' (one experiment file) or 'bases' (a list)")
    entries = [raw["base"]] if "base" in raw else raw["bases"]
    if not isinstance(entries, list) or not entries:
        raise LwtError(f"{where('bases')} must be a non-empty list of experiment files")
    # a nested list (a YAML alias to another list of bases) counts as its entries
    entries = [e for entry in entries for e in (entry if isinstance(entry, list) else [entry])]
    bases = []
    for entry in entries:
        if isinstance(entry, dict):
            _check_keys(entry, BASE_KEYS, where("bases[]"))
            if not isinstance(entry.get("file"), str):
                raise LwtError(f"{where('bases[]')}: a mapping entry needs file: <experiment.yaml>")
            label, extra = entry["file"], _overrides(entry.get("overrides"), where("bases[].overrides"))
        elif isinstance(entry, str):
            label, extra = entry, []
        else:
            raise LwtError(f"{where('bases')}: each entry is a file path or {{file: ..., overrides: [...]}}")
        bases.append(Base(_resolve(label, sweep_path), label, extra))
    return bases


def _seeds(value: Any, where: str) -> list[int]:
    if value is None:
        return [0]
    if (not isinstance(value, list) or not value
            or not all(isinstance(s, int) and not isinstance(s, bool) for s in value)):
        raise LwtError(f"{where} must be a non-empty list of integers, e.g. [0, 1, 2]")
    if len(set(value)) != len(value):
        raise LwtError(f"{where} lists a seed twice: {value}")
    return list(value)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise LwtError(f"sweep file not found: {path}")
    from lwt.config import load_yaml

    try:
        raw = load_yaml(path.read_text())
    except yaml.YAMLError as e:
        raise LwtError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise LwtError(f"{path} must hold a mapping with keys: {', '.join(SWEEP_KEYS)}")
    _check_keys(raw, SWEEP_KEYS, str(path))
    return raw


def load_sweep(path: str | Path, variant: str | None = None, overrides: list[str] = (),
               name: str | None = None) -> Sweep:
    """Read, check and expand a sweep file. Every run's config is validated (and its network built on the
    meta device) before this returns, so a bad value anywhere fails before anything trains."""
    from lwt.config.files import find_file  # by name too: `lwt sweep sweeps/gap` (lwt/files.py)

    path = find_file(path) or Path(path)
    raw = _read(path)
    variants = raw.get("variants") or {}
    if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in variants.values()):
        raise LwtError(f"{path}: variants must map variant names to mappings of {', '.join(VARIANT_KEYS)}")
    for label, spec in variants.items():
        _check_keys(spec, VARIANT_KEYS, f"{path}: variants.{label}")
    if variant is not None:
        if variant not in variants:
            raise LwtError(f"{path} has no variant '{variant}'; its variants: {', '.join(variants) or 'none'}")
        spec = variants[variant]
        # A variant adds its overrides after the sweep's; any other key it sets replaces the sweep's.
        merged = {k: v for k, v in raw.items() if k not in ("variants",)}
        if "base" in spec or "bases" in spec:
            merged.pop("base", None)
            merged.pop("bases", None)
        merged.update({k: v for k, v in spec.items() if k != "overrides"})
        merged["overrides"] = list(raw.get("overrides") or []) + list(spec.get("overrides") or [])
        raw = merged

    def where(key: str) -> str:
        return _where(path, variant, key)

    sweep_name = name or raw.get("name") or path.stem
    sweep_name = f"{sweep_name}_{variant}" if variant and not name else sweep_name
    if not isinstance(sweep_name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", sweep_name):
        raise LwtError(f"{where('name')}={sweep_name!r}: use letters, digits, '_', '.', '-'")
    sweep = Sweep(
        name=sweep_name, path=path, variant=variant, bases=_bases(raw, path, where),
        overrides=_overrides(raw.get("overrides"), where("overrides")),
        grid=_axes(raw.get("grid"), where("grid")), zip=_axes(raw.get("zip"), where("zip")),
        seeds=_seeds(raw.get("seeds"), where("seeds")), cli_overrides=_overrides(list(overrides), "overrides"),
    )
    _check_axes(sweep, where)
    sweep.runs = expand(sweep)
    return sweep


def build_sweep(name: str, where: str, experiments: list[str], grid: dict[str, list], seeds: list[int],
                overrides: list[str] = ()) -> Sweep:
    """A sweep made without a file (``lwt tune``): these experiment files x ``grid`` x ``seeds``, checked and
    expanded as a sweep file would be; ``where`` names it in messages."""
    path = Path(where)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise LwtError(f"{where}: name {name!r}: use letters, digits, '_', '.', '-'")
    sweep = Sweep(name=name, path=path, variant=None, bases=[Base(_resolve(e, path), e, []) for e in experiments],
                  overrides=[], grid=_axes(grid, f"{where}: --grid"), zip={},
                  seeds=_seeds(list(seeds), f"{where}: --seeds"),
                  cli_overrides=_overrides(list(overrides), f"{where}: overrides"))
    _check_axes(sweep, lambda key: f"{where}: {key}")
    sweep.runs = expand(sweep)
    return sweep


def _keys(overrides: list[str]) -> list[str]:
    return [item.partition("=")[0].strip() for item in overrides]


def _check_axes(sweep: Sweep, where) -> None:
    both = set(sweep.grid) & set(sweep.zip)
    if both:
        raise LwtError(f"{where('grid')} and zip both vary {sorted(both)[0]}; an axis belongs to one of them")
    lengths = {key: len(values) for key, values in sweep.zip.items()}
    if len(set(lengths.values())) > 1:
        raise LwtError(f"{where('zip')}: zipped lists must have equal lengths; got "
                       + ", ".join(f"{k}: {n}" for k, n in lengths.items()))
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


def expand(sweep: Sweep) -> list[Run]:
    """bases x grid (cartesian) x zip (in step) x seeds, in that nesting order; each run validated."""
    grid = [dict(zip(sweep.grid, combo)) for combo in itertools.product(*sweep.grid.values())]
    zipped = [dict(zip(sweep.zip, combo)) for combo in zip(*sweep.zip.values())] or [{}]
    runs: list[Run] = []
    for base in sweep.bases:
        fixed = [*sweep.overrides, *base.overrides, *sweep.cli_overrides]  # the more specific wins
        try:
            first = load_config(base.path, fixed)
        except LwtError as e:
            raise LwtError(f"{sweep.path}: base {base.label} with the fixed overrides: {e}") from None
        base.experiment = first.experiment
        out_dir = Path(first.logging.out_dir) / "sweeps" / sweep.name
        for g, z, seed in itertools.product(grid, zipped, sweep.seeds):
            axes = {**g, **z}
            name = run_name(axes, seed)
            overrides = [*(o for o in fixed if not o.startswith("logging.out_dir=")),  # set below
                         *(f"{k}={format_value(v)}" for k, v in axes.items()),
                         f"seed={seed}", f"sweep={sweep.name}", f"run_name={name}",
                         f"logging.out_dir={format_value(str(out_dir))}"]
            try:
                cfg = load_config(base.path, overrides)
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

"""Reading a config: an experiment file (by path or by name), ``key=value`` overrides, validation; the one
parse-and-validate pass every command goes through. Also the config's plain-data forms (dict, flat keys, YAML)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from lwt.config.schema import Config, Section, is_identity, rule_text
from lwt.errors import LwtError


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is an error (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges: the keys written beside it override the base's on purpose
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.YAMLError(f"key '{key}' appears twice in one mapping (line {key_node.start_mark.line + 1}); "
                                     "give it once")
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(text: str):
    """YAML as lwt reads every file it is given (experiments, sweeps): safe, and duplicate keys refused."""
    return yaml.load(text, Loader=_UniqueKeyLoader)


EXPECTED = {"int_type": "int", "float_type": "float", "bool_type": "bool", "string_type": "str",
            "list_type": "a list like [64, 128]", "dict_type": "dict", "none_required": "null"}


def _message(error: dict) -> tuple[str, str, str | None]:
    """A pydantic error as (key path, one line naming the value and what is valid, the union branch or None)."""
    loc, value, kind = error["loc"], error["input"], error["type"]
    section: type[BaseModel] | None = Config
    parts: list[str] = []
    branch = None
    for p in loc:  # field names and list indexes; a union's branch tag ("str", "list[int]") is kept apart
        if isinstance(p, int) and parts:
            parts[-1] += f"[{p}]"
        elif section is not None and p in section.model_fields:
            parts.append(p)
            ann = section.model_fields[p].annotation
            section = ann if isinstance(ann, type) and issubclass(ann, Section) else None
        elif kind == "extra_forbidden":
            where = f"section '{'.'.join(parts)}'" if parts else "the top level"
            return "", (f"unknown config key '{'.'.join([*parts, p])}'; valid keys in {where}: "
                        f"{', '.join(section.model_fields)}"), None
        elif branch is None:
            branch = re.sub(r"^function-\w+\[\w+\(\), (.*)\]$|^literal\[(.*)\]$", r"\1\2", str(p))
    key = ".".join(parts)
    if kind in ("model_type", "model_attributes_type"):
        return key, f"'{key}' must be a mapping of keys to values, not {value!r}", branch
    if kind == "finite_number":
        return key, f"{key}={value} must be a finite number", branch
    if kind == "literal_error":
        choices = ", ".join(re.findall(r"'([^']*)'", error["ctx"]["expected"]))
        return key, f"{key}={value!r} is not valid; choose one of: {choices}", branch
    return key, f"{key}={value!r} has the wrong type; expected {EXPECTED.get(kind, kind)}", branch


def _errors_to_line(e: ValidationError) -> str:
    errors = [_message(x) for x in e.errors()]
    key, line, branch = errors[0]
    branches = [b for k, _, b in errors if b is not None and k.split("[")[0] == key.split("[")[0]]
    if branch is not None and len(branches) > 1:  # every branch of a union failed: name them all
        value = e.errors()[0]["input"]
        return f"{key.split('[')[0]}={value!r} has the wrong type; expected {' or '.join(branches)}"
    return line




def _fits(v, extra: dict) -> bool:
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        return True  # "auto", null: no range applies
    return v >= extra.get("ge", -math.inf) and v > extra.get("gt", -math.inf) and v < extra.get("lt", math.inf)


def check_ranges(model: BaseModel, prefix: str = "") -> None:
    """Every field's declared range (of every entry, for lists), one line for the first value outside it."""
    for name, info in type(model).model_fields.items():
        value, extra = getattr(model, name), info.json_schema_extra or {}
        if isinstance(value, Section):
            check_ranges(value, f"{prefix}{name}.")
        elif isinstance(value, list) and not all(_fits(v, extra) for v in value):
            raise LwtError(f"{prefix}{name}={value}: every entry must be {rule_text(extra)}")
        elif not isinstance(value, list) and not _fits(value, extra):
            raise LwtError(f"{prefix}{name}={value} must be {rule_text(extra)}")


def build(cls: type[BaseModel], raw: dict):
    """``cls`` (Config or a section) from plain data, type-checked; LwtError with one line if it does not fit."""
    if not isinstance(raw, dict):
        raise LwtError("'config' must be a mapping of keys to values")
    try:
        return cls.model_validate(raw)
    except ValidationError as e:
        raise LwtError(_errors_to_line(e)) from None


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise LwtError(f"override '{dotted}': '{part}' is a value, not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(overrides: list[str]) -> dict:
    """``["data.train_subset=100", "seed=1"]`` -> nested dict, values parsed as YAML scalars."""
    tree: dict = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise LwtError(f"override '{item}' must look like key=value, e.g. data.train_subset=1000")
        try:
            value = yaml.safe_load(text) if text != "" else None
        except yaml.YAMLError:
            value = text
        _set_dotted(tree, key.strip(), value)
    return tree


def _merge(base: dict, extra: dict, prefix: str = "") -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and out.get(key) is not None and not isinstance(out[key], dict):
            raise LwtError(f"'{prefix}{key}' is a section and must be a mapping of keys to values, not {out[key]!r}")
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, f"{prefix}{key}.")
        else:
            out[key] = value
    return out


def default_run_name(overrides: list[str], seed: int) -> str:
    """Readable and deterministic: the identity overrides' last key parts and values, then the seed (so the same
    computation run with other how-keys lands in the same folder)."""
    parts = []
    for item in overrides:
        key, _, value = item.partition("=")
        if is_identity(key) and key not in ("seed", "experiment"):
            parts.append(f"{key.split('.')[-1]}-{value}")
    parts.append(f"seed{seed}")
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", "_".join(parts))[:150]


def _checked(raw: dict) -> Config:
    cfg = build(Config, raw)
    check_ranges(cfg)
    validate(cfg)
    return cfg


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Read an experiment file, apply overrides, validate. The experiment name defaults to the file stem."""
    raw: dict = {}
    if path is not None:
        from lwt.config.files import find_file, known_experiments  # by name too: cifar10/belilovsky_k2_greedy

        path = find_file(path) or Path(path)
        if not path.is_file():
            raise LwtError(f"experiment file not found: {path} (nor an experiment of that name; lwt's own: "
                           f"{', '.join(known_experiments()[:6])}, ...)")
        try:
            raw = load_yaml(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise LwtError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
        if not isinstance(raw, dict):
            raise LwtError(f"{path} must hold a mapping of config keys")
        raw.setdefault("experiment", path.stem)
    raw = _merge(raw, parse_overrides(list(overrides)))
    cfg = _checked(raw)
    if cfg.run_name is None:
        cfg.run_name = check_name("run_name", default_run_name(list(overrides), cfg.seed))
    return cfg


def with_overrides(cfg: Config, overrides: list[str]) -> Config:
    """A copy of ``cfg`` with ``key=value`` overrides applied and validated (the run name is kept)."""
    return _checked(_merge(to_dict(cfg), parse_overrides(list(overrides))))


NAME = re.compile(r"[A-Za-z0-9_.=+-]{1,200}")
NAME_RULE = "letters, digits and . _ = + - (one folder name: no '/', not '.' or '..', 1-200 characters)"


def check_name(key: str, value: str) -> str:
    """A value that becomes one path component (experiment, run_name, sweep): refused unless it is a plain name."""
    if not NAME.fullmatch(value) or value in (".", ".."):
        raise LwtError(f"{key}={value!r} is not a valid name; use {NAME_RULE}")
    return value


def validate(cfg: Config) -> None:
    """Checks across keys, and names: the schema has checked types and each key's range."""
    for key in ("experiment", "run_name", "sweep"):
        if getattr(cfg, key) is not None:
            check_name(key, getattr(cfg, key))
    if cfg.data.download and cfg.data.name == "imagefolder":
        raise LwtError("data.download=true downloads cifar10 and cifar100 only; an imagefolder tree (Tiny-ImageNet, "
                       "Imagenette, an ImageNet subset) is prepared once with `lwt data prepare NAME --root DIR` "
                       "(docs/data.md)")
    m = cfg.optim.milestones
    if not all(0 < f <= 1 for f in m) or m != sorted(m):
        raise LwtError(f"optim.milestones={m}: fractions of the phase's budget, increasing, each in (0, 1], "
                       "e.g. [0.3, 0.6, 0.9] (the paper's epochs 15, 30, 45 of 50)")
    if cfg.finetune.epochs and cfg.mode != "greedy":
        raise LwtError(f"finetune.epochs={cfg.finetune.epochs} fine-tunes a greedy curriculum; "
                       f"mode={cfg.mode} has none")
    c = cfg.curriculum
    if (c.init_from is None) != (c.init_blocks is None):
        raise LwtError("curriculum.init_from and curriculum.init_blocks go together: a finished run's folder and how "
                       "many of its blocks start the curriculum, e.g. curriculum.init_from=runs/x/e2e/seed{seed} "
                       "curriculum.init_blocks=4")
    if c.init_from is not None and cfg.mode != "greedy":
        raise LwtError(f"curriculum.init_from starts a greedy curriculum from another run's blocks; mode={cfg.mode} "
                       "has no curriculum (use mode=greedy)")
    if cfg.optim.stage_lr_mult is not None and cfg.optim.stage_lr_gamma is not None:
        raise LwtError("optim.stage_lr_mult and optim.stage_lr_gamma both set the layer-wise learning rates; give one")


def check_stage_lists(cfg: Config, num_blocks: int) -> None:
    """Per-block lists must have one entry per block of the built network (known only once it is built)."""
    lists = {"optim.stage_lr_mult": cfg.optim.stage_lr_mult, "optim.stage_weight_decay": cfg.optim.stage_weight_decay,
             "curriculum.stage_epochs": cfg.curriculum.stage_epochs, "model.stage_dropout": cfg.model.stage_dropout}
    for key, values in lists.items():
        if values is not None and len(values) != num_blocks:
            raise LwtError(f"{key} has {len(values)} entries but model.name={cfg.model.name!r} has {num_blocks} "
                           f"blocks (stages); give one value per block, e.g. {key}=[{', '.join(['1'] * num_blocks)}]")
    j, most = cfg.curriculum.init_blocks, min(num_blocks, cfg.curriculum.max_stages or num_blocks)
    if j is not None and j >= most:
        limit = f" and curriculum.max_stages={cfg.curriculum.max_stages}" if cfg.curriculum.max_stages else ""
        raise LwtError(f"curriculum.init_blocks={j} leaves no stage to train: model.name={cfg.model.name!r} has "
                       f"{num_blocks} blocks{limit}; valid: 1 to {most - 1}")


def to_dict(cfg: BaseModel) -> dict:
    return cfg.model_dump()


def flatten(tree: dict, prefix: str = "") -> dict:
    """``{"data": {"name": "cifar10"}}`` -> ``{"data.name": "cifar10"}`` (W&B filters on flat keys)."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def save_config(cfg: Config, path: Path) -> None:
    path.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))

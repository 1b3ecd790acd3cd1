"""Reading a config: an experiment file (by path or by name), ``key=value`` overrides, validation; the one
parse-and-validate pass every command goes through. Also the config's plain-data forms (dict, flat keys, YAML)
and override text (``format_value`` writes what ``parse_overrides`` reads)."""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from lwt.config.files import find_file, known_experiments, read_bytes, read_data
from lwt.config.files import load_yaml as load_yaml  # lwt.config.load_yaml
from lwt.config.schema import Config, is_identity, rule_text, section_of, type_text
from lwt.errors import LwtError


def read_yaml(path: Path):
    """A YAML file's data (``load_yaml``: duplicate keys refused); LwtError naming the file if it is not valid YAML."""
    return read_data(path, "yaml", top=None)


EXPECTED = {"int_type": "int", "float_type": "float", "bool_type": "bool", "string_type": "str",
            "list_type": "a list like [64, 128]", "dict_type": "dict", "none_required": "null"}
RANGE = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def _message(error: dict, raw: dict) -> tuple[str, str, bool]:
    """A pydantic error as (the field's key, one line naming the value and what is valid, whether the value lies
    outside the field's range)."""
    loc, value, kind = error["loc"], error["input"], error["type"]
    section: type[BaseModel] | None = Config
    info, parts, branched = None, [], False
    for p in loc:  # field names and list indexes; a union's branch tag is not a field name
        if isinstance(p, int) and parts:
            parts[-1] += f"[{p}]"
        elif section is not None and p in section.model_fields:
            info = section.model_fields[p]
            parts.append(p)
            section = section_of(info.annotation)
        elif kind == "extra_forbidden":
            where = f"section '{'.'.join(parts)}'" if parts else "the top level"
            return "", (f"unknown config key '{'.'.join([*parts, p])}'; valid keys in {where}: "
                        f"{', '.join(section.model_fields)}"), False
        else:
            branched = True
    key = ".".join(parts)
    field = key.split("[")[0]
    if kind in RANGE:
        shown = float if "float" in type_text(info.annotation) else lambda v: v
        if field == key:
            return field, f"{key}={shown(value)} must be {rule_text(info)}", True
        for part in field.split("."):
            raw = raw[part]  # the whole list, as given
        return field, f"{field}={[shown(v) for v in raw]}: every entry must be {rule_text(info)}", True
    if branched:  # a union's branches each failed: name them all
        branches = [" or ".join(map(repr, get_args(a))) if get_origin(a) is Literal else type_text(a)
                    for a in get_args(info.annotation)]
        return field, f"{field}={value!r} has the wrong type; expected {' or '.join(branches)}", False
    if kind in ("model_type", "model_attributes_type"):
        return key, f"'{key}' must be a mapping of keys to values, not {value!r}", False
    if kind == "finite_number":
        return key, f"{key}={value} must be a finite number", False
    if kind == "literal_error":
        choices = ", ".join(re.findall(r"'([^']*)'", error["ctx"]["expected"]))
        return key, f"{key}={value!r} is not valid; choose one of: {choices}", False
    return key, f"{key}={value!r} has the wrong type; expected {EXPECTED.get(kind, kind)}", False


# Keys the schema no longer has, which run folders' config.yaml files still hold, and what took their place. A file
# is read without them, so every finished run stays readable (its result.json records the rule it ran with); an
# override naming one is refused, so a command never silently loses what it asked for.
PAIRED = ("the critical-layer rule is a paired test of each stage against the stage to beat on the same "
          "validation images (docs/protocol.md); set its level with curriculum.critical_alpha")
RETIRED = {"curriculum.critical_min_gain": PAIRED, "curriculum.critical_z": PAIRED}


def drop_retired(raw: dict) -> dict:
    """``raw``, a file's freshly read data, without the RETIRED keys (changed in place)."""
    for key in RETIRED:
        *sections, name = key.split(".")
        node = raw
        for part in sections:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(name, None)
    return raw


def parse_overrides(overrides: list[str]) -> dict:
    """``["data.train_subset=100", "seed=1"]`` -> nested dict, values parsed as YAML scalars."""
    tree: dict = {}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise LwtError(f"override '{item}' must look like key=value, e.g. data.train_subset=1000")
        if key.strip() in RETIRED:
            raise LwtError(f"{key.strip()} is not a config key any more: {RETIRED[key.strip()]}")
        try:
            value = yaml.safe_load(text) if text != "" else None
        except yaml.YAMLError:
            value = text
        *sections, name = key.strip().split(".")
        node = tree
        for part in sections:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise LwtError(f"override '{key.strip()}': '{part}' is a value, not a section")
        node[name] = value
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


def format_value(value: Any) -> str:
    """A value as override text that ``parse_overrides`` reads back as the same value."""
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9).strip()
    return text.removesuffix("...").strip()


def run_name_of(parts: list[tuple[str, str]], seed: int) -> str:
    """Readable and deterministic: ``<last key part>-<value>`` per (key, value text), then ``seed<S>``."""
    text = "_".join([f"{key.split('.')[-1]}-{value}" for key, value in parts] + [f"seed{seed}"])
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", text)[:150]


NAME = re.compile(r"[A-Za-z0-9_.=+-]{1,200}")
NAME_RULE = "letters, digits and . _ = + - (one folder name: no '/', not '.' or '..', 1-200 characters)"


def check_name(key: str, value: str) -> str:
    """A value that becomes one path component (experiment, run_name, sweep): refused unless it is a plain name."""
    if not NAME.fullmatch(value) or value in (".", ".."):
        raise LwtError(f"{key}={value!r} is not a valid name; use {NAME_RULE}")
    return value


def read_experiment(path: str | Path) -> dict:
    """An experiment file (a path, or a name such as cifar10/belilovsky_k2_greedy) as plain data; its experiment
    name defaults to the file's stem."""
    found = find_file(path) or Path(path)
    if not found.is_file():
        raise LwtError(f"experiment file not found: {found} (nor an experiment of that name; lwt's own: "
                       f"{', '.join(known_experiments()[:6])}, ...)")
    raw = read_yaml(found)
    if raw is None or raw == {}:
        raise LwtError(f"{found} is empty; an experiment file sets at least mode and model, e.g. mode: greedy and "
                       "model: {name: belilovsky_k2}")
    if not isinstance(raw, dict):
        raise LwtError(f"{found} must hold a mapping of config keys")
    raw.setdefault("experiment", found.stem)
    return drop_retired(raw)


def saved_keys_problem(raw: dict, section: type[BaseModel] = Config, prefix: str = "") -> tuple[list[str], list[str]]:
    """The keys of the schema that a saved config lacks, and the keys it holds that the schema does not know
    (each as a dotted key, in schema order)."""
    missing, unknown = [], []
    for name, info in section.model_fields.items():
        if name not in raw:
            missing.append(prefix + name)
        elif (inner := section_of(info.annotation)) is not None and isinstance(raw[name], dict):
            more = saved_keys_problem(raw[name], inner, f"{prefix}{name}.")
            missing, unknown = missing + more[0], unknown + more[1]
    unknown += [prefix + str(k) for k in raw if k not in section.model_fields]
    return missing, unknown


def load_saved_config(path: Path, sha256: str | None = None) -> Config:
    """The config a run folder's ``config.yaml`` holds, exactly: read without following a link, and never
    completed from the schema's defaults (they may have changed since the run started), so a missing or unknown
    key, or a file whose sha256 is not the one recorded when it was written (``sha256``, from meta.json), is one
    LwtError naming the file and what to do."""
    path = Path(path)
    fix = ("a resume runs the config the run started with; put back the run's own config.yaml, or start the run "
           "over with --overwrite")
    data = read_bytes(path, follow=False)
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise LwtError(f"{path}: its sha256 is not the one meta.json recorded when the run started (it was "
                       f"truncated or edited); {fix}")
    raw = read_data(path, "yaml", follow=False, what="the run's resolved config")
    missing, unknown = saved_keys_problem(drop_retired(raw))
    if missing or unknown:
        more = f" (and {len(missing) - 3} more)" if len(missing) > 3 else ""
        lacks = f"lacks {', '.join(missing[:3])}{more}"
        knows = f"holds unknown {', '.join(unknown[:3])}{' (and more)' if len(unknown) > 3 else ''}"
        raise LwtError(f"{path}: {'; '.join([lacks] * bool(missing) + [knows] * bool(unknown))}; lwt does not fill "
                       f"a saved config from today's defaults: {fix}")
    try:
        return _checked(raw)
    except LwtError as e:
        raise LwtError(f"{path}: {e}; {fix}") from None


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Read an experiment file, apply overrides, validate. The experiment name defaults to the file stem."""
    return config_from(read_experiment(path) if path is not None else {}, overrides)


def config_from(raw: dict, overrides: list[str] = ()) -> Config:
    """An experiment's data (``read_experiment``) with ``key=value`` overrides applied, validated; without a
    run_name, the run is named after its identity overrides and its seed. ``raw`` is left as it was."""
    cfg = _checked(_merge(copy.deepcopy(raw), parse_overrides(list(overrides))))
    if cfg.run_name is None:  # how-keys left out: the same computation lands in the same folder
        pairs = [(key, value) for key, _, value in (item.partition("=") for item in overrides)]
        parts = [(k, v) for k, v in pairs if is_identity(k) and k not in ("seed", "experiment")]
        cfg.run_name = check_name("run_name", run_name_of(parts, cfg.seed))
    return cfg


def with_overrides(cfg: Config, overrides: list[str]) -> Config:
    """A copy of ``cfg`` with ``key=value`` overrides applied and validated (the run name is kept)."""
    return _checked(_merge(to_dict(cfg), parse_overrides(list(overrides))))


def _checked(raw: dict) -> Config:
    """``raw`` as a Config, or LwtError with the first problem in schema order: a value of the wrong type or an
    unknown key, else a value out of range, else what ``validate`` finds across keys."""
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as e:
        problems: dict[str, tuple[str, bool]] = {}
        for error in e.errors():
            field, line, out_of_range = _message(error, raw)
            if field not in problems or out_of_range:  # a union with one branch in range: the range is the problem
                problems[field] = (line, out_of_range)
        raise LwtError(sorted(problems.values(), key=lambda p: p[1])[0][0]) from None  # stable sort: schema order
    validate(cfg)
    return cfg


BATCH_MAX = 2**31 - 1  # torch indexes a batch with 32-bit (some kernels) or 64-bit integers


def validate(cfg: Config) -> None:
    """Checks across keys, and names: the schema has checked types and each key's range."""
    for key in ("experiment", "run_name", "sweep"):
        if getattr(cfg, key) is not None:
            check_name(key, getattr(cfg, key))
    if cfg.data.download and cfg.data.name == "imagefolder":
        raise LwtError("data.download=true downloads cifar10 and cifar100 only; an imagefolder tree (Tiny-ImageNet, "
                       "Imagenette, an ImageNet subset) is prepared once with `lwt data prepare NAME --root DIR` "
                       "(docs/data.md)")
    for key in ("data.batch_size", "data.eval_batch_size", "analysis.probe_batch_size"):
        section, name = key.split(".")
        if getattr(getattr(cfg, section), name) > BATCH_MAX:
            raise LwtError(f"{key}={getattr(getattr(cfg, section), name)} is larger than any batch torch can index; "
                           f"valid: 1 to {BATCH_MAX} (a batch larger than the data is one batch of all of it)")
    if cfg.model.widths == []:
        raise LwtError("model.widths=[] gives no block; give at least one width, e.g. model.widths=[64,128], or "
                       "null for the preset's")
    if not cfg.logging.out_dir.strip():
        raise LwtError(f"logging.out_dir={cfg.logging.out_dir!r}: an empty out_dir would write into the working "
                       "directory; give a folder, e.g. logging.out_dir=runs (the default)")
    if cfg.data.name != "imagefolder":
        for key in ("path", "classes"):
            if getattr(cfg.data, key) is not None:
                raise LwtError(f"data.{key}={getattr(cfg.data, key)!r} is an imagefolder key (data.name=imagefolder); "
                               f"data.name={cfg.data.name} does not take it: leave data.{key} out (null)")
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
    if c.init_from is not None and cfg.mode == "dgl":
        raise LwtError("curriculum.init_from starts a greedy curriculum (mode=greedy) or end-to-end training of the "
                       "blocks above the copied ones (mode=e2e, the swap test) from another run's blocks; mode=dgl "
                       "does not take it")
    layerwise = (cfg.optim.stage_lr_mult, cfg.optim.stage_lr_gamma, cfg.optim.stage_weight_decay)
    if c.init_from is not None and cfg.mode == "e2e" and any(v is not None for v in layerwise):
        raise LwtError("optim.stage_lr_mult / stage_lr_gamma / stage_weight_decay set per-block rules for E2E; with "
                       "curriculum.init_from (mode=e2e) the copied blocks are frozen: give one or the other")
    if cfg.optim.stage_lr_mult is not None and cfg.optim.stage_lr_gamma is not None:
        raise LwtError("optim.stage_lr_mult and optim.stage_lr_gamma both set the layer-wise learning rates; give one")
    if cfg.trainer.match_flops_of is not None and cfg.mode == "greedy":
        raise LwtError("trainer.match_flops_of sets the epoch budget of mode=e2e or mode=dgl from another run's "
                       "training FLOPs; a greedy curriculum's budget is curriculum.epochs_per_stage")
    if cfg.trainer.match_flops_of is not None and cfg.trainer.max_epochs is not None:
        raise LwtError(f"trainer.match_flops_of and trainer.max_epochs={cfg.trainer.max_epochs} both set the epoch "
                       "budget; give one")


def check_stage_lists(cfg: Config, num_blocks: int) -> None:
    """Per-block lists must have one entry per block of the built network (known only once it is built)."""
    lists = {"optim.stage_lr_mult": cfg.optim.stage_lr_mult, "optim.stage_weight_decay": cfg.optim.stage_weight_decay,
             "curriculum.stage_epochs": cfg.curriculum.stage_epochs, "model.stage_dropout": cfg.model.stage_dropout}
    for key, values in lists.items():
        if values is not None and len(values) != num_blocks:
            raise LwtError(f"{key} has {len(values)} entries but model.name={cfg.model.name!r} has {num_blocks} "
                           f"blocks (stages); give one value per block, e.g. {key}=[{', '.join(['1'] * num_blocks)}]")
    if cfg.curriculum.max_stages is not None and cfg.curriculum.max_stages > num_blocks:
        raise LwtError(f"curriculum.max_stages={cfg.curriculum.max_stages} is more than the {num_blocks} blocks "
                       f"(stages) of model.name={cfg.model.name!r}; valid: 1 to {num_blocks}, or null for all")
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


def config_text(cfg: Config) -> str:
    """config.yaml's text: every key of the schema, in schema order."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def save_config(cfg: Config, path: Path) -> None:
    """A plain (non-atomic) write, for files outside a run folder; a run folder's config.yaml is written by
    lwt.run.dir.RunDir.prepare, atomically, with its sha256 in meta.json."""
    Path(path).write_text(config_text(cfg))

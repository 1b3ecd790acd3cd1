"""One typed schema for every lwt run.

An experiment is a YAML file whose keys mirror the dataclasses below, plus ``key=value`` overrides
from the command line (``data.train_subset=10000``). Defaults live here and nowhere else. Loading
fails early, with one message, on unknown keys (listing the valid ones), wrong types and unknown
choices, before any data is read or any model is built.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from lwt.errors import LwtError

Mode = Literal["greedy", "e2e", "dgl"]  # dgl: decoupled greedy, all stages at once (lwt/training/dgl.py)


@dataclass
class DataConfig:
    name: Literal["cifar10", "cifar100", "imagefolder"] = "cifar10"
    root: str | None = None  # None: $LWT_DATA_DIR, else ./data
    path: str | None = None  # imagefolder: the tree under root (e.g. tiny-imagenet-50), or an absolute path
    classes: str | None = None  # imagefolder: class-subset list file (one wnid per line); None: all classes
    image_size: int = 64  # imagefolder: images are resized once to this and cached as uint8
    crop: Literal["pad", "resized"] = "pad"  # imagefolder augmentation: pad-crop or random-resized crop
    download: bool = False  # cifar10/100: use torchvision's downloader when the files are missing (refused for
    #                         imagefolder: `lwt data prepare` prepares those trees)
    val_size: int = 5000  # carved out of the training set first (seeded); drives curriculum decisions
    train_subset: int | None = None  # seeded, class-balanced subset of the remaining training images
    test_subset: int | None = None  # None: the full test set (use only to shrink tests)
    batch_size: int = 128
    eval_batch_size: int = 500
    augment: bool = True  # random crop (4-px padding) + horizontal flip, on whole batches
    on_device: bool = False  # keep the uint8 images on the training device (GPU), batches gathered there


@dataclass
class AuxConfig:
    kind: Literal["conv", "dgl"] = "conv"  # conv: Belilovsky's; dgl: pool, 1x1 convs, then an MLP
    k: int | None = None  # layers in the head: (k-1) 3x3 convs + linear; None: the architecture's default
    width: int | None = None  # width of the head's convs; None: the block's output width
    pool: int = 2  # features are average-pooled to pool x pool before the linear layer
    hidden: int = 256  # dgl: width of the 1x1 convs and of the MLP's hidden layer


@dataclass
class ModelConfig:
    name: str = "belilovsky_k2"
    width: int | None = None  # None: the preset's base width M
    num_blocks: int | None = None  # None: the preset's depth
    batch_norm: bool | None = None  # None: the preset's choice
    widths: list[int] | None = None  # simple_cnn: one conv width per block
    pooling: Literal["max", "space_to_depth"] = "max"  # simple_cnn: how blocks downsample
    stage_grouping: Literal["unit", "pool"] = "unit"  # unit: a conv layer / residual block per stage;
    #                                                   pool: one stage per resolution (pooling) stage
    # Dropout on each block's output while it trains (a remedy: regularize the early blocks that overfit their
    # local problem): one probability per block; frozen blocks are in eval mode, so it never acts on them.
    stage_dropout: list[float] | None = None
    aux: AuxConfig = field(default_factory=AuxConfig)


@dataclass
class OptimConfig:
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    # Every schedule is a function of the optimizer step, scaled to the phase's budget (a greedy stage's
    # epochs, E2E's, DGL's, fine-tuning's), so a 3-epoch stage anneals as a 50-epoch one does.
    # step: lr * gamma^(number of milestones passed); milestones are fractions of the budget (the paper's
    # lr / 5 at epochs 15, 30, 45 of 50 = [0.3, 0.6, 0.9]). cosine: lr * (1 + cos(pi * step / steps)) / 2.
    schedule: Literal["step", "cosine", "constant"] = "step"
    milestones: list[float] = field(default_factory=lambda: [0.3, 0.6, 0.9])
    gamma: float = 0.2
    # Linear learning-rate warm-up over the first warmup_epochs of every optimizer (each greedy stage, E2E,
    # fine-tuning, each DGL stage): step s runs at lr * min(1, (s+1) / steps) times the schedule.
    # 0: off. Deep BN nets trained end to end at lr 0.1 (VGG) can blow up in their first steps without it.
    warmup_epochs: float = 0.0
    # Layer-wise learning rates (a remedy for early layers that overfit their local problem): block k trains
    # at lr * mult_k. In greedy and dgl modes, stage k's optimizer; in e2e mode, block k's param group
    # (discriminative learning rates), with the classifier and the readout heads at the last block's
    # multiplier. Give one of the two: an explicit list (one per block) or a geometric rule.
    stage_lr_mult: list[float] | None = None  # one multiplier per block; None: 1.0 (or stage_lr_gamma)
    stage_lr_gamma: float | None = None  # mult_k = gamma ** (K - k), K = number of blocks: gamma < 1 slows early blocks
    stage_weight_decay: list[float] | None = None  # one weight decay per block (stronger on early blocks
    #                                                 regularizes them); None: weight_decay everywhere


@dataclass
class CurriculumConfig:
    stage_end: Literal["fixed", "plateau"] = "fixed"
    epochs_per_stage: int = 50  # fixed: the budget; plateau: the upper bound
    plateau_patience: int = 3  # plateau: epochs without a val-acc gain of plateau_min_delta
    plateau_min_delta: float = 0.002
    critical_patience: int | None = None  # stop after this many new stages fail to pay; None: off
    # A new stage "pays" if it beats the best val accuracy so far by min_gain (an accuracy, 0.01 = 1 point) or,
    # with "auto", by critical_z binomial standard errors of that accuracy on the validation set:
    # z * sqrt(p (1 - p) / n_val), p the best so far (about 1.3 points at p = 0.6 on 5,000 images, z = 2).
    critical_min_gain: float | Literal["auto"] = "auto"
    critical_z: float = 2.0
    max_stages: int | None = None  # train only the first N stages; None: all blocks
    stage_epochs: list[int] | None = None  # one epoch budget per block, overriding epochs_per_stage (fewer for
    #                                        early stages: they overfit their local problem first); None: off


@dataclass
class FinetuneConfig:
    """Greedy then fine-tune: after the greedy curriculum, train the blocks it trained and the last stage's
    auxiliary head (the greedy network's classifier) end to end, so later layers can correct earlier ones."""

    epochs: int = 0  # 0: no fine-tuning
    lr: float | None = None  # None: optim.lr (momentum, weight decay and schedule are optim's)
    stage_lr_gamma: float | None = None  # block k at lr * gamma ** (K' - k), K' = stages trained; None: all at lr


@dataclass
class TrainerConfig:
    max_epochs: int | None = None  # e2e, dgl; None: the greedy budget (stages x epochs_per_stage)
    accelerator: str = "auto"
    devices: str | list[int] = "auto"  # "auto", a count ("2") or device ids ([0,1]); more than one: set strategy
    num_nodes: int = 1
    strategy: str = "auto"  # Lightning's: "ddp" for several devices or nodes (see docs/scaling.md)
    precision: str = "auto"  # auto: bf16-mixed where the hardware has native bf16 (GPU or CPU), else 32-true
    # Speed (docs/scaling.md; lwt bench measures each). A greedy stage's frozen prefix output is computed once
    # per stage and kept in memory when it is deterministic: always for val, and for training batches
    # when data.augment=false. auto: cache when it fits in prefix_cache_gb (else recompute, with a note);
    # always: same, but a cache that does not fit is an error; never: recompute the prefix for every batch.
    prefix_cache: Literal["auto", "always", "never"] = "auto"
    prefix_cache_dtype: Literal["float32", "bfloat16", "float16"] = "float32"  # storage; batches are cast back
    prefix_cache_gb: float | None = None  # memory the cache may use; None: half the memory available now
    compile: bool = False  # torch.compile the block a greedy stage trains (the prefix runs uncompiled)
    channels_last: bool = False  # NHWC activations: faster convolutions on GPUs and (measured) on AVX2 CPUs
    log_every_n_steps: int = 20
    progress_bar: bool = True
    checkpoint_every_n_epochs: int = 1  # a kill loses at most this many epochs (see docs/reliability.md)
    deterministic: bool = False  # Lightning's flag: deterministic (slower) GPU kernels; CPU already is
    # Lightning callbacks added to every Trainer, [{class_path: ..., init_args: {...}}] (lwt/training/plugins.py)
    # (None, not []: configs saved before these keys existed read the same in results tables)
    callbacks: list[dict] | None = None
    extra: dict | None = None  # other Trainer arguments, e.g. {gradient_clip_val: 1.0}


@dataclass
class LoggingConfig:
    wandb: Literal["offline", "online", "disabled"] = "offline"
    project: str = "lwt"
    out_dir: str = "runs"
    lr_monitor: bool = True  # Lightning's LearningRateMonitor: every optimizer's learning rate, every logged step
    loggers: list[dict] | None = None  # more Lightning loggers, [{class_path:, init_args:}]


@dataclass
class AnalysisConfig:
    """Measurements on trained networks (lwt.analysis; ``lwt gap/probe/cka``)."""

    per_layer: bool = True  # at the end of `lwt train`: per-depth train/val/test accuracy and gap in result.json
    train_eval_size: int | None = 10000  # un-augmented training images evaluated (seeded sample); None: all
    seed: int = 0  # the samples and the probes' shuffling; shared by all runs so their numbers compare
    probe_pool: int = 2  # probes read block outputs average-pooled to probe_pool x probe_pool
    probe_epochs: int = 30
    probe_optimizer: Literal["adam", "sgd"] = "adam"  # sgd: momentum 0.9
    probe_lr: float = 1e-3
    probe_batch_size: int = 256
    cka_samples: int = 1000  # seeded sample of test images that CKA compares representations on


@dataclass
class Config:
    experiment: str = "default"
    mode: Mode = "greedy"
    seed: int = 0
    run_name: str | None = None  # None: derived from the command-line overrides and the seed
    sweep: str | None = None  # set by `lwt sweep`: the sweep this run belongs to (W&B groups by it)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    analysis: AnalysisConfig = field(default_factory=AnalysisConfig)

    def data_root(self) -> Path:
        return Path(self.data.root or os.environ.get("LWT_DATA_DIR") or "data")

    def stage_epochs(self, stage: int) -> int:
        """Greedy epoch budget of ``stage`` (1-based): curriculum.stage_epochs, else epochs_per_stage."""
        c = self.curriculum
        return c.stage_epochs[stage - 1] if c.stage_epochs else c.epochs_per_stage

    def e2e_epochs(self, num_stages: int) -> int:
        """E2E (and dgl) epoch budget: explicit, or the same total as the greedy curriculum."""
        return self.trainer.max_epochs or sum(self.stage_epochs(k) for k in range(1, num_stages + 1))


# ---------------------------------------------------------------- loading and validation


_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


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


def _valid_keys(cls) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted where floats are expected."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except LwtError as e:
                errors.append(str(e))
        raise LwtError(errors[0] if len(errors) == 1 else f"{key}={value!r}: expected {_type_name(tp)}")
    if origin is list:
        (item,) = typing.get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise LwtError(f"{key}={value!r} has the wrong type; expected a list like [64, 128]")
        return [_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise LwtError(f"{key}={value!r} is not valid; choose one of: {', '.join(map(str, choices))}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
            return float(value)  # PyYAML (YAML 1.1) reads 1e-3, without a dot, as a string
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif tp is dict:  # free-form mappings (trainer.extra, class_path/init_args): checked by their users
        if isinstance(value, dict):
            return value
    else:
        raise TypeError(f"unsupported annotation {tp} for {key}")
    raise LwtError(f"{key}={value!r} has the wrong type; expected {_type_name(tp)}")


def _type_name(tp: Any) -> str:
    args = typing.get_args(tp)
    if typing.get_origin(tp) is Literal:
        return " | ".join(map(str, args))
    if typing.get_origin(tp) is list:
        return f"list of {_type_name(args[0])}"
    if args:
        return " or ".join(_type_name(a) for a in args)
    return "null" if tp is type(None) else tp.__name__


def _build(cls, raw: dict, prefix: str = ""):
    if not isinstance(raw, dict):
        raise LwtError(f"'{prefix.rstrip('.') or 'config'}' must be a mapping of keys to values")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in raw.items():
        if key not in hints:
            where = f"section '{prefix.rstrip('.')}'" if prefix else "the top level"
            raise LwtError(
                f"unknown config key '{prefix}{key}'; valid keys in {where}: {', '.join(_valid_keys(cls))}"
            )
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value if value is not None else {}, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(value, tp, f"{prefix}{key}")
    return cls(**kwargs)


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
    """Readable and deterministic: the overrides' last key parts and values, then the seed."""
    parts = []
    for item in overrides:
        key, _, value = item.partition("=")
        if key in ("seed", "run_name", "sweep", "data.root") or key.startswith(
                ("logging.", "trainer.progress_bar", "analysis.")):
            continue  # not part of what the run computes (analysis.*: measured after training)
        parts.append(f"{key.split('.')[-1]}-{value}")
    parts.append(f"seed{seed}")
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", "_".join(parts))[:150]


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Read an experiment file, apply overrides, validate. The experiment name defaults to the file stem."""
    raw: dict = {}
    if path is not None:
        from lwt.files import find_file, known_experiments  # by name too: cifar10/belilovsky_k2_greedy

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
    cfg = _build(Config, raw)
    validate(cfg)
    if cfg.run_name is None:
        cfg.run_name = check_name("run_name", default_run_name(list(overrides), cfg.seed))
    return cfg


def with_overrides(cfg: Config, overrides: list[str]) -> Config:
    """A copy of ``cfg`` with ``key=value`` overrides applied and validated (the run name is kept)."""
    new = _build(Config, _merge(to_dict(cfg), parse_overrides(list(overrides))))
    validate(new)
    return new


NAME = re.compile(r"[A-Za-z0-9_.=+-]{1,200}")
NAME_RULE = "letters, digits and . _ = + - (one folder name: no '/', not '.' or '..', 1-200 characters)"


def check_name(key: str, value: str) -> str:
    """A value that becomes one path component (experiment, run_name, sweep): refused unless it is a plain name."""
    if not NAME.fullmatch(value) or value in (".", ".."):
        raise LwtError(f"{key}={value!r} is not a valid name; use {NAME_RULE}")
    return value


def validate(cfg: Config) -> None:
    """Checks that need more than types: names in registries, positive sizes."""
    from lwt.models import MODELS  # local import: the registry imports torch

    for key in ("experiment", "run_name", "sweep"):
        if getattr(cfg, key) is not None:
            check_name(key, getattr(cfg, key))

    if cfg.data.download and cfg.data.name == "imagefolder":
        raise LwtError("data.download=true downloads cifar10 and cifar100 only; an imagefolder tree (Tiny-ImageNet, "
                       "Imagenette, an ImageNet subset) is prepared once with `lwt data prepare NAME --root DIR` "
                       "(docs/data.md)")
    if cfg.model.name not in MODELS:
        raise LwtError(f"model.name={cfg.model.name!r} is not a known architecture; choose one of: "
                       f"{', '.join(sorted(MODELS))}")
    positive = {
        "data.val_size": cfg.data.val_size, "data.batch_size": cfg.data.batch_size,
        "data.eval_batch_size": cfg.data.eval_batch_size, "data.train_subset": cfg.data.train_subset,
        "data.test_subset": cfg.data.test_subset, "curriculum.epochs_per_stage": cfg.curriculum.epochs_per_stage,
        "trainer.max_epochs": cfg.trainer.max_epochs, "model.width": cfg.model.width,
        "model.num_blocks": cfg.model.num_blocks, "model.aux.k": cfg.model.aux.k,
        "model.aux.width": cfg.model.aux.width, "model.aux.pool": cfg.model.aux.pool,
        "curriculum.max_stages": cfg.curriculum.max_stages,
        "curriculum.critical_patience": cfg.curriculum.critical_patience,
        "curriculum.plateau_patience": cfg.curriculum.plateau_patience,
        "analysis.train_eval_size": cfg.analysis.train_eval_size, "analysis.probe_pool": cfg.analysis.probe_pool,
        "analysis.probe_epochs": cfg.analysis.probe_epochs, "analysis.cka_samples": cfg.analysis.cka_samples,
        "analysis.probe_batch_size": cfg.analysis.probe_batch_size,
        "trainer.checkpoint_every_n_epochs": cfg.trainer.checkpoint_every_n_epochs,
        "trainer.num_nodes": cfg.trainer.num_nodes,
    }
    positive.update({"data.image_size": cfg.data.image_size, "model.aux.hidden": cfg.model.aux.hidden,
                     "trainer.log_every_n_steps": cfg.trainer.log_every_n_steps})
    for key, value in positive.items():
        if value is not None and value < 1:
            raise LwtError(f"{key}={value} must be at least 1")
    for key, value in flatten(to_dict(cfg)).items():  # .nan and .inf are floats to YAML: no range admits them
        if any(isinstance(v, float) and not math.isfinite(v) for v in (value if isinstance(value, list) else [value])):
            raise LwtError(f"{key}={value} must be a finite number")
    for key in ("seed", "analysis.seed"):
        value = cfg.seed if key == "seed" else cfg.analysis.seed
        if not 0 <= value < 2**32:
            raise LwtError(f"{key}={value} must be in [0, 2**32) (numpy and Lightning seed with 32-bit integers)")
    if not 0 <= cfg.optim.momentum < 1:
        raise LwtError(f"optim.momentum={cfg.optim.momentum} must be in [0, 1) (0: plain SGD)")
    if cfg.model.widths is not None and not all(w >= 1 for w in cfg.model.widths):
        raise LwtError(f"model.widths={cfg.model.widths}: every width must be at least 1")
    for key, value in {"optim.weight_decay": cfg.optim.weight_decay,
                       "curriculum.plateau_min_delta": cfg.curriculum.plateau_min_delta,
                       "curriculum.critical_min_gain": 0 if cfg.curriculum.critical_min_gain == "auto"
                       else cfg.curriculum.critical_min_gain}.items():
        if value < 0:
            raise LwtError(f"{key}={value} must be 0 or more")
    if cfg.optim.gamma <= 0:
        raise LwtError(f"optim.gamma={cfg.optim.gamma} must be positive (the step schedule multiplies lr by it)")
    if cfg.trainer.prefix_cache_gb is not None and cfg.trainer.prefix_cache_gb <= 0:
        raise LwtError(f"trainer.prefix_cache_gb={cfg.trainer.prefix_cache_gb} must be positive (or null: half "
                       "the memory available)")
    if cfg.model.stage_dropout is not None and not all(0 <= p < 1 for p in cfg.model.stage_dropout):
        raise LwtError(f"model.stage_dropout={cfg.model.stage_dropout}: every entry must be in [0, 1)")
    if cfg.optim.lr <= 0:
        raise LwtError(f"optim.lr={cfg.optim.lr} must be positive")
    m = cfg.optim.milestones
    if not all(0 < f <= 1 for f in m) or m != sorted(m):
        raise LwtError(f"optim.milestones={m}: fractions of the phase's budget, increasing, each in (0, 1], "
                       "e.g. [0.3, 0.6, 0.9] (the paper's epochs 15, 30, 45 of 50)")
    if cfg.curriculum.critical_z <= 0:
        raise LwtError(f"curriculum.critical_z={cfg.curriculum.critical_z} must be positive (standard errors)")
    if cfg.optim.warmup_epochs < 0:
        raise LwtError(f"optim.warmup_epochs={cfg.optim.warmup_epochs} must be 0 (off) or more")
    if cfg.finetune.epochs < 0:
        raise LwtError(f"finetune.epochs={cfg.finetune.epochs} must be 0 (off) or more")
    if cfg.finetune.epochs and cfg.mode != "greedy":
        raise LwtError(f"finetune.epochs={cfg.finetune.epochs} fine-tunes a greedy curriculum; "
                       f"mode={cfg.mode} has none")
    if cfg.optim.stage_lr_mult is not None and cfg.optim.stage_lr_gamma is not None:
        raise LwtError("optim.stage_lr_mult and optim.stage_lr_gamma both set the layer-wise learning rates; give one")
    for key, value in {"optim.stage_lr_gamma": cfg.optim.stage_lr_gamma, "finetune.lr": cfg.finetune.lr,
                       "finetune.stage_lr_gamma": cfg.finetune.stage_lr_gamma}.items():
        if value is not None and value <= 0:
            raise LwtError(f"{key}={value} must be positive")
    for key, values in {"optim.stage_lr_mult": cfg.optim.stage_lr_mult,
                        "optim.stage_weight_decay": cfg.optim.stage_weight_decay,
                        "curriculum.stage_epochs": cfg.curriculum.stage_epochs}.items():
        if values is not None and any(v < 0 or (v == 0 and key != "optim.stage_weight_decay") for v in values):
            raise LwtError(f"{key}={values}: every entry must be positive")
    if cfg.analysis.probe_lr <= 0:
        raise LwtError(f"analysis.probe_lr={cfg.analysis.probe_lr} must be positive")
    from lwt.training.plugins import check as check_plugins  # user callbacks, loggers, trainer.extra

    check_plugins(cfg)


def check_stage_lists(cfg: Config, num_blocks: int) -> None:
    """Per-block lists must have one entry per block of the built network (known only once it is built)."""
    lists = {"optim.stage_lr_mult": cfg.optim.stage_lr_mult, "optim.stage_weight_decay": cfg.optim.stage_weight_decay,
             "curriculum.stage_epochs": cfg.curriculum.stage_epochs, "model.stage_dropout": cfg.model.stage_dropout}
    for key, values in lists.items():
        if values is not None and len(values) != num_blocks:
            raise LwtError(f"{key} has {len(values)} entries but model.name={cfg.model.name!r} has {num_blocks} "
                           f"blocks (stages); give one value per block, e.g. {key}=[{', '.join(['1'] * num_blocks)}]")


def to_dict(cfg: Config) -> dict:
    return dataclasses.asdict(cfg)


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

"""One typed schema for every lwt run, and what identifies a run.

An experiment is a YAML file whose keys mirror the pydantic models below, plus ``key=value`` overrides from
the command line (``data.train_subset=10000``). Each field carries its type, default, valid range and a
one-line meaning (``lwt config schema``), and whether it is part of the run's *identity* (what the run
computes) or only says how or where it runs (``how=True``: eval batch size, logging, progress bar, checkpoint
cadence, out_dir, ...). ``is_identity`` reads that flag; the run name, the resume and sweep agreement checks,
the varying columns of ``lwt results`` and the overrides an analysis accepts all come from it. Loading fails
early, with one line naming the key and what is valid, before any data is read or any model is built.
"""

from __future__ import annotations

import json
import os
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from lwt.errors import LwtError

_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _number(v: Any) -> Any:
    return float(v) if isinstance(v, str) and _EXPONENT.fullmatch(v.strip()) else v  # YAML 1.1 reads 1e-3 as text


def _text(v: Any) -> Any:
    return str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v  # devices: 2 -> "2"


Float = Annotated[float, BeforeValidator(_number)]  # ints are accepted too (strict mode allows int -> float)
Str = Annotated[str, BeforeValidator(_text)]


def F(default: Any, description: str, *, how: bool = False, rule: str | None = None):
    """A field: default, one-line meaning, ``how=True`` when it only says how or where the run executes, not
    what it computes, and ``rule``: its range in words where the derived wording (``rule_text``) is too terse."""
    return Field(default, description=description, json_schema_extra={"identity": not how, "rule": rule})


# Valid ranges, checked by pydantic; a list field's range applies to every entry.
Count = Annotated[int, Field(ge=1)]
Positive = Annotated[Float, Field(gt=0)]
NonNegative = Annotated[Float, Field(ge=0)]
Fraction = Annotated[Float, Field(ge=0, lt=1)]
Seed = Annotated[int, Field(ge=0, lt=2**32)]
SEED = "in [0, 2**32) (numpy and Lightning seed with 32-bit integers)"
OFF = "0 (off) or more"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


Mode = Literal["greedy", "e2e", "dgl"]  # dgl: decoupled greedy, all stages at once (lwt/training/dgl.py)


class DataConfig(Section):
    name: Literal["cifar10", "cifar100", "imagefolder"] = F("cifar10", "dataset")
    root: Str | None = F(None, "data folder; null: $LWT_DATA_DIR, else ./data", how=True)
    path: Str | None = F(None, "imagefolder: the tree under root (e.g. tiny-imagenet-50), or an absolute path")
    classes: Str | None = F(None, "imagefolder: class-subset list file (one wnid per line); null: all classes")
    image_size: Count = F(64, "imagefolder: images are resized once to this and cached as uint8")
    crop: Literal["pad", "resized"] = F("pad", "imagefolder augmentation: pad-crop or random-resized crop")
    download: bool = F(False, "cifar10/100: torchvision's downloader (imagefolder: `lwt data prepare`)", how=True)
    val_size: Count = F(5000, "carved out of the training set first (seeded); drives curriculum decisions")
    train_subset: Count | None = F(None, "seeded, class-balanced subset of the remaining training images")
    test_subset: Count | None = F(None, "test images used; null: the full test set (use only to shrink tests)")
    batch_size: Count = F(128, "training batch size (per device)")
    eval_batch_size: Count = F(500, "batch size of evaluation passes (results do not depend on it)", how=True)
    augment: bool = F(True, "random crop (4-px padding) + horizontal flip, on whole batches")
    on_device: bool = F(False, "keep the uint8 images on the training device (GPU), batched there", how=True)


class AuxConfig(Section):
    kind: Literal["conv", "dgl"] = F("conv", "auxiliary head: conv (Belilovsky's) or dgl (pool, 1x1 convs, MLP)")
    k: Count | None = F(None, "layers in the head: (k-1) 3x3 convs + linear; null: the architecture's default")
    width: Count | None = F(None, "width of the head's convs; null: the block's output width")
    pool: Count = F(2, "features are average-pooled to pool x pool before the linear layer")
    hidden: Count = F(256, "dgl: width of the 1x1 convs and of the MLP's hidden layer")


class ModelConfig(Section):
    name: Str = F("belilovsky_k2", "architecture (`lwt models` lists them)")
    width: Count | None = F(None, "base width M; null: the preset's")
    num_blocks: Count | None = F(None, "blocks (stages); null: the preset's depth")
    batch_norm: bool | None = F(None, "batch norm after each conv; null: the preset's choice")
    widths: list[Count] | None = F(None, "simple_cnn: one conv width per block")
    pooling: Literal["max", "space_to_depth"] = F("max", "simple_cnn: how blocks downsample")
    # a remedy (accelerated downsampling): halve the maps sooner, so the shallow blocks that greedy fits first see
    # fewer positions and the deep ones work on smaller, more separable maps
    downsample_at: list[Count] | None = F(None, "simple_cnn: the blocks (1-based) whose output is halved; null: "
                                          "where the width grows")
    stage_grouping: Literal["unit", "pool"] = F("unit", "a stage per conv layer / residual block, or per resolution")
    # a remedy: regularize the early blocks that overfit their local problem; frozen blocks are in eval mode
    stage_dropout: list[Fraction] | None = F(None, "dropout on a block's output while it trains, per block")
    aux: AuxConfig = Field(default_factory=AuxConfig, description="the auxiliary heads")


class OptimConfig(Section):
    # one optimizer per greedy stage (or DGL stage), restarted each stage; e2e: one for the whole network
    name: Literal["sgd", "adamw"] = F("sgd", "sgd (momentum, nesterov) or adamw (torch's default betas)")
    lr: Positive = F(0.1, "learning rate")
    momentum: Fraction = F(0.9, "sgd: momentum", rule="in [0, 1) (0: plain SGD)")
    weight_decay: NonNegative = F(5e-4, "weight decay (sgd: L2 in the gradient; adamw: decoupled)")
    nesterov: bool = F(False, "sgd: Nesterov momentum (needs momentum > 0)")
    # a function of the optimizer step, scaled to the phase's budget: a 3-epoch stage anneals as a 50-epoch one
    schedule: Literal["step", "cosine", "constant"] = F("step", "step: lr * gamma^(milestones passed); cosine")
    milestones: list[Float] = F([0.3, 0.6, 0.9], "step: increasing fractions of the phase's budget, in (0, 1]")
    gamma: Positive = F(0.2, "step: lr's factor at each milestone", rule="positive (it multiplies lr)")
    # deep BN nets trained end to end at lr 0.1 (VGG) can blow up in their first steps without it
    warmup_epochs: NonNegative = F(0.0, "linear warm-up of every optimizer: lr * min(1, (s+1) / steps)", rule=OFF)
    # layer-wise rates (a remedy for early layers that overfit): greedy/dgl stage k, or e2e block k's param group
    stage_lr_mult: list[Positive] | None = F(None, "block k trains at lr * mult_k, one per block; null: 1.0")
    stage_lr_gamma: Positive | None = F(None, "mult_k = gamma ** (K - k), K blocks: < 1 slows early blocks")
    stage_weight_decay: list[NonNegative] | None = F(None, "a weight decay per block; null: weight_decay")

    @model_validator(mode="after")
    def _nesterov_needs_sgd_momentum(self) -> OptimConfig:
        if self.nesterov and self.name != "sgd":
            raise LwtError(f"optim.nesterov=true is SGD's; optim.name={self.name} does not take it: leave it false, "
                           "or set optim.name=sgd")
        if self.nesterov and self.momentum == 0:
            raise LwtError("optim.nesterov=true needs momentum: set optim.momentum in (0, 1), e.g. 0.9")
        return self


class CurriculumConfig(Section):
    stage_end: Literal["fixed", "plateau"] = F("fixed", "when a greedy stage ends")
    epochs_per_stage: Count = F(50, "fixed: the budget of each stage; plateau: the upper bound")
    plateau_patience: Count = F(3, "plateau: epochs without a val-acc gain of plateau_min_delta")
    plateau_min_delta: NonNegative = F(0.002, "plateau: the val-acc gain that counts")
    # a stage pays if it is significantly more accurate than the stage to beat on the same validation images
    # (one-sided exact McNemar, lwt/run/critical.py); off, every stage trains and `lwt critical` finds L* after
    critical_patience: Count | None = F(None, "stop after this many new stages in a row fail to pay; null: off")
    critical_alpha: Annotated[Float, Field(gt=0, lt=1)] = F(0.05, "critical_patience: the paired test's level",
                                                            rule="in (0, 1)")
    max_stages: Count | None = F(None, "train only the first N stages; null: all blocks")
    stage_epochs: list[Count] | None = F(None, "one epoch budget per block, overriding epochs_per_stage")
    # a remedy (SegProp-style): the network's own upper layers stay on the loss path of every greedy stage
    stage_head: Literal["aux", "network"] = F("aux", "greedy: stage k trains block k through its aux head (aux), or "
                                              "with blocks k+1..K and the classifier as its trained head (network; "
                                              "lwt/training/segprop.py)")
    # the intervention of docs/protocol.md: blocks 1..j of another (e.g. E2E) run, frozen, then greedy from j+1
    init_from: Str | None = F(None, "a finished run of the same network; {seed}: this run's seed, {run_name}: its "
                              "run name")
    init_blocks: Count | None = F(None, "init_from: its blocks 1..N (and their read-out heads) start the curriculum, "
                                "frozen")


class FinetuneConfig(Section):
    """Greedy then fine-tune: after the greedy curriculum, train the blocks it trained and the last stage's
    auxiliary head (the greedy network's classifier) end to end, so later layers can correct earlier ones."""

    epochs: Annotated[int, Field(ge=0)] = F(0, "fine-tuning epochs after a greedy curriculum; 0: none", rule=OFF)
    lr: Positive | None = F(None, "null: optim.lr (momentum, weight decay and schedule are optim's)")
    stage_lr_gamma: Positive | None = F(None, "block k at lr * gamma ** (K' - k), K' stages; null: all at lr")


class TrainerConfig(Section):
    max_epochs: Count | None = F(None, "e2e, dgl budget; null: the greedy budget (stages x epochs_per_stage)")
    # the compute-matched E2E arm: as many epochs as fit in the training FLOPs of another run (a greedy one)
    match_flops_of: Str | None = F(None, "e2e, dgl: a finished run whose training FLOPs this run's budget matches "
                                   "(whole epochs, at most its FLOPs); {seed}: this run's seed, {run_name}: its run "
                                   "name")
    accelerator: Str = F("auto", "Lightning's accelerator (cpu, gpu, auto)", how=True)
    # each device gets data.batch_size images per step, so the device count changes what is computed
    devices: Str | list[int] = F("auto", "\"auto\", a count (\"2\") or device ids ([0,1]); more than one: set strategy")
    num_nodes: Count = F(1, "machines (each with `devices` devices)")
    strategy: Str = F("auto", "Lightning's: \"ddp\" for several devices or nodes (see docs/scaling.md)")
    precision: Str = F("auto", "auto: bf16-mixed where the hardware has native bf16 (GPU or CPU), else 32-true")
    # a stage's frozen prefix output, kept once computed: val always, train when data.augment=false (docs/scaling.md)
    prefix_cache: Literal["auto", "always", "never"] = F("auto", "auto: if it fits in prefix_cache_gb", how=True)
    prefix_cache_dtype: Literal["float32", "bfloat16", "float16"] = F("float32", "the cache's storage dtype")
    prefix_cache_gb: Positive | None = F(None, "memory the cache may use", how=True,
                                         rule="positive (or null: half the memory available)")
    # greedy, augmented: V augmented views of each training image through the frozen prefix once per stage
    prefix_views: Count | None = F(None, "greedy + data.augment: cache this many augmented views per training "
                                   "image, epoch e trains on view e mod V; null: fresh augmentation every batch",
                                   rule="1 or more (or null: off)")
    compile: bool = F(False, "torch.compile the block a greedy stage trains (the prefix runs uncompiled)", how=True)
    channels_last: bool = F(False, "NHWC activations: faster convolutions on GPUs and (measured) AVX2 CPUs", how=True)
    log_every_n_steps: Count = F(20, "metrics logged every n optimizer steps", how=True)
    progress_bar: bool = F(True, "Lightning's progress bar", how=True)
    checkpoint_every_n_epochs: Count = F(1, "a kill loses at most this many epochs", how=True)
    deterministic: bool = F(False, "Lightning's flag: deterministic (slower) GPU kernels; CPU already is", how=True)
    # null, not []: a config that leaves them out reads the same in results tables
    callbacks: list[dict] | None = F(None, "Lightning callbacks for every Trainer, [{class_path:, init_args:}]")
    extra: dict | None = F(None, "other Trainer arguments, e.g. {gradient_clip_val: 1.0}")


class LoggingConfig(Section):
    wandb: Literal["offline", "online", "disabled"] = F("offline", "W&B (offline: no account, no network)", how=True)
    project: Str = F("lwt", "W&B project", how=True)
    entity: Str | None = F(None, "W&B entity (team or user); null: your default entity (or WANDB_ENTITY)", how=True)
    notes: Str | None = F(None, "the W&B run's notes; null: the experiment file's first comment line", how=True)
    log_model: bool | Literal["all"] = F(False, "W&B model artifacts: true: the final model; all: also each "
                                         "phase's checkpoint", how=True)
    out_dir: Str = F("runs", "run folders go to <out_dir>/<experiment>/<run_name>", how=True)
    lr_monitor: bool = F(True, "log every optimizer's learning rate at every logged step", how=True)
    loggers: list[dict] | None = F(None, "more Lightning loggers, [{class_path:, init_args:}]", how=True)


class AnalysisConfig(Section):
    """Measurements on trained networks (lwt.analysis; ``lwt gap/probe/cka``), made after training: how=True."""

    per_layer: bool = F(True, "at the end of `lwt train`: per-depth train/val/test accuracy and gap", how=True)
    train_eval_size: Count | None = F(10000, "un-augmented train images evaluated; null: all", how=True)
    seed: Seed = F(0, "the samples and the probes' shuffling; shared by all runs so they compare", how=True,
                   rule=SEED)
    probe_pool: Count = F(2, "probes read block outputs average-pooled to probe_pool x probe_pool", how=True)
    probe_epochs: Count = F(30, "linear probe training epochs", how=True)
    probe_optimizer: Literal["adam", "sgd"] = F("adam", "probe optimizer (sgd: momentum 0.9)", how=True)
    probe_lr: Positive = F(1e-3, "probe learning rate", how=True)
    probe_batch_size: Count = F(256, "probe batch size", how=True)
    cka_samples: Count = F(1000, "seeded sample of test images that CKA compares representations on", how=True)


class Config(Section):
    experiment: Str = F("default", "the experiment's name (its file's stem): a folder under logging.out_dir")
    mode: Mode = F("greedy", "greedy (stage by stage), e2e (end to end) or dgl (decoupled greedy)")
    seed: Seed = F(0, "seeds everything the run draws", rule=SEED)
    run_name: Str | None = F(None, "the run's folder; null: the identity overrides and the seed", how=True)
    sweep: Str | None = F(None, "set by `lwt sweep`: the sweep this run belongs to (W&B groups by it)", how=True)
    data: DataConfig = Field(default_factory=DataConfig, description="the dataset and its batches")
    model: ModelConfig = Field(default_factory=ModelConfig, description="the network")
    optim: OptimConfig = Field(default_factory=OptimConfig, description="the optimizer and its schedule")
    curriculum: CurriculumConfig = Field(default_factory=CurriculumConfig, description="greedy stages")
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig, description="greedy then fine-tune")
    trainer: TrainerConfig = Field(default_factory=TrainerConfig, description="Lightning's Trainer")
    logging: LoggingConfig = Field(default_factory=LoggingConfig, description="where results and logs go")
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig, description="measurements after training")

    def data_root(self) -> Path:
        return Path(self.data.root or os.environ.get("LWT_DATA_DIR") or "data")

    def stage_epochs(self, stage: int) -> int:
        """Greedy epoch budget of ``stage`` (1-based): curriculum.stage_epochs, else epochs_per_stage."""
        c = self.curriculum
        return c.stage_epochs[stage - 1] if c.stage_epochs else c.epochs_per_stage

    def e2e_epochs(self, num_stages: int) -> int:
        """E2E (and dgl) epoch budget: explicit, or the same total as the greedy curriculum (with
        trainer.match_flops_of the budget is resolved when the run starts: lwt/training/matched.py)."""
        return self.trainer.max_epochs or sum(self.stage_epochs(k) for k in range(1, num_stages + 1))


SECTIONS = ["data", "model", "model.aux", "optim", "curriculum", "finetune", "trainer", "logging", "analysis"]


def section_of(annotation) -> type[Section] | None:
    """The section model a field holds, or None for a value."""
    return annotation if isinstance(annotation, type) and issubclass(annotation, Section) else None


# ---------------------------------------------------------------- identity: the one place that decides it


def field_of(key: str):
    """The schema field of a flat key ("data.eval_batch_size", "trainer.extra.gradient_clip_val": the field
    ``extra``), or None for a key the schema does not know (a config written by another lwt version)."""
    section: type[BaseModel] = Config
    for part in key.split("."):
        info = section.model_fields.get(part.split("[")[0])
        if info is None:
            return None
        if section_of(info.annotation) is None:
            return info
        section = info.annotation
    return None  # a whole section


def is_identity(key: str) -> bool:
    """Whether ``key`` changes what a run computes. The run name, resume's and the sweep's agreement checks,
    the varying columns of ``lwt results`` and the overrides an analysis accepts all ask this. A key the schema
    does not know counts as identity: an unknown difference is compared, never ignored."""
    info = field_of(key)
    return info is None or info.json_schema_extra["identity"]


def identity_differences(a: dict, b: dict) -> list[str]:
    """Flat identity keys present in both ``a`` and ``b`` whose values differ."""
    return [k for k in a if k in b and is_identity(k) and a[k] != b[k]]


def rule_text(info) -> str | None:
    """A field's range in words (``at least 1``, ``in [0, 1)``, ...) from the constraints pydantic checks (``ge``,
    ``gt``, ``lt``, of the value or of every entry of a list), or None if it has none."""
    lim, todo = {}, [info.annotation, *info.metadata]
    while todo:  # types, their arguments, and the constraints of Annotated[..., Field(...)] inside them
        item = todo.pop()
        todo += [*typing.get_args(item), *getattr(item, "metadata", [])]
        lim.update({k: getattr(item, k) for k in ("ge", "gt", "lt") if hasattr(item, k)})
    if info.json_schema_extra["rule"] or not lim:
        return info.json_schema_extra["rule"]
    if "lt" in lim:
        return f"in [{lim.get('ge', 0)}, {lim['lt']})"
    if "gt" in lim:
        return "positive" if lim["gt"] == 0 else f"more than {lim['gt']}"
    return "0 or more" if lim["ge"] == 0 else f"at least {lim['ge']}"


def type_text(annotation) -> str:
    """A field's type as ``lwt config schema`` writes it: ``int | null``, ``list[float]``, ``greedy|e2e|dgl``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        return type_text(args[0])
    if origin is Literal:
        return "|".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_text(a) for a in args)
    if origin is list:
        return f"list[{type_text(args[0])}]"
    return "null" if annotation is type(None) else annotation.__name__


def schema_lines(section: str | None = None) -> list[str]:
    """``lwt config schema [SECTION]``: every key with its type, default, range and meaning; ``[how]`` marks
    the keys that are not part of a run's identity."""
    cls, prefix = Config, ""
    if section is not None:
        if section not in SECTIONS:
            raise LwtError(f"lwt config schema {section}: not a section; choose one of: {', '.join(SECTIONS)}")
        for part in section.split("."):
            cls, prefix = cls.model_fields[part].annotation, f"{prefix}{part}."
    lines = [] if section else ["key: type = default (valid range) [how: not part of the run's identity]  meaning"]
    for name, info in cls.model_fields.items():
        if section_of(info.annotation):
            lines += [f"{prefix}{name}: {info.description}", *schema_lines(f"{prefix}{name}")]
            continue
        rule, how = rule_text(info), "" if info.json_schema_extra["identity"] else " [how]"
        lines.append(f"  {prefix}{name}: {type_text(info.annotation)} = {json.dumps(info.default)}"
                     f"{f' ({rule})' if rule else ''}{how}  {info.description}")
    return lines

"""The open Trainer: Lightning callbacks and loggers from the config, and other Trainer arguments.

    trainer.callbacks: [{class_path: lightning.pytorch.callbacks.EarlyStopping,
                         init_args: {monitor: val/acc, mode: max, patience: 3}}]
    logging.loggers:   [{class_path: lightning.pytorch.loggers.TensorBoardLogger, init_args: {save_dir: tb}}]
    trainer.extra:     {gradient_clip_val: 1.0, accumulate_grad_batches: 2, limit_val_batches: 0.5}

Everything is checked when a run is built (``check``, called first by ``training.train``: the class imports, is a
Callback / Logger, accepts ``init_args``; every ``extra`` key is a Trainer argument lwt does not set itself), so a
typo fails before any data is read; reading a config imports nothing it names. Callbacks are built anew for every
Trainer of a run (each greedy stage has its own), loggers once per run. A relative ``save_dir``/``root_dir``/
``tracking_uri`` folder of a logger is taken inside the run folder.

Importing a class runs its module's code, so only classes under ``lwt.``, ``lightning.``, ``pytorch_lightning.``
and ``torch.`` are imported unless the command opts in: ``lwt train --allow-class-path`` / ``lwt sweep
--allow-class-path``, which set ``LWT_ALLOW_CLASS_PATH=1`` for the process and its sweep workers (the variable
alone opts in too, e.g. for ``lwt tune``).
"""

from __future__ import annotations

import importlib
import inspect
import math
import os
from pathlib import Path

from lwt.errors import LwtError

# Trainer arguments lwt sets from its own config (or needs as they are): the key to use instead
OWNED = {"max_epochs": "curriculum.epochs_per_stage / trainer.max_epochs", "accelerator": "trainer.accelerator",
         "devices": "trainer.devices", "num_nodes": "trainer.num_nodes", "strategy": "trainer.strategy",
         "precision": "trainer.precision", "logger": "logging.loggers", "callbacks": "trainer.callbacks",
         "default_root_dir": "logging.out_dir", "enable_progress_bar": "trainer.progress_bar",
         "log_every_n_steps": "trainer.log_every_n_steps", "deterministic": "trainer.deterministic",
         "plugins": "(lwt's checkpoint writer)", "use_distributed_sampler": "(lwt's own sampler)"}
DIR_ARGS = ("save_dir", "root_dir")  # logger folders that default to the current folder: kept in the run folder
TRUSTED = ("lwt", "lightning", "pytorch_lightning", "torch")  # packages whose classes a config may name freely
ALLOW_ENV = "LWT_ALLOW_CLASS_PATH"  # "1": any class_path may be imported (set by --allow-class-path)


def foreign_allowed() -> bool:
    return os.environ.get(ALLOW_ENV) == "1"


def _class(spec, key: str, base: type):
    if not isinstance(spec, dict) or not isinstance(spec.get("class_path"), str) or set(spec) - {"class_path",
                                                                                                 "init_args"}:
        raise LwtError(f"{key}: each entry must be {{class_path: package.module.Class, init_args: {{...}}}}, "
                       f"got {spec!r}")
    module, _, name = spec["class_path"].rpartition(".")
    if module.split(".")[0] not in TRUSTED and not foreign_allowed():
        raise LwtError(f"{key}: {spec['class_path']!r} is outside lwt, lightning, pytorch_lightning and torch, and "
                       "importing it runs its code; if you trust it, pass --allow-class-path (lwt train, lwt sweep; "
                       f"or set {ALLOW_ENV}=1), else name a class of those packages")
    try:
        cls = getattr(importlib.import_module(module), name) if module else None
    except ImportError as e:
        raise LwtError(f"{key}: cannot import {spec['class_path']} ({e})") from None
    except AttributeError:
        cls = None
    if cls is None:
        raise LwtError(f"{key}: {spec['class_path']!r} is not a class (give the full path, e.g. "
                       "lightning.pytorch.callbacks.EarlyStopping)")
    if not (inspect.isclass(cls) and issubclass(cls, base)):
        raise LwtError(f"{key}: {spec['class_path']} is not a {base.__module__}.{base.__name__}")
    args = spec.get("init_args") or {}
    if not isinstance(args, dict):
        raise LwtError(f"{key}: init_args of {spec['class_path']} must be a mapping, got {args!r}")
    try:
        inspect.signature(cls).bind(**args)
    except TypeError as e:
        raise LwtError(f"{key}: {spec['class_path']} does not accept init_args {args}: {e}") from None
    return cls, dict(args)


def check(cfg) -> None:
    """Every user callback, logger and extra Trainer argument, checked without building anything."""
    import lightning as L
    from lightning.pytorch.loggers import Logger

    user_callbacks(cfg)  # built once and dropped: a callback's own checks of its values fail here, not mid-run
    for i, spec in enumerate(cfg.logging.loggers or []):
        _class(spec, f"logging.loggers[{i}]", Logger)
    valid = set(inspect.signature(L.Trainer).parameters) - set(OWNED)
    for key in cfg.trainer.extra or {}:
        if key in OWNED:
            raise LwtError(f"trainer.extra.{key}: lwt sets this Trainer argument itself; use {OWNED[key]}")
        if key not in valid:
            raise LwtError(f"trainer.extra.{key} is not an argument of lightning.Trainer; valid: "
                           f"{', '.join(sorted(valid))}")
    clip = (cfg.trainer.extra or {}).get("gradient_clip_val")
    if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float)) or not 0 <= clip < math.inf):
        raise LwtError(f"trainer.extra.gradient_clip_val={clip!r} must be a finite number >= 0 (0 or null: no "
                       "clipping), e.g. trainer.extra={gradient_clip_val: 1.0}")
    acc = (cfg.trainer.extra or {}).get("accumulate_grad_batches")
    if acc is not None and (isinstance(acc, bool) or not isinstance(acc, int) or acc < 1):
        raise LwtError(f"trainer.extra.accumulate_grad_batches={acc!r} must be a whole number >= 1 (1: no "
                       "accumulation), e.g. trainer.extra={accumulate_grad_batches: 2}")
    if cfg.trainer.extra:  # their values, as Lightning checks them: a Trainer built and never run writes nothing
        try:
            L.Trainer(**{**dict(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False), **cfg.trainer.extra}, accelerator="cpu", devices=1)
        except Exception as e:  # Lightning raises MisconfigurationException, ValueError, TypeError
            reason = " ".join(str(e).split())[:300] or type(e).__name__
            raise LwtError(f"trainer.extra={cfg.trainer.extra}: Lightning refuses it: {reason}") from None


def user_callbacks(cfg) -> list:
    """A fresh instance of each ``trainer.callbacks`` entry (one set per Trainer)."""
    import lightning as L

    out = []
    for i, spec in enumerate(cfg.trainer.callbacks or []):
        cls, args = _class(spec, f"trainer.callbacks[{i}]", L.Callback)
        out.append(_build(cls, args, f"trainer.callbacks[{i}]"))
    return out


def user_loggers(cfg, run_dir: Path) -> list:
    """Each ``logging.loggers`` entry, built once for the run; relative folders land inside ``run_dir``."""
    from lightning.pytorch.loggers import Logger

    out = []
    for i, spec in enumerate(cfg.logging.loggers or []):
        cls, args = _class(spec, f"logging.loggers[{i}]", Logger)
        params = inspect.signature(cls).parameters
        for name in DIR_ARGS:
            if name in params and not Path(str(args.get(name, name))).is_absolute():
                args[name] = str(run_dir / args.get(name, cls.__name__.lower().replace("logger", "")))
        out.append(_build(cls, args, f"logging.loggers[{i}]"))
    return out


def _build(cls, args: dict, key: str):
    try:
        return cls(**args)
    except Exception as e:  # the class's own checks (bad values, a missing optional package)
        raise LwtError(f"{key}: {cls.__module__}.{cls.__name__}({args}) failed: "
                       f"{str(e).splitlines()[0] if str(e) else type(e).__name__}") from None

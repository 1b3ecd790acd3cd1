"""From a validated Config to a finished run directory: greedy curriculum or end-to-end training."""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger

from lwt.config import Config, flatten, to_dict
from lwt.data import build_datamodule
from lwt.models import StagedNet, build_model
from lwt.rundir import RESULT, atomic_write_json, git_revision, prepare_run_dir
from lwt.training.curriculum import Curriculum
from lwt.training.e2e import EndToEndModule
from lwt.training.stage import StageModule

# Data lives in memory as tensors: worker processes would only add start-up cost.
warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
# A greedy stage keeps its frozen prefix in eval mode on purpose (BN statistics must not move).
warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
# One CSV logger serves every stage's Trainer; config.yaml is already in the run directory.
warnings.filterwarnings("ignore", message=".*exists and is not empty.*")
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
logging.getLogger("lightning.pytorch.accelerators.cuda").setLevel(logging.WARNING)


class EpochTimer(L.Callback):
    """Wall seconds spent in training epochs (validation excluded), for images/s."""

    def __init__(self):
        self.seconds, self._t0 = 0.0, 0.0

    def on_train_epoch_start(self, trainer, pl_module):
        self._t0 = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.seconds += time.perf_counter() - self._t0


def make_loggers(cfg: Config, run_dir: Path) -> list[Logger]:
    loggers: list[Logger] = [CSVLogger(save_dir=str(run_dir), name="", version="")]
    if cfg.logging.wandb != "disabled":
        loggers.append(WandbLogger(
            project=cfg.logging.project, name=f"{cfg.experiment}/{cfg.run_name}", group=cfg.experiment,
            job_type=cfg.mode, save_dir=str(run_dir), offline=cfg.logging.wandb == "offline",
            config=flatten(to_dict(cfg)),
        ))
    return loggers


def make_trainer(cfg: Config, run_dir: Path, loggers, callbacks, max_epochs: int) -> L.Trainer:
    t = cfg.trainer
    return L.Trainer(
        max_epochs=max_epochs, accelerator=t.accelerator, devices=t.devices, precision=t.precision,
        logger=loggers, callbacks=callbacks, default_root_dir=str(run_dir),
        enable_progress_bar=t.progress_bar, enable_model_summary=False, num_sanity_val_steps=0,
        log_every_n_steps=t.log_every_n_steps,
    )


def _metric(trainer: L.Trainer, key: str) -> float | None:
    value = trainer.callback_metrics.get(key)
    return None if value is None else float(value)


def train_greedy(cfg: Config, net: StagedNet, dm, run_dir: Path, loggers) -> tuple[list[dict], dict]:
    curriculum = Curriculum(cfg.curriculum, net.num_blocks)
    rows = []
    for stage in range(1, curriculum.num_stages + 1):
        curriculum.start_stage(stage)
        module = StageModule(net, stage - 1, cfg.optim, dm.num_classes, cfg.curriculum.epochs_per_stage)
        timer = EpochTimer()
        ckpt = ModelCheckpoint(dirpath=run_dir / "checkpoints" / f"stage{stage}", save_top_k=0, save_last=True)
        trainer = make_trainer(cfg, run_dir, loggers, [curriculum, timer, ckpt], cfg.curriculum.epochs_per_stage)
        t0 = time.perf_counter()
        trainer.fit(module, datamodule=dm)
        seconds = time.perf_counter() - t0
        epochs = trainer.current_epoch
        row = {
            "stage": stage, "depth": stage,
            "train_acc": _metric(trainer, "train/acc"), "val_acc": _metric(trainer, "val/acc"),
            "epochs": epochs, "seconds": round(seconds, 2),
            "images_per_s": round(len(dm.train_set) * epochs / max(timer.seconds, 1e-9), 1),
            "stop_reason": curriculum.stop_reason[stage],
        }
        row["test_acc"] = trainer.test(module, datamodule=dm, verbose=False)[0]["test/acc"]
        rows.append(row)
        print(f"[lwt] stage {stage}: val acc {row['val_acc']:.4f}, test acc {row['test_acc']:.4f}, "
              f"{epochs} epochs, {seconds:.0f}s", flush=True)
        if curriculum.stage_done(stage, row["val_acc"]):
            break
    decision = curriculum.critical.decision()
    if decision["fired"]:
        print(f"[lwt] critical layer: stage {decision['critical_layer']} (val acc {decision['best_val_acc']:.4f}); "
              f"{curriculum.critical.patience} later stage(s) did not beat it by {cfg.curriculum.critical_min_gain}",
              flush=True)
    return rows, decision


def train_e2e(cfg: Config, net: StagedNet, dm, run_dir: Path, loggers) -> list[dict]:
    epochs = cfg.e2e_epochs(net.num_blocks)
    module = EndToEndModule(net, cfg.optim, dm.num_classes, epochs)
    timer = EpochTimer()
    ckpt = ModelCheckpoint(dirpath=run_dir / "checkpoints" / "e2e", save_top_k=0, save_last=True)
    trainer = make_trainer(cfg, run_dir, loggers, [timer, ckpt], epochs)
    t0 = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    seconds = time.perf_counter() - t0
    train_val = {k: _metric(trainer, k) for k in trainer.callback_metrics}
    test = trainer.test(module, datamodule=dm, verbose=False)[0]
    return [
        {
            "stage": d, "depth": d, "train_acc": train_val.get(f"train/acc_depth{d}"),
            "val_acc": train_val.get(f"val/acc_depth{d}"), "test_acc": test[f"test/acc_depth{d}"],
            "epochs": trainer.current_epoch, "seconds": round(seconds, 2),
            "images_per_s": round(len(dm.train_set) * trainer.current_epoch / max(timer.seconds, 1e-9), 1),
            "stop_reason": "budget",
        }
        for d in module.depths
    ]


def run(cfg: Config, overwrite: bool = False) -> dict:
    """Train as ``cfg`` says; return the result (also written to ``run_dir/result.json``)."""
    dm = build_datamodule(cfg)
    dm.prepare_data()  # fails with the missing-data message before a run directory is made
    run_dir = prepare_run_dir(cfg, overwrite)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    dm.setup("fit")
    net = build_model(cfg.model, dm.num_classes, dm.input_shape)
    loggers = make_loggers(cfg, run_dir)
    start = time.perf_counter()
    decision = None
    if cfg.mode == "greedy":
        rows, decision = train_greedy(cfg, net, dm, run_dir, loggers)
    else:
        rows = train_e2e(cfg, net, dm, run_dir, loggers)
    torch.save(net.state_dict(), run_dir / "model.pt")
    result = {
        "experiment": cfg.experiment, "run_name": cfg.run_name, "mode": cfg.mode, "seed": cfg.seed,
        "model": cfg.model.name, "dataset": cfg.data.name, "train_images": len(dm.train_set),
        "val_images": len(dm.val_set), "test_images": len(dm.test_set),
        "git_revision": git_revision(), "stages": rows, "final_test_acc": rows[-1]["test_acc"],
        "critical": decision, "seconds": round(time.perf_counter() - start, 2),
        "run_dir": str(run_dir),
    }
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_table("stages", columns=list(rows[0]), data=[list(r.values()) for r in rows])
            logger.experiment.summary.update({"final_test_acc": result["final_test_acc"]})
            logger.experiment.finish()
    atomic_write_json(run_dir / RESULT, result)
    return result

"""From a validated Config to a finished run directory: greedy curriculum (optionally fine-tuned end to end),
end-to-end training, or decoupled greedy training (dgl)."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint

from lwt.config import Config, check_stage_lists
from lwt.errors import Interrupted
from lwt.models import StagedNet, build_model, check_batch_norm, check_name
from lwt.run.dir import DGL, E2E, FINETUNE, Phase, RunDir, RunLock, git_revision, is_main_process, write_errors_reported
from lwt.run.load import load_datamodule
from lwt.run.result import FineTune, RunResult, StageRow
from lwt.training import matched
from lwt.training.axes import clock_of, progress_bar
from lwt.training.compute import check_lightning_options, provenance, resolve_precision
from lwt.training.curriculum import Curriculum
from lwt.training.dgl import DecoupledModule
from lwt.training.e2e import EndToEndModule
from lwt.training.evaluate import record_depth_choice, record_per_layer
from lwt.training.flops import phase_train_flops
from lwt.training.intervention import INIT, load_source
from lwt.training.loggers import (
    PhaseCost,
    PhaseLrMonitor,
    RunWandbLogger,
    log_checkpoint,
    log_run_end,
    make_loggers,
)
from lwt.training.plugins import check as check_plugins
from lwt.training.plugins import user_callbacks
from lwt.training.predictions import Predictions, record_ensemble, record_phase
from lwt.training.prefix import PrefixCache, cache_wanted, check_views, release_views
from lwt.training.resume import forget_stages, load_checkpoint, read_progress, restore_net, write_progress
from lwt.training.segprop import NETWORK, SegPropStage
from lwt.training.segprop import check as check_stage_head
from lwt.training.stage import StageModule
from lwt.training.state import (
    AtomicCheckpointIO,
    EpochTimer,
    FiniteLoss,
    RunState,
    StopOnSignal,
    atomic_torch_save,
    peak_memory_mb,
    reset_peak_memory,
    signals_deferred,
    stage_seed,
)

Figure = Callable[[RunResult, Path], Path]  # (result, run folder) -> the PNG it drew there

# Data lives in memory as tensors: worker processes would only add start-up cost.
warnings.filterwarnings("ignore", message=".*does not have many workers.*")
warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
# A greedy stage keeps its frozen prefix in eval mode on purpose (BN statistics must not move).
warnings.filterwarnings("ignore", message=".*module\\(s\\) in eval mode.*")
logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
logging.getLogger("lightning.pytorch.accelerators.cuda").setLevel(logging.WARNING)


def make_trainer(cfg: Config, run_dir: RunDir, loggers, callbacks, max_epochs: int, phase: Phase) -> L.Trainer:
    """A Trainer that checkpoints ``phase`` every ``checkpoint_every_n_epochs`` epochs,
    records what a resume needs (RunState) and stops at the first non-finite loss. Every row its loggers get
    carries the run's curriculum-wide axes (lwt/training/axes.py) and, by default, every optimizer's lr."""
    t = cfg.trainer
    # one file, overwritten: save_top_k=1 without a monitor keeps the latest (save_top_k=0 + save_last
    # would write nothing per epoch in Lightning 2.6, as "last" follows only top-k saves)
    ckpt = ModelCheckpoint(dirpath=run_dir.checkpoint(phase).parent, filename="last", save_top_k=1,
                           every_n_epochs=t.checkpoint_every_n_epochs, enable_version_counter=False)
    guard = FiniteLoss(str(phase), run_dir.checkpoint(phase),
                       hint=f"Lower optim.lr (now {cfg.optim.lr}), check the schedule and the data, "
                       "and start a new run")
    stages = next((c.num_stages for c in callbacks if isinstance(c, Curriculum)), None)
    title = str(phase) + (f"/{stages}" if stages else "")  # "stage 2/4", "end-to-end training"
    bar = [progress_bar(title)] if t.progress_bar else []  # Lightning refuses a bar when it is off
    # logging.lr_monitor: `lr-SGD` per optimizer step (DGL: lr-SGD, lr-SGD-1, ... a stage each; param groups: /pg1)
    # and `lr`, the first optimizer's rate under one name for SGD and AdamW
    # (and at each phase's first and last step, however short it is: PhaseLrMonitor)
    lr = [PhaseLrMonitor(logging_interval="step")] if cfg.logging.lr_monitor and loggers else []
    lr += [PhaseCost()] if loggers else []  # cost/seconds, cost/peak_memory_mb at the phase's end
    return L.Trainer(**{
        **dict(enable_model_summary=False, num_sanity_val_steps=0),  # lwt's defaults, which trainer.extra may change
        **(t.extra or {}),  # other Trainer arguments (plugins.check checked them in train())
    }, max_epochs=max_epochs, accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes,
        strategy=t.strategy, precision=resolve_precision(t), use_distributed_sampler=False,  # see batch_loader
        logger=loggers, callbacks=[*callbacks, clock_of(loggers), *lr, *user_callbacks(cfg),
                                   *bar, RunState(cfg.model, phase.name), guard, StopOnSignal(), ckpt],
        default_root_dir=str(run_dir), enable_progress_bar=t.progress_bar,
        log_every_n_steps=t.log_every_n_steps, deterministic=t.deterministic, plugins=[AtomicCheckpointIO()],
    )


def fit(cfg: Config, trainer: L.Trainer, module: L.LightningModule, dm, run_dir: RunDir, phase: Phase) -> None:
    """Fit, continuing from the phase's checkpoint when an earlier (killed) attempt left one, and save
    the phase's final state, whatever ``checkpoint_every_n_epochs`` is: a later phase starts from it."""
    path = run_dir.checkpoint(phase)
    resume = path.is_file()
    if resume:
        load_checkpoint(path, module.net, cfg.model, phase)
    try:
        with signals_deferred():
            trainer.fit(module, datamodule=dm, ckpt_path=path if resume else None)
    except Interrupted as e:  # where it stopped, for the one line the CLI prints
        e.where = e.where or f"{phase}, epoch {trainer.current_epoch + 1}"
        raise
    trainer.save_checkpoint(path, weights_only=False)
    log_checkpoint(trainer.loggers, path, phase.name)  # logging.log_model=all: a W&B model artifact


def _metric(trainer: L.Trainer, key: str) -> float | None:
    """The last epoch's value; from the checkpoint when a resumed fit had no epoch left to run."""
    value = trainer.callback_metrics.get(key)
    if value is None:
        state = next(c for c in trainer.callbacks if isinstance(c, RunState))
        value = state.metrics.get(key)
    return None if value is None else float(value)


def train_greedy(cfg: Config, net: StagedNet, dm, run_dir: RunDir, loggers,
                 source: dict | None = None) -> tuple[list[StageRow], dict]:
    """Train stage after stage; stages finished by an earlier (killed) attempt are kept, not retrained.
    ``source``: blocks 1..j from another run (curriculum.init_from, lwt/training/intervention.py)."""
    curriculum = Curriculum(cfg.curriculum, net.num_blocks, val_images=len(dm.val_set))
    progress = read_progress(run_dir)
    rows, finished, history = progress["stages"], progress["finished"], progress.get("history") or []
    copied = cfg.curriculum.init_blocks or 0
    if progress["curriculum"] is not None and (not copied or len(rows) > copied):  # copied stages: evaluated anew
        curriculum.load_state_dict(progress["curriculum"])
    if source is not None:  # load_state_dict copies the values in: net shares no storage with the source
        net.load_state_dict(source, strict=False)
    if len(rows) > copied:  # the last finished stage's checkpoint holds every block as that stage left it
        last = Phase("stage", len(rows))
        restore_net(run_dir.checkpoint(last), net, cfg.model, last)
    elif copied:  # the copied blocks are evaluated (again, after a kill before stage j+1 finished)
        rows, history, finished = [], [], False
        for stage in range(1, copied + 1):
            seen = Predictions()
            rows.append(evaluate_stage(cfg, net, dm, run_dir, curriculum, stage, seen))
            finished = curriculum.stage_done(stage, rows[-1].val_acc, seen.val_correct(stage), copied=True)
            history.append(curriculum.state_dict())
    stage, carry = len(rows), {}  # carry: the last stage's cached prefix features (lwt/training/prefix.py)
    try:
        while not finished:
            stage += 1
            clock_of(loggers).begin(stage, rows)  # this stage's rows follow the earlier stages' on global_step
            seen = Predictions()  # the stage's per-image validation correctness, on every DDP rank
            rows.append(train_stage(cfg, net, dm, run_dir, loggers, curriculum, stage, carry, seen))
            finished = curriculum.stage_done(stage, rows[-1].val_acc, seen.val_correct(stage))  # over all ranks
            history.append(curriculum.state_dict())
            if is_main_process():
                write_progress(run_dir, rows, history[-1], finished, history)
    finally:
        release_views(carry)  # trainer.prefix_views: the last stage's views, and their spill file in the run folder
    decision = curriculum.critical.decision()
    if decision["fired"]:
        print(f"[lwt] critical layer: stage {decision['critical_layer']} (val acc "
              f"{decision['reference_val_acc']:.4f}); {curriculum.critical.patience} later stage(s) were not "
              "significantly more accurate on the same "
              f"validation images (one-sided exact McNemar, alpha {decision['alpha']})", flush=True)
    return rows, decision


def train_stage(cfg: Config, net: StagedNet, dm, run_dir: RunDir, loggers, curriculum: Curriculum, stage: int,
                carry: dict, seen: Predictions | None = None) -> StageRow:
    """Train, test and record greedy stage ``stage``. ``carry``: the previous stage's cached prefix features,
    replaced in place by this stage's, so the next stage's cache is one block away. ``seen`` gets the stage's
    per-image predictions."""
    curriculum.start_stage(stage)
    L.seed_everything(stage_seed(cfg.seed, stage), workers=True, verbose=False)
    budget = cfg.stage_epochs(stage)  # curriculum.stage_epochs[stage-1], else epochs_per_stage
    stage_module = SegPropStage if cfg.curriculum.stage_head == NETWORK else StageModule  # segprop.py
    module = stage_module(net, stage, cfg.optim, dm.num_classes, budget).use_speed_options(cfg.trainer)
    if cache_wanted(cfg.trainer, stage):  # the frozen prefix's output, computed once for this stage
        dm = PrefixCache(dm, net, stage, cfg.trainer, augment=cfg.data.augment, carry=carry, epochs=budget,
                         seed=cfg.seed, spill_dir=run_dir.path)
    carry.clear()
    (row,) = fit_and_test(cfg, module, dm, run_dir, loggers, [curriculum], budget, Phase("stage", stage), {stage: ""},
                          seen)
    row.stop_reason = curriculum.stop_reason[stage]
    if isinstance(dm, PrefixCache):  # hand the features on now, not when the trainer <-> datamodule cycle is
        carry.update(dm.handoff())   # collected: the next stage's cache is one block from them
    print(f"[lwt] stage {stage}: val acc {row.val_acc:.4f}, test acc {row.test_acc:.4f}, {row.epochs} epochs, "
          f"{row.seconds:.0f}s", flush=True)
    return row


def evaluate_stage(cfg: Config, net: StagedNet, dm, run_dir: RunDir, curriculum: Curriculum, stage: int,
                   seen: Predictions | None = None) -> StageRow:
    """A copied stage (curriculum.init_from): validated and tested as greedy stage ``stage``, not trained;
    ``seen`` gets its per-image predictions."""
    curriculum.start_stage(stage)
    curriculum.stop_reason[stage] = INIT
    module = StageModule(net, stage, cfg.optim, dm.num_classes, 1)
    seen = seen if seen is not None else Predictions()
    trainer = make_trainer(cfg.model_copy(update={"trainer": cfg.trainer.model_copy(update={"progress_bar": False})}),
                           run_dir, [], [seen], 1, Phase("stage", stage))
    t0 = time.perf_counter()
    with signals_deferred():
        val = trainer.validate(module, datamodule=dm, verbose=False)[0]
        test = trainer.test(module, datamodule=dm, verbose=False)[0]
    if is_main_process():
        record_phase(run_dir, Phase("stage", stage), module.depths, seen, dm)
    row = StageRow(depth=stage, val_acc=val["val/acc"], test_acc=test["test/acc"], epochs=0, steps=0,
                   seconds=round(time.perf_counter() - t0, 2), stop_reason=INIT, train_flops=0)
    print(f"[lwt] stage {stage} (copied from {cfg.curriculum.init_from}): val acc {row.val_acc:.4f}, "
          f"test acc {row.test_acc:.4f}", flush=True)
    return row


def fit_and_test(cfg: Config, module, dm, run_dir: RunDir, loggers, callbacks: list, epochs: int, phase: Phase,
                 depths: dict[int, str] | None = None, seen: Predictions | None = None) -> list[StageRow]:
    """Fit ``phase`` (from its checkpoint, if a killed attempt left one), test it, record its per-image
    predictions (lwt/training/predictions.py) and return one result row per depth, the phase's training FLOPs
    on the last (lwt/training/flops.py); ``depths``: each depth and the suffix of its logged metrics (none for
    a greedy stage); default: every depth of ``module`` trained in this one Trainer (e2e, dgl, finetune), read
    out by ``module``. ``seen``: the Predictions callback to use (the caller reads it after), else a new one."""
    depths = depths or {d: f"_depth{d}" for d in module.depths}
    timer, seen = EpochTimer(), seen if seen is not None else Predictions()
    trainer = make_trainer(cfg, run_dir, loggers, [*callbacks, timer, seen], epochs, phase)
    t0 = time.perf_counter()
    reset_peak_memory()
    fit(cfg, trainer, module, dm, run_dir, phase)
    if seen.val is None:  # a resumed phase with no epoch left to run: its last validation pass again, same weights
        with signals_deferred():
            trainer.validate(module, datamodule=dm, verbose=False)
    fitted = {d: (_metric(trainer, f"train/acc{s}"), _metric(trainer, f"val/acc{s}")) for d, s in depths.items()}
    t_test = time.perf_counter()
    with signals_deferred():
        test = trainer.test(module, datamodule=dm, verbose=False)[0]
    seconds = time.perf_counter() - t0
    rates = speed(timer, len(dm.train_set) * trainer.current_epoch, time.perf_counter() - t_test)
    if is_main_process():
        record_phase(run_dir, phase, module.depths, seen, dm)
    rows = [StageRow(depth=d, train_acc=fitted[d][0], val_acc=fitted[d][1], test_acc=test[f"test/acc{s}"],
                     epochs=trainer.current_epoch, steps=trainer.global_step, seconds=round(seconds, 2), **rates,
                     stop_reason="budget", peak_memory_mb=peak_memory_mb(module.device)) for d, s in depths.items()]
    rows[-1].train_flops = phase_train_flops(module, dm, trainer.current_epoch)
    return rows


def total_flops(mode: str, rows: list[StageRow], tuned: FineTune | None) -> int | None:
    """Every phase's training FLOPs (a greedy stage's row each, e2e's and dgl's last row, fine-tuning's);
    None when a phase has none (a stage an older lwt trained before the run was resumed)."""
    phases = [r.train_flops for r in rows] if mode == "greedy" else [rows[-1].train_flops]
    phases += [tuned.train_flops] if tuned else []
    return None if None in phases else sum(phases)


def speed(timer: EpochTimer, images: int, test_seconds: float) -> dict:
    """``images_per_s`` over the training loop alone (validation, test and checkpoints excluded), and the
    seconds of the phase's evaluation passes (validation every epoch, the test pass at its end)."""
    return {"images_per_s": round(images / max(timer.seconds, 1e-9), 1), "train_seconds": round(timer.seconds, 4),
            "eval_seconds": round(timer.val_seconds + test_seconds, 4)}


def phase_module(cfg: Config, net: StagedNet, num_classes: int, epochs: int | None = None,
                 source: dict | None = None) -> EndToEndModule | DecoupledModule:
    """The module that trains mode e2e or dgl (dgl: up to curriculum.max_stages); ``epochs``: its budget, by
    default the configured one; with ``source`` (e2e) blocks 1..curriculum.init_blocks are frozen."""
    if cfg.mode == "dgl":
        stages = min(net.num_blocks, cfg.curriculum.max_stages or net.num_blocks)
        return DecoupledModule(net, cfg.optim, num_classes, epochs or cfg.e2e_epochs(stages), stages)
    frozen = cfg.curriculum.init_blocks if source is not None else 0
    return EndToEndModule(net, cfg.optim, num_classes, epochs or cfg.e2e_epochs(net.num_blocks), frozen=frozen)


def train_e2e(cfg: Config, net: StagedNet, dm, run_dir: RunDir, loggers,
              source: dict | None = None, epochs: int | None = None) -> list[StageRow]:
    """End to end; with ``source`` (curriculum.init_from, the swap test) blocks 1..j and their readout heads are
    another run's, frozen, and blocks j+1..K train end to end on top of them. ``epochs``: the budget resolved from
    trainer.match_flops_of (lwt/training/matched.py), else the configured one."""
    if source is not None:  # load_state_dict copies the values in: net shares no storage with the source
        net.load_state_dict(source, strict=False)
    module = phase_module(cfg, net, dm.num_classes, epochs, source).use_speed_options(cfg.trainer)
    return fit_and_test(cfg, module, dm, run_dir, loggers, [], module.max_epochs, E2E)


def train_dgl(cfg: Config, net: StagedNet, dm, run_dir: RunDir, loggers, epochs: int | None = None) -> list[StageRow]:
    """Decoupled greedy: every stage at once (up to curriculum.max_stages), one row per stage; ``epochs`` as in
    ``train_e2e``."""
    module = phase_module(cfg, net, dm.num_classes, epochs).use_speed_options(cfg.trainer)
    return fit_and_test(cfg, module, dm, run_dir, loggers, [], module.max_epochs, DGL)


def finetune(cfg: Config, net: StagedNet, dm, run_dir: RunDir, loggers, rows: list[StageRow]) -> FineTune:
    """Greedy then fine-tune: blocks[:K'] + aux_heads[K'-1] (the greedy network's classifier) trained end to
    end for finetune.epochs, at finetune.lr with its own layer-wise rule. A kill during it resumes from
    checkpoints/finetune/ (the greedy stages are kept)."""
    ft, depth = cfg.finetune, len(rows)
    optim = cfg.optim.model_copy(update={"lr": ft.lr or cfg.optim.lr, "stage_lr_mult": None,
                                        "stage_lr_gamma": ft.stage_lr_gamma})
    L.seed_everything(stage_seed(cfg.seed, net.num_blocks + 1), workers=True, verbose=False)  # unlike any stage's
    module = EndToEndModule(net, optim, dm.num_classes, ft.epochs, depth=depth).use_speed_options(cfg.trainer)
    clock_of(loggers).begin(None, rows)  # after the greedy stages on global_step, without a `stage`
    tuned = fit_and_test(cfg, module, dm, run_dir, loggers, [], ft.epochs, FINETUNE)
    before, after = rows[-1], tuned[-1]
    print(f"[lwt] fine-tune: test acc {before.test_acc:.4f} -> {after.test_acc:.4f}", flush=True)
    return FineTune(epochs=ft.epochs, lr=optim.lr, stage_lr_gamma=ft.stage_lr_gamma, depth=depth,
                    test_acc_before=before.test_acc, test_acc_after=after.test_acc, val_acc_before=before.val_acc,
                    val_acc_after=after.val_acc, train_acc_after=after.train_acc, seconds=after.seconds,
                    train_flops=after.train_flops, depths=tuned)


def run(cfg: Config, overwrite: bool = False, resume: Path | str | None = None,
        redo_stage: int | None = None, figure: Figure | None = None) -> RunResult:
    """``train``'s result alone (also written to ``run_dir/result.json``)."""
    return train(cfg, overwrite, resume, redo_stage, figure)[0]


def train(cfg: Config, overwrite: bool = False, resume: Path | str | None = None,
          redo_stage: int | None = None, figure: Figure | None = None) -> tuple[RunResult, StagedNet]:
    """Train as ``cfg`` says; return the result and the trained network (in every DDP process; only the main
    one writes files). ``resume``: the directory of a killed run of this ``cfg`` (``resume.resume_config``):
    its finished stages are kept, the current phase continues from its last checkpoint; with ``redo_stage``,
    greedy stages from that one on are forgotten first and retrained (``resume.forget_stages``). ``figure``
    draws the run's own accuracy-vs-depth figure into its run folder (the caller's: lwt.analysis.pipeline), for
    its W&B run. Everything
    is checked before the run folder is touched (config, Lightning's options, data); then the main process
    locks the folder for the whole run."""
    main = is_main_process()
    check_name(cfg.model.name)
    check_plugins(cfg)  # user callbacks, loggers and trainer.extra: their classes are imported only here
    check_views(cfg)  # trainer.prefix_views: greedy, augmented, with a prefix cache
    check_stage_head(cfg)
    if main:
        check_lightning_options(cfg.trainer)
    dm = load_datamodule(cfg)  # set up: missing or corrupt data fails here, before a run directory is made
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    # a resume rebuilds it identically; a network (and training batch) too big for memory fails here
    net = build_model(cfg.model, dm.num_classes, dm.input_shape, cfg.data.batch_size)
    check_batch_norm(cfg.model, dm.num_classes, dm.input_shape, len(dm.train_set), cfg.data.batch_size,
                     None if cfg.mode == "e2e" else cfg.curriculum.max_stages, classifier=cfg.mode == "e2e")
    check_stage_lists(cfg, net.num_blocks)
    source = load_source(cfg, net)  # curriculum.init_from: checked before the run folder is made
    # trainer.match_flops_of: the e2e/dgl budget, resolved before the run folder is made (a resume keeps its own)
    match = None if cfg.trainer.match_flops_of is None else matched.resolve(
        cfg, phase_module(cfg, net, dm.num_classes, 1, source), dm, resume)
    run_dir = RunDir(resume) if resume is not None else RunDir.of(cfg)
    if not main:  # a DDP worker: the main process made the run directory and logs; this one only trains
        return _train(cfg, dm, net, run_dir, [], main, source, match=match)
    if resume is None:
        run_dir.refuse_foreign()  # before the lock: not even the lock file goes into a folder lwt did not make
    try:
        with RunLock(run_dir), write_errors_reported(run_dir):
            if redo_stage is not None:
                forget_stages(run_dir, redo_stage)
            run_dir = run_dir.reopen() if resume is not None else run_dir.prepare(cfg, overwrite)
            matched.save(run_dir, match)
            return _train(cfg, dm, net, run_dir, make_loggers(cfg, run_dir), main, source, figure, match)
    except Interrupted as e:
        e.run_dir = run_dir
        raise


def _train(cfg: Config, dm, net: StagedNet, run_dir: RunDir, loggers, main: bool,
           source: dict | None = None, figure: Figure | None = None,
           match: dict | None = None) -> tuple[RunResult, StagedNet]:
    start, revision = time.perf_counter(), git_revision()  # the code that trains, not the tree at the end
    decision, tuned = None, None
    epochs = match["epochs"] if match else None
    if match and main:
        print(matched.describe(match), flush=True)
    try:
        if cfg.mode == "greedy":
            rows, decision = train_greedy(cfg, net, dm, run_dir, loggers, source)
            if cfg.finetune.epochs:
                tuned = finetune(cfg, net, dm, run_dir, loggers, rows)
        elif cfg.mode == "dgl":
            rows = train_dgl(cfg, net, dm, run_dir, loggers, epochs)
        else:
            rows = train_e2e(cfg, net, dm, run_dir, loggers, source, epochs)
    except BaseException:
        # close the W&B run as failed: left open, the next run in this process (a sweep, a test) would
        # log into it instead of starting its own
        for logger in loggers:
            if isinstance(logger, RunWandbLogger) and logger.started:
                logger.experiment.finish(exit_code=1)
        raise
    result = RunResult(
        experiment=cfg.experiment, run_name=cfg.run_name, sweep=cfg.sweep, mode=cfg.mode, seed=cfg.seed,
        model=cfg.model.name, dataset=cfg.data.name, num_classes=dm.num_classes, input_shape=list(dm.input_shape),
        train_images=len(dm.train_set), val_images=len(dm.val_set), test_images=len(dm.test_set),
        git_revision=revision, stages=rows, final_test_acc=tuned.test_acc_after if tuned else rows[-1].test_acc,
        finetune=tuned, critical=decision, seconds=round(time.perf_counter() - start, 2), run_dir=str(run_dir),
        train_flops=total_flops(cfg.mode, rows, tuned), flops_matched_to=match, **provenance(cfg.trainer))
    if not main:
        return result, net  # the main process writes model.pt and result.json
    atomic_torch_save(net.state_dict(), run_dir.model)
    ensembles = record_per_layer(result, cfg, net, dm, loggers)  # analysis.per_layer: un-augmented train acc, gap
    ensembles = record_depth_choice(result, cfg, net, dm, ensembles)  # the val-selected depth, the ensemble
    if ensembles:  # greedy, dgl: the ensemble's per-image predictions beside the stages'
        record_ensemble(run_dir, ensembles["val"].numpy(), ensembles["test"].numpy())
    log_run_end(loggers, result, run_dir, figure)  # W&B: depth series, stages table, depth figure, summary
    run_dir.write_result(result)
    return result, net

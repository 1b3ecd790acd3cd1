"""Train a run, then draw its own accuracy-vs-depth figure into its folder and its W&B run: what every command
that trains calls (``lwt train``, ``lwt demo``, ``lwt sweep``, ``lwt tune``). Training itself draws nothing."""

from __future__ import annotations

from pathlib import Path

from lwt.analysis.plots import depth_figure
from lwt.analysis.style import MODES, arch_label, dataset_label, method_of
from lwt.config import Config
from lwt.models import StagedNet
from lwt.run.result import RunResult
from lwt.training import train as training


def run_figure(result: RunResult, run_dir: Path) -> Path:
    """``run_dir/depth_accuracy.png`` (and .pdf): test accuracy vs depth; labels read result.json's keys."""
    saved = result.to_json()
    title = f"{arch_label(saved)}, {dataset_label(saved)}, {MODES[method_of(saved)]['label']}"
    return depth_figure([result], Path(run_dir) / "depth_accuracy", title=title)[0]


def train(cfg: Config, overwrite: bool = False, resume: Path | str | None = None,
          redo_stage: int | None = None) -> tuple[RunResult, StagedNet]:
    return training.train(cfg, overwrite, resume, redo_stage, figure=run_figure)


def run(cfg: Config, overwrite: bool = False, resume: Path | str | None = None,
        redo_stage: int | None = None) -> RunResult:
    return train(cfg, overwrite, resume, redo_stage)[0]

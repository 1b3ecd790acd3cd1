"""A finished run back in Python: ``lwt.load_run(run_dir)`` gives its network, config and result (``net``, ``cfg``,
``result``), its data (``datamodule()``) and its classifier at any trained depth (``classifier(depth)``).
docs/lightning.md shows it in use, and how a phase's checkpoint loads with Lightning's ``load_from_checkpoint``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from lwt.config import Config, is_identity, load_config
from lwt.config.files import file_problem
from lwt.data import build_datamodule
from lwt.errors import LwtError
from lwt.models import StagedNet, build_model, readout
from lwt.run.result import RunResult


@dataclass
class FinishedRun:
    run_dir: Path
    cfg: Config
    result: RunResult

    @property
    def mode(self) -> str:
        return self.result.mode

    @property
    def label(self) -> str:
        return f"{self.cfg.experiment}/{self.cfg.run_name}"


def open_run(run_dir: str | Path, overrides: list[str] = ()) -> FinishedRun:
    """A run directory that holds a finished run (result.json, config.yaml, model.pt), or one LwtError."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise LwtError(f"run directory not found: {run_dir}")
    for name in ("result.json", "config.yaml", "model.pt"):
        if why := file_problem(run_dir / name):  # never read through a link planted in the run folder
            raise LwtError(f"{run_dir / name}: {why}; lwt reads a run folder's files only as plain files, never "
                           "through a link: put the run's own file back")
        if not (run_dir / name).is_file():
            raise LwtError(f"{run_dir} holds no {name}, so it is not a finished lwt run "
                           "(result.json and model.pt are written when `lwt train` completes)")
    bad = [o for o in overrides if is_identity(o.partition("=")[0])]  # another network than model.pt holds
    if bad:
        raise LwtError(f"cannot override {', '.join(bad)} when analysing a finished run; only keys that do not "
                       "change what a run computes (analysis.*, data.root, data.eval_batch_size, ...: "
                       "`lwt config schema` marks them how)")
    cfg = load_config(run_dir / "config.yaml", list(overrides))
    return FinishedRun(run_dir, cfg, RunResult.read(run_dir / "result.json"))


def load_datamodule(cfg: Config):
    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def load_network(run: FinishedRun, dm=None) -> StagedNet:
    """The trained network of ``run`` (blocks, classifier, auxiliary heads), on the CPU, in eval mode. Its shape
    is result.json's (``num_classes``, ``input_shape``); a result.json without them reads it from
    ``dm`` or the dataset (which must then be under ``data.root``)."""
    shape = run.result.num_classes, run.result.input_shape
    if None in shape:
        dm = dm or load_datamodule(run.cfg)
        shape = dm.num_classes, dm.input_shape
    net = build_model(run.cfg.model, shape[0], tuple(shape[1]))
    path = run.run_dir / "model.pt"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, a pickle weights_only refuses, not a torch file at all
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        raise LwtError(f"{path} is corrupt, truncated or not a weights file lwt wrote ({reason}); "
                       "retrain the run (lwt train --overwrite) or put its own model.pt back") from None
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        raise LwtError(f"{path} does not fit the network config.yaml describes: {str(e).splitlines()[0]}") from None
    return net.eval()


@dataclass
class TrainedRun(FinishedRun):
    """A finished run (``run_dir``, ``cfg``, ``result``: lwt.run.result.RunResult) with its trained network."""

    net: StagedNet  # every block, the classifier and every auxiliary head, on the CPU, in eval mode

    @property
    def depths(self) -> list[int]:  # RunResult.depths: the trained depths
        return self.result.depths

    def datamodule(self):
        """The run's LightningDataModule, set up (same seed, same splits); ``preprocess(x, train=False)``
        normalizes uint8 images as training did."""
        return load_datamodule(self.cfg)

    def classifier(self, depth: int | None = None) -> nn.Module:
        """The network read out at ``depth`` (default: the deepest trained, i.e. the run's final network):
        blocks[:depth] then the head that was trained to read them (greedy and fine-tuned: the stage's
        auxiliary head; E2E's full depth: the network's own classifier). Shares the weights of ``net``."""
        depth = depth or self.depths[-1]
        if depth not in self.depths:
            raise LwtError(f"depth {depth} was not trained in {self.run_dir}; trained depths: {self.depths}")
        return nn.Sequential(*self.net.blocks[:depth], readout(self.net, self.result.mode, depth)).eval()


def load_run(run_dir: str | Path) -> TrainedRun:
    """The trained network of a finished run (``model.pt``), its config (``config.yaml``) and ``result.json``."""
    run = open_run(run_dir)
    return TrainedRun(run.run_dir, run.cfg, run.result, load_network(run))

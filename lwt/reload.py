"""A finished run back in Python: ``lwt.load_run(run_dir)`` gives its network, config and result (``net``, ``cfg``,
``result``), its data (``datamodule()``) and its classifier at any trained depth (``classifier(depth)``).
docs/lightning.md shows it in use, and how a phase's checkpoint loads with Lightning's ``load_from_checkpoint``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from lwt.analysis.common import FinishedRun, load_datamodule, load_network, open_run, readout
from lwt.errors import LwtError
from lwt.models import StagedNet


@dataclass
class TrainedRun(FinishedRun):
    """A finished run (``run_dir``, ``cfg``, ``result``: lwt.result.RunResult) with its trained network."""

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

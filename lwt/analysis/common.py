"""What the measurements share: opening a finished run directory, evaluation passes, tables."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from lwt.config import Config, is_identity, load_config
from lwt.errors import LwtError
from lwt.models import StagedNet
from lwt.result import RunResult


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
    from lwt.data import build_datamodule

    dm = build_datamodule(cfg)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def load_network(run: FinishedRun, dm=None) -> StagedNet:
    """The trained network of ``run`` (blocks, classifier, auxiliary heads), on the CPU, in eval mode. Its shape
    is result.json's (``num_classes``, ``input_shape``); runs written before those were recorded read it from
    ``dm`` or the dataset (which must then be under ``data.root``)."""
    from lwt.models import build_model

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


def seeded_sample(n: int, size: int | None, seed: int) -> Tensor:
    """Indices of a seeded sample of ``size`` out of ``n`` (all of them when ``size`` is None or >= n), sorted."""
    if size is None or size >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size].sort().values


def batches(*tensors: Tensor, size: int) -> Iterator[tuple[Tensor, ...]]:
    for start in range(0, len(tensors[0]), size):
        yield tuple(t[start:start + size] for t in tensors)


def readout(net: StagedNet, mode: str, depth: int) -> nn.Module:
    """The head that reads the network out at ``depth``: greedy stage k and E2E depths k < K use
    ``aux_heads[k-1]``; E2E's last depth is the network's own classifier (what E2E trained)."""
    if mode == "e2e" and depth == net.num_blocks:
        return net.classifier
    return net.aux_heads[depth - 1]


def format_table(rows: list[dict], columns: list[tuple[str, str]], title: str | None = None) -> str:
    """``columns``: (key, format) pairs; missing or None values print as ``-``."""
    header = [key for key, _ in columns]
    cells = [[fmt.format(row[key]) if row.get(key) is not None else "-" for key, fmt in columns] for row in rows]
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(header)]
    out = [title] if title else []
    out.append("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    out += ["  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in cells]
    return "\n".join(out)

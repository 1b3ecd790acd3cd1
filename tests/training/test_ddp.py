"""Scale-out through Lightning: a greedy curriculum on 2 CPU processes (DDP over gloo) keeps the ranks in step."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lwt.run.per_image import read_per_image
from lwt.run.result import RunResult

SCRIPT = Path(__file__).parents[1] / "scripts" / "ddp_greedy.py"


@pytest.mark.slow
def test_two_rank_greedy_curriculum_agrees_across_ranks(tiny, tmp_path):
    out = tmp_path / "ranks"
    out.mkdir()
    overrides = [*tiny, "model.width=32", "curriculum.max_stages=2", "curriculum.epochs_per_stage=3",
                 "curriculum.stage_end=plateau", "curriculum.plateau_patience=1", "curriculum.critical_patience=1",
                 "trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]
    env = {**os.environ, "PYTHONPATH": str(SCRIPT.parents[2])}  # this checkout's lwt, whatever is installed
    proc = subprocess.run([sys.executable, str(SCRIPT), str(out), *overrides], capture_output=True, text=True,
                          timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]  # really two processes in one process group
    decisions = [[(s["stage"], s["epochs"], s["stop_reason"], s["val_acc"], s["test_acc"]) for s in r["stages"]]
                 for r in ranks]
    assert decisions[0] == decisions[1]
    assert ranks[0]["critical"] == ranks[1]["critical"]
    assert len(decisions[0]) == 2  # both stages trained (or the critical layer fired after stage 2) ...
    assert max(d[3] for d in decisions[0]) > 0.15  # ... and learned: chance is 0.1 (256 val images, sd 0.02)
    for key, value in ranks[0]["net"].items():
        assert torch.equal(value, ranks[1]["net"][key]), f"{key} differs between the ranks"
    # the main process alone wrote the run directory
    run_dirs = list((tmp_path / "runs").glob("*/*/result.json"))
    assert len(run_dirs) == 1
    # each rank validated and tested its share: the per-image rows, gathered, give the reduced accuracies
    result, per_image = RunResult.read(run_dirs[0]), read_per_image(run_dirs[0].parent)
    assert per_image.depths == result.depths
    for row in result.stages:
        for split in ("val", "test"):
            correct = per_image.correct(split, row.depth)
            assert float(np.float32(correct.sum() / correct.size)) == getattr(row, f"{split}_acc")

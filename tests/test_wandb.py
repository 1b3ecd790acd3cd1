"""W&B works offline by default: one offline run per lwt run, in the run directory, with flat config."""

from __future__ import annotations

from pathlib import Path

from lwt.config import load_config
from lwt.training.run import run

from conftest import EXPERIMENTS


def test_offline_wandb_run_is_written_into_the_run_directory(tiny, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    tiny = [o for o in tiny if not o.startswith("logging.wandb")]
    cfg = load_config(EXPERIMENTS / "cifar10" / "belilovsky_k2_greedy.yaml",
                      tiny + ["curriculum.max_stages=1", "curriculum.epochs_per_stage=1", "model.width=16"])
    assert cfg.logging.wandb == "offline"  # the default, no account needed
    result = run(cfg)
    runs = list((Path(result["run_dir"]) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    (log,) = runs[0].glob("*.wandb")  # the offline run's event log, which `wandb sync` uploads
    events = log.read_bytes()
    # flat config keys (so the UI can filter/group on any of them) and the logged metrics are in it
    for key in (b"data.train_subset", b"model.name", b"val/acc", b"stage"):
        assert key in events, key

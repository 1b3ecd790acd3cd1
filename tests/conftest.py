"""Shared fixtures: the real data root, and overrides that shrink any experiment to a few batches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Under pytest-xdist (`make test` runs `-n 2`), each worker process trains with one thread, and so does every
# `python -m lwt` subprocess a test starts: two workers then fill two cores without oversubscribing them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
GREEDY = EXPERIMENTS / "cifar10" / "belilovsky_k2_greedy.yaml"


def build_tiny(tiny: list[str], *extra: str, path: Path = GREEDY, width: int = 32):
    """(cfg, datamodule set up, freshly built network) of a real experiment file shrunk by ``tiny``, at
    ``model.width=width``, seeded as ``lwt train`` seeds it."""
    import lightning as L

    from lwt.config import load_config
    from lwt.data import build_datamodule
    from lwt.models import build_model

    cfg = load_config(path, tiny + [f"model.width={width}", *extra])
    L.seed_everything(cfg.seed, verbose=False)
    dm = build_datamodule(cfg)
    dm.setup("fit")
    return cfg, dm, build_model(cfg.model, dm.num_classes, dm.input_shape)


def _data_root() -> Path:
    return Path(os.environ.get("LWT_DATA_DIR", ROOT.parent / "shared" / "data")).resolve()


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real datasets (../shared/data or $LWT_DATA_DIR). CI sets LWT_REQUIRE_DATA=1: missing data fails."""
    root = _data_root()
    if not (root / "cifar-10-batches-py" / "data_batch_1").is_file():
        message = f"CIFAR-10 not found under {root}; set LWT_DATA_DIR"
        if os.environ.get("LWT_REQUIRE_DATA"):
            pytest.fail(message)
        pytest.skip(message)
    os.environ["LWT_DATA_DIR"] = str(root)
    return root


@pytest.fixture
def tiny(data_root, tmp_path) -> list[str]:
    """Overrides that shrink a real experiment file to a CPU test: a few hundred real CIFAR images."""
    return [
        f"data.root={data_root}", "data.train_subset=512", "data.val_size=256", "data.test_subset=500",
        "logging.wandb=disabled", "trainer.progress_bar=false", f"logging.out_dir={tmp_path / 'runs'}",
    ]


def lwt_error(capsys, argv: list[str]) -> str:
    """Run `lwt ARGV` in this process (main() is the console script's body); return its one error line."""
    from lwt.cli import main

    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert "Traceback" not in out + err
    lines = [line for line in err.splitlines() if line.startswith("lwt: error: ")]
    assert len(lines) == 1, err
    return lines[0]


def crash_in_fresh_dir(tiny, extra, tmp_path, monkeypatch, module_cls, crash) -> Path:
    """Run ``tiny + extra`` in its own output folder with ``crash`` as ``module_cls.on_train_epoch_start``
    (it raises to stand in for a kill); return the killed run's directory."""
    from lwt.config import load_config
    from lwt.training.train import run

    out = tmp_path / "killed"
    cfg = load_config(GREEDY, [o for o in tiny if not o.startswith("logging.out_dir")] + extra
                      + [f"logging.out_dir={out}"])
    monkeypatch.setattr(module_cls, "on_train_epoch_start", crash, raising=False)
    with pytest.raises(RuntimeError, match="killed"):
        run(cfg)
    monkeypatch.undo()
    return out / cfg.experiment / cfg.run_name

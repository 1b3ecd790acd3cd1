"""Reliability on real (tiny) CIFAR-10 runs: a SIGKILLed run resumes to the uninterrupted run's numbers,
seeds reproduce, and every bad input ends in one `lwt: error:` line, exit status 2, no traceback and
no file a reader could take for a finished result. docs/reliability.md maps guarantees to tests."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from lwt.config import load_config
from lwt.run.per_image import read_per_image, write_per_image
from lwt.run.result import RunResult, StageRow
from lwt.training.curriculum import Curriculum
from lwt.training.loggers import WANDB_ID, make_loggers, read_metrics
from lwt.training.resume import read_progress, resume_config, write_progress
from lwt.training.train import run

from conftest import EXPERIMENTS, ROOT, lwt_error
from datafiles import TREE_CLASSES, write_image_tree

GREEDY = str(EXPERIMENTS / "cifar10" / "belilovsky_k2_greedy.yaml")
METRICS = ("depth", "train_acc", "val_acc", "test_acc", "epochs", "stop_reason")
# 3 stages x 2 epochs, each epoch a few batches; cosine, so every epoch has its own learning rate and a
# resume that lost the scheduler's state would show
THREE_STAGES = ["model.width=16", "curriculum.max_stages=3", "curriculum.epochs_per_stage=2", "optim.schedule=cosine"]


def tiny_overrides(data_root: Path, out_dir: Path) -> list[str]:
    return [f"data.root={data_root}", "data.train_subset=512", "data.val_size=256", "data.test_subset=500",
            "logging.wandb=disabled", "trainer.progress_bar=false", f"logging.out_dir={out_dir}"]


def stage_metrics(rows: list[StageRow]) -> list[dict]:
    return [{k: getattr(row, k) for k in METRICS} for row in rows]


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return torch.load(Path(run_dir) / "model.pt", weights_only=True)


def per_image(run_dir: Path) -> bytes:
    """The run's per-image predictions file (lwt.run.per_image): equal content, equal bytes."""
    return (Path(run_dir) / "per_image.npz").read_bytes()


@pytest.fixture(scope="module")
def baseline(data_root, tmp_path_factory):
    """The uninterrupted 3-stage run (seed 0) that the resumed and repeated runs must match."""
    out = tmp_path_factory.mktemp("baseline")
    cfg = load_config(GREEDY, tiny_overrides(data_root, out) + THREE_STAGES)
    return cfg, run(cfg)




# ---------------------------------------------------------------- resume after SIGKILL


@pytest.mark.slow
def test_sigkilled_run_resumes_to_the_uninterrupted_metrics_and_weights(baseline, data_root, tmp_path):
    cfg, expected = baseline
    out = tmp_path / "runs"
    argv = [sys.executable, "-m", "lwt", "train", GREEDY, *tiny_overrides(data_root, out), *THREE_STAGES]
    log = tmp_path / "killed.log"
    run_dir = out / cfg.experiment / cfg.run_name
    stage2 = run_dir / "checkpoints" / "stage2" / "last.ckpt"
    with log.open("w") as sink:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not stage2.exists():  # written (atomically) at the end of stage 2's first epoch
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "stage 2 never wrote a checkpoint"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    # killed during stage 2: stage 1 is recorded as finished, stage 2's checkpoint is after its first epoch
    progress = json.loads((run_dir / "progress.json").read_text())
    assert [row["stage"] for row in progress["stages"]] == [1] and not progress["finished"]
    assert read_per_image(run_dir).depths == [1]  # stage 1's row, written before progress.json named the stage
    assert torch.load(stage2, weights_only=True)["epoch"] == 0, "the kill came too late to resume mid-stage"
    assert not (run_dir / "result.json").exists()

    # the run's own config.yaml is authoritative: `--resume RUN_DIR` alone is enough
    resumed = subprocess.run([sys.executable, "-m", "lwt", "train", "--resume", str(run_dir)], cwd=ROOT,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "[lwt] stage 1:" not in resumed.stdout  # finished stages are not retrained
    result = RunResult.read(run_dir / "result.json")
    # sensitive to the RNG state in the checkpoint: with its restore disabled, stage 2's val acc changed
    assert stage_metrics(result.stages) == stage_metrics(expected.stages)
    ref, got = weights(expected.run_dir), weights(run_dir)
    assert all(torch.equal(ref[k], got[k]) for k in ref), "resumed weights differ from the uninterrupted run"
    assert per_image(run_dir) == per_image(expected.run_dir)
    logged = [row for row in read_metrics(run_dir) if "stage" in row]
    assert {1, 2, 3} <= {row["stage"] for row in logged}  # the killed attempt's rows are kept
    # stage 2's rows (killed attempt and resumed one) lie after stage 1's on the curriculum-wide step
    steps = [row["global_step"] for row in logged if row["stage"] == 2]
    first, second = (s.steps for s in result.stages[:2])
    assert min(steps) >= first and max(steps) == first + second  # the last: stage 2's test row


@pytest.mark.slow
@pytest.mark.parametrize("killed", ["between stages", "after stage 2's last epoch"])
def test_resume_at_a_stage_boundary_matches_too(baseline, tmp_path, killed):
    """The other moments a kill can hit: after stage 1 was recorded but before stage 2 checkpointed
    (stage 2 starts from stage 1's checkpoint and its own seed), or after stage 2's final checkpoint but
    before its row was recorded (fit has nothing left to run; the row comes from the checkpoint)."""
    cfg, expected = baseline
    run_dir = tmp_path / "run"
    shutil.copytree(expected.run_dir, run_dir)
    curriculum = Curriculum(cfg.curriculum, num_stages=4, val_images=256)  # the state the runner records after stage 1
    curriculum.start_stage(1)
    curriculum.stage_done(1, expected.stages[0].val_acc)
    write_progress(run_dir, expected.stages[:1], curriculum.state_dict(), finished=False)
    for name in ["result.json", "model.pt", "checkpoints/stage3"] + (["checkpoints/stage2"] if killed ==
                                                                        "between stages" else []):
        shutil.rmtree(run_dir / name) if (run_dir / name).is_dir() else (run_dir / name).unlink()
    write_per_image(run_dir, read_per_image(run_dir).below(2))  # what the killed run had recorded
    result = run(resume_config(run_dir), resume=run_dir)
    assert stage_metrics(result.stages) == stage_metrics(expected.stages)
    ref, got = weights(expected.run_dir), weights(run_dir)
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    assert per_image(run_dir) == per_image(expected.run_dir)


# ---------------------------------------------------------------- reproducibility


@pytest.mark.slow
def test_same_seed_reproduces_and_another_seed_differs(baseline, data_root, tmp_path):
    cfg, first = baseline
    again = run(load_config(GREEDY, tiny_overrides(data_root, tmp_path / "again") + THREE_STAGES))
    assert stage_metrics(again.stages) == stage_metrics(first.stages)
    ref, got = weights(first.run_dir), weights(again.run_dir)
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    other = run(load_config(GREEDY, tiny_overrides(data_root, tmp_path / "other") + THREE_STAGES + ["seed=1"]))
    assert stage_metrics(other.stages) != stage_metrics(first.stages)


# ---------------------------------------------------------------- bad input: one line, exit 2, no traceback


@pytest.mark.parametrize("override, fragment", [
    ("foo.bar=1", "unknown config key 'foo'; valid keys in the top level:"),
    ("data.batch_size=big", "data.batch_size='big' has the wrong type; expected int"),
    ("model.name=alexnet", "model.name='alexnet' is not a known architecture; choose one of:"),
    ("data.name=mnist", "data.name='mnist' is not valid; choose one of: cifar10, cifar100, imagefolder"),
    ("mode=sideways", "mode='sideways' is not valid; choose one of: greedy, e2e"),
    ("model.aux.kind=mlp", "model.aux.kind='mlp' is not valid; choose one of: conv, dgl"),
    ("data.root=/nonexistent/lwt-data", "/nonexistent/lwt-data/cifar-10-batches-py does not exist"),
])
def test_config_and_data_root_errors(override, fragment, tiny, tmp_path, capsys):
    line = lwt_error(capsys, ["train", GREEDY, *tiny, override])
    assert fragment in line
    assert not (tmp_path / "runs").exists()  # nothing written


def test_truncated_dataset_file(tiny, data_root, tmp_path, capsys):
    root = tmp_path / "data"
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for src in (data_root / "cifar-10-batches-py").iterdir():
        (folder / src.name).symlink_to(src)  # the real files, except one cut short
    (folder / "data_batch_1").unlink()
    (folder / "data_batch_1").write_bytes((data_root / "cifar-10-batches-py" / "data_batch_1").read_bytes()[:100_000])
    line = lwt_error(capsys, ["train", GREEDY, *tiny, f"data.root={root}"])
    assert "data_batch_1 is corrupt or truncated" in line and "data.download=true" in line
    assert not (tmp_path / "runs").exists()


def test_class_list_naming_unknown_classes(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("LWT_CACHE_DIR", str(tmp_path / "cache"))
    write_image_tree(tmp_path / "tree", "imagefolder")
    listing = tmp_path / "classes.txt"
    listing.write_text(f"{TREE_CLASSES[0]}\nn99999999\n")
    line = lwt_error(capsys, ["train", str(EXPERIMENTS / "tiny_imagenet" / "belilovsky_k2_greedy.yaml"), *tiny,
                              f"data.root={tmp_path}", "data.path=tree", f"data.classes={listing}", "data.val_size=2"])
    assert "names 1 classes not in" in line and "n99999999" in line
    assert not (tmp_path / "runs").exists()


def test_unwritable_output_directory(tiny, tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")  # root may write anywhere, but nobody can make a folder inside a file
    line = lwt_error(capsys, ["train", GREEDY, *tiny, f"logging.out_dir={blocker}"])
    assert "cannot write the run directory" in line and "logging.out_dir=" in line


@pytest.mark.slow
def test_finished_run_is_refused_without_overwrite(baseline, data_root, capsys):
    cfg, result = baseline
    before = Path(result.run_dir, "result.json").read_text()
    line = lwt_error(capsys, ["train", GREEDY, *tiny_overrides(data_root, cfg.logging.out_dir), *THREE_STAGES])
    assert "already holds a finished run" in line and "--overwrite" in line
    line = lwt_error(capsys, ["train", "--resume", result.run_dir])
    assert "already finished" in line and "nothing to resume" in line
    assert Path(result.run_dir, "result.json").read_text() == before


@pytest.fixture
def diverged(tiny, tmp_path, capsys):
    """A run whose loss turns NaN in epoch 2 (the step schedule multiplies lr by 1e30 at the first step of epoch 2):
    the run directory of a failed run, with epoch 1's checkpoint and no result."""
    argv = ["train", GREEDY, *tiny, "model.width=16", "curriculum.max_stages=1", "curriculum.epochs_per_stage=2",
            "optim.milestones=[0.5]", "optim.gamma=1e30"]
    line = lwt_error(capsys, argv)
    cfg = load_config(GREEDY, argv[2:])
    return argv, line, tmp_path / "runs" / cfg.experiment / cfg.run_name


@pytest.mark.slow
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(diverged, capsys):
    argv, line, run_dir = diverged
    assert "training loss became nan at stage 1, epoch 2" in line and "optim.lr" in line
    ckpt = run_dir / "checkpoints" / "stage1" / "last.ckpt"
    assert str(ckpt) in line
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] == 0 and all(torch.isfinite(v).all() for v in state["state_dict"].values())
    assert not (run_dir / "result.json").exists() and not (run_dir / "progress.json").exists()
    # the same command again does not silently start over the failed run
    assert "holds an unfinished run" in lwt_error(capsys, argv) and (run_dir / "checkpoints").exists()


@pytest.mark.slow
def test_corrupt_or_mismatched_checkpoint_on_resume(diverged, capsys):
    _, _, run_dir = diverged
    ckpt = run_dir / "checkpoints" / "stage1" / "last.ckpt"
    good = ckpt.read_bytes()
    ckpt.write_bytes(good[: len(good) // 2])
    line = lwt_error(capsys, ["train", "--resume", str(run_dir)])
    assert f"checkpoint {ckpt} is corrupt or truncated" in line

    ckpt.write_bytes(good)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config["model"]["name"] = "belilovsky_k1"  # as if the checkpoint came from another run
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    line = lwt_error(capsys, ["train", "--resume", str(run_dir)])
    assert "holds a different network" in line
    assert "name='belilovsky_k2'" in line and "name='belilovsky_k1'" in line
    assert not (run_dir / "result.json").exists()


@pytest.mark.slow
def test_resume_refuses_a_contradicting_command(diverged, tmp_path, capsys):
    argv, _, run_dir = diverged
    line = lwt_error(capsys, [*argv, "seed=3", "--resume", str(run_dir)])
    assert "contradicts the run's config.yaml" in line and "seed=3 here but 0 in the run" in line
    line = lwt_error(capsys, ["train", "--resume", str(tmp_path)])
    assert "not a run directory" in line


@pytest.mark.slow
def test_unreachable_wandb_falls_back_to_offline_and_a_resume_keeps_the_run_id(tiny, tmp_path, monkeypatch,
                                                                              capsys):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # the discard port: nothing listens
    tiny = [o for o in tiny if not o.startswith("logging.wandb")]
    cfg = load_config(GREEDY, tiny + ["logging.wandb=online", "model.width=16", "curriculum.max_stages=1",
                                      "curriculum.epochs_per_stage=1"])
    start = time.monotonic()
    result = run(cfg)
    assert time.monotonic() - start < 120  # no wait for W&B's 90-s init timeout
    assert "lwt: warning: W&B online mode is unavailable" in capsys.readouterr().err
    run_dir = Path(result.run_dir)
    run_id = (run_dir / WANDB_ID).read_text().strip()
    assert [p.name.endswith(run_id) for p in (run_dir / "wandb").glob("offline-run-*")] == [True]
    # a resumed run's logger reuses the id (online: the same W&B run; offline: a folder per attempt, one id)
    cfg.logging.wandb = "offline"
    logger = make_loggers(cfg, run_dir)[-1]
    assert logger.experiment.id == run_id
    logger.experiment.finish()


def test_progress_is_written_atomically_after_each_stage(baseline):
    _, result = baseline
    run_dir = Path(result.run_dir)
    progress = read_progress(run_dir)
    assert progress["finished"] and stage_metrics(progress["stages"]) == stage_metrics(result.stages)
    assert not list(run_dir.rglob("*.tmp"))  # no temp files left behind by atomic writes

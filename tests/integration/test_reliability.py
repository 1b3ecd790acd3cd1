"""Reliability on real (tiny) CIFAR-10 runs: a SIGKILLed run resumes to the uninterrupted run's numbers,
seeds reproduce, and every bad input ends in one `lwt: error:` line, exit status 2, no traceback and
no file a reader could take for a finished result. docs/reliability.md maps guarantees to tests."""

from __future__ import annotations

import hashlib
import json
import os
import resource
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
from lwt.config.load import config_text
from lwt.errors import LwtError
from lwt.run.dir import SCHEMA_VERSION, RunDir, RunLock
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
    line = lwt_error(capsys, ["train", "--resume", str(run_dir)])  # an edited config.yaml is caught first
    assert f"{run_dir / 'config.yaml'}: its sha256 is not the one meta.json recorded" in line
    meta = json.loads((run_dir / "meta.json").read_text())  # edited consistently: the checkpoint itself is checked
    meta["config_sha256"] = hashlib.sha256((run_dir / "config.yaml").read_bytes()).hexdigest()
    (run_dir / "meta.json").write_text(json.dumps(meta))
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


# ---------------------------------------------------------------- files of a run folder: exact, typed, never links


def unfinished(tiny: list[str], *extra: str) -> tuple:
    """A run folder as `lwt train` leaves it before its first checkpoint (marker, config.yaml, meta.json): the
    folder a resume reads, made without training."""
    cfg = load_config(GREEDY, [*tiny, "model.width=8", *extra])
    run_dir = RunDir.of(cfg)
    with RunLock(run_dir.path):
        run_dir.prepare(cfg)
    return cfg, run_dir.path


def snapshot(folder: Path) -> dict:
    return {p: (p.read_bytes() if p.is_file() and not p.is_symlink() else None) for p in sorted(folder.rglob("*"))}


def test_config_yaml_is_atomic_its_sha256_is_in_meta_json_and_a_resume_reads_it_exactly(tiny):
    cfg, run_dir = unfinished(tiny)
    text = (run_dir / "config.yaml").read_bytes()
    assert text.decode() == config_text(cfg)  # every key of the schema, in schema order
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["schema_version"] == SCHEMA_VERSION and meta["config_sha256"] == hashlib.sha256(text).hexdigest()
    assert not list(run_dir.glob("*.tmp"))
    assert resume_config(run_dir).model_dump() == cfg.model_dump()  # what the current code writes resumes


def _drop_key(text: str) -> str:
    raw = yaml.safe_load(text)
    del raw["optim"]["momentum"]
    return yaml.safe_dump(raw, sort_keys=False)


def _add_key(text: str) -> str:
    raw = yaml.safe_load(text)
    raw["optim"]["nesterov_boost"] = 2
    return yaml.safe_dump(raw, sort_keys=False)


@pytest.mark.parametrize("damage, fragment, keep_sha", [
    (_drop_key, "config.yaml: lacks optim.momentum; lwt does not fill a saved config from today's defaults", False),
    (_add_key, "config.yaml: holds unknown optim.nesterov_boost", False),
    (lambda t: t[: len(t) // 2], "config.yaml: its sha256 is not the one meta.json recorded", True),
    (lambda t: t.replace("momentum: 0.9", "momentum: 0.5"), "its sha256 is not the one meta.json recorded", True),
    (lambda t: t + "\udcff", "config.yaml: is not UTF-8 text", False),
    (lambda t: "[" * 50_000, "config.yaml: is nested too deeply to read", False),
    (lambda t: "- 1\n- 2\n", "config.yaml: holds list at its top level, not a mapping", False),
])
def test_a_resume_never_completes_a_damaged_or_incomplete_config_yaml(damage, fragment, keep_sha, tiny, capsys):
    _, run_dir = unfinished(tiny)
    path = run_dir / "config.yaml"
    path.write_bytes(damage(path.read_text()).encode(errors="surrogateescape"))
    if not keep_sha:  # a folder whose meta.json has no sha256 (older lwt): the keys themselves are checked
        meta = json.loads((run_dir / "meta.json").read_text())
        del meta["config_sha256"]
        (run_dir / "meta.json").write_text(json.dumps(meta))
    before = snapshot(run_dir)
    line = lwt_error(capsys, ["train", "--resume", run_dir])
    assert fragment in line and str(path) in line
    assert snapshot(run_dir) == before  # nothing written: no checkpoint, no metrics, meta.json as it was


LINKED = ["config.yaml", "meta.json", "progress.json", "metrics.jsonl", "per_image.npz", "checkpoints/stage1/last.ckpt",
          ".lwt.lock"]


@pytest.mark.parametrize("name", LINKED)
def test_a_file_of_a_run_folder_planted_as_a_link_is_refused_and_its_target_untouched(name, tiny, tmp_path, capsys):
    _, run_dir = unfinished(tiny)
    outside = tmp_path / "outside.txt"
    outside.write_text("not lwt's\n")
    path = run_dir / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.symlink_to(outside)
    line = lwt_error(capsys, ["train", "--resume", run_dir])
    assert f"{path}: is a symbolic link" in line
    assert outside.read_text() == "not lwt's\n" and path.is_symlink()


def test_a_lock_planted_as_a_link_or_a_folder_in_a_new_run_folder_is_refused(tiny, tmp_path, capsys):
    outside = tmp_path / "outside.txt"
    outside.write_text("not lwt's\n")
    cfg = load_config(GREEDY, [*tiny, "model.width=8"])
    run_dir = RunDir.of(cfg).path
    run_dir.mkdir(parents=True)
    (run_dir / ".lwt.lock").symlink_to(outside)
    for flags in ([], ["--overwrite"]):
        line = lwt_error(capsys, ["train", GREEDY, *tiny, "model.width=8", *flags])
        assert f"{run_dir / '.lwt.lock'}: is a symbolic link" in line
        assert outside.read_text() == "not lwt's\n" and sorted(p.name for p in run_dir.iterdir()) == [".lwt.lock"]
    (run_dir / ".lwt.lock").unlink()
    (run_dir / ".lwt.lock").mkdir()
    line = lwt_error(capsys, ["train", GREEDY, *tiny, "model.width=8"])
    assert f"{run_dir / '.lwt.lock'}: is a folder" in line


def test_a_folder_where_a_run_file_belongs_is_one_line(tiny, capsys):
    _, run_dir = unfinished(tiny)
    (run_dir / "progress.json").mkdir()
    line = lwt_error(capsys, ["train", "--resume", run_dir])
    assert f"{run_dir / 'progress.json'}: is a folder, not a plain file" in line


@pytest.mark.parametrize("text, fragment", [
    (b"\xff\xfe\x00garbage", "is not UTF-8 text (byte 0)"),
    (b"[" * 100_000, "is nested too deeply to read"),
    (b'"a string"', "holds str at its top level, not a mapping"),
    (b'{"stages": "none", "finished": true}', "stages: input should be a valid list"),
    (b'{"stages": [{"stage": 1, "test_acc": 0.5, "epochs": "many"}], "finished": false}',
     "epochs: input should be a valid integer"),
])
def test_progress_json_of_the_wrong_bytes_or_shape_is_one_error(text, fragment, tiny):
    _, run_dir = unfinished(tiny)
    (run_dir / "progress.json").write_bytes(text)
    with pytest.raises(LwtError) as e:
        read_progress(run_dir)
    assert str(run_dir / "progress.json") in str(e.value) and fragment in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text, fragment", [
    (b"\xff\xfe", "is not UTF-8 text"),
    (b'{"a": ' * 100_000, "is nested too deeply to read"),
    (b'{"stages": [{"stage": 1, "test_acc": 0.5, "epochs": "many"}]}', "stages.0.epochs: input should be a valid"),
    (b'{"stages": [{"stage": 1, "test_acc": 0.5}], "input_shape": "3x32x32"}', "input_shape: input should be"),
])
def test_result_json_of_the_wrong_bytes_or_shape_is_one_error(text, fragment, tmp_path):
    (tmp_path / "result.json").write_bytes(text)
    with pytest.raises(LwtError) as e:
        RunResult.read(tmp_path / "result.json")
    assert fragment in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("text, fragment", [
    (b"\xff", "meta.json: is not UTF-8 text"),
    (b"[1, 2]", "meta.json: holds list at its top level, not a mapping"),
    (b'{"config_sha256": 5}', "meta.json: config_sha256: input should be a valid string"),
])
def test_meta_json_of_the_wrong_bytes_or_shape_stops_a_resume_in_one_line(text, fragment, tiny, capsys):
    _, run_dir = unfinished(tiny)
    (run_dir / "meta.json").write_bytes(text)
    assert fragment in lwt_error(capsys, ["train", "--resume", run_dir])


@pytest.mark.parametrize("text, fragment", [
    (b"mode: greedy\nmodel: {name: \xff}\n", "is not UTF-8 text"),
    (b"a: " + b"[" * 50_000, "is nested too deeply to read"),
    (b"- mode\n", "must hold a mapping of config keys"),
])
def test_an_experiment_file_of_the_wrong_bytes_or_shape_is_one_line(text, fragment, tiny, tmp_path, capsys):
    (tmp_path / "exp.yaml").write_bytes(text)
    line = lwt_error(capsys, ["train", tmp_path / "exp.yaml", *tiny])
    assert fragment in line and not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- values that used to end in a traceback


@pytest.mark.parametrize("overrides, fragment", [
    (["data.batch_size=1000000000000000000000000000000"], "data.batch_size=1000000000000000000000000000000 is larger "
                                                          "than any batch torch can index; valid: 1 to 2147483647"),
    (["model.name=simple_cnn", "model.widths=[100000,100000]"], "model.widths=[100000, 100000]: model.name="
                                                                "'simple_cnn' would need about"),
    (["model.name=simple_cnn", "model.widths=[1000000000000,2]"], "model.widths=[1000000000000, 2] cannot be built"),
    (["model.width=8", "model.name=vgg11", "model.aux.kind=dgl", "model.aux.k=3", "model.aux.pool=1",
      "data.train_subset=1"],
     "a training batch of one image (the training set is 1 image) reaches the batch norm aux_heads.0.2"),
    (["model.width=8", "model.name=vgg11", "model.aux.kind=dgl", "model.aux.k=3", "model.aux.pool=1",
      "data.train_subset=129"],
     "(129 training images in batches of 128 leave 1)"),
])
def test_sizes_that_overflow_or_cannot_train_are_one_line_before_the_run_folder(overrides, fragment, tiny, tmp_path,
                                                                                 capsys):
    short = ["curriculum.max_stages=1", "curriculum.epochs_per_stage=1"]  # were a check to miss, a short run
    line = lwt_error(capsys, ["train", GREEDY, *tiny, *short, *overrides])
    assert fragment in line
    assert not (tmp_path / "runs").exists()


def test_a_batch_of_one_image_trains_where_no_batch_norm_sees_a_single_value(tiny):
    # the same 129 images in batches of 128 train when the auxiliary heads pool to 2x2 (4 values per channel)
    cfg = load_config(GREEDY, [*tiny, "model.width=8", "model.name=vgg11", "model.aux.kind=dgl", "model.aux.k=3",
                               "model.aux.pool=2", "data.train_subset=129", "curriculum.max_stages=1",
                               "curriculum.epochs_per_stage=1", "analysis.per_layer=false"])
    assert run(cfg).stages[0].steps == 2


def test_bench_names_the_valid_devices(capsys):
    line = lwt_error(capsys, ["bench", "--device", "tpu"])
    assert "--device 'tpu' is not a device lwt bench measures on; valid: auto, cpu, cuda, cuda:N" in line


# ---------------------------------------------------------------- classes a config names; checks before writing


@pytest.mark.parametrize("entry", ["trainer.callbacks=[{class_path: os.system}]",
                                   "logging.loggers=[{class_path: my_package.loggers.Logger}]"])
def test_a_class_path_outside_lwt_lightning_and_torch_needs_allow_class_path(entry, tiny, tmp_path, capsys,
                                                                              monkeypatch):
    monkeypatch.delenv("LWT_ALLOW_CLASS_PATH", raising=False)
    line = lwt_error(capsys, ["train", GREEDY, *tiny, entry])
    assert "is outside lwt, lightning, pytorch_lightning and torch" in line and "--allow-class-path" in line
    # opted in, the class is imported (and os.system is no Callback; my_package does not exist)
    line = lwt_error(capsys, ["train", GREEDY, *tiny, entry, "--allow-class-path"])
    assert "is not a lightning" in line or "cannot import my_package.loggers.Logger" in line
    assert "LWT_ALLOW_CLASS_PATH" not in os.environ  # the opt-in ends with the command
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("entry, fragment", [
    ("trainer.extra={gradient_clip: 3}", "trainer.extra.gradient_clip is not an argument of lightning.Trainer"),
    ("trainer.extra={accumulate_grad_batches: 0}", "trainer.extra.accumulate_grad_batches=0 must be a whole number"),
    ("trainer.extra={limit_train_batches: -1}", "trainer.extra={'limit_train_batches': -1}: Lightning refuses it"),
    ("trainer.callbacks=[{class_path: lightning.pytorch.callbacks.EarlyStopping, init_args: {monitor: val/acc, "
     "mode: sideways}}]", "trainer.callbacks[0]: lightning.pytorch.callbacks.early_stopping.EarlyStopping("),
    ("trainer.callbacks=[lightning.pytorch.callbacks.EarlyStopping]", "expected dict"),
])
def test_bad_trainer_arguments_and_callbacks_leave_no_run_folder(entry, fragment, tiny, tmp_path, capsys):
    short = ["curriculum.max_stages=1", "curriculum.epochs_per_stage=1"]  # were a check to miss, a short run
    line = lwt_error(capsys, ["train", GREEDY, *tiny, *short, entry])
    assert fragment in line
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- per-stage peak memory


@pytest.mark.slow
def test_every_stage_row_records_its_peak_memory(baseline):
    _, result = baseline
    peaks = [row.peak_memory_mb for row in result.stages]
    saved = json.loads((Path(result.run_dir) / "result.json").read_text())
    assert [row["peak_memory_mb"] for row in saved["stages"]] == peaks
    # CPU: the process's peak resident set at each stage's end, which never decreases, and is the process's own
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert all(p > 50 for p in peaks) and peaks == sorted(peaks) and peaks[-1] <= rss_mb

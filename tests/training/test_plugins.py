"""The open Trainer: a user's own callback and logger and other Trainer arguments, from the config, checked
before anything runs. (TensorBoard and MLflow run only where their packages are installed.)"""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from lwt.config import load_config
from lwt.errors import LwtError
from lwt.training.plugins import check
from lwt.training.train import run

from conftest import GREEDY, ROOT

RECORDER = '''
import lightning as L


class Recorder(L.Callback):
    """Writes one line per Trainer it is given to: the phase's epoch budget and the batches it trained."""

    def __init__(self, path: str, tag: str = "x"):
        self.path, self.tag, self.batches = path, tag, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batches += 1

    def on_train_end(self, trainer, pl_module):
        with open(self.path, "a") as f:
            f.write(f"{self.tag} {trainer.max_epochs} {self.batches} {trainer.gradient_clip_val}\\n")
'''


@pytest.fixture
def user_package(tmp_path, monkeypatch) -> Path:
    """A user's own module, importable as ``my_callbacks`` (as an installed package of theirs would be)."""
    pkg = tmp_path / "user"
    pkg.mkdir()
    (pkg / "my_callbacks.py").write_text(RECORDER)
    monkeypatch.syspath_prepend(str(pkg))
    monkeypatch.setenv("LWT_ALLOW_CLASS_PATH", "1")  # a class outside lwt/lightning/torch: opted in
    return pkg


@pytest.mark.slow
def test_user_callback_logger_and_trainer_arguments_from_the_config(tiny, user_package, tmp_path, capsys):
    record = tmp_path / "record.txt"
    cfg = load_config(GREEDY, tiny + [
        "model.width=16", "curriculum.max_stages=2", "curriculum.epochs_per_stage=1", "trainer.log_every_n_steps=1",
        f"trainer.callbacks=[{{class_path: my_callbacks.Recorder, init_args: {{path: {record}, tag: mine}}}}]",
        "logging.loggers=[{class_path: lightning.pytorch.loggers.CSVLogger, init_args: {save_dir: user_csv}}]",
        "trainer.extra={limit_train_batches: 2, gradient_clip_val: 0.5}", "trainer.progress_bar=true",
    ])
    result = run(cfg)
    shown = capsys.readouterr()  # Lightning's progress bar (on stdout), titled by the stage of the curriculum
    bars = shown.out + shown.err
    assert "stage 1/2, epoch 1/1" in bars and "stage 2/2, epoch 1/1" in bars
    # one fresh callback per stage's Trainer; trainer.extra reached every Trainer
    assert record.read_text().splitlines() == ["mine 1 2 0.5", "mine 1 2 0.5"]
    assert [s.steps for s in result.stages] == [2, 2]
    # the user's logger lives in the run folder and gets every row, with the curriculum-wide step as its step
    (metrics,) = (Path(result.run_dir) / "user_csv").rglob("metrics.csv")
    with metrics.open(newline="") as f:
        rows = list(csv.DictReader(f))
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(steps) and max(steps) == 4 and {r["stage"] for r in rows} == {"1", "2"}
    assert all(r["step"] == r["global_step"] for r in rows)


@pytest.mark.parametrize("override, fragment", [
    ("trainer.callbacks=[{class_path: lightning.pytorch.callbacks.EarlyStoping}]", "is not a class"),
    ("trainer.callbacks=[{class_path: no_such_package.Thing}]", "cannot import no_such_package.Thing"),
    ("trainer.callbacks=[{class_path: lightning.pytorch.callbacks.EarlyStopping, init_args: {monitr: val/acc}}]",
     "does not accept init_args"),
    ("logging.loggers=[{class_path: lightning.pytorch.callbacks.EarlyStopping}]", "is not a lightning.pytorch"),
    ("trainer.extra={max_epochs: 3}", "use curriculum.epochs_per_stage / trainer.max_epochs"),
    ("trainer.extra={gradient_clip: 3}", "is not an argument of lightning.Trainer; valid: accumulate_grad_batches"),
    ("trainer.extra={gradient_clip_val: -1}", "trainer.extra.gradient_clip_val=-1 must be a finite number >= 0"),
    ("trainer.extra={gradient_clip_val: .inf}", "gradient_clip_val=inf must be a finite number >= 0"),
    ("trainer.extra={gradient_clip_val: big}", "gradient_clip_val='big' must be a finite number >= 0"),
])
def test_bad_callbacks_loggers_and_trainer_arguments_fail_when_a_run_is_built(override, fragment, monkeypatch):
    monkeypatch.setenv("LWT_ALLOW_CLASS_PATH", "1")  # no_such_package: opted in, so the import itself is tried
    cfg = load_config(GREEDY, [override])  # reading a config imports nothing it names
    with pytest.raises(LwtError) as e:
        check(cfg)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_reading_a_config_never_imports_the_classes_it_names(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "booby_trap.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Thing: pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("LWT_ALLOW_CLASS_PATH", "1")  # opted in: building the run may import it
    load_config(GREEDY, ["trainer.callbacks=[{class_path: booby_trap.Thing}]",
                         "logging.loggers=[{class_path: booby_trap.Thing}]"])
    assert not marker.exists()
    with pytest.raises(LwtError, match="is not a lightning.pytorch.callbacks.callback.Callback|is not a lightning"):
        check(load_config(GREEDY, ["trainer.callbacks=[{class_path: booby_trap.Thing}]"]))
    assert marker.exists()  # building a run does import it


def test_a_callback_entry_must_be_a_mapping_when_the_config_loads():
    with pytest.raises(LwtError, match="expected dict"):
        load_config(GREEDY, ["trainer.callbacks=[lightning.pytorch.callbacks.EarlyStopping]"])


@pytest.mark.slow
def test_a_bad_callback_stops_lwt_train_with_one_line_before_a_run_folder_is_made(tmp_path):
    override = "trainer.callbacks=[{class_path: lightning.pytorch.callbacks.EarlyStoping}]"
    out = subprocess.run([sys.executable, "-m", "lwt", "train", str(GREEDY), override,
                          f"logging.out_dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [
        "lwt: error: trainer.callbacks[0]: 'lightning.pytorch.callbacks.EarlyStoping' is not a class (give the full "
        "path, e.g. lightning.pytorch.callbacks.EarlyStopping)"]
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
@pytest.mark.skipif(not (importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX")),
                    reason="TensorBoardLogger needs tensorboard or tensorboardX, not installed here")
def test_tensorboard_logger_from_the_config(tiny):
    cfg = load_config(GREEDY, tiny + [
        "model.width=16", "curriculum.max_stages=2", "curriculum.epochs_per_stage=1",
        "logging.loggers=[{class_path: lightning.pytorch.loggers.TensorBoardLogger, init_args: {save_dir: tb}}]"])
    result = run(cfg)
    assert list((Path(result.run_dir) / "tb").rglob("events.out.tfevents.*"))


@pytest.mark.slow
@pytest.mark.skipif(not importlib.util.find_spec("mlflow"), reason="MLFlowLogger needs mlflow, not installed here")
def test_mlflow_logger_offline_from_the_config(tiny, tmp_path, monkeypatch):
    # A local file store, no server. mlflow >= 3.x refuses it unless asked (docs/lightning.md).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    cfg = load_config(GREEDY, tiny + [
        "model.width=16", "curriculum.max_stages=2", "curriculum.epochs_per_stage=1",
        "logging.loggers=[{class_path: lightning.pytorch.loggers.MLFlowLogger, "
        f"init_args: {{tracking_uri: '{uri}'}}}}]"])
    run(cfg)
    assert list((tmp_path / "mlruns").rglob("metrics/global_step"))

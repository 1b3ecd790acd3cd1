"""A non-editable install works from any folder: the wheel carries experiments/ as package data, and
`lwt demo` (shrunk) runs from an empty folder until its first stage ends and beyond."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

# shrunk so that the demo's greedy run (1 stage) and its E2E run (1 epoch) take seconds
DEMO = ["data.train_subset=256", "data.val_size=256", "data.test_subset=200", "curriculum.max_stages=1",
        "curriculum.epochs_per_stage=1", "trainer.max_epochs=1", "model.width=8", "logging.wandb=disabled",
        "analysis.train_eval_size=256"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel built from a copy of this checkout (the checkout itself gets no build/ folder), installed with
    pip into a folder of its own; torch and the other dependencies come from this interpreter's environment."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    for name in ("lwt", "experiments"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"), str(src)],
                   check=True, capture_output=True)
    (wheel,) = (tmp / "dist").glob("lwt-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "lwt/experiments/cifar10/s2d_cnn_greedy.yaml" in names
    assert "lwt/experiments/class_lists/tiny_imagenet_50.txt" in names
    assert "lwt/experiments/sweeps/gap.yaml" in names
    # every module of the checkout is in the wheel (pyproject.toml lists the packages by hand)
    assert {str(p.relative_to(ROOT)) for p in (ROOT / "lwt").rglob("*.py")} <= set(names)
    site = tmp / "site"
    subprocess.run([*pip, "install", "--no-deps", "-q", "--target", str(site), str(wheel)], check=True,
                   capture_output=True)
    return site


def lwt(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([str(site / "bin" / "lwt"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
def test_wheel_install_runs_the_demo_from_an_empty_folder(installed, data_root, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    where = subprocess.run([sys.executable, "-c", "import lwt; print(lwt.__file__)"], cwd=empty, capture_output=True,
                           text=True, env={**os.environ, "PYTHONPATH": str(installed)}, check=True)
    assert where.stdout.strip() == str(installed / "lwt" / "__init__.py")  # the wheel's lwt, not the checkout's
    out = lwt(installed, empty, "demo", *DEMO)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "[lwt] stage 1:" in out.stdout  # the greedy run's first stage ended
    assert (empty / "runs" / "demo" / "demo_depth_accuracy.png").is_file()
    assert sorted(p.name for p in empty.iterdir()) == ["runs"]  # nothing written outside the output folder


@pytest.mark.slow
def test_installed_lwt_finds_experiments_and_class_lists_by_name(installed, tmp_path):
    check = ("from lwt.config import load_config; from lwt.data.folders import read_class_list; "
             "from lwt.sweep.spec import load_sweep; "
             "a = load_config('cifar10/belilovsky_k2_greedy'); "
             "b = load_config('experiments/cifar10/belilovsky_k2_greedy.yaml'); "
             "assert a.model == b.model and a.experiment == 'belilovsky_k2_greedy'; "
             "print(len(read_class_list('experiments/class_lists/tiny_imagenet_50.txt'))); "
             "print(len(load_sweep('sweeps/gap', variant='cpu').runs)); "
             "from lwt.bench.common import experiment; from lwt.bench.protocol import EXPERIMENT; "
             "import lwt; assert EXPERIMENT.is_file() and lwt.__file__.startswith(str(EXPERIMENT.parents[3])); "
             "assert experiment('belilovsky_k2_greedy').model == a.model")  # lwt bench and the GPU script too
    out = subprocess.run([sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(installed)})
    assert out.returncode == 0, out.stderr[-2000:]
    classes, runs = out.stdout.split()
    assert int(classes) == 50 and int(runs) > 0
    missing = lwt(installed, tmp_path, "train", "cifar10/no_such_net")
    assert missing.returncode == 2 and "experiment file not found" in missing.stderr
    assert "cifar10/belilovsky_k2_greedy" in missing.stderr

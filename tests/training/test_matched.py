"""The compute-matched E2E arm (trainer.match_flops_of, lwt/training/matched.py): on real tiny runs, the budget
is the largest whole number of epochs whose training FLOPs do not exceed the source run's, a resume keeps it,
and a wrong request fails with one line before a run folder is made."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lwt.config import load_config
from lwt.errors import LwtError
from lwt.run.result import RunResult
from lwt.training.flops import batch_flops, train_flops
from lwt.training.train import phase_module, run

from conftest import EXPERIMENTS, GREEDY, ROOT, build_tiny, lwt_error

E2E = EXPERIMENTS / "cifar10" / "belilovsky_k2_e2e.yaml"
SMALL = ["model.width=8"]


def e2e_epoch_cost(tiny: list[str]) -> tuple[int, int, int]:
    """(FLOPs per batch, batch size, training images) of the tiny E2E network, counted as a run counts them."""
    cfg, dm, net = build_tiny(tiny, path=E2E, width=8)
    return batch_flops(phase_module(cfg, net, dm.num_classes, 1), dm)


def fake_source(folder: Path, flops: int | None) -> Path:
    """A finished run's result.json with ``flops`` training FLOPs (all that match_flops_of reads)."""
    folder.mkdir(parents=True)
    result = {"mode": "greedy", "stages": [{"stage": 1, "test_acc": 0.5}]}
    (folder / "result.json").write_text(json.dumps(result | ({"train_flops": flops} if flops is not None else {})))
    return folder


@pytest.mark.slow
def test_e2e_budget_matches_a_greedy_runs_flops(tiny, capsys):
    greedy = run(load_config(GREEDY, tiny + SMALL + ["seed=1", "run_name=greedy_seed1", "curriculum.max_stages=4",
                                                     "curriculum.epochs_per_stage=2"]))
    source = str(Path(greedy.run_dir).parent / "greedy_seed{seed}")  # {seed}: this run's seed, 1
    capsys.readouterr()
    result = run(load_config(E2E, tiny + SMALL + ["seed=1", f"trainer.match_flops_of={source}"]))
    epochs = result.last.epochs
    per_epoch = e2e_epoch_cost(tiny)
    assert result.flops_matched_to == {"run": greedy.run_dir, "train_flops": greedy.train_flops, "epochs": epochs,
                                       "flops": result.train_flops}
    assert train_flops(*per_epoch, epochs) == result.train_flops <= greedy.train_flops
    assert train_flops(*per_epoch, epochs + 1) > greedy.train_flops  # not the at-least-1 floor: a real match
    lines = [line for line in capsys.readouterr().out.splitlines() if "match_flops_of" in line]
    assert lines == [f"[lwt] trainer.match_flops_of={greedy.run_dir}: {epochs} epochs, {result.train_flops:.4g} "
                     f"training FLOPs (that run: {greedy.train_flops:.4g})"]
    assert json.loads((Path(result.run_dir) / "result.json").read_text())["flops_matched_to"]["epochs"] == epochs


@pytest.mark.slow
def test_dgl_budget_and_the_at_least_one_epoch_floor(tiny, tmp_path):
    """A source cheaper than one epoch still gets one epoch; dgl is matched the same way."""
    source = fake_source(tmp_path / "cheap", 1)
    result = run(load_config(GREEDY, tiny + SMALL + ["mode=dgl", "curriculum.max_stages=2",
                                                     f"trainer.match_flops_of={source}"]))
    assert result.last.epochs == 1 and result.flops_matched_to["epochs"] == 1 and result.train_flops > 1
    # resolving the budget draws nothing and changes nothing: the same run as an explicit 1-epoch budget
    plain = run(load_config(GREEDY, tiny + SMALL + ["mode=dgl", "curriculum.max_stages=2", "trainer.max_epochs=1"]))
    assert [r.val_acc for r in plain.stages] == [r.val_acc for r in result.stages]
    ref, got = (torch.load(Path(r.run_dir) / "model.pt", weights_only=True) for r in (plain, result))
    assert all(torch.equal(ref[k], got[k]) for k in ref)


@pytest.mark.slow
def test_a_killed_matched_run_resumes_with_its_budget(tiny, tmp_path):
    """The budget is saved in the run folder: a resume keeps it even after the source run has gone."""
    per_epoch = e2e_epoch_cost(tiny)
    source = fake_source(tmp_path / "src", train_flops(*per_epoch, 6) + 1)  # 6 epochs fit, 7 do not
    argv = [sys.executable, "-m", "lwt", "train", str(E2E), *tiny, *SMALL, f"trainer.match_flops_of={source}",
            "run_name=matched"]
    run_dir = tmp_path / "runs" / "belilovsky_k2_e2e" / "matched"
    ckpt = run_dir / "checkpoints" / "e2e" / "last.ckpt"
    log = tmp_path / "killed.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while not ckpt.exists():  # written (atomically) after the first epoch
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the run never wrote a checkpoint"
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (run_dir / "result.json").exists()
    assert torch.load(ckpt, weights_only=True)["epoch"] < 5, "the kill came too late to resume mid-run"
    source.rename(tmp_path / "moved")  # gone: the resume reads the budget the run folder saved
    resumed = subprocess.run([sys.executable, "-m", "lwt", "train", "--resume", str(run_dir)], cwd=ROOT,
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"trainer.match_flops_of={source}: 6 epochs" in resumed.stdout
    result = RunResult.read(run_dir / "result.json")
    assert result.last.epochs == 6 and result.flops_matched_to["epochs"] == 6
    assert result.train_flops == train_flops(*per_epoch, 6) == result.flops_matched_to["flops"]




@pytest.mark.parametrize("extra, fragment", [
    (["mode=greedy"], "mode=e2e or mode=dgl"),
    (["trainer.max_epochs=3"], "both set the epoch budget"),
    ([], "no finished run there"),
    (["@old"], "trained before lwt counted FLOPs; retrain it"),
])
def test_errors_are_one_line_and_leave_no_run_folder(tiny, tmp_path, capsys, extra, fragment):
    source = fake_source(tmp_path / "old", None) if "@old" in extra else tmp_path / "nowhere"
    extra = [e for e in extra if e != "@old"]
    path = GREEDY if "mode=greedy" in extra else E2E
    line = lwt_error(capsys, ["train", str(path), *tiny, *SMALL, f"trainer.match_flops_of={source}", *extra])
    assert fragment in line
    assert not (tmp_path / "runs").exists()


def test_config_refusals(tiny):
    with pytest.raises(LwtError, match="mode=e2e or mode=dgl"):
        load_config(GREEDY, tiny + ["trainer.match_flops_of=x"])
    with pytest.raises(LwtError, match="both set the epoch budget"):
        load_config(E2E, tiny + ["trainer.match_flops_of=x", "trainer.max_epochs=2"])
    assert load_config(GREEDY, tiny + ["mode=dgl", "trainer.match_flops_of=x"]).trainer.match_flops_of == "x"


def test_a_source_folder_names_this_runs_seed_or_run_name(tiny):
    """{seed} pairs a run with the run of its seed; {run_name} with the run of its sweep cell and seed (a sweep
    names both by the same axes), so one sweep file line serves every cell."""
    from lwt.training.intervention import seeded_path

    cfg = load_config(E2E, tiny + ["seed=3", "run_name=train_subset-1000_k-2_seed3"])
    assert seeded_path("runs/sweeps/x/greedy/seed{seed}", cfg) == Path("runs/sweeps/x/greedy/seed3")
    assert seeded_path("runs/x/greedy/{run_name}", cfg) == Path("runs/x/greedy/train_subset-1000_k-2_seed3")
    plain = load_config(E2E, tiny + ["seed=1"])  # no run_name given: the one lwt derives
    assert seeded_path("r/{run_name}", plain) == Path("r") / plain.run_name

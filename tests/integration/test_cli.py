"""The `lwt` command: one clear line and a non-zero exit for bad input, never a traceback."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import pytest

from lwt.cli import build_parser, main
from lwt.config import load_config
from lwt.errors import LwtError
from lwt.run.dir import RunDir
from lwt.training.train import run

from conftest import EXPERIMENTS, ROOT

GREEDY = str(EXPERIMENTS / "cifar10" / "belilovsky_k2_greedy.yaml")


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command of the parser, nested ones (``data prepare``) included, found from the parser itself."""
    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += _commands(child, (*prefix, name))
    return found


@pytest.mark.parametrize("command", _commands(build_parser()), ids=lambda c: " ".join(("lwt", *c)))
def test_every_command_answers_help_with_its_usage(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([*command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr()
    assert out.out.startswith(f"usage: {' '.join(('lwt', *command))}") and out.err == ""


def lwt(*args):
    return subprocess.run([sys.executable, "-m", "lwt", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)


@pytest.mark.slow
def test_a_reader_that_leaves_early_gets_no_traceback():
    """`lwt sweep ... --dry-run | head -1`: the pipe closes while lwt still prints; lwt stops quietly."""
    read, write = os.pipe()
    os.close(read)  # the reader has gone before lwt writes: every write meets a closed pipe
    proc = subprocess.run([sys.executable, "-m", "lwt", "sweep", str(EXPERIMENTS / "sweeps" / "swap.yaml"),
                           "--variant", "cpu", "--dry-run"], cwd=ROOT, stdout=write, stderr=subprocess.PIPE,
                          text=True, timeout=120)
    os.close(write)
    assert proc.returncode == 1 and proc.stderr == "", proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("args, fragment", [
    (["model.name=nope"], "model.name='nope' is not a known architecture; choose one of:"),
    (["foo.bar=1"], "unknown config key 'foo'"),
    (["data.root=/nonexistent/lwt-data"],
     "/nonexistent/lwt-data/cifar-10-batches-py does not exist (expected data_batch_1"),
])
def test_bad_input_is_one_line_without_traceback(args, fragment, tmp_path):
    proc = lwt("train", GREEDY, *args, f"logging.out_dir={tmp_path}", "logging.wandb=disabled")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lwt: error: ") and fragment in lines[0], proc.stderr
    if "nonexistent" in fragment:
        assert "LWT_DATA_DIR" in lines[0] and "data.download=true" in lines[0]
        assert not any(tmp_path.iterdir())  # nothing half-written


def test_a_finished_run_is_not_overwritten_silently(tiny):
    cfg = load_config(GREEDY, tiny)
    run_dir = ROOT / cfg.logging.out_dir / cfg.experiment / cfg.run_name
    run_dir.mkdir(parents=True)
    RunDir(run_dir).write_marker()  # a folder lwt made for a run (else it would refuse it as foreign)
    (run_dir / "result.json").write_text(json.dumps({"finished": True}))
    with pytest.raises(LwtError, match="already holds a finished run.*--overwrite"):
        run(cfg)
    how = load_config(GREEDY, [*tiny, "data.eval_batch_size=250", "trainer.checkpoint_every_n_epochs=3"])
    with pytest.raises(LwtError, match=f"{run_dir} already holds a finished run"):  # how-keys: the same run
        run(how)
    assert json.loads((run_dir / "result.json").read_text()) == {"finished": True}


@pytest.mark.parametrize("args, fragment", [
    (["empty.yaml"], "empty.yaml is empty; an experiment file sets at least mode and model"),
    ([GREEDY, "logging.out_dir=''"], "an empty out_dir would write into the working directory"),
])
def test_an_empty_experiment_or_out_dir_is_one_line_and_writes_nothing(args, fragment, tmp_path, monkeypatch,
                                                                      capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    assert main(["train", *args, "logging.wandb=disabled"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lwt: error: ") and err.count("\n") == 1 and fragment in err, err
    assert [p.name for p in tmp_path.iterdir()] == ["empty.yaml"]

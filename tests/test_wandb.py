"""W&B works offline by default: one offline run per lwt run, in the run directory, with flat config, the
x-axes declared for per-stage and per-depth plots, and the accuracy-vs-depth series."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import time
from pathlib import Path

import pytest

from lwt.config import load_config
from lwt.training.run import run

from conftest import EXPERIMENTS


def wandb_records(path: Path) -> list:
    """The protobuf records of an offline run's ``.wandb`` file (what `wandb sync` uploads). wandb 0.31 ships no
    reader, so this follows its format: a 7-byte header (":W&B", magic, version), then LevelDB-log chunks
    (crc32 4 bytes, length 2, type 1: 1 full, 2 first, 3 middle, 4 last) in 32 KiB blocks."""
    from wandb.proto.wandb_internal_pb2 import Record

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    pos, payload, records = 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is zero padding
            pos += block - pos % block
            continue
        length, kind = struct.unpack_from("<HB", data, pos + 4)
        if pos + 7 + length > len(data):
            break  # a chunk still being written
        assert kind in (1, 2, 3, 4), f"bad chunk type {kind} at byte {pos}"
        payload += data[pos + 7:pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            records.append(Record.FromString(payload))
            payload = b""
    return records


def finished_records(log: Path, timeout: float = 60) -> list:
    """The records once the run's final ``exit`` record is in the file. wandb-core buffers the file and may
    write it out just after ``run.finish()`` has returned (a small run: all of it), so wait for it."""
    deadline = time.monotonic() + timeout
    while True:
        records = wandb_records(log)
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        assert time.monotonic() < deadline, f"{log} has no exit record {timeout} s after the run finished"
        time.sleep(0.1)


def history_rows(records: list) -> list[dict]:
    return [{item.key or ".".join(item.nested_key): json.loads(item.value_json) for item in r.history.item}
            for r in records if r.WhichOneof("record_type") == "history"]


@pytest.fixture(scope="module")
def offline_run(data_root, tmp_path_factory):
    """One tiny real greedy run (2 stages of 1 epoch on a few hundred CIFAR-10 images), W&B left at its default,
    shared by this file's tests. The overrides are the ``tiny`` fixture's (function-scoped) minus logging.wandb."""
    out = tmp_path_factory.mktemp("wandb") / "runs"
    cfg = load_config(EXPERIMENTS / "cifar10" / "belilovsky_k2_greedy.yaml", [
        f"data.root={data_root}", "data.train_subset=512", "data.val_size=256", "data.test_subset=500",
        "trainer.progress_bar=false", f"logging.out_dir={out}",
        "curriculum.max_stages=2", "curriculum.epochs_per_stage=1", "model.width=16",
    ])
    assert cfg.logging.wandb == "offline"  # the default, no account needed
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("WANDB_MODE", raising=False)
        result = run(cfg)
    runs = list((Path(result["run_dir"]) / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    (log,) = runs[0].glob("*.wandb")  # the offline run's event log, which `wandb sync` uploads
    return result, log, finished_records(log)


def test_offline_wandb_run_is_written_into_the_run_directory(offline_run):
    _, log, _ = offline_run
    events = log.read_bytes()
    # flat config keys (so the UI can filter/group on any of them) and the logged metrics are in it
    for key in (b"data.train_subset", b"model.name", b"val/acc", b"stage"):
        assert key in events, key


def test_offline_run_holds_the_stage_and_depth_axes_and_the_depth_curve(offline_run):
    result, _, records = offline_run
    assert records[0].WhichOneof("record_type") == "header"
    axes = {r.metric.name: r.metric.step_metric for r in records if r.WhichOneof("record_type") == "metric"}
    assert {"stage", "depth"} <= axes.keys()
    assert axes["test/acc"] == axes["test/loss"] == "stage"
    assert axes["depth/test_acc"] == axes["depth/val_acc"] == axes["depth/train_acc"] == "depth"
    rows = history_rows(records)
    stages = result["stages"]
    assert [r["depth"] for r in stages] == [1, 2]
    # each greedy stage's test row carries its stage (the x value of test/acc)
    assert [(r["stage"], r["test/acc"]) for r in rows if "test/acc" in r] == [
        (s["stage"], pytest.approx(s["test_acc"])) for s in stages]
    # the end-of-run depth series: one row per depth, equal to result.json's stages
    assert [(r["depth"], r["depth/test_acc"], r["depth/val_acc"], r["depth/train_acc"]) for r in rows
            if "depth" in r] == [(s["depth"], pytest.approx(s["test_acc"]), pytest.approx(s["val_acc"]),
                                  pytest.approx(s["train_acc"])) for s in stages]


SYNC = Path(__file__).resolve().parents[1] / "scripts" / "sync_wandb.sh"


def test_sync_script_uploads_every_offline_run_in_one_wandb_sync_call(tmp_path):
    runs = tmp_path / "runs"
    found = [runs / "exp" / "seed0" / "wandb" / "offline-run-20260101_000000-abcd1234",
             runs / "sweeps" / "gap" / "exp" / "seed1" / "wandb" / "offline-run-20260101_000001-efgh5678"]
    for d in found:
        d.mkdir(parents=True)
    (runs / "exp" / "seed0" / "wandb" / "run-20260101_000000-online").mkdir()  # an online run: not offline-run-*
    bin_dir = tmp_path / "bin"  # a stand-in `wandb` that prints the arguments it was given
    bin_dir.mkdir()
    (bin_dir / "wandb").write_text('#!/bin/sh\nfor a in "$@"; do echo "arg $a"; done\n')
    (bin_dir / "wandb").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}

    def sync(*args: str, path: str = env["PATH"]) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(SYNC), *args], capture_output=True, text=True, env={**env, "PATH": path})

    out = sync(str(runs), "--", "--project", "lwt")
    assert out.returncode == 0, out.stderr
    assert "2 offline W&B run(s)" in out.stdout
    args = [line[4:] for line in out.stdout.splitlines() if line.startswith("arg ")]
    assert args[:3] == ["sync", "--project", "lwt"] and sorted(args[3:]) == sorted(map(str, found))
    dry = sync("--dry-run", str(runs))  # lists, calls nothing
    assert dry.returncode == 0 and "arg " not in dry.stdout and sorted(dry.stdout.splitlines()[1:]) == sorted(
        map(str, found))
    no_wandb = sync(str(runs), path="/nonexistent:/usr/bin:/bin")
    assert no_wandb.returncode == 1 and "'wandb' is not on PATH" in no_wandb.stderr
    empty = sync(str(tmp_path / "bin"))
    assert empty.returncode == 1 and "no offline W&B runs" in empty.stderr

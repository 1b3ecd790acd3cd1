"""Safety (issue 13) on real tiny runs: names never lead out of logging.out_dir, --overwrite deletes only lwt
runs, a run folder is locked while a process writes it, bad values are refused before anything is written,
SIGINT/SIGTERM and write errors end in one line and a resumable run, damaged files are answered in one line,
CIFAR pickles cannot run code, files get the umask's mode, and a W&B fallback always says so.
docs/reliability.md maps each guarantee to its test here."""

from __future__ import annotations

import csv
import json
import os
import pickle
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lwt.cli import main
from lwt.config import load_config
from lwt.run.dir import LOCK, MARKER, RunLock, atomic_write_text, locked_by
from lwt.sweep import load_sweep

from conftest import GREEDY, ROOT
from datafiles import write_cifar100

# 2 stages x 2 epochs of a width-16 network on a few hundred images: seconds on a CPU
SMALL = ["model.width=16", "curriculum.max_stages=2", "curriculum.epochs_per_stage=2", "optim.schedule=cosine"]
METRICS = ("stage", "train_acc", "val_acc", "test_acc", "epochs", "stop_reason")
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}  # child processes import this checkout's lwt


def one_error(code: int, err: str, status: int = 2) -> str:
    """The single `lwt: error:` line of a command that failed as lwt promises: status 2, no traceback."""
    assert code == status, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("lwt: error: ")]
    assert len(lines) == 1, err
    return lines[0]


def lwt_error(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    return one_error(code, capsys.readouterr().err)


def snapshot(folder: Path) -> dict:
    """Every path under ``folder`` with its bytes and mtime: equal snapshots mean nothing was touched."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None, p.lstat().st_mtime_ns)
            for p in sorted(folder.rglob("*"))}


def stage_metrics(result: dict) -> list[dict]:
    return [{k: row[k] for k in METRICS} for row in result["stages"]]


@pytest.fixture(scope="module")
def finished(data_root, tmp_path_factory):
    """(argv, run_dir, result) of a finished uninterrupted SMALL run, the reference for resumed ones."""
    out = tmp_path_factory.mktemp("finished")
    argv = ["train", str(GREEDY), f"data.root={data_root}", "data.train_subset=512", "data.val_size=256",
            "data.test_subset=500", "logging.wandb=disabled", "trainer.progress_bar=false",
            f"logging.out_dir={out}", *SMALL]
    assert main(argv) == 0
    cfg = load_config(GREEDY, argv[2:])
    run_dir = out / cfg.experiment / cfg.run_name
    return argv, run_dir, json.loads((run_dir / "result.json").read_text())


def copy_run(run_dir: Path, dest: Path) -> Path:
    shutil.copytree(run_dir, dest)
    return dest


# ---------------------------------------------------------------- 1. names are names


@pytest.mark.parametrize("name", ["run_name=..", "run_name=../x", "run_name=/tmp/lwt-victim", "run_name=a/b",
                                  "run_name=''", "run_name=.", "experiment=..", "experiment=../../etc",
                                  "sweep=../x", "run_name=a b"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_a_name_that_is_not_one_plain_folder_name_is_refused_and_nothing_is_written(name, overwrite, tiny, tmp_path,
                                                                                    capsys):
    victim = tmp_path / "finished-elsewhere"  # stands for runs/ and other experiments' results
    victim.mkdir()
    (victim / "result.json").write_text("{}")
    before = snapshot(tmp_path)
    line = lwt_error(capsys, "train", GREEDY, *tiny, name, *(["--overwrite"] if overwrite else []))
    assert "is not a valid name" in line and "letters, digits and . _ = + -" in line
    assert snapshot(tmp_path) == before and not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_a_run_folder_that_is_a_link_out_of_out_dir_is_refused(tiny, tmp_path, capsys):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    cfg = load_config(GREEDY, tiny)
    link = tmp_path / "runs" / cfg.experiment / cfg.run_name
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    line = lwt_error(capsys, "train", GREEDY, *tiny, "--overwrite")
    assert "outside logging.out_dir" in line
    assert [p.name for p in outside.iterdir()] == ["keep.txt"]


# ---------------------------------------------------------------- 2. --overwrite deletes only lwt runs


def test_overwrite_refuses_a_folder_lwt_did_not_make(tiny, tmp_path, capsys):
    cfg = load_config(GREEDY, tiny)
    folder = tmp_path / "runs" / cfg.experiment / cfg.run_name
    folder.mkdir(parents=True)
    (folder / "thesis.tex").write_text("years of work")
    before = snapshot(tmp_path)
    for extra in ([], ["--overwrite"]):
        line = lwt_error(capsys, "train", GREEDY, *tiny, *extra)
        assert "holds files lwt did not write (thesis.tex)" in line and "--overwrite deletes only" in line
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("marker", [
    None,  # no marker: config.yaml + meta.json alone prove nothing
    "",
    "my notes",
    '{"lwt_run": "other_experiment/other_run", "id": "0123456789abcdef0123456789abcdef"}',  # another run's
    '{"lwt_run": "{run}", "id": "not-a-random-id"}',
])
def test_overwrite_refuses_a_folder_with_lwt_file_names_but_no_valid_marker(tiny, tmp_path, capsys, marker):
    cfg = load_config(GREEDY, tiny)
    folder = tmp_path / "runs" / cfg.experiment / cfg.run_name
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("my: settings\n")
    (folder / "meta.json").write_text('{"mine": true}\n')
    if marker is not None:
        (folder / MARKER).write_text(marker.replace("{run}", f"{cfg.experiment}/{cfg.run_name}"))
    before = snapshot(tmp_path)
    for extra in ([], ["--overwrite"]):
        line = lwt_error(capsys, "train", GREEDY, *tiny, *extra)
        assert "holds files lwt did not write" in line and "--overwrite deletes only" in line and MARKER in line
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_overwrite_empties_only_the_lwt_run_folder(finished, tmp_path, capsys):
    argv, run_dir, _ = finished
    out = tmp_path / "runs"
    run = copy_run(run_dir, out / run_dir.parent.name / run_dir.name)
    sibling = copy_run(run_dir, out / run_dir.parent.name / "another_run")
    (run / "stale.txt").write_text("left from the old run")
    kept = snapshot(sibling)
    argv = [a for a in argv if not a.startswith("logging.out_dir=")] + [f"logging.out_dir={out}"]
    assert main([*argv, "--overwrite"]) == 0
    assert not (run / "stale.txt").exists() and (run / MARKER).is_file() and (run / "result.json").is_file()
    assert snapshot(sibling) == kept
    help_text = subprocess.run([sys.executable, "-m", "lwt", "train", "--help"], cwd=ROOT, env=ENV,
                               capture_output=True, text=True).stdout
    assert "deletes everything in its run directory" in " ".join(help_text.split())


# ---------------------------------------------------------------- 3. one writer per run folder


@pytest.fixture
def holder(tmp_path):
    """A real second process that holds a run folder's lock (lwt.run.dir.RunLock) until it is killed."""
    procs = []

    def hold(run_dir: Path) -> subprocess.Popen:
        code = "import sys; from lwt.run.dir import RunLock; RunLock(sys.argv[1]).__enter__(); print('locked', " \
               "flush=True); sys.stdin.read()"
        proc = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], cwd=ROOT, env=ENV,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"  # it holds the lock now: no race with what follows
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_a_locked_run_is_refused_with_the_holders_pid_and_left_untouched(finished, holder, tmp_path, capsys):
    argv, run_dir, _ = finished
    out = tmp_path / "runs"
    run = copy_run(run_dir, out / run_dir.parent.name / run_dir.name)
    for name in ("result.json", "model.pt"):  # an unfinished run, as a resume finds it
        (run / name).unlink()
    proc = holder(run)
    before = snapshot(out)
    fresh = [a for a in argv if not a.startswith("logging.out_dir=")] + [f"logging.out_dir={out}"]
    for command in (["train", "--resume", run], [*fresh, "--overwrite"]):
        line = lwt_error(capsys, *command)
        assert f"is being written by another lwt process (pid {proc.pid})" in line
        assert snapshot(out) == before
    proc.kill()  # a killed holder leaves no stale lock
    proc.wait()
    assert locked_by(run) is None
    with RunLock(run):
        assert (run / LOCK).read_text().strip() == str(os.getpid())


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_sweep_skips_and_reports_runs_another_process_is_training(workers, tiny, holder, tmp_path, capsys):
    path = tmp_path / "locked.yaml"
    path.write_text(f"# two tiny runs\nbase: {GREEDY}\noverrides: [curriculum.max_stages=1, "
                    "curriculum.epochs_per_stage=1, model.width=4]\nseeds: [0, 1]\n")
    sweep = load_sweep(path, overrides=tiny)
    busy, free = sweep.runs
    proc = holder(busy.run_dir)
    before = snapshot(busy.run_dir)
    assert main(["sweep", str(path), *tiny, "--workers", str(workers)]) == 0
    out = capsys.readouterr()
    assert f"skipped {busy.id}: another process (pid {proc.pid}) is training it" in out.out
    assert "1 run(s) skipped, being trained by another process" in out.err and "FAILED" not in out.out
    assert snapshot(busy.run_dir) == before and free.status() == "done"


# ---------------------------------------------------------------- 4. everything validated before anything is written


@pytest.mark.slow
@pytest.mark.parametrize("override, fragment", [
    ("optim.momentum=-1", "optim.momentum=-1.0 must be in [0, 1)"),
    ("optim.momentum=1", "optim.momentum=1.0 must be in [0, 1)"),
    ("seed=-1", "seed=-1 must be in [0, 2**32)"),
    ("seed=4294967296", "seed=4294967296 must be in [0, 2**32)"),
    ("analysis.seed=-3", "analysis.seed=-3 must be in [0, 2**32)"),
    ("optim.lr=.nan", "optim.lr=nan must be a finite number"),
    ("optim.lr=.inf", "optim.lr=inf must be a finite number"),
    ("optim.stage_lr_mult=[1, .inf, 1, 1]", "must be a finite number"),
    ("optim.weight_decay=-0.1", "optim.weight_decay=-0.1 must be 0 or more"),
    ("optim.gamma=0", "optim.gamma=0.0 must be positive"),
    ("curriculum.plateau_min_delta=-1", "must be 0 or more"),
    ("trainer.log_every_n_steps=0", "trainer.log_every_n_steps=0 must be at least 1"),
    ("model.aux.hidden=0", "model.aux.hidden=0 must be at least 1"),
    ("trainer.precision=fp77", "Precision 'fp77' is invalid"),
    ("trainer.accelerator=tpu9", "invalid accelerator name"),
    ("trainer.strategy=nope", "invalid strategy name"),
    ("trainer.devices='[0,1]'", "`devices` selected with `CPUAccelerator` should be an int > 0"),
    ("data.train_subset=60000", "data.train_subset=60000 is more than the 49744 training images left after "
                                "data.val_size=256 (of 50000)"),
    ("data.test_subset=10001", "data.test_subset=10001 is more than the test set's 10000 images; valid: 1 to 10000"),
    ("curriculum.max_stages=9", "curriculum.max_stages=9 is more than the 4 blocks (stages) of "
                                "model.name='belilovsky_k2'; valid: 1 to 4"),
    ("trainer.extra={gradient_clip_val: -1}", "trainer.extra.gradient_clip_val=-1 must be a finite number >= 0"),
    ("data.classes=c.txt", "data.classes='c.txt' is an imagefolder key"),
    ("model.widths=[]", "at least one width"),
])
def test_bad_values_are_one_line_before_the_run_folder_exists(override, fragment, tiny, tmp_path, capsys):
    line = lwt_error(capsys, "train", GREEDY, *tiny, override)
    assert fragment in line
    assert not (tmp_path / "runs").exists()  # nothing written, so a corrected rerun is not "unfinished"


@pytest.mark.parametrize("text, extra, fragment", [
    ("optim:\n  lr: 0.1\n  lr: 0.5\n", [], "key 'lr' appears twice in one mapping (line 4)"),
    ("seed: 1\nseed: 2\n", [], "key 'seed' appears twice"),
    ("data: 5\n", ["data.batch_size=32"], "'data' is a section and must be a mapping of keys to values, not 5"),
    ("optim:\n  lr: 0.1\nmodel: wide\n", ["model.width=8"], "'model' is a section"),
])
def test_duplicate_keys_and_scalar_sections_in_yaml_are_errors(text, extra, fragment, tiny, tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(f"# a broken experiment\n{text}")
    assert fragment in lwt_error(capsys, "train", path, *tiny, *extra)
    sweep = tmp_path / "dup.yaml"
    sweep.write_text(f"base: {GREEDY}\nseeds: [0]\nseeds: [1]\n")
    assert "key 'seeds' appears twice" in lwt_error(capsys, "sweep", sweep, "--dry-run")


@pytest.mark.parametrize("label", [100, -1])
def test_a_label_outside_the_classes_is_a_data_error_naming_the_file(label, tmp_path, capsys):
    root = tmp_path / "data"
    write_cifar100(root)
    path = root / "cifar-100-python" / "train"
    entry = pickle.loads(path.read_bytes())
    entry["fine_labels"][7] = label
    path.write_bytes(pickle.dumps(entry, protocol=2))
    line = lwt_error(capsys, "train", GREEDY, "data.name=cifar100", f"data.root={root}", "data.val_size=50",
                     f"logging.out_dir={tmp_path / 'runs'}", "logging.wandb=disabled")
    assert f"{path} is corrupt: 1 label(s) outside [0, 100) (e.g. {label} at index 7)" in line
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- 5. interrupts and write errors


def _wait_for(path: Path, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 300
    while not path.exists():
        assert proc.poll() is None, log.read_text()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_print_the_resume_command_and_the_resume_is_exact(sig, finished, tmp_path):
    argv, run_dir, expected = finished
    out = tmp_path / "runs"
    argv = [a for a in argv if not a.startswith("logging.out_dir=")] + [f"logging.out_dir={out}"]
    mine = out / run_dir.parent.name / run_dir.name
    log = tmp_path / "child.log"
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "lwt", *argv], cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                                stderr=err)
        try:
            _wait_for(mine / "checkpoints" / "stage1" / "last.ckpt", proc, log)  # stage 1's first epoch is saved
            proc.send_signal(sig)
            code = proc.wait(timeout=120)
        finally:
            proc.kill()
    text = log.read_text()
    assert code == 128 + sig and "Traceback" not in text, text
    last = text.strip().splitlines()[-1]
    match = re.fullmatch(rf"lwt: stopped by {sig.name}( during [^;]+)?; continue it with: (lwt train --resume .+)",
                         last)
    assert match, text
    assert not (mine / "result.json").exists() and locked_by(mine) is None
    command = shlex.split(match.group(2))
    assert Path(command[-1]) == mine
    resumed = subprocess.run([sys.executable, "-m", "lwt", *command[1:]], cwd=ROOT, env=ENV, capture_output=True,
                             text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    result = json.loads((mine / "result.json").read_text())
    assert stage_metrics(result) == stage_metrics(expected)
    ref, got = (torch.load(d / "model.pt", weights_only=True) for d in (run_dir, mine))
    assert all(torch.equal(ref[k], got[k]) for k in ref)


@pytest.mark.slow
def test_a_write_error_is_one_line_naming_the_file_and_the_run_resumes(finished, tmp_path):
    """A file-size limit makes the first checkpoint write fail with a real OSError (EFBIG), as a full disk
    (ENOSPC) or a quota would: same path through the code, reproducible without filling a disk."""
    argv, run_dir, expected = finished
    out = tmp_path / "runs"
    argv = [a for a in argv if not a.startswith("logging.out_dir=")] + [f"logging.out_dir={out}"]
    mine = out / run_dir.parent.name / run_dir.name

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))

    proc = subprocess.run([sys.executable, "-m", "lwt", *argv], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          preexec_fn=small_files, timeout=600)
    line = one_error(proc.returncode, proc.stderr)
    ckpt = mine / "checkpoints" / "stage1" / "last.ckpt"
    assert f"cannot write {ckpt}: File too large" in line and f"lwt train --resume {mine}" in line
    assert not list(mine.rglob("*.tmp")) and not ckpt.exists()
    assert main(["train", "--resume", str(mine)]) == 0
    assert stage_metrics(json.loads((mine / "result.json").read_text())) == stage_metrics(expected)


# ---------------------------------------------------------------- 6. damaged results, models, reports, checkpoints


@pytest.mark.slow
def test_results_excludes_and_warns_about_result_files_that_are_not_complete_runs(finished, tmp_path, capsys):
    _, run_dir, _ = finished
    runs = tmp_path / "runs"
    copy_run(run_dir, runs / "exp" / "real")
    bad = {"empty_list": "[]", "no_stages": json.dumps({"stages": [], "final_test_acc": 0.5}),
           "truncated": (run_dir / "result.json").read_text()[:40]}
    for name, text in bad.items():
        copy_run(run_dir, runs / "exp" / name)
        (runs / "exp" / name / "result.json").write_text(text)
    table = tmp_path / "t.csv"
    assert main(["results", str(runs), "--out", str(table)]) == 0
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for name in bad:
        assert f"lwt results: warning: skipping {runs / 'exp' / name / 'result.json'}" in err
    assert [r["n"] for r in csv.DictReader(table.with_name("t_mean.csv").open())] == ["1"]


@pytest.mark.parametrize("text", [b"\x00\xff\x13garbage" * 20, b"experiment,mode,model,dataset,test_acc_stage1\n"
                                  b"gap,greedy,vgg11,cifar10,0.5\ngap,greedy,vgg1", b"a,b\n1,2\n"])
def test_figures_answer_a_damaged_or_foreign_table_in_one_line(text, tmp_path, capsys):
    (tmp_path / "gap.csv").write_bytes(text)
    line = lwt_error(capsys, "figures", "--results", tmp_path / "gap.csv", "--out", tmp_path / "figs", "--only", "1")
    assert f"{tmp_path / 'gap.csv'} is not a table fig1_depth can read" in line


@pytest.mark.parametrize("command, damage", [("gap", "truncated"), ("probe", "truncated"), ("cka", "truncated"),
                                             ("gap", "refused"), ("gap", "result []"), ("critical", "result []"),
                                             ("critical", "result no stages")])
def test_analysis_commands_answer_a_damaged_model_or_result_in_one_line(command, damage, finished, tmp_path, capsys):
    _, run_dir, _ = finished
    run = copy_run(run_dir, tmp_path / "run")
    if damage == "truncated":
        data = (run / "model.pt").read_bytes()
        (run / "model.pt").write_bytes(data[: len(data) // 2])
    elif damage == "refused":  # a pickle that torch.load(weights_only=True) will not run
        torch.save({"net": argparse_namespace()}, run / "model.pt")
    else:
        (run / "result.json").write_text("[]" if damage == "result []" else '{"stages": []}')
    before = snapshot(tmp_path)
    argv = [command, run] + ([run_dir] if command == "cka" else []) + (["analysis.probe_epochs=1"]
                                                                       if command == "probe" else [])
    line = lwt_error(capsys, *argv)
    if damage in ("truncated", "refused"):
        assert f"{run / 'model.pt'} is corrupt, truncated or not a weights file lwt wrote" in line
    else:
        assert f"{run / 'result.json'} is not a complete lwt run's result" in line
    assert snapshot(tmp_path) == before


def argparse_namespace():
    import argparse

    return argparse.Namespace(x=1)


@pytest.mark.slow
def test_a_damaged_checkpoint_of_a_finished_stage_gets_advice_that_works(finished, tmp_path, capsys):
    """Killed after stage 2 was recorded but before result.json; then stage 2's checkpoint is damaged.
    The advice (``--redo-stage 2``) retrains stage 2 alone, to the uninterrupted run's numbers."""
    _, run_dir, expected = finished
    run = copy_run(run_dir, tmp_path / "run")
    for name in ("result.json", "model.pt"):
        (run / name).unlink()
    ckpt = run / "checkpoints" / "stage2" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    line = lwt_error(capsys, "train", "--resume", run)
    match = re.search(r"`(lwt train --resume \S+ --redo-stage 2)`", line)
    assert f"checkpoint {ckpt} of finished stage 2 is corrupt" in line and match, line
    assert main(shlex.split(match.group(1))[1:]) == 0
    out = capsys.readouterr().out
    assert "[lwt] stage 2:" in out and "[lwt] stage 1:" not in out  # stage 1 kept, stage 2 retrained
    result = json.loads((run / "result.json").read_text())
    assert stage_metrics(result) == stage_metrics(expected)
    assert "pass --resume RUN_DIR" in lwt_error(capsys, "train", "--redo-stage", "3", GREEDY)


# ---------------------------------------------------------------- 7. CIFAR pickles cannot run code


def test_a_crafted_cifar_pickle_is_refused_without_running_it(tmp_path, capsys):
    root = tmp_path / "data"
    write_cifar100(root)
    touched = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {touched}",))

    path = root / "cifar-100-python" / "train"
    path.write_bytes(pickle.dumps({"data": Exploit(), "fine_labels": [0]}, protocol=2))
    line = lwt_error(capsys, "train", GREEDY, "data.name=cifar100", f"data.root={root}", "data.val_size=50",
                     f"logging.out_dir={tmp_path / 'runs'}", "logging.wandb=disabled")
    assert f"{path} is corrupt or truncated, or not a CIFAR file" in line
    assert "system, which no CIFAR file holds" in line
    assert not touched.exists() and not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- 8. file modes


def test_atomic_writes_follow_the_umask(finished, tmp_path):
    _, run_dir, _ = finished
    mask = os.umask(0)
    os.umask(mask)
    want = 0o666 & ~mask  # 0644 under the usual 022
    for name in ("result.json", "progress.json", "config.yaml", "model.pt", "checkpoints/stage1/last.ckpt"):
        assert (run_dir / name).stat().st_mode & 0o777 == want, name
    code = (f"import os; os.umask(0o027); from lwt.run.dir import atomic_write_text as w; "
            f"w(__import__('pathlib').Path({str(tmp_path / 'x.json')!r}), '{{}}')")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, check=True)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o640
    atomic_write_text(tmp_path / "y.txt", "text")
    assert (tmp_path / "y.txt").read_text() == "text" and not list(tmp_path.glob(".*.tmp"))


# ---------------------------------------------------------------- 9. W&B fallbacks say so


WANDB_CHILD = """
import socket, sys
from pathlib import Path
from lwt.config import load_config
from lwt.training.loggers import make_loggers
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen(8)  # accepts, never answers
import os; os.environ["WANDB_BASE_URL"] = f"http://127.0.0.1:{server.getsockname()[1]}"
cfg = load_config(sys.argv[1], ["logging.wandb=online"])
run_dir = Path(sys.argv[2]); run_dir.mkdir()
logger = make_loggers(cfg, run_dir)[-1]
logger.experiment.log({"x": 1})
print("offline" if logger.experiment.offline else "online")
logger.experiment.finish()
"""


@pytest.mark.slow
@pytest.mark.parametrize("why, env, fragment", [
    ("no API key", {}, "W&B online mode is unavailable (UsageError: No API key configured"),
    ("WANDB_MODE=offline", {"WANDB_MODE": "offline"}, "wandb started the run offline (WANDB_MODE='offline')"),
])
def test_every_wandb_fallback_to_offline_is_one_warning(why, env, fragment, tmp_path):
    child_env = {k: v for k, v in ENV.items() if not k.startswith("WANDB_")}
    child_env.update(env, HOME=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path / "wandb-config"))
    proc = subprocess.run([sys.executable, "-c", WANDB_CHILD, str(GREEDY), str(tmp_path / "run")], cwd=ROOT,
                          env=child_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1] == "offline", proc.stderr[-3000:]
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("lwt: warning: ")]
    assert len(warnings) == 1 and fragment in warnings[0], proc.stderr[-3000:]

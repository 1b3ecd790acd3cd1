"""A sweep's run archive, ``results/NAME_runs.jsonl``: a line per finished run with its ``result.json``, its flat
config and its folder, so a sweep's results outlive the machine that trained it. ``lwt results`` writes it (and
``lwt tune`` for its grid points); ``lwt sweep`` and ``lwt tune`` skip the runs it holds."""

from __future__ import annotations

import json
from pathlib import Path

from lwt.errors import LwtError
from lwt.run.dir import atomic_write_text
from lwt.run.per_image import prune_archive
from lwt.run.result import RunResult


def run_key(run: dict) -> tuple:
    """Identifies a run across machines: (sweep, experiment, run name), not its folder."""
    res, cfg = run["result"], run["config"]
    return res.sweep or cfg.get("sweep"), res.experiment or cfg.get("experiment"), res.run_name or run["dir"].name


def write_archive(path: Path, runs: list[dict]) -> None:
    """A line per run; ``per_image`` (a run's per-image file under ``NAME_per_image/``) only where it has one,
    and the files no line names any more are deleted."""
    lines = []
    for r in runs:
        record = {"run_dir": str(r["dir"]), "result": r["result"].to_json(), "config": r["config"]}
        if r.get("per_image"):
            record["per_image"] = r["per_image"]
        lines.append(json.dumps(record, sort_keys=True) + "\n")
    atomic_write_text(path, "".join(lines))
    prune_archive(path, {r["per_image"] for r in runs if r.get("per_image")})


def merge_archive(path: Path, runs: list[dict]) -> None:
    """Add ``runs`` to the archive ``path``: a line with the same key is replaced where it stands, the others
    stay, new runs go at the end."""
    new = {run_key(r): r for r in runs}
    old = read_archive(path) if Path(path).is_file() else []
    merged = [new.pop(run_key(r), r) for r in old]
    write_archive(path, merged + list(new.values()))


def read_archive(path: Path) -> list[dict]:
    """``{"result": RunResult, "config": flat dict, "dir": Path, "per_image": str | None}`` per line of ``path``."""
    runs = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        try:
            record = json.loads(line)
            runs.append({"result": RunResult.from_json(record["result"]), "config": record["config"],
                         "dir": Path(record["run_dir"]), "per_image": record.get("per_image")})
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise LwtError(f"{path}, line {n}: not an lwt results archive record ({e})") from None
    return runs

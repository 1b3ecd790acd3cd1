"""result.json, read and written by lwt.run.result alone: every result lwt ever committed still loads, unchanged."""

from __future__ import annotations

import json

import pytest

from lwt.errors import LwtError
from lwt.report.tables import read_archive
from lwt.run.result import RunResult

from conftest import ROOT

RESULTS = ROOT / "results"


def _set(value):
    """``value`` without its None fields: a field a run predates is written back as null, never as a value."""
    if isinstance(value, dict):
        return {k: _set(v) for k, v in value.items() if v is not None}
    return [_set(v) for v in value] if isinstance(value, list) else value


@pytest.mark.parametrize("archive", sorted(RESULTS.glob("*_runs.jsonl")), ids=lambda p: p.name)
def test_committed_archives_load_typed_and_write_back_the_same_record(archive):
    records = [json.loads(line)["result"] for line in archive.read_text().splitlines()]
    runs = read_archive(archive)
    assert len(runs) == len(records) > 0
    for run, saved in zip(runs, records):
        result = run["result"]
        assert result.depths == [s["stage"] for s in saved["stages"]] == list(range(1, len(saved["stages"]) + 1))
        assert _set(result.to_json()) == _set(saved)


def test_committed_run_results_round_trip_and_old_rows_read_by_stage(tmp_path):
    for path in sorted((RESULTS / "runs").glob("*.json")):
        saved = json.loads(path.read_text())
        assert _set(RunResult.read(path).to_json()) == _set(saved)
    rows = [{"stage": 1, "test_acc": 0.5}, {"stage": 2, "test_acc": 0.6}]  # before rows had `depth`
    old = RunResult.from_json({"mode": "greedy", "stages": rows})
    assert old.depths == [1, 2] and old.last.test_acc == 0.6 and old.per_layer is None and old.seed is None
    assert [r["stage"] for r in old.to_json()["stages"]] == [1, 2]
    (tmp_path / "result.json").write_text('{"stages": [{"stage": 1}]}')
    with pytest.raises(LwtError, match="is not a complete lwt run's result: a stage has no test accuracy"):
        RunResult.read(tmp_path / "result.json")

"""Progress bars (lwt/progress.py): drawn on a terminal (or with LWT_PROGRESS=1), never with --quiet or
LWT_PROGRESS=0 or into a pipe; the commands tick them from deep inside their loops."""

from __future__ import annotations

from pathlib import Path

import pytest

from lwt import console as progress
from lwt.cli import main

RESULTS = Path(__file__).resolve().parents[2] / "results"


def test_bars_count_what_the_code_advances_and_grow_when_asked(monkeypatch, capsys):
    monkeypatch.setenv("LWT_PROGRESS", "1")
    progress.set_quiet(False)
    with progress.bar(3, "work", unit="round"):
        progress.advance(1, "first")
        progress.extend(2)  # found more work: 5 in all
        progress.advance(4)
    err = capsys.readouterr().err
    assert "[lwt] work: 100%" in err and "5/5" in err and "first" in err
    progress.advance(1)  # no open bar: nothing, no error
    for quiet, env in ((True, "1"), (False, "0")):
        progress.set_quiet(quiet)
        monkeypatch.setenv("LWT_PROGRESS", env)
        with progress.bar(2, "silent"):
            progress.advance(2)
        assert "silent" not in capsys.readouterr().err
    progress.set_quiet(False)
    monkeypatch.delenv("LWT_PROGRESS")
    assert not progress.enabled()  # pytest's stderr is not a terminal


@pytest.mark.slow
def test_figures_command_shows_a_bar_with_an_eta_and_none_with_quiet(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("LWT_PROGRESS", "1")
    assert main(["figures", "--results", str(RESULTS), "--out", str(tmp_path), "--only", "1,2"]) == 0
    err = capsys.readouterr().err
    assert "[lwt] figures: 100%" in err and "2/2" in err and "fig2_gap" in err and "<00:00" in err  # ETA field
    assert main(["figures", "--results", str(RESULTS), "--out", str(tmp_path), "--only", "1", "--quiet"]) == 0
    assert "[lwt]" not in capsys.readouterr().err

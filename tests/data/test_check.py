"""scripts/check_data.py's survey: finds what a root holds, warns (never fails) on md5 mismatches."""

from __future__ import annotations

import runpy
import sys

import pytest

from lwt.data.check import main, survey

from conftest import ROOT
from datafiles import write_cifar100, write_image_tree


def test_survey_reports_datasets_counts_and_md5_warnings(tmp_path):
    write_cifar100(tmp_path, per_class=2)
    write_image_tree(tmp_path / "tiny", "tiny-imagenet")
    write_image_tree(tmp_path / "folder", "imagefolder")
    lines = survey(tmp_path)
    text = "\n".join(lines)
    assert "CIFAR-10: not found" in text
    assert "CIFAR-100" in text and "200 train + 100 test images, 100 classes (class0, class1" in text
    # the test's own pickles differ from the official files: one warning per file, naming it
    for name in ("train", "test", "meta"):
        assert any("warning:" in line and f"cifar-100-python/{name}: md5" in line for line in lines)
    assert "tiny (" in text and "tiny-imagenet layout): 4 classes" in text
    assert "folder (" in text and "imagefolder layout): 4 classes" in text and "16 train images, 8 val" in text


def test_check_data_script_exits_zero_even_without_data(tmp_path, monkeypatch, capsys):
    assert main([str(tmp_path / "nowhere")]) == 0
    assert "data root not found" in capsys.readouterr().out
    monkeypatch.setattr(sys, "argv", ["check_data.py", str(tmp_path)])
    with pytest.raises(SystemExit) as done:  # the script itself, as `python scripts/check_data.py` runs it
        runpy.run_path(str(ROOT / "scripts" / "check_data.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert done.value.code == 0 and "CIFAR-10: not found" in out and "none found" in out

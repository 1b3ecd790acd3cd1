"""pyproject.toml builds the editable install (`pip install -e .`, what `make` runs) and the wheel without a
setuptools warning: every folder of experiments/ is a listed package, and lwt/experiments links to
experiments/ so that no folder needs setuptools' import hook. The wheel's contents and the installed lwt are
checked in tests/integration/test_install.py."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

WARNING = re.compile(r"^.*(?:Warning|InformationOnly): .*$", re.M)  # setuptools' warnings and notices


@pytest.mark.slow  # two builds: about 5 s
def test_editable_and_wheel_builds_print_no_setuptools_warning(tmp_path):
    assert (ROOT / "lwt" / "experiments").resolve() == (ROOT / "experiments").resolve()
    src, out = tmp_path / "src", tmp_path / "dist"
    src.mkdir()
    out.mkdir()
    shutil.copytree(ROOT / "experiments", src / "experiments")
    shutil.copytree(ROOT / "lwt", src / "lwt", symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    # the PEP 660 / 517 hooks pip calls, in this environment's setuptools, every warning shown
    hooks = f"import setuptools.build_meta as b; b.build_editable({str(out)!r}); b.build_wheel({str(out)!r})"
    build = subprocess.run([sys.executable, "-W", "always", "-c", hooks], cwd=src, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    assert WARNING.findall(build.stdout + build.stderr) == [], WARNING.findall(build.stdout + build.stderr)
    assert len(list(out.glob("lwt-*.whl"))) == 2

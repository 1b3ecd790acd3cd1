"""lwt's own data files (experiment YAMLs, sweep files, class lists), in a checkout or in an installed package.

In a checkout they live in ``experiments/``; a wheel carries the same tree as package data,
``lwt/experiments/`` (pyproject.toml maps one onto the other). A file a user names is used as given when it
exists; otherwise it is looked up in that tree, so ``lwt train cifar10/belilovsky_k2_greedy`` and
``experiments/cifar10/belilovsky_k2_greedy.yaml`` work from any folder.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # the lwt package
CHECKOUT = PACKAGE.parent / "experiments"  # present in a checkout (and an editable install)
INSTALLED = PACKAGE / "experiments"  # present in a wheel install


def experiments_dir() -> Path:
    """The ``experiments/`` tree of this lwt: the checkout's, else the installed package's."""
    return CHECKOUT if CHECKOUT.is_dir() else INSTALLED


def find_file(label: str | Path, suffix: str = ".yaml") -> Path | None:
    """``label`` itself when it is a file; else the file of that name in ``experiments_dir()`` (with or without
    a leading ``experiments/`` and the ``suffix``); None when neither exists."""
    path = Path(label)
    if path.is_file():
        return path
    if path.is_absolute():
        return None
    parts = path.parts[1:] if path.parts[:1] == ("experiments",) else path.parts
    if not parts:
        return None
    inner = Path(*parts)
    for candidate in (experiments_dir() / inner, experiments_dir() / inner.with_name(inner.name + suffix)):
        if candidate.is_file():
            return candidate
    return None


def known_experiments() -> list[str]:
    """Names ``lwt train`` accepts, e.g. ``cifar10/belilovsky_k2_greedy`` (sweeps excluded)."""
    root = experiments_dir()
    return sorted(str(p.relative_to(root).with_suffix("")) for p in root.glob("*/*.yaml") if p.parent.name != "sweeps")

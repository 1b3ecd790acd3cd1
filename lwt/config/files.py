"""lwt's own data files (experiment YAMLs, sweep files, class lists), in a checkout or in an installed package.

In a checkout they live in ``experiments/``; a wheel carries the same tree as package data,
``lwt/experiments/`` (pyproject.toml maps one onto the other). A file a user names is used as given when it
exists; otherwise it is looked up in that tree, so ``lwt train cifar10/belilovsky_k2_greedy`` and
``experiments/cifar10/belilovsky_k2_greedy.yaml`` work from any folder.

It also holds the one reader of every YAML and JSON file lwt reads (``read_data``, ``read_model``): a file that
is no plain file (or, inside a run folder, a symbolic link), holds bytes that are not UTF-8, does not parse, is
nested too deeply, or has the wrong top-level type or shape is one ``lwt: error: <file>: ...`` line.
"""

from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import yaml

from lwt.errors import LwtError

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


# ---------------------------------------------------------------- the one reader of lwt's YAML and JSON files


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but a key given twice in one mapping is an error (PyYAML keeps the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges: the keys written beside it override the base's on purpose
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.YAMLError(f"key '{key}' appears twice in one mapping (line {key_node.start_mark.line + 1}); "
                                     "give it once")
            seen.add(key)
        return super().construct_mapping(node, deep)


def load_yaml(text: str):
    """YAML as lwt reads every file it is given (experiments, sweeps): safe, and duplicate keys refused."""
    return yaml.load(text, Loader=_UniqueKeyLoader)


KINDS = {stat.S_IFDIR: "a folder", stat.S_IFLNK: "a symbolic link", stat.S_IFIFO: "a named pipe",
         stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a device", stat.S_IFBLK: "a device"}


def file_problem(path: Path, folder: bool = False) -> str | None:
    """None when ``path`` is missing or is a plain file (``folder``: a plain folder) that is no symbolic link;
    else what it is instead. lwt checks the files of a run folder this way before it opens them, so a link
    planted there never leads a read or a write to a file outside the folder."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as e:
        return f"cannot be inspected ({e.strerror})"
    if stat.S_ISDIR(mode) if folder else stat.S_ISREG(mode):
        return None
    return f"is {KINDS.get(stat.S_IFMT(mode), 'no plain file')}, not a plain {'folder' if folder else 'file'}"


def read_bytes(path: Path, follow: bool = True) -> bytes:
    """A plain file's bytes, or LwtError naming it; ``follow=False`` (files inside a run folder) opens it without
    following a symbolic link (O_NOFOLLOW), so a link is refused instead of read through."""
    path = Path(path)
    flags = os.O_RDONLY | os.O_NONBLOCK | (0 if follow else os.O_NOFOLLOW)  # O_NONBLOCK: a named pipe never hangs
    try:
        fd = os.open(path, flags)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise LwtError(f"{path}: is a symbolic link; lwt reads the files of a run folder only as plain files, "
                           "never through a link: put the file itself there, or start a new run") from None
        raise LwtError(f"{path}: cannot be read ({e.strerror})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise LwtError(f"{path}: is {KINDS.get(stat.S_IFMT(mode), 'no plain file')}, not a file lwt can read; "
                           "remove it or give the right path")
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    except OSError as e:
        raise LwtError(f"{path}: cannot be read ({e.strerror})") from None
    finally:
        os.close(fd)


TOP = {dict: "a mapping", list: "a list"}


def read_data(path: Path, fmt: str, top: type | None = dict, follow: bool = True, what: str = "",
              empty_ok: bool = False):
    """The data of a JSON (``fmt="json"``) or YAML file, or one LwtError ``<file>: ...`` for whatever is wrong
    with it: not a plain file (or a link, ``follow=False``), bytes that are not UTF-8, text that does not parse,
    nesting too deep for the parser, or a top level that is not ``top`` (None: any). ``what`` names what the
    file should be, for the messages; ``empty_ok``: an empty YAML file reads as None."""
    path = Path(path)
    should = f"; it should be {what}" if what else ""
    try:
        text = read_bytes(path, follow).decode("utf-8")
    except UnicodeDecodeError as e:
        raise LwtError(f"{path}: is not UTF-8 text (byte {e.start}){should}") from None
    try:
        data = json.loads(text) if fmt == "json" else load_yaml(text)
    except RecursionError:
        raise LwtError(f"{path}: is nested too deeply to read{should}") from None
    except json.JSONDecodeError as e:
        raise LwtError(f"{path}: is not valid JSON ({e.msg}, line {e.lineno}){should}") from None
    except yaml.YAMLError as e:
        raise LwtError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None and empty_ok:
        return None
    if top is not None and not isinstance(data, top):
        raise LwtError(f"{path}: holds {type(data).__name__} at its top level, not {TOP.get(top, top.__name__)}"
                       f"{should}")
    return data


def read_model(path: Path, model, fmt: str = "json", follow: bool = False, what: str = ""):
    """A file checked against a pydantic ``model`` (a BaseModel or a TypeAdapter); one LwtError naming the file
    and the first field of the wrong shape."""
    from pydantic import TypeAdapter, ValidationError

    data = read_data(path, fmt, dict, follow, what)
    adapter = model if isinstance(model, TypeAdapter) else TypeAdapter(model)
    try:
        return adapter.validate_python(data)
    except ValidationError as e:
        raise LwtError(f"{path}: {shape_error(e)}{'; it should be ' + what if what else ''}") from None


def shape_error(e) -> str:
    """A pydantic ValidationError's first problem as ``key.path: message``."""
    first = e.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "the top level"
    return f"{where}: {first['msg'].lower()}"

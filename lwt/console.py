"""What lwt prints: plain-text tables, CSV text, and tqdm progress bars (Lightning already depends on tqdm)
with an ETA for its long commands, on stderr.

Code deep inside a measurement ticks the bar its command opened with ``advance()``, so the functions in
between need no bar argument; without an open bar ``advance`` does nothing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_quiet = False
_active: list = []  # the open bars, innermost last


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = bool(quiet)


def enabled() -> bool:
    """Whether bars are drawn: never after ``--quiet`` or with ``LWT_PROGRESS=0``; always with ``LWT_PROGRESS=1``
    (a log that wants them); otherwise when stderr is a terminal."""
    setting = os.environ.get("LWT_PROGRESS", "").strip().lower()
    if _quiet or setting in ("0", "false", "no", "off"):
        return False
    return setting in ("1", "true", "yes", "on") or sys.stderr.isatty()


@contextmanager
def bar(total: int | float | None, desc: str, unit: str = "it") -> Iterator[object]:
    """An open bar of ``total`` units (tqdm's: ``update``, ``set_postfix_str``); ``advance`` ticks it."""
    from tqdm import tqdm

    b = tqdm(total=total, desc=f"[lwt] {desc}", unit=unit, file=sys.stderr, disable=not enabled(),
             dynamic_ncols=True, leave=True, smoothing=0.1)
    _active.append(b)
    try:
        yield b
    finally:
        _active.remove(b)
        b.close()


def advance(n: int | float = 1, postfix: str | None = None) -> None:
    """Tick the innermost open bar by ``n`` (and set its postfix); nothing when none is open."""
    if _active:
        b = _active[-1]
        if postfix is not None:
            b.set_postfix_str(postfix, refresh=False)
        b.update(n)


def extend(n: int | float) -> None:
    """Grow the innermost open bar's total by ``n`` (work found only once it started)."""
    if _active and _active[-1].total is not None:
        _active[-1].total += n
        _active[-1].refresh()


def add_quiet_flag(parser) -> None:
    parser.add_argument("--quiet", action="store_true",
                        help="no progress bar (drawn on stderr only when it is a terminal; LWT_PROGRESS=0 also)")


def format_table(rows: list[dict], columns: list[tuple[str, str]], title: str | None = None) -> str:
    """``columns``: (key, format) pairs; missing or None values print as ``-``."""
    header = [key for key, _ in columns]
    cells = [[fmt.format(row[key]) if row.get(key) is not None else "-" for key, fmt in columns] for row in rows]
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(header)]
    out = [title] if title else []
    out.append("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    out += ["  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in cells]
    return "\n".join(out)


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def to_csv(columns: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[cell(row.get(c)) for c in columns] for row in rows])
    return buf.getvalue()

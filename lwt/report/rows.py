"""The per-run table that ``lwt results`` builds (a dict per run, columns in order), as the averaged and the
paired tables read it: which columns identify a group of runs that differ only by seed, and those groups."""

from __future__ import annotations

import json
from typing import Any

ID_COLUMNS = ["experiment", "mode", "model", "dataset"]


def value_key(value: Any) -> str:
    """A cell as a comparable, hashable key (lists and None included)."""
    return json.dumps(value, sort_keys=True)


def rounded(value: float | None) -> float | None:
    """A statistic as the CSVs write it: 6 decimals."""
    return None if value is None else round(value, 6)


def group_columns(columns: list[str]) -> list[str]:
    """What identifies a group of runs that differ only by seed: the columns before ``seed``."""
    return columns[:columns.index("seed")]


def groups(columns: list[str], rows: list[dict]) -> list[list[dict]]:
    """The runs of each group (seed order within a group, as the table is sorted), in table order."""
    out: dict[tuple, list[dict]] = {}
    for row in rows:
        out.setdefault(tuple(value_key(row[c]) for c in group_columns(columns)), []).append(row)
    return list(out.values())

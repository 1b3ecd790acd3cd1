"""``--select AXIS=VALUE ...``: pick runs of a sweep by their axis values. A W&B agent calls
``lwt sweep FILE --select ${args_no_hyphens}``, which passes each parameter as ``name=str(value)``."""

from __future__ import annotations

from typing import Any

import yaml

from lwt.errors import LwtError
from lwt.sweep.spec import Run, Sweep


def select(runs: list[Run], sweep: Sweep, selectors: list[str]) -> list[Run]:
    """The runs whose axes match every key; a key given more than once matches any of its values
    (``--select experiment=a experiment=b``). A W&B agent passes one value per parameter."""
    wanted: dict[str, list[Any]] = {}
    for key, values in _selectors(selectors).items():
        if "+" in key and key.split("+") == list(sweep.zip):
            for value in values:
                value = _canon(value)
                if not isinstance(value, list) or len(value) != len(sweep.zip):
                    raise LwtError(f"--select {key}=...: give a list of {len(sweep.zip)} values")
            wanted[key] = [_canon(v) for v in values]
        else:
            wanted[key] = [_canon(v) for v in values]
    valid = list(runs[0].axes) if runs else []
    for key in wanted:
        if key not in valid and key.split("+") != list(sweep.zip):
            raise LwtError(f"--select {key}: not an axis of this sweep; its axes: {', '.join(valid)}")

    def value_of(run: Run, key: str) -> Any:
        if key in run.axes:
            return _canon(run.axes[key])
        return [_canon(run.axes[k]) for k in sweep.zip]

    chosen = [r for r in runs if all(value_of(r, k) in vs for k, vs in wanted.items())]
    if not chosen:
        raise LwtError(f"--select {' '.join(selectors)} matches no run of {sweep.path}")
    return chosen


def _selectors(items: list[str]) -> dict[str, list[str]]:
    """``key=value`` items with dotted keys kept whole (selectors name axes, not config sections)."""
    out: dict[str, list[str]] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise LwtError(f"selector '{item}' must look like key=value")
        out.setdefault(key.strip(), []).append(text)
    return out


def _canon(value: Any) -> Any:
    """One form for a value written by YAML, by Python's str() (a W&B agent) or typed on a command line."""
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, str):
        if value in ("None", "null", "~", ""):
            return None
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        if isinstance(parsed, list):
            return _canon(parsed)
        if isinstance(parsed, str):
            try:
                return float(parsed)
            except ValueError:
                return parsed
        value = parsed
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return value


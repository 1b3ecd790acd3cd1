"""The scale a claim was tested at, read from the archived configs and results of the runs it used: training and
test images, widths, epochs per stage and the SGD steps they made, and the precision and device the runs computed
in (result.json's provenance; "not recorded" for runs archived before it was)."""

from __future__ import annotations

from .source import Table, natural


def _join(values) -> str:
    return ", ".join(f"{v:,}" if isinstance(v, int) else str(v) for v in sorted(set(values), key=lambda v: natural(
        str(v))))


def _widths(cfg: dict) -> str:
    widths = cfg.get("model.widths")
    if widths:
        return "widths " + "-".join(str(w) for w in widths)
    return f"width {cfg.get('model.width')}" if cfg.get("model.width") is not None else "default width"


def _steps(result: dict) -> list[int]:
    return [s.get("steps") for s in result.get("stages") or [] if s.get("steps") is not None]


def _schedule(cfg: dict, result: dict) -> tuple[str, str]:
    """(mode, budget): greedy's epochs per stage, or an E2E / DGL epoch count."""
    mode = cfg.get("mode") or result.get("mode") or "?"
    if mode == "greedy":
        epochs = cfg.get("curriculum.stage_epochs")
        return mode, (f"stages of {', '.join(str(e) for e in epochs)} epochs" if epochs
                      else f"{cfg.get('curriculum.epochs_per_stage')} epochs per stage")
    if cfg.get("trainer.match_flops_of"):  # as many whole epochs as fit in another run's training FLOPs
        return mode, "the epochs that fit in greedy's training FLOPs"
    return mode, f"{cfg.get('trainer.max_epochs')} epochs"


def _e2e_steps(runs: list[tuple[int, ...]]) -> str:
    """An E2E run's SGD steps (every read-out trains with the whole network: its stages share them)."""
    total = sorted({max(r) for r in runs if r})
    return "" if not total else f" ({total[0]} SGD steps)" if len(total) == 1 else \
        f" ({total[0]}-{total[-1]} SGD steps)"


def _pattern(steps: tuple[int, ...]) -> tuple[float, ...]:
    """Which stages made fewer steps than the run's longest (copied blocks: 0, shortened ones: a fraction), so that
    runs that differ only by training-set size share a schedule."""
    top = max(steps, default=0) or 1
    ratios = [round(s / top, 3) for s in steps]
    while ratios and ratios[-1] == 1.0:
        ratios.pop()
    return tuple(ratios)


def _steps_text(runs: list[tuple[int, ...]]) -> str:
    """The SGD steps of each stage: one number when every stage of every run made the same, a range over the
    training-set sizes when only the size changes it, else the stages of the first run."""
    runs = [r for r in runs if r]
    if not runs:
        return ""
    if all(len(set(r)) == 1 for r in runs):
        each = sorted({r[0] for r in runs})
        return f" ({each[0]} SGD steps each)" if len(each) == 1 else f" ({each[0]}-{each[-1]} SGD steps each)"
    return f" ({', '.join(str(s) for s in sorted(runs)[0])} SGD steps)"


def scale(table: Table, rows: list[dict]) -> str:
    """One line: ``1,000 train / 10,000 test images; simple_cnn widths 16-16-32-...; e2e: 40 epochs (320 SGD
    steps); greedy: 15 epochs per stage (120 SGD steps each)``; where one mode's runs follow several schedules,
    each is named by its experiments."""
    records = [r for r in (table.record(row) for row in rows) if r]
    if not records:
        return "unknown (no archived configs)"
    train, test, widths, schedules, compute = [], [], {}, {}, set()
    for rec in records:
        cfg, result = rec.get("config") or {}, rec.get("result") or {}
        compute.add((result.get("precision"), result.get("device")))
        train.append(result.get("train_images") or cfg.get("data.train_subset") or "?")
        test.append(result.get("test_images") or "?")
        widths.setdefault(result.get("model") or cfg.get("model.name") or "?", set()).add(_widths(cfg))
        mode, budget = _schedule(cfg, result)
        steps = tuple(_steps(result))
        entry = schedules.setdefault(mode, {}).setdefault((budget, _pattern(steps)), {"experiments": set(),
                                                                                       "steps": []})
        entry["experiments"].add(cfg.get("experiment") or "?")
        entry["steps"].append(steps)
    parts = [f"{_join(train)} train / {_join(test)} test images",
             "; ".join(f"{m} {', '.join(sorted(w))}" for m, w in sorted(widths.items()))]
    for mode, budgets in sorted(schedules.items()):
        steps = _steps_text if mode == "greedy" else _e2e_steps if mode == "e2e" else (lambda runs: "")
        if len(budgets) == 1:
            ((budget, _), entry), = budgets.items()
            parts.append(f"{mode}: {budget}{steps(entry['steps'])}")
            continue
        parts.append(f"{mode}: " + "; ".join(
            f"{', '.join(sorted(e['experiments']))}: {b[0]}{steps(e['steps'])}"
            for b, e in sorted(budgets.items(), key=lambda kv: sorted(kv[1]["experiments"]))))
    runs = sorted(f"{p or 'precision not recorded'} on {d or 'device not recorded'}" for p, d in compute if p or d)
    if (None, None) in compute:
        runs.append("precision and device not recorded (archived before result.json recorded them)")
    parts.append("runs: " + ", ".join(runs))
    return "; ".join(parts)

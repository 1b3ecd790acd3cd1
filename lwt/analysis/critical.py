"""Critical-layer report of a greedy run, from its result.json alone (no data, no network), to check the thesis's
saturation claim on any run: the accuracy-vs-depth curve, each stage's marginal gain over the one before (val and
test), the stages that beat the best val accuracy so far by the threshold (``critical_min_gain``: fixed, or ``auto``,
in standard errors), where the criterion fired (or that it did not, or was off) and, when the run measured
``per_layer``, the un-augmented train accuracy and gap, so saturation and early-layer overfitting read side by side.
"""

from __future__ import annotations

from lwt.console import format_table
from lwt.errors import LwtError
from lwt.run.result import RunResult, StageRow

COLUMNS = [("stage", "{:d}"), ("val_acc", "{:.4f}"), ("val_gain", "{:+.4f}"), ("test_acc", "{:.4f}"),
           ("test_gain", "{:+.4f}"), ("threshold", "{:.4f}"), ("pays", "{}"), ("train_acc_clean", "{:.4f}"),
           ("gap", "{:+.4f}")]


def _gain(rows: list[StageRow], i: int, key: str) -> float | None:
    now, before = getattr(rows[i], key), getattr(rows[i - 1], key) if i else None
    return None if now is None or before is None else now - before  # the first stage has nothing to gain over


def fired_at(history: list[dict], patience: int | None) -> int | None:
    """The stage after which the criterion stopped the curriculum: the ``patience``-th consecutive stage
    that did not pay (replayed from the decision's history)."""
    if patience is None:
        return None
    misses = 0
    for entry in history:
        misses = 0 if entry["pays"] else misses + 1
        if misses >= patience:
            return entry["stage"]
    return None


def rule(decision: dict) -> str | None:
    """The threshold rule as a reader needs it: ``0.002``, or ``auto (2 SE of val acc, 5000 images)``."""
    if decision.get("min_gain") == "auto":
        return f"auto ({decision.get('z')} SE of val acc, {decision.get('val_images')} images)"
    return None if decision.get("min_gain") is None else str(decision["min_gain"])


def critical_report(result: RunResult) -> dict:
    if result.mode != "greedy":
        raise LwtError(f"the critical-layer report needs a greedy run; {result.run_dir or 'this run'} is "
                       f"mode {result.mode!r} (use `lwt gap` for per-depth accuracy of an E2E run)")
    stages = result.stages
    decision = result.critical or {}
    pays = {h["stage"]: h["pays"] for h in decision.get("history", [])}
    thresholds = {h["stage"]: h.get("threshold") for h in decision.get("history", [])}
    clean = {r.depth: r for r in result.per_layer or []}
    curve = []
    for i, s in enumerate(stages):
        row = {"stage": s.depth, "depth": s.depth, "val_acc": s.val_acc, "test_acc": s.test_acc,
               "val_gain": _gain(stages, i, "val_acc"), "test_gain": _gain(stages, i, "test_acc"),
               "threshold": thresholds.get(s.depth), "pays": pays.get(s.depth)}
        if s.depth in clean:
            row.update(train_acc_clean=clean[s.depth].train_acc, gap=clean[s.depth].gap)
        curve.append(row)
    critical = decision.get("critical_layer")
    by_stage = {r["stage"]: r for r in curve}

    def best(key: str) -> int | None:
        scored = [r for r in curve if r[key] is not None]
        return max(scored, key=lambda r: r[key])["stage"] if scored else None

    return {
        "run": f"{result.experiment}/{result.run_name}", "model": result.model,
        "dataset": result.dataset, "stages_trained": len(stages), "curve": curve,
        "criterion": {
            "enabled": decision.get("patience") is not None, "fired": bool(decision.get("fired")),
            "critical_layer": critical, "fired_at_stage": fired_at(decision.get("history", []),
                                                                   decision.get("patience")),
            "patience": decision.get("patience"), "min_gain": rule(decision),
        },
        "best_val_stage": best("val_acc"), "best_test_stage": best("test_acc"),
        "test_acc_at_critical": by_stage[critical]["test_acc"] if critical in by_stage else None,
        "final_test_acc": result.last.test_acc,
    }


def critical_table(report: dict) -> str:
    c = report["criterion"]
    columns = [col for col in COLUMNS if any(r.get(col[0]) is not None for r in report["curve"])]
    lines = [format_table(report["curve"], columns, f"critical-layer report: {report['run']} ({report['model']} "
                                                    f"on {report['dataset']})")]
    if not c["enabled"]:
        lines.append("criterion: off (curriculum.critical_patience was not set)")
    elif c["fired"]:
        lines.append(f"criterion fired after stage {c['fired_at_stage']}: critical layer = stage {c['critical_layer']} "
                     f"(patience {c['patience']}, min gain {c['min_gain']})")
    else:
        lines.append(f"criterion did not fire (patience {c['patience']}, min gain {c['min_gain']})")
    lines.append(f"best val: stage {report['best_val_stage']}, best test: stage {report['best_test_stage']}")
    return "\n".join(lines)

"""Critical-layer report of a greedy run, to check the thesis's saturation claim on any run: the accuracy-vs-depth
curve, each stage's marginal gain over the one before (val and test), the critical layer L* by the paired test when
the run folder holds per-image predictions (lwt/run/critical.py: the shallowest depth that no deeper depth beats
on the same validation images), what the online stop decided (each stage's p-value against the stage to beat, or
an older run's threshold, and where it fired, or that it was off) and, when the run measured ``per_layer``, the
un-augmented train accuracy and gap, so saturation and early-layer overfitting read side by side. Reads result.json
(and the per-image predictions); no data, no network.
"""

from __future__ import annotations

from lwt.console import format_table
from lwt.errors import LwtError
from lwt.run.critical import ALPHA, critical_test
from lwt.run.result import RunResult, StageRow

COLUMNS = [("stage", "{:d}"), ("val_acc", "{:.4f}"), ("val_gain", "{:+.4f}"), ("test_acc", "{:.4f}"),
           ("test_gain", "{:+.4f}"), ("p_over_critical", "{:.4f}"), ("p_value", "{:.4f}"), ("threshold", "{:.4f}"),
           ("pays", "{}"), ("train_acc_clean", "{:.4f}"), ("gap", "{:+.4f}")]


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
    """The online rule as a reader needs it: ``paired, alpha 0.05``, or an older run's threshold: ``0.002``,
    ``auto (2 SE of val acc, 5000 images)``."""
    if decision.get("rule") == "paired":
        return f"paired test, alpha {decision.get('alpha')}"
    if decision.get("min_gain") == "auto":
        return f"min gain auto ({decision.get('z')} SE of val acc, {decision.get('val_images')} images)"
    return None if decision.get("min_gain") is None else f"min gain {decision['min_gain']}"


def critical_report(result: RunResult, per_image=None, alpha: float = ALPHA) -> dict:
    """The report; ``per_image``: the run's per-image predictions (lwt.run.per_image), whose validation
    correctness gives L* by the paired test, or None (the curve and the online rule's record only)."""
    if result.mode != "greedy":
        raise LwtError(f"the critical-layer report needs a greedy run; {result.run_dir or 'this run'} is "
                       f"mode {result.mode!r} (use `lwt gap` for per-depth accuracy of an E2E run)")
    stages = result.stages
    decision = result.critical or {}
    history = {h["stage"]: h for h in decision.get("history", [])}
    clean = {r.depth: r for r in result.per_layer or []}
    paired = None if per_image is None else critical_test(per_image.val_correct, per_image.depths, alpha)
    beyond = {c["depth"]: c["p_holm"] for c in paired["candidates"][-1]["deeper"]} if paired else {}
    curve = []
    for i, s in enumerate(stages):
        h = history.get(s.depth, {})
        row = {"stage": s.depth, "depth": s.depth, "val_acc": s.val_acc, "test_acc": s.test_acc,
               "val_gain": _gain(stages, i, "val_acc"), "test_gain": _gain(stages, i, "test_acc"),
               "p_over_critical": beyond.get(s.depth), "p_value": h.get("p_value"), "threshold": h.get("threshold"),
               "pays": h.get("pays")}
        if s.depth in clean:
            row.update(train_acc_clean=clean[s.depth].train_acc, gap=clean[s.depth].gap)
        curve.append(row)
    online = decision.get("critical_layer")
    critical = paired["critical_layer"] if paired else online
    by_stage = {r["stage"]: r for r in curve}

    def best(key: str) -> int | None:
        scored = [r for r in curve if r[key] is not None]
        return max(scored, key=lambda r: r[key])["stage"] if scored else None

    return {
        "run": f"{result.experiment}/{result.run_name}", "model": result.model,
        "dataset": result.dataset, "stages_trained": len(stages), "curve": curve,
        "critical_layer": critical,  # the paired test's L* where per-image predictions exist, else the online stop's
        "paired": paired,
        "criterion": {
            "enabled": decision.get("patience") is not None, "fired": bool(decision.get("fired")),
            "critical_layer": online, "fired_at_stage": fired_at(decision.get("history", []),
                                                                 decision.get("patience")),
            "patience": decision.get("patience"), "rule": rule(decision),
        },
        "best_val_stage": best("val_acc"), "best_test_stage": best("test_acc"),
        "test_acc_at_critical": by_stage[critical]["test_acc"] if critical in by_stage else None,
        "final_test_acc": result.last.test_acc,
    }


def paired_line(paired: dict) -> str:
    """L* and the evidence for it, in one line."""
    head = (f"paired test ({paired['test']}, {paired['images']} val images, alpha {paired['alpha']}): "
            f"critical layer L* = stage {paired['critical_layer']}")
    deeper = paired["candidates"][-1]["deeper"]
    if not deeper:
        return head + " (the deepest: every shallower stage is beaten by a deeper one)"
    closest = min(deeper, key=lambda c: c["p_holm"])
    return head + (f"; no deeper stage is significantly better (smallest Holm-adjusted p {closest['p_holm']:.3f}, "
                   f"stage {closest['depth']}, {closest['gain']:+.4f} val acc)")


def critical_table(report: dict) -> str:
    c = report["criterion"]
    columns = [col for col in COLUMNS if any(r.get(col[0]) is not None for r in report["curve"])]
    lines = [format_table(report["curve"], columns, f"critical-layer report: {report['run']} ({report['model']} "
                                                    f"on {report['dataset']})")]
    if report.get("paired"):
        lines.append(paired_line(report["paired"]))
    else:
        lines.append("paired test: no per-image predictions in this run folder")
    if not c["enabled"]:
        lines.append("online stop: off (curriculum.critical_patience was not set)")
    elif c["fired"]:
        lines.append(f"criterion fired after stage {c['fired_at_stage']}: critical layer = stage {c['critical_layer']} "
                     f"(patience {c['patience']}, {c['rule']})")
    else:
        lines.append(f"criterion did not fire (patience {c['patience']}, {c['rule']})")
    lines.append(f"best val: stage {report['best_val_stage']}, best test: stage {report['best_test_stage']}")
    return "\n".join(lines)

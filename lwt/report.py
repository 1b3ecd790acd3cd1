"""Plain-text tables of per-stage results."""

from __future__ import annotations

from lwt.analysis.common import format_table
from lwt.result import RunResult

COLUMNS = [("stage", "{:d}"), ("train_acc", "{:.4f}"), ("val_acc", "{:.4f}"), ("test_acc", "{:.4f}"),
           ("ensemble_test_acc", "{:.4f}"), ("epochs", "{:d}"), ("seconds", "{:.1f}"), ("images_per_s", "{:.1f}")]


def stage_table(result: RunResult) -> str:
    """The per-stage table of one result, with a title line naming mode and model."""
    out = [format_table([row.to_json() for row in result.stages], COLUMNS, f"{result.mode} {result.model} on "
                        f"{result.dataset} ({result.train_images} train images, seed {result.seed})")]
    if result.selected_depth is not None and result.mode != "e2e":
        out.append(f"last stage {result.last.depth}: test acc {result.last.test_acc:.4f}; selected on validation: "
                   f"stage {result.selected_depth} (val acc {result.selected_val_acc:.4f}, test acc "
                   f"{result.selected_test_acc:.4f})")
    crit = result.critical
    if crit and crit.get("fired"):
        out.append(f"critical layer: stage {crit['critical_layer']} (best val acc {crit['best_val_acc']:.4f})")
    ft = result.finetune
    if ft:
        out.append(f"fine-tuned end to end ({ft.epochs} epochs): test acc {ft.test_acc_before:.4f} -> "
                   f"{ft.test_acc_after:.4f}")
    return "\n".join(out)

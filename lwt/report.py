"""Plain-text tables of per-stage results."""

from __future__ import annotations

COLUMNS = [("stage", "{:d}"), ("train_acc", "{:.4f}"), ("val_acc", "{:.4f}"), ("test_acc", "{:.4f}"),
           ("ensemble_test_acc", "{:.4f}"), ("epochs", "{:d}"), ("seconds", "{:.1f}"), ("images_per_s", "{:.1f}")]


def stage_table(result: dict) -> str:
    """The per-stage table of one result.json, with a title line naming mode and model."""
    header = [name for name, _ in COLUMNS]
    lines = [[fmt.format(row[name]) if row.get(name) is not None else "-" for name, fmt in COLUMNS]
             for row in result["stages"]]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    out = [f"{result['mode']} {result['model']} on {result['dataset']} ({result['train_images']} train images, "
           f"seed {result['seed']})"]
    out.append("  ".join(h.rjust(w) for h, w in zip(header, widths)))
    out += ["  ".join(c.rjust(w) for c, w in zip(line, widths)) for line in lines]
    if result.get("selected_depth") is not None and result["mode"] != "e2e":
        out.append(f"last stage {result['stages'][-1]['depth']}: test acc {result['stages'][-1]['test_acc']:.4f}; "
                   f"selected on validation: stage {result['selected_depth']} (val acc "
                   f"{result['selected_val_acc']:.4f}, test acc {result['selected_test_acc']:.4f})")
    crit = result.get("critical")
    if crit and crit.get("fired"):
        out.append(f"critical layer: stage {crit['critical_layer']} (best val acc {crit['best_val_acc']:.4f})")
    ft = result.get("finetune")
    if ft:
        out.append(f"fine-tuned end to end ({ft['epochs']} epochs): test acc {ft['test_acc_before']:.4f} -> "
                   f"{ft['test_acc_after']:.4f}")
    return "\n".join(out)

"""Tiny tables in the format `lwt results` writes -- results/NAME.csv (a row per run, config columns before
``seed``), results/NAME_runs.jsonl (each run's flat config and result) and, where a run has them, its per-image
outputs in results/NAME_per_image/ -- for the claims' rules."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from lwt.run.per_image import PerImage, to_bytes


def run(experiment: str, mode: str, seed: int, final: float, model: str = "net", dataset: str = "cifar10",
        stages: list[float] | None = None, critical: int | None = None, config: dict | None = None,
        gaps: list[float] | None = None, steps: int = 120, images=None, result: dict | None = None) -> dict:
    """One run: its final test accuracy, per-depth test accuracies (``stages``, default [final]), critical layer,
    train - test gaps per depth and config columns (column -> value, as the table writes them); ``images``: its
    per-image correctness, (val (D, N_val), test (D, N_test)) bool arrays, a row per depth, archived as `lwt
    results` archives per-image outputs (its accuracies then come from the test rows); ``result``: more
    result.json fields (provenance)."""
    if images is not None:
        stages = [float(row.mean()) for row in images[1]]
        final = stages[-1]
    return {"experiment": experiment, "mode": mode, "model": model, "dataset": dataset, "seed": seed,
            "final_test_acc": final, "stages": stages or [final], "critical_layer": critical,
            "config": config or {}, "gaps": gaps or [], "steps": steps, "images": images, "result": result or {}}


def _per_image(folder: Path, name: str, i: int, images) -> str:
    """Write one run's per-image file under results/NAME_per_image/ and return the name its archive line holds."""
    val, test = (np.asarray(x, dtype=bool) for x in images)
    labels = [np.arange(x.shape[1]) % 10 for x in (val, test)]
    preds = [np.where(x, lab, (lab + 1) % 10) for x, lab in zip((val, test), labels)]
    p = PerImage(num_classes=10, depths=list(range(1, val.shape[0] + 1)), val_labels=labels[0].astype(np.int16),
                 test_labels=labels[1].astype(np.int16), val_pred=preds[0].astype(np.int16),
                 test_pred=preds[1].astype(np.int16))
    target = folder / f"{name}_per_image" / f"run{i}.npz"
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(to_bytes(p))
    return f"{target.parent.name}/{target.name}"


def write(folder: Path, name: str, runs: list[dict], test_images: int | None = 10_000, stage_end: str = "fixed",
          epochs: int = 15, test_subset: int | None = None, extra_columns: dict | None = None) -> None:
    """results/NAME.csv and NAME_runs.jsonl for ``runs``; ``extra_columns`` (column -> value) adds columns a later
    `lwt results` may write."""
    config_cols = sorted({c for r in runs for c in r["config"]})
    depth = max(len(r["stages"]) for r in runs)
    gap_depth = max(len(r["gaps"]) for r in runs)
    columns = ["experiment", "mode", "model", "dataset", *config_cols, "seed", "run_name", "final_test_acc",
               "best_val_acc", "critical_layer", *(f"test_acc_stage{d}" for d in range(1, depth + 1)),
               *(f"gap_depth{d}" for d in range(1, gap_depth + 1)), *(extra_columns or {}), "run_dir"]
    lines, archive = [], []
    for i, r in enumerate(runs):
        run_dir = f"runs/{name}/{r['experiment']}/{r['model']}_{i}_seed{r['seed']}"
        row = {"experiment": r["experiment"], "mode": r["mode"], "model": r["model"], "dataset": r["dataset"],
               **{c: r["config"].get(c, "") for c in config_cols}, "seed": r["seed"], "run_name": f"seed{r['seed']}",
               "final_test_acc": r["final_test_acc"], "best_val_acc": r["final_test_acc"],
               "critical_layer": "" if r["critical_layer"] is None else r["critical_layer"],
               **{f"test_acc_stage{d + 1}": a for d, a in enumerate(r["stages"])},
               **{f"gap_depth{d + 1}": g for d, g in enumerate(r["gaps"])}, **(extra_columns or {}),
               "run_dir": run_dir}
        lines.append(row)
        per_image = {"per_image": _per_image(folder, name, i, r["images"])} if r["images"] is not None else {}
        archive.append(json.dumps({"run_dir": run_dir, **per_image, "config": {
            "experiment": r["experiment"], "mode": r["mode"], "seed": r["seed"], "data.test_subset": test_subset,
            "data.train_subset": 1000, "curriculum.stage_end": stage_end, "curriculum.epochs_per_stage": epochs,
            "curriculum.stage_epochs": None, "trainer.max_epochs": 40, "model.width": 16, "model.widths": None,
            **r["config"]}, "result": {"model": r["model"], "mode": r["mode"], "train_images": 1000,
                                       **({"test_images": test_images} if test_images else {}),
                                       "stages": [{"stage": d + 1, "steps": r["steps"]}
                                                  for d in range(len(r["stages"]))], **r["result"]}}))
    with (folder / f"{name}.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(lines)
    (folder / f"{name}_runs.jsonl").write_text("\n".join(archive) + "\n")

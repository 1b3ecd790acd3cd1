"""``lwt gap``: the per-layer generalization gap of a finished run (training.evaluate), recomputed with its
(possibly overridden) analysis settings."""

from __future__ import annotations

from lwt.run.load import FinishedRun, load_datamodule, load_network
from lwt.training.compute import pick_device, resolve_precision
from lwt.training.evaluate import gap_table, per_layer_accuracy

__all__ = ["gap_of_run", "gap_table"]


def gap_of_run(run: FinishedRun) -> dict:
    dm = load_datamodule(run.cfg)
    net = load_network(run, dm)
    rows = per_layer_accuracy(net, dm, run.mode, run.result.depths, run.cfg.analysis,
                              pick_device(run.cfg.trainer.accelerator), run.cfg.data.eval_batch_size,
                              resolve_precision(run.cfg.trainer))
    return {"run": run.label, "mode": run.mode, "model": run.cfg.model.name,
            "git_revision": run.result.git_revision or "unknown",  # which network a model name meant
            "train_eval_size": run.cfg.analysis.train_eval_size, "seed": run.cfg.analysis.seed,
            "rows": [r.to_json() for r in rows]}

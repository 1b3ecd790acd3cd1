"""What every run records at its end, and what ``lwt gap`` recomputes: each depth's readout accuracy on
training images *without* augmentation, on validation and on test images, the gap (train - test), the depth
validation selects and Belilovsky's ensemble of the stages' heads.

Training's ``train_acc`` is a running accuracy over augmented batches while the weights move, so it understates how
well a stage fits its training set; the early-layer-overfitting claim needs the fit on the images themselves, with
the final weights. Each depth is read out as ``models.readout`` says; one forward pass per batch serves every depth.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from lwt.config import AnalysisConfig
from lwt.console import advance, bar, format_table
from lwt.models import StagedNet, readout
from lwt.run.result import LayerRow, RunResult
from lwt.training.compute import autocast, evaluating, pick_device, resolve_precision

COLUMNS = [("depth", "{:d}"), ("train_acc", "{:.4f}"), ("val_acc", "{:.4f}"), ("test_acc", "{:.4f}"),
           ("gap", "{:+.4f}"), ("ensemble_test_acc", "{:.4f}"), ("train_images", "{:d}")]


def gap_table(rows: list[dict], title: str | None = None) -> str:
    return format_table(rows, COLUMNS, title)


def seeded_sample(n: int, size: int | None, seed: int) -> Tensor:
    """Indices of a seeded sample of ``size`` out of ``n`` (all of them when ``size`` is None or >= n), sorted."""
    if size is None or size >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:size].sort().values


def batches(*tensors: Tensor, size: int) -> Iterator[tuple[Tensor, ...]]:
    for start in range(0, len(tensors[0]), size):
        yield tuple(t[start:start + size] for t in tensors)


def readout_predictions(net: StagedNet, mode: str, depths: list[int], x: Tensor, preprocess, batch_size: int,
                        device: torch.device) -> tuple[Tensor, Tensor | None]:
    """The predicted class of each uint8 image of ``x`` (N, C, H, W), un-augmented, at each depth: (D, N) int64,
    a row per depth of ``depths``, and (greedy and dgl) the ensemble's at each depth: Belilovsky et al.'s
    Z_k = sum_{j<=k} 2^j z_j over the stages' auxiliary logits z_j, deeper stages weighted more (else None).
    ``preprocess(x, train=False)`` normalizes a batch (the DataModule's). Call inside ``evaluating``."""
    heads = {d: readout(net, mode, d) for d in depths}
    ensemble = mode != "e2e"  # E2E's lower readouts are probes of one network, not stages of a greedy one
    row = {d: i for i, d in enumerate(depths)}
    pred = torch.empty((len(depths), len(x)), dtype=torch.long)
    ens = torch.empty_like(pred) if ensemble else None
    for start in range(0, len(x), batch_size):
        h = preprocess(x[start:start + batch_size].to(device), train=False)  # (B, C, H, W) float
        end = start + len(h)
        z = 0.0
        for k in range(max(depths)):
            h = net.blocks[k](h)  # output of block k+1
            if k + 1 in heads:
                logits = heads[k + 1](h).float()  # (B, classes)
                pred[row[k + 1], start:end] = logits.argmax(1).cpu()
                if ensemble:
                    z = z + 2.0 ** k * logits
                    ens[row[k + 1], start:end] = z.argmax(1).cpu()
        advance()  # the caller's progress bar, if it opened one
    return pred, ens


def readout_accuracy(net: StagedNet, mode: str, depths: list[int], x: Tensor, y: Tensor, preprocess,
                     batch_size: int, device: torch.device,
                     predictions: dict | None = None) -> tuple[dict[int, float], dict[int, float]]:
    """Accuracy at each depth on uint8 images ``x`` (N, C, H, W) with labels ``y`` (N,), un-augmented, and
    (greedy and dgl) the ensemble's at each depth (``readout_predictions``). ``predictions``, if given, gets
    the (D, N) predictions as ``pred`` and ``ensemble``. Call inside ``evaluating``.
    """
    pred, ens = readout_predictions(net, mode, depths, x, preprocess, batch_size, device)
    if predictions is not None:
        predictions.update(pred=pred, ensemble=ens)
    n = max(len(y), 1)
    y = y.cpu()
    correct = {d: int((pred[i] == y).sum()) for i, d in enumerate(depths)}
    ens_correct = {d: int((ens[i] == y).sum()) for i, d in enumerate(depths)} if ens is not None else {}
    return {d: correct[d] / n for d in depths}, {d: ens_correct[d] / n for d in ens_correct}


def per_layer_accuracy(net: StagedNet, dm, mode: str, depths: list[int], acfg: AnalysisConfig,
                       device: torch.device, batch_size: int = 500, precision: str = "32-true",
                       ensembles: dict | None = None) -> list[LayerRow]:
    """One row per depth: un-augmented train accuracy (on a seeded sample of ``acfg.train_eval_size``
    training images, or all), val and test accuracy, ``gap`` = train - test, and (greedy, dgl) the ensemble's
    val and test accuracy. ``precision``: the run's (trainer.precision, resolved), so val/test match what
    training reported. ``ensembles``, if given, gets the ensemble's (D, N) val and test predictions."""
    idx = seeded_sample(len(dm.train_set), acfg.train_eval_size, acfg.seed)
    splits = {"train": (dm.train_set.x[idx], dm.train_set.y[idx]),
              "val": (dm.val_set.x, dm.val_set.y), "test": (dm.test_set.x, dm.test_set.y)}
    total = sum(-(-len(y) // batch_size) for _, y in splits.values())  # batches, all splits
    with evaluating(net, device), autocast(precision, device), bar(total, "per-layer accuracy", unit="batch"):
        kept = {split: {} for split in splits}
        out = {split: readout_accuracy(net, mode, depths, x, y, dm.preprocess, batch_size, device, kept[split])
               for split, (x, y) in splits.items()}
    if ensembles is not None and mode != "e2e":
        ensembles.update(val=kept["val"]["ensemble"], test=kept["test"]["ensemble"])
    acc = {split: a for split, (a, _) in out.items()}
    return [LayerRow(depth=d, train_acc=acc["train"][d], val_acc=acc["val"][d], test_acc=acc["test"][d],
                     gap=acc["train"][d] - acc["test"][d], train_images=len(idx),
                     ensemble_val_acc=out["val"][1].get(d), ensemble_test_acc=out["test"][1].get(d)) for d in depths]


def record_per_layer(result: RunResult, cfg, net: StagedNet, dm, loggers) -> dict[str, Tensor]:
    """End of ``lwt train`` (when ``analysis.per_layer``): the rows go into ``result.per_layer`` and
    into every W&B logger as the table ``per_layer``. Returns the ensemble's (D, N) val and test predictions
    (greedy, dgl) for ``record_depth_choice``; empty when the analysis is off."""
    if not cfg.analysis.per_layer:
        return {}
    from lightning.pytorch.loggers import WandbLogger

    ensembles: dict[str, Tensor] = {}
    rows = per_layer_accuracy(net, dm, cfg.mode, result.depths, cfg.analysis, pick_device(cfg.trainer.accelerator),
                              cfg.data.eval_batch_size, resolve_precision(cfg.trainer), ensembles)
    result.per_layer, table = rows, [r.to_json() for r in rows]
    print(gap_table(table, "[lwt] per-layer accuracy, un-augmented train images:"), flush=True)
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.log_table("per_layer", columns=list(table[0]), data=[list(r.values()) for r in table])
    return ensembles


def record_depth_choice(result: RunResult, cfg, net: StagedNet, dm,
                        ensembles: dict[str, Tensor] | None = None) -> dict[str, Tensor]:
    """Beside the last stage, the depth validation picks and Belilovsky's ensemble, in ``result``:
    ``selected_depth`` / ``selected_val_acc`` / ``selected_test_acc`` (greedy, dgl: the stage with the best
    validation accuracy, the shallowest on ties; e2e: the network itself, its last depth) and, for greedy
    and dgl, ``ensemble_test_acc`` per stage row and at the last stage. Call after ``record_per_layer``, with
    the ensemble predictions it returned. Returns the ensemble's (D, N) ``val`` and ``test`` predictions
    (greedy, dgl; the per-image record keeps them), computed here when the per-layer analysis was off."""
    best = result.last if cfg.mode == "e2e" else max(result.stages, key=lambda r: r.val_acc)  # max: first of equals
    result.selected_depth, result.selected_val_acc, result.selected_test_acc = best.depth, best.val_acc, best.test_acc
    if cfg.mode == "e2e":
        return {}
    ensembles = dict(ensembles or {})
    if not {"val", "test"} <= ensembles.keys():  # the per-layer analysis is off: the ensemble's pass here
        device = pick_device(cfg.trainer.accelerator)
        with evaluating(net, device), autocast(resolve_precision(cfg.trainer), device):
            for split in ("val", "test"):
                data = getattr(dm, f"{split}_set")
                ensembles[split] = readout_predictions(net, cfg.mode, result.depths, data.x, dm.preprocess,
                                                       cfg.data.eval_batch_size, device)[1]
    if result.per_layer:
        ens = {r.depth: r.ensemble_test_acc for r in result.per_layer}
    else:
        y, n = dm.test_set.y.cpu(), max(len(dm.test_set.y), 1)
        ens = {d: int((ensembles["test"][i] == y).sum()) / n for i, d in enumerate(result.depths)}
    for row in result.stages:
        row.ensemble_test_acc = ens[row.depth]
    result.ensemble_test_acc = ens[result.last.depth]
    return ensembles

"""Linear probes: how linearly decodable the classes are from the frozen output of every block.

Protocol (fixed, so numbers compare across runs, architectures and methods): each block's output is
average-pooled to ``probe_pool`` x ``probe_pool`` and flattened; features are standardized per
dimension with the training images' mean and std (block outputs differ in scale by orders of
magnitude, and one learning rate must suit them all); a softmax-regression layer starts from zeros
(so the result depends on the data order only) and trains for ``probe_epochs`` epochs with
``probe_optimizer`` at ``probe_lr`` on minibatches of ``probe_batch_size``, in an order drawn from
``analysis.seed``. Training images are not augmented.

The network runs once over the training and test images; the pooled outputs of every block are cached
in memory (N x C*pool*pool floats per block) and the probes train on those tensors, so an epoch costs
a matrix product, not a forward pass through the network. No Lightning: it would add nothing to a
linear layer on cached tensors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lwt.config import AnalysisConfig
from lwt.console import advance, bar, format_table
from lwt.models import StagedNet
from lwt.run.load import FinishedRun
from lwt.training.compute import evaluating, pick_device
from lwt.training.evaluate import batches

COLUMNS = [("depth", "{:d}"), ("features", "{:d}"), ("train_acc", "{:.4f}"), ("test_acc", "{:.4f}")]


def pooled_block_outputs(net: StagedNet, x: Tensor, preprocess, depths: list[int], pool: int,
                         batch_size: int, device: torch.device) -> dict[int, Tensor]:
    """One pass over uint8 images ``x`` (N, C, H, W): for each depth d, block d's output average-pooled
    to (pool, pool) and flattened, (N, C_d * pool * pool) float32 on the CPU."""
    out: dict[int, list[Tensor]] = {d: [] for d in depths}
    with evaluating(net, device):
        for (xb,) in batches(x, size=batch_size):
            h = preprocess(xb.to(device), train=False)
            for k in range(max(depths)):
                h = net.blocks[k](h)  # (B, C_k, H_k, W_k)
                if k + 1 in out:
                    out[k + 1].append(F.adaptive_avg_pool2d(h, pool).flatten(1).float().cpu())
            advance(len(xb))
    return {d: torch.cat(parts) for d, parts in out.items()}


def standardize(train: Tensor, *others: Tensor) -> list[Tensor]:
    """Per-dimension z-scores with the training features' statistics; constant dimensions become 0."""
    mean, std = train.mean(0), train.std(0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return [(f - mean) / std for f in (train, *others)]


def train_probe(features: Tensor, labels: Tensor, num_classes: int, acfg: AnalysisConfig,
                device: torch.device) -> nn.Linear:
    """Softmax regression on cached ``features`` (N, D) -> (D -> num_classes) linear layer."""
    features, labels = features.to(device), labels.to(device)
    probe = nn.Linear(features.shape[1], num_classes).to(device)
    nn.init.zeros_(probe.weight)
    nn.init.zeros_(probe.bias)
    if acfg.probe_optimizer == "adam":
        opt = torch.optim.Adam(probe.parameters(), lr=acfg.probe_lr)
    else:
        opt = torch.optim.SGD(probe.parameters(), lr=acfg.probe_lr, momentum=0.9)
    order = torch.Generator().manual_seed(acfg.seed)  # CPU generator: the same order on every device
    n = len(labels)
    for _ in range(acfg.probe_epochs):
        perm = torch.randperm(n, generator=order).to(device)
        for start in range(0, n, acfg.probe_batch_size):
            idx = perm[start:start + acfg.probe_batch_size]
            loss = F.cross_entropy(probe(features[idx]), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        advance()  # one epoch of the caller's bar, if it opened one
    return probe


@torch.no_grad()
def probe_accuracy(probe: nn.Linear, features: Tensor, labels: Tensor) -> float:
    device = probe.weight.device
    correct = sum(int((probe(f.to(device)).argmax(1) == y.to(device)).sum())
                  for f, y in batches(features, labels, size=4096))
    return correct / max(len(labels), 1)


def probe_network(net: StagedNet, dm, depths: list[int], acfg: AnalysisConfig, device: torch.device,
                  batch_size: int = 500) -> list[dict]:
    """One row per depth: the probe's accuracy on the (un-augmented) training and on the test images."""
    train, test = dm.train_set, dm.test_set
    with bar(len(train) + len(test), "probe features", unit="img"):
        feats_train = pooled_block_outputs(net, train.x, dm.preprocess, depths, acfg.probe_pool, batch_size, device)
        feats_test = pooled_block_outputs(net, test.x, dm.preprocess, depths, acfg.probe_pool, batch_size, device)
    rows = []
    with bar(len(depths) * acfg.probe_epochs, "probes", unit="epoch") as b:  # ETA: a probe per depth, minutes
        for d in depths:
            b.set_postfix_str(f"depth {d}")
            f_train, f_test = standardize(feats_train[d], feats_test[d])
            probe = train_probe(f_train, train.y, dm.num_classes, acfg, device)
            rows.append({"depth": d, "features": f_train.shape[1],
                         "train_acc": probe_accuracy(probe, f_train, train.y),
                         "test_acc": probe_accuracy(probe, f_test, test.y)})
            del feats_train[d], feats_test[d]  # free each block's cache once its probe is done
    return rows


def probe_table(rows: list[dict], title: str | None = None) -> str:
    return format_table(rows, COLUMNS, title)


def probes_of_run(run: FinishedRun) -> dict:
    """``lwt probe``: a probe on every trained block of a finished run, with its analysis settings."""
    from lwt.run.load import load_datamodule, load_network

    dm = load_datamodule(run.cfg)
    net = load_network(run, dm)
    a = run.cfg.analysis
    rows = probe_network(net, dm, run.result.depths, a, pick_device(run.cfg.trainer.accelerator),
                         run.cfg.data.eval_batch_size)
    protocol = {"pool": a.probe_pool, "epochs": a.probe_epochs, "optimizer": a.probe_optimizer, "lr": a.probe_lr,
                "batch_size": a.probe_batch_size, "seed": a.seed, "train_images": len(dm.train_set),
                "test_images": len(dm.test_set)}
    return {"run": run.label, "mode": run.mode, "model": run.cfg.model.name,
            "git_revision": run.result.git_revision or "unknown",  # which network a model name meant
            "protocol": protocol, "rows": rows}

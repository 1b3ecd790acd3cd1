"""Linear CKA (Kornblith et al., ICML 2019) between every block of two trained networks.

For features X (n, p) and Y (n, q) of the same n examples, centred over examples:

    CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)                      (feature space)
              = <K, L>_F / (||K||_F ||L||_F),  K = X X^T, L = Y Y^T (n x n)     (example space)

It is 1 for identical representations, and invariant to orthogonal transforms and isotropic scaling of
either. The feature-space form costs about n (p + q)^2, the example-space form n^2 (p + q); block
outputs are large (C*H*W is 8k-65k for CIFAR networks) next to a sample of ~1000 images, so the
network comparison uses Gram matrices: one centred (n, n) matrix per block, after which every pair
costs n^2. ``linear_cka`` picks the cheaper form for two given matrices.

Both networks see the same seeded sample of the dataset's full test set (``analysis.cka_samples``,
``analysis.seed``), independent of either run's ``data.test_subset`` and seed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lwt.console import advance, bar
from lwt.errors import LwtError
from lwt.models import StagedNet
from lwt.run.load import FinishedRun
from lwt.training.compute import evaluating, pick_device
from lwt.training.evaluate import batches, seeded_sample


def _centre(x: Tensor) -> Tensor:
    x = x.flatten(1).double()  # (n, p): one row per example
    return x - x.mean(0, keepdim=True)


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear CKA of ``x`` (n, ...) and ``y`` (n, ...), each flattened to one row per example."""
    x, y = _centre(x), _centre(y)
    if len(x) < x.shape[1] + y.shape[1]:
        return float(gram_cka(x @ x.T, y @ y.T))
    cross = (y.T @ x).square().sum()
    return float(cross / ((x.T @ x).norm() * (y.T @ y).norm()))


def gram_cka(k_x: Tensor, k_y: Tensor) -> Tensor:
    """CKA from two Gram matrices (n, n) of *centred* features."""
    return (k_x * k_y).sum() / (k_x.norm() * k_y.norm())


def centred_gram(h: Tensor) -> Tensor:
    """(n, ...) features on any device -> (n, n) float64 Gram matrix of the centred, flattened features, on the CPU.

    The product runs in float32 where the features are (fast on a GPU); only n x n values go to float64.
    """
    h = h.flatten(1).float()
    h = h - h.mean(0, keepdim=True)
    return (h @ h.T).double().cpu()


def block_grams(net: StagedNet, x: Tensor, preprocess, depths: list[int], batch_size: int,
                device: torch.device) -> dict[int, Tensor]:
    """Centred (n, n) Gram matrix of each block's output on uint8 images ``x`` (n, C, H, W).

    The network advances one block at a time over the whole sample, holding only one block's input and
    output (n, C, H, W) at a time, not every block's, and no block runs twice.
    """
    grams = {}
    with evaluating(net, device):
        h = torch.cat([preprocess(xb.to(device), train=False) for (xb,) in batches(x, size=batch_size)])
        for k in range(max(depths)):
            h = torch.cat([net.blocks[k](hb) for (hb,) in batches(h, size=batch_size)])  # block k+1, (n, ...)
            if k + 1 in depths:
                grams[k + 1] = centred_gram(h)
            advance(1, f"block {k + 1}")
    return grams


def cka_matrix(grams_a: dict[int, Tensor], grams_b: dict[int, Tensor]) -> list[list[float]]:
    """``[i][j]``: CKA between the i-th block of A and the j-th block of B (in depth order)."""
    return [[float(gram_cka(ka, kb)) for kb in grams_b.values()] for ka in grams_a.values()]


def _same_data(a: FinishedRun, b: FinishedRun) -> None:
    keys = ("name", "path", "classes", "image_size")
    da, db = ({k: getattr(r.cfg.data, k) for k in keys} for r in (a, b))
    if da != db:
        raise LwtError(f"{a.run_dir} and {b.run_dir} were trained on different data ({da} vs {db}); "
                       "CKA compares two networks on the same images")


def cka_of_runs(a: FinishedRun, b: FinishedRun) -> dict:
    """``lwt cka``: the block-by-block CKA matrix of two finished runs, with A's analysis settings."""
    from lwt.run.load import load_datamodule, load_network

    _same_data(a, b)
    acfg = a.cfg.analysis
    # the dataset's whole test set, so the sample does not depend on either run's test_subset or seed
    dm = load_datamodule(a.cfg.model_copy(update={"data": a.cfg.data.model_copy(update={"test_subset": None})}))
    idx = seeded_sample(len(dm.test_set), acfg.cka_samples, acfg.seed)
    images = dm.test_set.x[idx]
    device = pick_device(a.cfg.trainer.accelerator)
    with bar(max(a.result.depths) + max(b.result.depths), "CKA", unit="block"):  # both networks, block by block
        grams = [block_grams(load_network(r, dm), images, dm.preprocess, r.result.depths, a.cfg.data.eval_batch_size,
                             device) for r in (a, b)]
    return {"a": a.label, "b": b.label, "mode_a": a.mode, "mode_b": b.mode, "model_a": a.cfg.model.name,
            "model_b": b.cfg.model.name, "git_revision_a": a.result.git_revision or "unknown",
            "git_revision_b": b.result.git_revision or "unknown", "depths_a": a.result.depths,
            "depths_b": b.result.depths, "samples": len(idx), "seed": acfg.seed, "cka": cka_matrix(*grams)}


def cka_table(report: dict) -> str:
    depths_b = report["depths_b"]
    lines = [f"linear CKA on {report['samples']} test images; rows: {report['a']} ({report['mode_a']}), "
             f"columns: {report['b']} ({report['mode_b']})",
             "depth " + " ".join(f"{d:>6d}" for d in depths_b)]
    lines += [f"{d:>5d} " + " ".join(f"{v:6.3f}" for v in row) for d, row in zip(report["depths_a"], report["cka"])]
    return "\n".join(lines)

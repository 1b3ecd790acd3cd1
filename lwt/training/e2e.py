"""End-to-end training of the whole network, with per-block readouts that do not touch its gradients."""

from __future__ import annotations

from torch import Tensor

from lwt.config import OptimConfig
from lwt.models import StagedNet
from lwt.training.base import BaseModule


class EndToEndModule(BaseModule):
    """The network trained through its own classifier (depth K). Blocks 1..K-1 are also read out by
    their auxiliary heads on *detached* features: those heads learn, the network's gradients are
    exactly those of plain E2E training. This gives greedy and E2E tables the same rows.
    """

    def __init__(self, net: StagedNet, optim: OptimConfig, num_classes: int, max_epochs: int):
        k = net.num_blocks
        super().__init__(net, optim, num_classes, depths=list(range(1, k + 1)), main_depth=k,
                         max_epochs=max_epochs)

    def trainable_parameters(self):
        unused = f"aux_heads.{self.main_depth - 1}."  # the classifier reads out the last block instead
        return [p for name, p in self.net.named_parameters() if not name.startswith(unused)]

    def readouts(self, x: Tensor) -> dict[int, Tensor]:
        outs = self.net.block_outputs(x)  # one (B, C, H, W) tensor per block
        logits = {d + 1: self.net.aux_heads[d](h.detach()) for d, h in enumerate(outs[:-1])}
        logits[self.main_depth] = self.net.classifier(outs[-1])
        return logits

"""The contract every architecture follows: an ordered list of blocks (the greedy units) + a classifier.

``forward(x) == classifier(blocks[K-1](...blocks[0](x)))``. Each block also owns an auxiliary head
(``aux_heads[k]``): greedy stage k trains ``blocks[k]`` through ``aux_heads[k]``, end-to-end training
reads each block out through it on detached features.
"""

from __future__ import annotations

from torch import Tensor, nn


class StagedNet(nn.Module):
    def __init__(self, blocks: list[nn.Module], classifier: nn.Module, widths: list[int]):
        super().__init__()
        assert len(blocks) == len(widths), "one output width per block"
        self.blocks = nn.ModuleList(blocks)
        self.classifier = classifier
        self.widths = list(widths)  # output channels of each block
        self.aux_heads = nn.ModuleList()  # filled by lwt.models.build_model

    @property
    def num_blocks(self) -> int:
        return len(self.blocks)

    def features(self, x: Tensor, depth: int | None = None) -> Tensor:
        """Output of the first ``depth`` blocks (all by default)."""
        for block in self.blocks[:depth]:
            x = block(x)
        return x

    def block_outputs(self, x: Tensor) -> list[Tensor]:
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return outs

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


def readout(net: StagedNet, mode: str, depth: int) -> nn.Module:
    """The head that reads the network out at ``depth``: greedy stage k and E2E depths k < K use
    ``aux_heads[k-1]``; E2E's last depth is the network's own classifier (what E2E trained)."""
    if mode == "e2e" and depth == net.num_blocks:
        return net.classifier
    return net.aux_heads[depth - 1]

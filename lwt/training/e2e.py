"""End-to-end training of the whole network, with per-block readouts that do not touch its gradients."""

from __future__ import annotations

from torch import Tensor

from lwt.config import OptimConfig
from lwt.models import StagedNet, rebuild_model
from lwt.training.base import BaseModule
from lwt.training.layerwise import per_block_param_groups


class EndToEndModule(BaseModule):
    """The network trained through its own classifier (depth K). Blocks 1..K-1 are also read out by
    their auxiliary heads on *detached* features: those heads learn, the network's gradients are
    exactly those of plain E2E training. This gives greedy and E2E tables the same rows.

    ``depth``: train only ``blocks[:depth]``, through ``aux_heads[depth-1]`` as the classifier: the network
    a greedy curriculum of ``depth`` stages built, fine-tuned end to end (``finetune.epochs``). Its earlier
    aux heads keep learning on detached features, so per-depth readouts stay meaningful after fine-tuning.

    ``frozen``: blocks 1..frozen and their readout heads (copied from another run: the swap test of
    curriculum.init_from with mode=e2e) stay frozen, in eval mode; the blocks above them train end to end.

    Optimizer: one param group per block, at that block's learning-rate multiplier and weight decay
    (optim.stage_*; discriminative learning rates); the classifier and the readout heads at the last
    block's.
    """

    def __init__(self, net: StagedNet | dict, optim: OptimConfig | dict, num_classes: int, max_epochs: int,
                 depth: int | None = None, frozen: int = 0):
        if isinstance(net, dict):  # load_from_checkpoint: its depth is needed before BaseModule builds it
            net = rebuild_model(net)
        k = depth or net.num_blocks
        super().__init__(net, optim, num_classes, depths=list(range(1, k + 1)), main_depth=k,
                         max_epochs=max_epochs)
        self.frozen = frozen
        self.save_lwt_hyperparameters(num_classes, max_epochs=max_epochs, depth=depth, frozen=frozen)
        self.through_aux = depth is not None
        self.freeze_all_but_trainable()  # a greedy curriculum left them frozen; unused heads stay out of DDP ...
        self.train()  # ... and in eval mode (Lightning keeps the modes it finds)

    def train(self, mode: bool = True):
        super().train(mode)
        for module in (*self.net.blocks[:self.frozen], *self.net.aux_heads[:self.frozen]):
            module.train(False)  # frozen blocks keep their BN statistics
        return self

    @property
    def classifier(self):
        return self.net.aux_heads[self.main_depth - 1] if self.through_aux else self.net.classifier

    def head_parameters(self):
        """The classifier and the readout heads of depths 1..K-1 (the last aux head is unused in plain E2E:
        the classifier reads out the last block instead)."""
        # the order the optimizer state in E2E checkpoints follows
        heads = [self.classifier, *self.net.aux_heads[self.frozen:self.main_depth - 1]]
        return [p for h in heads for p in h.parameters()]

    def trainable_parameters(self):
        blocks = self.net.blocks[self.frozen:self.main_depth]
        return [*(p for b in blocks for p in b.parameters()), *self.head_parameters()]

    def param_groups(self) -> list[dict]:
        o = self.optim_cfg
        if o.stage_lr_mult is None and o.stage_lr_gamma is None and o.stage_weight_decay is None:
            return super().param_groups()  # one group: what E2E checkpoints without a layer-wise rule hold
        # K of the geometric rule is the depth trained: the classifier's block is at lr
        return per_block_param_groups(self.optim_cfg, list(self.net.blocks[:self.main_depth]), self.head_parameters())

    def readouts(self, x: Tensor) -> dict[int, Tensor]:
        outs = []  # one (B, C, H, W) tensor per trained block
        for block in self.net.blocks[:self.main_depth]:
            x = block(x)
            outs.append(x)
        logits = {d + 1: self.net.aux_heads[d](h.detach()) for d, h in enumerate(outs[:-1])}
        logits[self.main_depth] = self.classifier(outs[-1])
        return logits

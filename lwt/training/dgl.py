"""Decoupled greedy learning (Belilovsky et al., ICML 2020): every stage trains at once, each block on the
*detached* output of the previous one through its own auxiliary head, with its own optimizer.

Greedy training's stages are sequential; DGL runs them in parallel in one pass per batch, so it costs about
one E2E epoch per epoch, while no gradient crosses a block boundary (each block solves its local problem,
as in greedy training, but on inputs that keep moving). The result has greedy's schema: one row per stage,
read out by that stage's auxiliary head.
"""

from __future__ import annotations

from torch import Tensor

from lwt.config import OptimConfig
from lwt.models import StagedNet
from lwt.training.base import BaseModule
from lwt.training.layerwise import block_groups


class DecoupledModule(BaseModule):
    """Trains ``blocks[:stages]``, block k through ``aux_heads[k]`` on ``blocks[k-1]``'s detached output.

    Manual optimization with one SGD optimizer (and per-step scheduler) per stage, at that stage's learning-rate
    multiplier and weight decay (optim.stage_*). The losses are summed before one backward pass: the
    detaches make that exactly the per-stage backward passes, each loss reaching only its own block and head.
    """

    def __init__(self, net: StagedNet | dict, optim: OptimConfig | dict, num_classes: int, max_epochs: int,
                 stages: int):
        super().__init__(net, optim, num_classes, depths=list(range(1, stages + 1)), main_depth=stages,
                         max_epochs=max_epochs)
        net = self.net
        self.save_lwt_hyperparameters(num_classes, max_epochs=max_epochs, stages=stages)
        self.automatic_optimization = False
        self.stages = stages
        self.freeze_all_but_trainable()
        net.train()

    def stage_parameters(self, stage: int) -> list:
        """Block ``stage`` (1-based) and its auxiliary head."""
        return [*self.net.blocks[stage - 1].parameters(), *self.net.aux_heads[stage - 1].parameters()]

    def trainable_parameters(self):
        return [p for k in self.depths for p in self.stage_parameters(k)]

    def readouts(self, x: Tensor) -> dict[int, Tensor]:
        logits = {}
        for k in range(self.stages):
            x = self.net.blocks[k](x.detach())  # (B, C, H, W); detached: no gradient reaches block k-1
            logits[k + 1] = self.net.aux_heads[k](x)
        return logits

    def configure_optimizers(self):
        options = block_groups(self.optim_cfg, self.net.num_blocks)
        pairs = [self.make_optimizer([{"params": self.stage_parameters(k), **options[k - 1]}]) for k in self.depths]
        return [opt for opt, _ in pairs], [sched for _, sched in pairs]

    def training_step(self, batch, batch_idx):
        opts, scheds = self.optimizers(), self.lr_schedulers()  # manual optimization: steps them here
        opts = opts if isinstance(opts, list) else [opts]
        scheds = scheds if isinstance(scheds, list) else [scheds]
        for opt in opts:
            opt.zero_grad()
        loss = self._step(batch, "train")  # sum of the per-stage losses
        self.manual_backward(loss)
        for opt, sched in zip(opts, scheds):
            opt.step()
            sched.step()  # per-step schedule
        return loss.detach()

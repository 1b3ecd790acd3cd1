"""A greedy stage whose head is the network's own upper layers (``curriculum.stage_head=network``), after
SegProp (Segmented Propagation: "Unlocking the power of layer-by-layer training and fine-tuning", TMLR
submission 7218, 2026): a layer-wise curriculum that keeps the final layers and the task head on the loss path of
every stage, trained together with the current segment, instead of a throwaway auxiliary head.

What lwt implements is this variant (the paper's exact choice of which final layers form its "global head", and
how it handles the layers between the segment and that head before they are trained, is not specified in what
was available; here every layer above the segment is on the path and trains):

- stage k (1-based, of K blocks) trains block k, blocks k+1..K and the network's classifier, end to end on the
  classifier's loss: the head of stage k is the network above block k, and it is the same modules in every
  stage (the upper blocks and the classifier carry their weights from stage to stage, nothing is thrown away);
- blocks 1..k-1 are frozen (weights and BN statistics, as in greedy training), so a stage's backward pass
  never reaches below block k and the curriculum still builds the network bottom up;
- block k's auxiliary head learns on block k's *detached* output (its gradient reaches no block), so the
  per-depth readouts made after training (analysis.per_layer, the val-selected depth) read block k as they read
  a greedy stage; the stage's own row, its validation accuracy (the curriculum's critical-layer rule) and its
  per-image predictions are the network's output, the classifier's.

The last stage (k = K) is greedy's last stage with the classifier as its head. The cost grows with the blocks
above k: stage k trains K - k + 1 blocks, stage 1 the whole network. A stage's training FLOPs
(lwt/training/flops.py) count the readout's forward and backward and the auxiliary head's forward; the auxiliary
head's own backward (a few small layers) is not counted.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from lwt.config import Config
from lwt.errors import LwtError
from lwt.training.layerwise import block_groups
from lwt.training.stage import StageModule

NETWORK = "network"  # curriculum.stage_head: the network's upper layers as every stage's head


def check(cfg: Config) -> None:
    """``curriculum.stage_head=network`` changes the greedy stages only: refuse it where there are none, and with
    greedy-then-fine-tune, whose end-to-end phase would read the network out through an auxiliary head."""
    if cfg.curriculum.stage_head != NETWORK:
        return
    if cfg.mode != "greedy":
        raise LwtError(f"curriculum.stage_head=network sets the head of each greedy stage; mode={cfg.mode} has no "
                       "greedy stages: use mode=greedy, or leave curriculum.stage_head at aux")
    if cfg.finetune.epochs:
        raise LwtError(f"finetune.epochs={cfg.finetune.epochs} fine-tunes a greedy network through its last "
                       "auxiliary head; with curriculum.stage_head=network every stage already trains the network "
                       "above it through its own classifier: leave finetune.epochs at 0")


class SegPropStage(StageModule):
    """Greedy stage ``stage`` trained through the network above it: block ``stage``, the blocks after it and the
    classifier train on the classifier's loss; block ``stage``'s auxiliary head on its detached output. The
    prefix (blocks before ``stage``) is frozen and in eval mode, and may arrive cached (lwt/training/prefix.py).

    Optimizer: one param group per trained block at its layer-wise options (optim.stage_*), the classifier at
    the last block's, the auxiliary head at block ``stage``'s.
    """

    _aux_logits: Tensor | None = None  # block ``stage``'s auxiliary readout of the current batch

    def upper(self) -> list:
        """The modules above block ``stage`` on the loss path: blocks stage+1..K and the classifier."""
        return [*self.net.blocks[self.stage:], self.net.classifier]

    def trainable_parameters(self):
        return [p for m in (self.block, *self.upper(), self.head) for p in m.parameters()]

    def param_groups(self) -> list[dict]:
        options = block_groups(self.optim_cfg, self.net.num_blocks)
        k = self.stage - 1
        groups = [{"params": list(b.parameters()), **options[k + i]} for i, b in enumerate(self.net.blocks[k:])]
        groups += [{"params": list(self.net.classifier.parameters()), **options[-1]},
                   {"params": list(self.head.parameters()), **options[k]}]
        return [g for g in groups if g["params"]]  # a parameter-free block (pooling only) needs no group

    def train(self, mode: bool = True):
        super().train(mode)  # the prefix in eval mode, block ``stage`` and its head in ``mode``
        for module in self.upper():
            module.train(mode)
        return self

    def from_prefix(self, h: Tensor) -> dict[int, Tensor]:
        """The network's logits from the prefix's output ``h`` (B, C, H, W), as depth ``stage``; block ``stage``'s
        auxiliary logits are kept for the training step."""
        h = self.block_fn(h)  # (B, C_k, H_k, W_k)
        self._aux_logits = self.head(h.detach())
        for block in self.net.blocks[self.stage:]:
            h = block(h)
        return {self.stage: self.net.classifier(h)}

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)  # the classifier's loss (through blocks stage..K)
        aux = F.cross_entropy(self._aux_logits, batch[1])  # reaches only the auxiliary head
        self.log("train/aux_loss", aux, on_step=True, on_epoch=True)
        return loss + aux

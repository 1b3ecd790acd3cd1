"""Architectures (registered by name) and the staged-network contract they follow."""

from __future__ import annotations

from torch import nn

from lwt.config import ModelConfig
from lwt.errors import LwtError
from lwt.models import belilovsky, resnet, simple_cnn, vgg  # noqa: F401  (register the architectures)
from lwt.models.heads import AuxHead, DGLHead, make_head
from lwt.models.registry import MODELS, register
from lwt.models.staged import StagedNet, readout

__all__ = ["MODELS", "AuxHead", "DGLHead", "StagedNet", "build_model", "check_name", "make_head", "readout",
           "rebuild_model", "register"]


def check_name(name: str) -> str:
    """``name`` if it is a registered architecture, else one LwtError listing them."""
    if name not in MODELS:
        raise LwtError(f"model.name={name!r} is not a known architecture; choose one of: {', '.join(sorted(MODELS))}")
    return name


def build_model(cfg: ModelConfig, num_classes: int, input_shape: tuple[int, int, int]) -> StagedNet:
    """The named architecture with one auxiliary head (of kind ``cfg.aux.kind``) per block."""
    spec = MODELS[check_name(cfg.name)]
    aux_k = cfg.aux.k or spec.aux_k
    net = spec.builder(cfg, num_classes, input_shape, aux_k)
    if cfg.stage_dropout is not None and len(cfg.stage_dropout) == net.num_blocks:  # else: check_stage_lists
        for k, p in enumerate(cfg.stage_dropout):
            if p > 0:  # (B, C, H, W) -> same; keys of the block's parameters gain a ".0"
                net.blocks[k] = nn.Sequential(net.blocks[k], nn.Dropout(p))
    batch_norm = spec.batch_norm if cfg.batch_norm is None else cfg.batch_norm
    pool_bn = batch_norm and spec.pool_bn
    for width in net.widths:
        net.aux_heads.append(make_head(cfg.aux, width, num_classes, aux_k, batch_norm, pool_bn=pool_bn))
    # what builds this network again (plain data: checkpoints keep it as the modules' hyperparameters)
    net.build_args = {"model": cfg.model_dump(), "num_classes": num_classes, "input_shape": list(input_shape)}
    return net


def rebuild_model(build_args: dict) -> StagedNet:
    """The network ``build_model`` made, from its ``build_args`` (untrained: load a state dict into it)."""
    return build_model(ModelConfig.model_validate(build_args["model"]), build_args["num_classes"],
                       tuple(build_args["input_shape"]))

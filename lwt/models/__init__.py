"""Architectures (registered by name) and the staged-network contract they follow."""

from __future__ import annotations

import os

import torch
from torch import nn

from lwt.config import ModelConfig
from lwt.errors import LwtError
from lwt.models import belilovsky, resnet, simple_cnn, vgg  # noqa: F401  (register the architectures)
from lwt.models.heads import AuxHead, DGLHead, make_head
from lwt.models.registry import MODELS, register
from lwt.models.staged import StagedNet, readout

__all__ = ["MODELS", "AuxHead", "DGLHead", "StagedNet", "build_model", "check_name", "make_head", "readout",
           "check_batch_norm", "check_fits", "rebuild_model", "register"]


def check_name(name: str) -> str:
    """``name`` if it is a registered architecture, else one LwtError listing them."""
    if name not in MODELS:
        raise LwtError(f"model.name={name!r} is not a known architecture; choose one of: {', '.join(sorted(MODELS))}")
    return name


def memory_bytes() -> int:
    """This machine's physical memory."""
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_fits(cfg: ModelConfig, num_classes: int, input_shape: tuple[int, int, int], batch_size: int | None = None,
               limit: int | None = None) -> None:
    """LwtError naming the width keys when the network could not fit in memory (``limit``, default: this
    machine's): estimated on the meta device (no memory) before anything is allocated, as its parameters
    four times over (weights, gradients, momentum, a checkpoint's copy) plus, given ``batch_size``, twice one
    batch's float32 block outputs (the forward pass and its gradient)."""
    keys = "model.widths" if cfg.widths is not None else "model.width"
    value = cfg.widths if cfg.widths is not None else cfg.width
    try:
        with torch.device("meta"):
            net = build_model(cfg, num_classes, input_shape)
            params = sum(p.numel() for p in net.parameters())
            outputs = 0
            if batch_size is not None:
                x = torch.empty(1, *input_shape)
                for block in net.blocks:
                    x = block(x)
                    outputs += x.numel()
    except (RuntimeError, OverflowError, ValueError) as e:  # sizes beyond torch's integers
        raise LwtError(f"{keys}={value} cannot be built ({str(e).splitlines()[0][:120]}); give smaller widths, "
                       "e.g. model.widths=[64, 128]") from None
    need = 4 * 4 * params + 2 * 4 * outputs * (batch_size or 0)
    limit = limit or memory_bytes()
    if need > limit:
        raise LwtError(f"{keys}={value}: model.name={cfg.name!r} would need about {need / 2**30:.1f} GiB "
                       f"({params / 1e6:.1f}M parameters{f', batches of {batch_size}' if batch_size else ''}), more "
                       f"than this machine's {limit / 2**30:.1f} GiB; give smaller widths or a smaller "
                       "data.batch_size")


def one_value_norms(cfg: ModelConfig, num_classes: int, input_shape: tuple[int, int, int], depth: int | None = None,
                    classifier: bool = False) -> list[str]:
    """The batch norms that training sees with one value per channel for a batch of one image (a 1x1 input),
    which they cannot normalize: in blocks 1..``depth`` (default: all), the auxiliary heads that read them out,
    and, with ``classifier`` (end-to-end training), the network's classifier in place of the last block's head.
    Traced on the meta device (no memory)."""
    found = []
    with torch.device("meta"):
        net = build_model(cfg, num_classes, input_shape).eval()  # eval: the hooks see what training would refuse
        depth = min(depth or net.num_blocks, net.num_blocks)
        heads = [*net.aux_heads[:depth - 1], net.classifier if classifier else net.aux_heads[depth - 1]]
        for name, module in net.named_modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.register_forward_pre_hook(
                    lambda m, args, name=name: found.append(name) if args[0][0].numel() == args[0].shape[1] else None)
        x = torch.empty(1, *input_shape)
        for block, head in zip(net.blocks[:depth], heads):
            x = block(x)
            head(x)
    return list(dict.fromkeys(found))


def check_batch_norm(cfg: ModelConfig, num_classes: int, input_shape: tuple[int, int, int], train_images: int,
                     batch_size: int, depth: int | None = None, classifier: bool = False) -> None:
    """LwtError when a training batch holds one image (all of a 1-image training set, ``batch_size=1``, or the
    last batch of an epoch) and a batch norm that trains (``one_value_norms``) would then see one value per
    channel."""
    last = train_images % batch_size or batch_size
    if 1 not in (min(train_images, batch_size), last):
        return
    norms = one_value_norms(cfg, num_classes, input_shape, depth, classifier)
    if norms:
        why = (f"data.batch_size={batch_size}" if batch_size == 1 else "the training set is 1 image"
               if train_images == 1 else f"{train_images} training images in batches of {batch_size} leave 1")
        raise LwtError(f"a training batch of one image ({why}) reaches the batch norm {norms[0]} with one value per "
                       "channel (a 1x1 input), which cannot be trained; change data.train_subset or data.batch_size "
                       "so that no batch holds a single image (or give the auxiliary heads model.aux.pool >= 2)")


def build_model(cfg: ModelConfig, num_classes: int, input_shape: tuple[int, int, int],
                batch_size: int | None = None) -> StagedNet:
    """The named architecture with one auxiliary head (of kind ``cfg.aux.kind``) per block; LwtError first when
    it (with ``batch_size``: and one training batch) would not fit in memory (``check_fits``)."""
    spec = MODELS[check_name(cfg.name)]
    if cfg.downsample_at is not None and cfg.name != "simple_cnn":
        raise LwtError(f"model.downsample_at={cfg.downsample_at} moves simple_cnn's downsampling; model.name="
                       f"{cfg.name!r} fixes its own: leave model.downsample_at out (null)")
    aux_k = cfg.aux.k or spec.aux_k
    if torch.empty(0).device.type != "meta":  # building on the meta device costs nothing: the estimate does that
        check_fits(cfg, num_classes, input_shape, batch_size)
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

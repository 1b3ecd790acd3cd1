"""Architectures by name: ``model.name: belilovsky_k2`` is all a config needs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lwt.models.staged import StagedNet


@dataclass(frozen=True)
class ModelSpec:
    # builder(cfg: ModelConfig, num_classes, input_shape, aux_k) -> StagedNet (classifier included)
    builder: Callable[..., StagedNet]
    aux_k: int  # default depth of the auxiliary heads
    batch_norm: bool  # whether the aux heads use BN by default (follows the architecture)
    pool_bn: bool = False  # whether the aux heads put a BN between pooling and the linear layer (Belilovsky's)


MODELS: dict[str, ModelSpec] = {}


def register(name: str, aux_k: int = 1, batch_norm: bool = True, pool_bn: bool = False):
    def wrap(builder):
        if name in MODELS:
            raise ValueError(f"architecture {name!r} registered twice")
        MODELS[name] = ModelSpec(builder, aux_k, batch_norm, pool_bn)
        return builder

    return wrap

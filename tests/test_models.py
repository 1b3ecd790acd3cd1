"""Belilovsky's presets and the pieces they are made of."""

from __future__ import annotations

import torch

from lwt.config import ModelConfig
from lwt.models import AuxHead, build_model
from lwt.models.belilovsky import SpaceToDepth


def test_space_to_depth_loses_nothing():
    x = torch.randn(2, 3, 32, 32)
    y = SpaceToDepth()(x)
    assert y.shape == (2, 12, 16, 16)
    assert torch.equal(torch.nn.functional.pixel_shuffle(y, 2), x)


def test_presets_follow_the_paper():
    k1 = build_model(ModelConfig(name="belilovsky_k1"), 10, (3, 32, 32))
    k2 = build_model(ModelConfig(name="belilovsky_k2"), 10, (3, 32, 32))
    assert k1.widths == [256, 256, 512, 512, 512]  # downsampling before block 3 doubles the width
    assert k2.widths == [128] * 4
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in k1.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in k2.blocks[0])
    x = torch.randn(2, 3, 32, 32)
    assert [tuple(h.shape[1:]) for h in k1.block_outputs(x)] == [(256, 16, 16), (256, 16, 16), (512, 8, 8),
                                                                 (512, 8, 8), (512, 8, 8)]
    assert [tuple(h.shape[1:]) for h in k2.block_outputs(x)] == [(128, 16, 16)] * 4


def test_aux_heads_have_k_layers():
    for k in (1, 2, 3):
        head = AuxHead(64, 10, k=k, width=32)
        assert sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in head) == k
        assert head(torch.randn(2, 64, 16, 16)).shape == (2, 10)
    net = build_model(ModelConfig(name="belilovsky_k3"), 100, (3, 32, 32))
    assert len(net.aux_heads) == net.num_blocks
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.aux_heads[0]) == 2  # k=3: two convs + linear
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 100)

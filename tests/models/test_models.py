"""Belilovsky's presets and the pieces they are made of."""

from __future__ import annotations

import pytest
import torch

from lwt.config import ModelConfig
from lwt.models import AuxHead, build_model
from lwt.models.belilovsky import SpaceToDepth


def test_space_to_depth_loses_nothing():
    x = torch.randn(2, 3, 32, 32)
    y = SpaceToDepth()(x)
    assert y.shape == (2, 12, 16, 16)
    assert torch.equal(torch.nn.functional.pixel_shuffle(y, 2), x)


def stage_params(net, k: int) -> int:
    """Trainable parameters of greedy stage k (1-based): block k and its auxiliary head."""
    return sum(p.numel() for m in (net.blocks[k - 1], net.aux_heads[k - 1]) for p in m.parameters())


# Per-stage parameter counts of the authors' networks, by hand from their README commands (model_greedy.py's
# block_conv: 3x3 conv without bias, BN; auxillary_classifier: nlin x [3x3 conv without bias, BN, ReLU],
# 2x2 average pooling, BN, linear). conv(a->b) = 9ab, BN(c) = 2c, linear(c*2*2 -> 10) = 40c + 10.
#
# k=2 (nlin=1), M=128, downsampling before block 3:
#   block 1: conv(3->128) 3,456 + BN 256 = 3,712;  block 2: conv(128->128) 147,456 + 256 = 147,712
#   head at 128: conv 147,456 + BN 256 + pool-BN 256 + linear 5,130 = 153,098
#   block 3: conv(4*128=512 -> 256) 1,179,648 + BN 512 = 1,180,160
#   block 4: conv(256->256) 589,824 + 512 = 590,336
#   head at 256: conv 589,824 + 512 + 512 + linear 10,250 = 601,098
K2 = [3_712 + 153_098, 147_712 + 153_098, 1_180_160 + 601_098, 590_336 + 601_098]
# k=3 (nlin=2): the heads get a second conv + BN at the same width:
#   head at 128: 2 * (147,456 + 256) + 256 + 5,130 = 300,810
#   head at 256: 2 * (589,824 + 512) + 512 + 10,250 = 1,191,434
K3 = [3_712 + 300_810, 147_712 + 300_810, 1_180_160 + 1_191_434, 590_336 + 1_191_434]
# k=1 (nlin=0, no BN), M=256, downsampling before blocks 3 and 4 (--down [1,2]); only block 1's conv has a bias:
#   block 1: 9*3*256 + 256 = 7,168; block 2: 9*256*256 = 589,824; block 3: 9*1024*512 = 4,718,592;
#   block 4: 9*2048*1024 = 18,874,368; block 5: 9*1024*1024 = 9,437,184
#   heads (pool + linear): 40*256 + 10 = 10,250 (blocks 1-2), 40*512 + 10 = 20,490, 40*1024 + 10 = 40,970 (blocks 4-5)
K1 = [7_168 + 10_250, 589_824 + 10_250, 4_718_592 + 20_490, 18_874_368 + 40_970, 9_437_184 + 40_970]


@pytest.mark.slow
def test_authors_presets_are_parameter_exact():
    x = torch.randn(2, 3, 32, 32)
    for name, counts, shapes in [
        ("belilovsky_k1", K1, [(256, 32, 32), (256, 32, 32), (512, 16, 16), (1024, 8, 8), (1024, 8, 8)]),
        ("belilovsky_k2", K2, [(128, 32, 32), (128, 32, 32), (256, 16, 16), (256, 16, 16)]),
        ("belilovsky_k3", K3, [(128, 32, 32), (128, 32, 32), (256, 16, 16), (256, 16, 16)]),
    ]:
        net = build_model(ModelConfig(name=name), 10, (3, 32, 32))
        assert [stage_params(net, k) for k in range(1, net.num_blocks + 1)] == counts, name
        assert [tuple(h.shape[1:]) for h in net.block_outputs(x)] == shapes, name
        assert net(x).shape == (2, 10)
        # the network's classifier is the last block's auxiliary problem
        assert sum(p.numel() for p in net.classifier.parameters()) == counts[-1] - sum(
            p.numel() for p in net.blocks[-1].parameters())
    k1 = build_model(ModelConfig(name="belilovsky_k1"), 10, (3, 32, 32))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in k1.modules())
    k2 = build_model(ModelConfig(name="belilovsky_k2"), 10, (3, 32, 32))
    assert isinstance(k2.aux_heads[0][-3], torch.nn.BatchNorm2d)  # the BN after pooling, before the linear layer


def test_s2d_cnn_is_the_cheap_variant():
    net = build_model(ModelConfig(name="s2d_cnn"), 10, (3, 32, 32))
    assert [tuple(h.shape[1:]) for h in net.block_outputs(torch.randn(2, 3, 32, 32))] == [(128, 16, 16)] * 4
    assert not isinstance(list(net.aux_heads[0])[-3], torch.nn.BatchNorm2d)  # no BN after pooling


def test_aux_heads_have_k_layers():
    for k in (1, 2, 3):
        head = AuxHead(64, 10, k=k, width=32)
        assert sum(isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for m in head) == k
        assert head(torch.randn(2, 64, 16, 16)).shape == (2, 10)
    net = build_model(ModelConfig(name="belilovsky_k3"), 100, (3, 32, 32))
    assert len(net.aux_heads) == net.num_blocks
    assert sum(isinstance(m, torch.nn.Conv2d) for m in net.aux_heads[0]) == 2  # k=3: two convs + linear
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 100)

"""Every registered architecture: the staged contract, its published size and depth, stage grouping,
the DGL head, and one real greedy and end-to-end training step (random images, small widths)."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from lwt.config import ModelConfig, load_config
from lwt.errors import LwtError
from lwt.models import MODELS, AuxHead, DGLHead, build_model
from lwt.models.belilovsky import SpaceToDepth
from lwt.training import EndToEndModule, StageModule

from conftest import EXPERIMENTS

NAMES = sorted(MODELS)
CIFAR = (3, 32, 32)
SMALL = "model.width=8"  # every family scales its widths from the first one: forward + backward stay cheap
ARCHS = ["simple_cnn", "vgg11", "vgg16", "resnet20", "resnet56", "resnet18"]  # the ones with experiment files


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are tiny: a second intra-op thread buys nothing and, on a busy 2-core machine, makes
    every op wait for a core (measured: 3-6 s instead of 0.1 s per VGG-16 step)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def config(name: str, mode: str = "greedy", *extra: str):
    """The architecture's real experiment file when it has one (shrunk), else the schema defaults."""
    path = EXPERIMENTS / "cifar10" / f"{name}_{mode}.yaml"
    return load_config(path if path.is_file() else None, [f"model.name={name}", SMALL, *extra])


def core_parameters(net) -> int:
    """Parameters of the network itself (blocks + classifier), not of its auxiliary heads."""
    return sum(p.numel() for p in [*net.blocks.parameters(), *net.classifier.parameters()])


def bare(name: str, num_classes: int = 10, input_shape=CIFAR, **cfg):
    """The architecture without aux heads (``build_model`` would add one per block), at full width."""
    spec = MODELS[name]
    return spec.builder(ModelConfig(name=name, **cfg), num_classes, input_shape, spec.aux_k)


@pytest.mark.parametrize("name, size", [(n, 32) for n in NAMES] + [("vgg11", 64), ("resnet18", 64)])
def test_blocks_then_classifier_is_the_forward(name, size):
    torch.manual_seed(0)
    net = build_model(config(name).model, 10, (3, size, size)).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        h = x
        for block, width, head in zip(net.blocks, net.widths, net.aux_heads):
            h = block(h)
            assert h.shape[1] == width, "widths[k] must be the channel count of block k's output"
            assert head(h).shape == (2, 10)
        assert torch.allclose(net.classifier(h), net(x), atol=1e-6)


# Sources: He et al. 2016 (Table 6: 0.27M, 0.85M, 1.7M), exact counts as in akamaster/pytorch_resnet_cifar10
# (option A; e.g. "Total number of params 269722"); torchvision's documented totals (vgg11_bn 132,868,840,
# resnet18 11,689,512, resnet34 21,797,672) with their ImageNet classifiers swapped for the CIFAR ones,
# which is also kuangliu/pytorch-cifar's VGG('VGG11') (9,231,114) and ResNet18 (11,173,962).
PUBLISHED = [
    ("resnet20", 10, CIFAR, 269_722),
    ("resnet32", 10, CIFAR, 464_154),
    ("resnet56", 10, CIFAR, 853_018),
    ("resnet110", 10, CIFAR, 1_727_962),
    ("vgg11", 10, CIFAR, 9_231_114),
    ("vgg16", 10, CIFAR, 14_728_266),
    ("resnet18", 10, CIFAR, 11_173_962),
    ("resnet18", 1000, (3, 224, 224), 11_689_512),  # ImageNet stem: exactly torchvision's resnet18
    ("resnet34", 1000, (3, 224, 224), 21_797_672),
]


@pytest.mark.parametrize("name, num_classes, shape, count", PUBLISHED, ids=[f"{p[0]}-{p[2][1]}px" for p in PUBLISHED])
def test_parameter_counts_match_the_published_ones(name, num_classes, shape, count):
    assert core_parameters(bare(name, num_classes, shape)) == count


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith(("vgg", "resnet"))])
def test_depth_in_the_name_counts_weight_layers(name):
    # the depth counts 3x3 (and stem 7x7) convs + linears; ResNet-18/34's 1x1 projection shortcuts do not count
    net = bare(name, input_shape=(3, 224, 224) if name in ("resnet18", "resnet34") else CIFAR, width=4)
    layers = [m for m in net.modules() if isinstance(m, nn.Linear) or
              (isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1))]
    depth = int(re.sub(r"\D", "", name))
    # VGG's depth includes ImageNet's three fully connected layers; the CIFAR variant has one
    assert len(layers) == (depth - 2 if name.startswith("vgg") else depth)
    units = {"vgg11": 8, "vgg13": 10, "vgg16": 13, "vgg19": 16, "resnet20": 9, "resnet32": 15, "resnet56": 27,
             "resnet110": 54, "resnet18": 8, "resnet34": 16}
    assert net.num_blocks == units[name]  # one greedy unit per conv layer / residual block


def test_resnet_stems_and_shortcuts():
    cifar, imagenet = bare("resnet18", width=8), bare("resnet18", input_shape=(3, 64, 64), width=8)
    x32, x64 = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 64, 64)
    assert cifar.features(x32, 1).shape == (1, 8, 32, 32)  # 3x3/1 stem, no max-pool
    assert imagenet.features(x64, 1).shape == (1, 8, 16, 16)  # 7x7/2 stem + max-pool
    assert cifar.block_outputs(x32)[-1].shape == (1, 64, 4, 4)
    # option A: ResNet-20 has no 1x1 convs at all; ResNet-18 (option B) one per stage change
    assert not any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in bare("resnet20").modules())
    assert sum(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in cifar.modules()) == 3


def test_simple_cnn_widths_and_pooling():
    x = torch.randn(2, 3, 32, 32)
    shapes = {}
    for pooling in ("max", "space_to_depth"):
        net = bare("simple_cnn", widths=[8, 16, 16, 32], pooling=pooling)  # downsample where the width grows
        shapes[pooling] = [tuple(h.shape[1:]) for h in net.block_outputs(x)]
        assert net.widths == [8, 16, 16, 32]
    assert shapes["max"] == [(8, 16, 16), (16, 16, 16), (16, 8, 8), (32, 8, 8)]  # pool ends block 1 and 3
    assert shapes["space_to_depth"] == [(8, 32, 32), (16, 16, 16), (16, 16, 16), (32, 8, 8)]  # starts 2 and 4
    s2d = bare("simple_cnn", widths=[8, 16], pooling="space_to_depth")
    assert isinstance(s2d.blocks[1][0], SpaceToDepth)  # downsampling starts the next block
    assert bare("simple_cnn", width=32).widths == [32, 64, 128, 128]  # model.width scales the default list
    with pytest.raises(LwtError, match="model.widths"):
        bare("simple_cnn", num_blocks=3)


def test_simple_cnn_downsample_at_moves_the_downsampling():
    """model.downsample_at: the blocks whose output is halved, whatever the widths (accelerated downsampling);
    the same widths and parameters, smaller maps sooner."""
    x = torch.randn(2, 3, 32, 32)
    widths = [16, 16, 32, 32, 64, 64, 64, 64]
    plain, early = bare("simple_cnn", widths=widths), bare("simple_cnn", widths=widths, downsample_at=[1, 2])
    assert [h.shape[-1] for h in plain.block_outputs(x)] == [32, 16, 16, 8, 8, 8, 8, 8]  # after blocks 2 and 4
    assert [h.shape[-1] for h in early.block_outputs(x)] == [16, 8, 8, 8, 8, 8, 8, 8]  # after blocks 1 and 2
    assert core_parameters(early) == core_parameters(plain)
    assert bare("simple_cnn", widths=widths, downsample_at=[2, 4]).state_dict().keys() == plain.state_dict().keys()
    s2d = bare("simple_cnn", widths=[8, 8, 8], pooling="space_to_depth", downsample_at=[1])
    assert isinstance(s2d.blocks[1][0], SpaceToDepth) and [h.shape[1:] for h in s2d.block_outputs(x)][1] == (8, 16, 16)
    for bad in ([8], [1, 1], [1, 2, 3, 4, 5, 6, 7]):  # the last block, a repeat, below one pixel (0: the schema)
        with pytest.raises(LwtError, match=r"model.downsample_at"):
            bare("simple_cnn", widths=widths, downsample_at=bad)
    with pytest.raises(LwtError, match="model.downsample_at"):
        build_model(ModelConfig(name="vgg11", width=8, downsample_at=[1]), 10, CIFAR)


@pytest.mark.slow
def test_greedy_with_early_downsampling_trains_on_real_images(tiny):
    """A tiny greedy run of the remedy arm (model.downsample_at=[1, 2]) on CIFAR-10: every stage trains and
    the saved network halves its maps after blocks 1 and 2."""
    from lwt.run.load import load_run
    from lwt.training.train import run

    cfg = load_config(EXPERIMENTS / "cifar10" / "simple_cnn_greedy.yaml",
                      tiny + ["model.widths=[8,8,16,16]", "model.downsample_at=[1, 2]",
                              "curriculum.epochs_per_stage=1"])
    result = run(cfg)
    assert [r.epochs for r in result.stages] == [1, 1, 1, 1] and result.final_test_acc > 0.1
    net = load_run(result.run_dir).net
    assert [h.shape[-1] for h in net.block_outputs(torch.zeros(1, 3, 32, 32))] == [16, 8, 8, 8]
    with pytest.raises(LwtError, match="curriculum.max_stages"):
        bare("resnet20", num_blocks=3)


@pytest.mark.parametrize("name, stages, widths", [
    ("vgg11", 5, [8, 16, 32, 64, 64]), ("vgg16", 5, [8, 16, 32, 64, 64]), ("resnet20", 3, [8, 16, 32]),
    ("resnet110", 3, [8, 16, 32]), ("resnet18", 4, [8, 16, 32, 64]), ("simple_cnn", 3, [8, 16, 32]),
])
def test_pool_grouping_regroups_the_same_network(name, stages, widths):
    torch.manual_seed(0)
    unit = build_model(config(name).model, 10, CIFAR).eval()
    pool = build_model(config(name, "greedy", "model.stage_grouping=pool").model, 10, CIFAR).eval()
    assert pool.num_blocks == stages and pool.widths == widths
    core = {k: v for k, v in unit.state_dict().items() if not k.startswith("aux_heads.")}
    pool_core = [k for k in pool.state_dict() if not k.startswith("aux_heads.")]
    pool.load_state_dict(dict(zip(pool_core, core.values(), strict=True)), strict=False)  # same order
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(pool(x), unit(x), atol=1e-6)


def test_dgl_head_has_k_weight_layers():
    x = torch.randn(3, 64, 8, 8)
    for k in (1, 2, 3, 5):
        head = DGLHead(64, 10, k=k, hidden=32, pool=2)
        assert head(x).shape == (3, 10)
        assert sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in head) == k
        assert sum(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) for m in head) == max(k - 2, 0)
    net = build_model(config("resnet20", "greedy", "model.aux.kind=dgl", "model.aux.k=3").model, 10, CIFAR)
    assert all(isinstance(h, DGLHead) for h in net.aux_heads)
    assert net.aux_heads[0](torch.randn(2, 8, 32, 32)).shape == (2, 10)
    simple = build_model(config("simple_cnn", "greedy", "model.aux.kind=dgl").model, 10, CIFAR)
    assert isinstance(simple.classifier, DGLHead)  # simple_cnn's classifier is its aux problem
    assert all(isinstance(h, AuxHead) for h in build_model(config("vgg11").model, 10, CIFAR).aux_heads)


def _step(module, batch) -> torch.Tensor:
    optimizers = module.configure_optimizers()
    opt = optimizers["optimizer"] if isinstance(optimizers, dict) else optimizers
    loss = module.training_step(batch, 0)  # no Trainer: self.log only warns
    loss.backward()
    opt.step()
    return loss


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
@pytest.mark.parametrize("name", NAMES)
def test_one_greedy_step_on_the_last_stage_and_one_e2e_step(name):
    torch.manual_seed(0)
    batch = torch.randn(8, *CIFAR), torch.randint(0, 10, (8,))
    cfg = config(name, "greedy")
    net = build_model(cfg.model, 10, CIFAR)
    last = net.num_blocks
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert torch.isfinite(_step(StageModule(net, last, cfg.optim, 10, max_epochs=1), batch))
    changed = {k.split(".")[0] + "." + k.split(".")[1] for k, v in net.state_dict().items()
               if not torch.equal(v, before[k])}
    assert changed == {f"blocks.{last - 1}", f"aux_heads.{last - 1}"}

    cfg = config(name, "e2e")
    net = build_model(cfg.model, 10, CIFAR)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    module = EndToEndModule(net, cfg.optim, 10, max_epochs=1).train()
    assert torch.isfinite(_step(module, batch))
    changed = {k.split(".")[0] for k, v in net.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"blocks", "classifier", "aux_heads"}


def test_unknown_model_name_lists_every_architecture():
    cfg = load_config(None, ["model.name=nope"])  # a config is data: the name is checked when a network is built
    with pytest.raises(LwtError) as err:
        build_model(cfg.model, 10, CIFAR)
    assert "model.name='nope' is not a known architecture" in str(err.value)
    assert all(name in str(err.value) for name in MODELS)


@pytest.mark.parametrize("arch", ARCHS)
def test_experiment_files_name_their_model_and_cpu_budget(arch):
    # loading and the leading comment are checked for every file in test_config.py
    stages = build_model(config(arch).model, 10, CIFAR).num_blocks
    for mode, cpu in (("greedy", "data.train_subset=5000 curriculum.epochs_per_stage=2"),
                      ("e2e", f"data.train_subset=5000 trainer.max_epochs={stages * 2}")):
        path = EXPERIMENTS / "cifar10" / f"{arch}_{mode}.yaml"
        cfg = load_config(path)
        assert (cfg.model.name, cfg.mode) == (arch, mode)
        assert cpu in path.read_text(), f"{path.name}: the CPU-sized command should read '{cpu}'"

"""Discovery: `lwt models`, help texts that name the modes and the config, overrides after options, lists."""

from __future__ import annotations

import pytest

from lwt.cli import build_parser, main
from lwt.config import load_config
from lwt.models import build_model
from lwt.models.listing import describe

from conftest import GREEDY


def test_lwt_models_lists_blocks_widths_and_parameter_counts(capsys):
    assert main(["models", "vgg1"]) == 0
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("vgg")}
    assert set(lines) == {"vgg11", "vgg13", "vgg16", "vgg19"}
    assert lines["vgg11"].split()[1] == "8" and "64, 128, 256x2, 512x4" in lines["vgg11"]
    # the meta-device count is the real network's: built on the CPU, blocks + classifier
    net = build_model(load_config(None, ["model.name=vgg11"]).model, 10, (3, 32, 32))
    real = sum(p.numel() for m in [*net.blocks, net.classifier] for p in m.parameters())
    assert describe("vgg11")["params"] == real and f"{real / 1e6:.2f}M" in lines["vgg11"]
    assert main(["models", "resnet2*", "model.width=32"]) == 0  # a glob, and overrides
    out = capsys.readouterr().out
    assert [line.split()[0] for line in out.splitlines()[1:] if line.strip()][:-1] == ["resnet20"]
    assert "32x3, 64x3, 128x3" in out
    assert main(["models", "nope"]) == 2 and "known: belilovsky_k1" in capsys.readouterr().err


def test_train_help_names_the_modes_and_the_config_keys():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = sub.choices["train"].format_help()
    for word in ("greedy", "e2e", "dgl", "lwt/config/schema.py", "lwt models", "trainer.devices=[0,1]"):
        assert word in text, word


def test_overrides_may_follow_options_and_lists_parse(capsys):
    assert main(["sweep", "experiments/sweeps/gap.yaml", "--variant", "cpu", "--dry-run", "data.train_subset=77"]) == 0
    assert "data.train_subset=77" in capsys.readouterr().out.splitlines()[1]
    assert load_config(GREEDY, ["trainer.devices=[0,1]"]).trainer.devices == [0, 1]
    assert load_config(GREEDY, ["trainer.devices=2"]).trainer.devices == "2"
    with pytest.raises(SystemExit):
        main(["sweep", "experiments/sweeps/gap.yaml", "--variant", "cpu", "--dry-run", "--bogus"])

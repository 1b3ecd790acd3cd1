"""`lwt bench` measures the right things; its numbers are for the benchmark, never asserted here."""

from __future__ import annotations

import torch

from lwt.bench import greedy
from lwt.bench.common import Clock, Size
from lwt.cli import main

from conftest import build_tiny


def test_naive_reference_loop_trains_only_the_stage(tiny):
    """The naive loop is slow on purpose (per-image transforms, autograd through the prefix) but must be a
    correct greedy stage, or comparing with it would mean nothing: the prefix stays bit-identical."""
    _, dm, net = build_tiny(tiny)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    speed = greedy.naive_loop(net, dm, Size(warmup=1, steps=2), torch.device("cpu"))
    after = net.state_dict()
    stage = (f"blocks.{greedy.STAGE}.", f"aux_heads.{greedy.STAGE}.")
    for key, value in before.items():
        if not key.startswith(stage):
            assert torch.equal(value, after[key]), f"{key} changed in the naive loop"
    conv = next(k for k in before if k.startswith(f"blocks.{greedy.STAGE}.") and k.endswith(".weight"))
    assert not torch.equal(before[conv], after[conv])
    assert speed > 0


def test_clock_times_the_steps_after_the_warmup():
    clock = Clock(warmup=2, device=torch.device("cpu"))
    clock.marks = [(0.0, 128), (5.0, 128), (10.0, 128), (11.0, 128), (12.0, 64)]
    # timed from the end of the 3rd step (t=10) to the end of the 5th: 128 + 64 images in 2 s
    assert clock.images_per_s() == 96.0


def test_unknown_section_is_named(capsys):
    assert main(["bench", "--sections", "greedy,speed"]) == 2
    assert "--sections: unknown speed; choose from greedy, e2e, memory" in capsys.readouterr().err

"""A greedy curriculum under DDP, run by tests/test_ddp.py: ``python ddp_greedy.py OUT_DIR key=value ...``.

Lightning's DDP launcher starts this script again for rank 1; each rank saves its stage decisions and its
trained network to OUT_DIR/rank<r>.pt, so the test can compare what the ranks ended with.
"""

import os
import sys
from pathlib import Path

import torch

from lwt.config import load_config
from lwt.training.train import train

if __name__ == "__main__":
    out, overrides = Path(sys.argv[1]), sys.argv[2:]
    experiment = Path(__file__).resolve().parents[2] / "experiments" / "cifar10" / "belilovsky_k2_greedy.yaml"
    result, net = train(load_config(experiment, overrides))
    rank = int(os.environ.get("LOCAL_RANK", 0))
    world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
    torch.save({"stages": result.to_json()["stages"], "critical": result.critical, "world": world,
                "net": net.state_dict()}, out / f"rank{rank}.pt")

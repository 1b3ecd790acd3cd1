"""The intervention of docs/protocol.md, a causal test of "early layers overfit": a greedy
curriculum whose blocks 1..j are another finished run's (e.g. the E2E network of the same seed), frozen, so
that greedy training starts at block j+1. If greedy saturates because its own early blocks overfit, starting
from E2E's early blocks should move the saturation point.

``curriculum.init_from`` names the run folder (``{seed}`` becomes this run's seed, so a sweep pairs seeds),
``curriculum.init_blocks`` is j. Blocks 1..j and their read-out heads (E2E's per-depth heads, or a greedy
run's auxiliary heads) are copied; stages 1..j are then only evaluated (0 epochs, ``stop_reason`` "init_from")
so the run's table still has a row per depth, and the curriculum's critical-layer rule sees them.
"""

from __future__ import annotations

from pathlib import Path

import torch

from lwt.config import Config, flatten, to_dict
from lwt.errors import LwtError
from lwt.models import StagedNet

INIT = "init_from"  # the stop_reason of a stage that was copied, not trained


def seeded_path(template: str, cfg: Config) -> Path:
    """A run folder named in the config, ``{seed}`` replaced by this run's seed and ``{run_name}`` by its run name
    (a sweep's axis values and seed, ``train_subset-1000_k-2_seed0``), so a sweep pairs each run with the run of
    the same seed, or of the same cell and seed, of another sweep."""
    return Path(template.replace("{seed}", str(cfg.seed)).replace("{run_name}", str(cfg.run_name)))


def load_source(cfg: Config, net: StagedNet) -> dict[str, torch.Tensor] | None:
    """The state of blocks 1..j and heads 1..j of ``curriculum.init_from``, checked against ``net`` (same
    architecture, same number of classes); None when the curriculum starts from scratch. Called before the run
    folder is made, so a wrong source leaves nothing behind."""
    if cfg.curriculum.init_from is None:
        return None
    from lwt.run.load import load_run  # a finished run's network (LwtError when it is not one)

    path, j = seeded_path(cfg.curriculum.init_from, cfg), cfg.curriculum.init_blocks
    source = load_run(path)
    ours, theirs = flatten(to_dict(cfg.model)), flatten(to_dict(source.cfg.model))
    differ = [f"model.{k}={theirs[k]!r} (this run: {ours[k]!r})" for k in ours
              if ours[k] != theirs.get(k) and k not in ("stage_dropout", "aux.dropout")]
    wanted = {k: v for k, v in source.net.state_dict().items() if _in_prefix(k, j)}
    own = net.state_dict()
    bad = [k for k, v in wanted.items() if k not in own or own[k].shape != v.shape]
    if differ or bad:
        raise LwtError(f"curriculum.init_from={path} is not the same network: "
                       f"{'; '.join(differ) or 'its weights ' + ', '.join(bad[:3]) + ' differ in shape'}. "
                       "Start from a run of the same model.* keys and dataset")
    return wanted


def _in_prefix(key: str, j: int) -> bool:
    """``blocks.i.*`` and ``aux_heads.i.*`` for i < j (0-based indices of blocks 1..j)."""
    parts = key.split(".")
    return parts[0] in ("blocks", "aux_heads") and int(parts[1]) < j


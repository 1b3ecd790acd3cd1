"""``lwt models [PATTERN]``: every registered architecture with its blocks (greedy stages), widths and
parameter counts, as built for CIFAR-10 (3x32x32, 10 classes) with the preset's defaults."""

from __future__ import annotations

import fnmatch
from itertools import groupby


def describe(name: str, overrides: list[str] = ()) -> dict:
    """One architecture, built on the meta device (no memory, no weights): its blocks, their output widths and
    the parameter counts of the network (blocks + classifier) and of its auxiliary heads."""
    import torch

    from lwt.config import load_config
    from lwt.models import MODELS, build_model

    cfg = load_config(None, [f"model.name={name}", *overrides])
    with torch.device("meta"):
        net = build_model(cfg.model, 10, (3, 32, 32))
    count = lambda modules: sum(p.numel() for m in modules for p in m.parameters())  # noqa: E731
    return {"name": name, "blocks": net.num_blocks, "widths": net.widths,
            "params": count([*net.blocks, net.classifier]), "aux_params": count(net.aux_heads),
            "aux_k": cfg.model.aux.k or MODELS[name].aux_k}


def table(rows: list[dict]) -> str:
    def widths(w: list[int]) -> str:  # runs of equal widths shortened: 64x2, 128x2, 256x4
        runs = [(width, len(list(run))) for width, run in groupby(w)]
        return ", ".join(f"{width}x{n}" if n > 1 else f"{width}" for width, n in runs)

    cells = [[r["name"], str(r["blocks"]), widths(r["widths"]), f"{r['params'] / 1e6:.2f}M",
              f"{r['aux_params'] / 1e6:.2f}M", str(r["aux_k"])] for r in rows]
    header = ["model.name", "blocks", "block widths", "params", "aux heads", "aux k"]
    size = [max(len(x) for x in col) for col in zip(header, *cells)]
    lines = ["  ".join(c.ljust(s) for c, s in zip(line, size)).rstrip() for line in [header, *cells]]
    return "\n".join(lines)


def cmd_models(args) -> int:
    from lwt.errors import LwtError
    from lwt.models import MODELS

    if "=" in args.pattern:  # `lwt models model.width=32`: overrides only
        args.overrides, args.pattern = [args.pattern, *args.overrides], "*"
    names = sorted(n for n in MODELS if fnmatch.fnmatch(n, args.pattern) or args.pattern in n)
    if not names:
        raise LwtError(f"no architecture matches {args.pattern!r}; known: {', '.join(sorted(MODELS))}")
    print(table([describe(n, args.overrides) for n in names]))
    print("\nAs built for CIFAR-10 (3x32x32, 10 classes). blocks = greedy stages; params: blocks + classifier. "
          "Choose one with model.name=NAME; model.width, model.num_blocks and model.aux.* change them "
          "(also here: lwt models vgg11 model.width=32).")
    return 0


def add_subparser(sub) -> None:
    p = sub.add_parser("models", help="list the architectures (model.name): blocks, widths, parameter counts")
    p.add_argument("pattern", nargs="?", default="*", help="a name, part of one, or a glob, e.g. resnet* "
                   "(default: all)")
    p.add_argument("overrides", nargs="*", help="model.* overrides to apply, e.g. model.width=32")
    p.set_defaults(func=cmd_models)

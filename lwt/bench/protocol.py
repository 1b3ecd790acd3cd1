"""The authors' k=2 full protocol on one GPU, timed: ``python -m lwt.bench.protocol --data-root DIR [key=value ...]``
(scripts/gpu_belilovsky_k2.sh runs it from the source tree).

experiments/cifar10/belilovsky_k2_greedy.yaml as it stands (4 stages x 50 epochs, SGD lr 0.1 / 5 at 0.3, 0.6
and 0.9 of each stage, batch 128, the 45,000 training images, full test set), plus how to run fast on a GPU:
bf16 autocast, channels_last, the uint8 images kept on the device (``data.on_device``), W&B disabled (so
wandb is never imported). Trailing overrides shrink it (the CPU test) or change it; they come last and win.
Prints images/s per stage (the training loop alone) and the total wall time.
"""

from __future__ import annotations

import argparse
import sys
import time

from lwt.config.files import experiments_dir

EXPERIMENT = experiments_dir() / "cifar10" / "belilovsky_k2_greedy.yaml"  # checkout or wheel
FAST = ["trainer.precision=bf16-mixed", "trainer.channels_last=true", "data.on_device=true",
        "logging.wandb=disabled", "trainer.progress_bar=false"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lwt.bench.protocol", description=__doc__.split("\n\n")[0])
    p.add_argument("--data-root", required=True, help="the folder holding cifar-10-batches-py")
    p.add_argument("--out-dir", default="runs", help="where the run directory goes (default: runs)")
    p.add_argument("overrides", nargs="*", help="key=value overrides after the protocol's own")
    args = p.parse_args(argv)

    import torch

    from lwt.analysis.pipeline import run
    from lwt.config import load_config
    from lwt.errors import LwtError
    from lwt.run.dir import git_revision

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    overrides = [f"data.root={args.data_root}", f"logging.out_dir={args.out_dir}", *FAST,
                 f"run_name=gpu_protocol_{stamp}", *args.overrides]
    try:
        cfg = load_config(EXPERIMENT, overrides)
        device = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device: on the CPU"
        print(f"[protocol] {EXPERIMENT.name} on {device}; torch {torch.__version__}, git {git_revision()}; "
              f"overrides: {' '.join(overrides[1:])}", flush=True)
        t0 = time.perf_counter()
        result = run(cfg)
        wall = time.perf_counter() - t0
    except LwtError as e:
        print(f"lwt: error: {e}", file=sys.stderr)
        return 2
    for row in result.stages:
        print(f"[protocol] stage {row.depth}: {row.images_per_s:.0f} images/s over {row.epochs} epochs "
              f"(train {row.train_seconds:.1f}s, eval {row.eval_seconds:.1f}s, stage {row.seconds:.1f}s), "
              f"test acc {row.test_acc:.4f}", flush=True)
    print(f"[protocol] total wall time {wall:.1f}s ({wall / 60:.1f} min); final test acc "
          f"{result.final_test_acc:.4f}; wandb imported: {'wandb' in sys.modules}; run dir {result.run_dir}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

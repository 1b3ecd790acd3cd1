"""Which floating-point precision a run trains and evaluates in (trainer.precision)."""

from __future__ import annotations

from contextlib import nullcontext

import torch

from lwt.config import TrainerConfig

AUTOCAST = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def resolve_precision(t: TrainerConfig) -> str:
    """trainer.precision=auto: bf16 autocast where the hardware computes in bf16 natively (a CUDA GPU with
    bf16, or a CPU with AVX512-BF16 or AMX: `lwt bench` measured a greedy stage about 2x faster that way on a
    2-core AVX512-BF16 machine), full float32 elsewhere, where emulated bf16 would be slower."""
    if t.precision != "auto":
        return t.precision
    if t.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    native = [getattr(torch.cpu, name, lambda: False)() for name in ("_is_avx512_bf16_supported",
                                                                      "_is_amx_tile_supported")]
    return "bf16-mixed" if any(native) else "32-true"


def autocast(precision: str, device: torch.device):
    """The autocast context Lightning's mixed-precision plugin uses for ``precision`` (else a no-op), for
    evaluations outside a Trainer that must match what the run reported."""
    dtype = AUTOCAST.get(precision)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()

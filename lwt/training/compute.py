"""Where and how a run computes: its device, its floating-point precision (trainer.precision), evaluation mode.

Shared by training, analysis and bench, so none of them imports another for it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import torch
from torch import nn

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


def check_lightning_options(t: TrainerConfig) -> None:
    """trainer.accelerator / devices / strategy / precision / num_nodes as Lightning itself checks them, by
    building a Trainer that is never run (it writes nothing), before any file of the run exists."""
    import lightning as L

    from lwt.errors import LwtError

    try:
        L.Trainer(accelerator=t.accelerator, devices=t.devices, num_nodes=t.num_nodes, strategy=t.strategy,
                  precision=resolve_precision(t), logger=False, enable_checkpointing=False,
                  enable_progress_bar=False, enable_model_summary=False)
    except Exception as e:  # Lightning raises MisconfigurationException, ValueError, RuntimeError, TypeError
        reason = " ".join(str(e).split()) or type(e).__name__
        raise LwtError(f"trainer.accelerator={t.accelerator!r}, devices={t.devices!r}, strategy={t.strategy!r}, "
                       f"precision={t.precision!r}: Lightning refuses them: {reason[:400]}") from None


def pick_device(accelerator: str = "auto") -> torch.device:
    """The device ``trainer.accelerator`` names; ``auto`` is the GPU when there is one."""
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    if accelerator == "mps":
        return torch.device("mps")
    return torch.device("cpu")


@contextmanager
def evaluating(net: nn.Module, device: torch.device) -> Iterator[None]:
    """``net`` on ``device``, in eval mode, without autograd; its device and train/eval flags come back after.

    Used at the end of training too, where the caller's modules keep their own mix of train/eval flags.
    ``no_grad`` rather than ``inference_mode``: probes train on the features computed here.
    """
    flags = [(m, m.training) for m in net.modules()]
    param = next(net.parameters(), None)
    home = param.device if param is not None else torch.device("cpu")
    net.to(device).eval()
    try:
        with torch.no_grad():
            yield
    finally:
        net.to(home)
        for module, flag in flags:
            module.training = flag


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what the platform module says."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_isa() -> str:
    """The host CPU's widest vector ISA, as ``AMX``, ``AVX-512-BF16``, ``AVX-512``, ``AVX2`` (/proc/cpuinfo
    flags; else ATen's), followed by ``(ATen: X)`` when ATen dispatches to a lower level (ATEN_CPU_CAPABILITY
    caps it, as the golden run does): the kernels float32 and bf16 results depend on."""
    aten = torch.backends.cpu.get_cpu_capability()  # "AVX2", "AVX512", "DEFAULT", "VSX", "ZVECTOR", "SVE256", ...
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
    except OSError:
        pass
    levels = [("AMX", {"amx_tile"}), ("AVX-512-BF16", {"avx512_bf16"}), ("AVX-512", {"avx512f"}), ("AVX2", {"avx2"}),
              ("AVX", {"avx"})]
    hardware = next((name for name, need in levels if need <= flags), None)
    named = {"AVX512": "AVX-512"}.get(aten, aten)
    if hardware is None:
        return named
    ranks = [name for name, _ in levels]
    lower = named == "DEFAULT" or (named in ranks and ranks.index(named) > ranks.index(hardware))
    return f"{hardware} (ATen: {named})" if lower else hardware


def provenance(t: TrainerConfig) -> dict:
    """What a result records about where and how it computed: the resolved precision, the device (CPU model
    or GPU name), the CPU's ISA, the torch version and the number of threads."""
    device = pick_device(t.accelerator)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else (
        "Apple MPS" if device.type == "mps" else cpu_name())
    return {"precision": resolve_precision(t), "device": f"{device.type}: {name}", "cpu_isa": cpu_isa(),
            "torch_version": torch.__version__, "threads": torch.get_num_threads()}

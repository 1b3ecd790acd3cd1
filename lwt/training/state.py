"""What a checkpoint must carry, beyond Lightning's own state, for a killed run to resume exactly.

Lightning saves the weights, optimizer, scheduler, loop counters and each callback's ``state_dict``.
It does not save the random streams, yet the training loader's shuffle and the batch augmentation
both draw from the global torch RNG at every epoch; ``RunState`` puts them (and the last epoch's
metrics) into every checkpoint so that epochs after a resume draw the same numbers as an
uninterrupted run. Checkpoints are written atomically (``AtomicCheckpointIO``), so a kill during a
save leaves the previous checkpoint intact. Everything stored is a plain type or a tensor, so the
files load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import io
import random
import resource
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lwt.config import ModelConfig
from lwt.errors import SIGNALS, Interrupted, LwtError, raise_pending


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    np_state = np.random.get_state(legacy=False)  # {'bit_generator', 'state': {'key', 'pos'}, 'has_gauss', 'gauss'}
    state["numpy"] = {**np_state, "state": {"key": torch.from_numpy(np_state["state"]["key"].astype(np.int64)),
                                            "pos": int(np_state["state"]["pos"])}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np_state = dict(state["numpy"])
    np_state["state"] = {"key": np_state["state"]["key"].numpy().astype(np.uint32), "pos": np_state["state"]["pos"]}
    np.random.set_state(np_state)
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def reset_peak_memory() -> None:
    """Start a phase's CUDA peak afresh (the CPU's peak resident set cannot be reset: see ``peak_memory_mb``)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.reset_peak_memory_stats()


def peak_memory_mb(device: torch.device) -> float:
    """The most memory the phase held, in MiB: on CUDA the tensors allocated on ``device`` since
    ``reset_peak_memory`` (torch.cuda.max_memory_allocated); on the CPU the process's peak resident set so far
    (getrusage's ru_maxrss, monotone over the process: a later phase reads at least an earlier one's)."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return round(peak / (2**20 if sys.platform == "darwin" else 2**10), 1)


def stage_seed(seed: int, stage: int) -> int:
    """Each greedy stage starts from its own seed, so a run resumed at a stage boundary (no checkpoint of
    the new stage yet) draws exactly what the uninterrupted run drew. Distinct for (seed, stage) pairs."""
    return (seed * 1_000_003 + stage) % 2**32


class RunState(L.Callback):
    """RNG streams and last-epoch metrics in every checkpoint; ``checkpoint["lwt"]`` names the network
    and the phase ("stage 2", "e2e") that wrote it, so a mismatched checkpoint can be named on resume."""

    def __init__(self, model: ModelConfig, phase: str):  # phase: Phase.name
        self.model, self.phase = model.model_dump(), phase
        self.metrics: dict[str, float] = {}  # the last finished epoch's, restored when fit has nothing left to run

    def on_train_epoch_end(self, trainer, pl_module):
        self.metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}

    def state_dict(self) -> dict:
        return {"rng": rng_state(), "metrics": dict(self.metrics)}

    def load_state_dict(self, state: dict) -> None:
        set_rng_state(state["rng"])
        self.metrics = dict(state["metrics"])

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["lwt"] = {"model": self.model, "phase": self.phase}


class EpochTimer(L.Callback):
    """Wall seconds of the training loop alone (``seconds``: from an epoch's start to its last training
    batch's end, so the validation pass and the checkpoint that follow are not in it), for images/s, and of
    the validation passes (``val_seconds``); both survive a resume. ``clock``: for tests."""

    def __init__(self, clock=time.perf_counter):
        self.clock = clock
        self.seconds, self.val_seconds = 0.0, 0.0
        self._t0 = self._last = self._val0 = None

    def on_train_epoch_start(self, trainer, pl_module):
        self._t0 = self._last = self.clock()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._last = self.clock()

    def on_train_epoch_end(self, trainer, pl_module):
        if self._t0 is not None:
            self.seconds += self._last - self._t0
        self._t0 = None

    def on_validation_epoch_start(self, trainer, pl_module):
        self._val0 = self.clock()

    def on_validation_epoch_end(self, trainer, pl_module):
        if self._val0 is not None and not trainer.sanity_checking:
            self.val_seconds += self.clock() - self._val0
        self._val0 = None

    def state_dict(self) -> dict:
        return {"seconds": self.seconds, "val_seconds": self.val_seconds}

    def load_state_dict(self, state: dict) -> None:
        self.seconds, self.val_seconds = state["seconds"], state.get("val_seconds", 0.0)


class FiniteLoss(L.Callback):
    """Stops the run at the first non-finite training loss, before its backward pass, so the bad step
    never reaches the weights and the checkpoint on disk (the last epoch end) stays the last good one."""

    def __init__(self, phase: str, checkpoint: Path, hint: str):
        self.phase, self.checkpoint, self.hint = phase, Path(checkpoint), hint

    def on_before_backward(self, trainer, pl_module, loss):
        loss = loss.detach()
        if bool(torch.isfinite(loss)):  # one device sync per step: cheap next to the step itself
            return
        kept = (f"the last good checkpoint is {self.checkpoint}" if self.checkpoint.is_file()
                else f"no checkpoint of {self.phase} was written before it")
        raise LwtError(f"training loss became {float(loss)} at {self.phase}, epoch {trainer.current_epoch + 1}, "
                       f"batch {trainer.fit_loop.epoch_loop.batch_progress.current.ready}; the run stopped and "
                       f"{kept}. {self.hint}")


def atomic_torch_save(obj, path: Path) -> None:
    """``torch.save`` through ``lwt.run.dir.atomic_write_bytes``: serialized first, so a failing write is an
    OSError naming ``path``, and ``path`` never holds a part."""
    from lwt.run.dir import atomic_write_bytes

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temp file beside it, fsyncs it and renames it into place (lwt.run.dir).
    (Lightning's own "atomic" save goes through a temp file in /tmp, whose move is a plain copy across file
    systems.)"""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_torch_save(checkpoint, path)


@contextmanager
def signals_deferred():
    """Inside: SIGINT/SIGTERM take effect at the next batch end (``StopOnSignal``) or when the block ends, never
    in the middle of a write; Lightning's own SIGTERMException (raised at a batch end) becomes Interrupted."""
    SIGNALS["defer"] += 1
    try:
        yield
    except SIGTERMException:
        raise Interrupted(signal.SIGTERM) from None
    finally:
        SIGNALS["defer"] -= 1
    raise_pending()


class StopOnSignal(L.Callback):
    """Raises a SIGINT/SIGTERM that arrived during the batch (lwt.errors.on_signal), between two batches."""

    def on_train_batch_end(self, *args):
        raise_pending()

    def on_validation_batch_end(self, *args):
        raise_pending()

    def on_test_batch_end(self, *args):
        raise_pending()

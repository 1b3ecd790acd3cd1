"""What a finished run reports (``result.json``), as dataclasses written and read here alone.

Rows are keyed by ``depth``, 1-based (greedy stage k trains block k: its row is depth k); on disk a row also
carries ``stage`` (= ``depth``) for readers that key rows by stage, and a row with ``stage`` alone reads as that
depth.
A field a run predates reads as None (missing, never zero). ``results/*_runs.jsonl`` archive the same records.
Before the dataclasses are built, a record is checked against their fields with pydantic (``check``), so a file
of the wrong shape (a string where a number belongs, a row that is no mapping) is one error naming the field;
the dataclasses keep the values exactly as read, so a record written back is the record read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import cache
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from lwt.config.files import read_data, shape_error
from lwt.console import format_table
from lwt.errors import LwtError


def _record(pairs: list[tuple]) -> dict:
    """``asdict``'s dict of one dataclass: a row (``depth`` first) gets ``stage`` beside it."""
    return {"stage": pairs[0][1], **dict(pairs)} if pairs[0][0] == "depth" else dict(pairs)


class _Json:
    def to_json(self) -> dict:
        return asdict(self, dict_factory=_record)

    @classmethod
    def check(cls, d: dict) -> None:
        """ValueError naming the first field of ``d`` whose value has the wrong type for ``cls`` (pydantic)."""
        try:
            _adapter(cls).validate_python(_with_depths(d))
        except ValidationError as e:
            raise ValueError(shape_error(e)) from None

    @classmethod
    def from_json(cls, d: dict):
        """The fields of ``cls`` that ``d`` holds (the others keep their defaults), nested records typed."""
        d = {"depth": d.get("stage"), **d}
        return cls(**{f.name: _load(f.name, d[f.name]) for f in fields(cls) if f.name in d})


@cache
def _adapter(cls) -> TypeAdapter:
    return TypeAdapter(cls)


ROWS = ("stages", "depths", "per_layer")


def _with_depths(d):
    """A copy of a record whose rows (``stages``, ``depths``, ``per_layer``, fine-tuning's) each carry ``depth``
    (older rows carry ``stage`` alone), for ``check``."""
    if not isinstance(d, dict):
        return d
    out = {"depth": d.get("stage"), **d} if "stage" in d else dict(d)
    for key in ROWS:
        if isinstance(out.get(key), list):
            out[key] = [_with_depths(row) for row in out[key]]
    if isinstance(out.get("finetune"), dict):
        out["finetune"] = _with_depths(out["finetune"])
    return out


def _load(name: str, value):
    kind = {"stages": StageRow, "depths": StageRow, "per_layer": LayerRow, "finetune": FineTune}.get(name)
    if kind is None or value is None:
        return value
    return [kind.from_json(v) for v in value] if isinstance(value, list) else kind.from_json(value)


@dataclass(kw_only=True)
class StageRow(_Json):
    """One trained depth: what fitting it logged (train, val acc), its test accuracy and what it cost."""

    depth: int
    train_acc: float | None = None  # running, over augmented batches (``LayerRow.train_acc``: un-augmented)
    val_acc: float | None = None
    test_acc: float
    epochs: int | None = None
    steps: int | None = None
    seconds: float | None = None  # the phase: fit, validation, test, checkpoints
    images_per_s: float | None = None  # over the training loop alone
    train_seconds: float | None = None
    eval_seconds: float | None = None
    stop_reason: str | None = None  # greedy: "budget", or what ended the stage early (lwt.training.curriculum)
    ensemble_test_acc: float | None = None  # greedy, dgl: Belilovsky's ensemble of the stages up to this one
    # training FLOPs of the phase that trained this row (lwt/training/flops.py): a greedy stage's own; e2e and
    # dgl train every depth in one phase, whose FLOPs are on its last row; a copied stage: 0
    train_flops: int | None = None
    # the most memory the phase's process held, in MiB: CUDA, torch.cuda.max_memory_allocated over this phase
    # alone (reset when it starts); CPU, the process's peak resident set (getrusage ru_maxrss) at the phase's end,
    # which never decreases, so a later phase's is at least an earlier one's
    peak_memory_mb: float | None = None


@dataclass(kw_only=True)
class LayerRow(_Json):
    """One depth of the per-layer analysis (lwt.training.evaluate; ``lwt gap`` recomputes it): un-augmented
    accuracies, final weights."""

    depth: int
    train_acc: float
    val_acc: float
    test_acc: float
    gap: float  # train_acc - test_acc
    train_images: int | None = None
    ensemble_val_acc: float | None = None
    ensemble_test_acc: float | None = None


@dataclass(kw_only=True)
class FineTune(_Json):
    """Greedy, then fine-tuned end to end: before and after, and a row per depth of the tuned network."""

    epochs: int
    lr: float
    stage_lr_gamma: float | None = None
    depth: int  # where the greedy curriculum ended
    test_acc_before: float
    test_acc_after: float
    val_acc_before: float | None = None
    val_acc_after: float | None = None
    train_acc_after: float | None = None
    seconds: float | None = None
    train_flops: int | None = None  # the fine-tuning phase's (lwt/training/flops.py)
    depths: list[StageRow]


@dataclass(kw_only=True)
class RunResult(_Json):
    """A finished run: what it was, one ``StageRow`` per trained depth, and the numbers tables compare."""

    experiment: str | None = None
    run_name: str | None = None
    sweep: str | None = None
    mode: str | None = None  # greedy, e2e or dgl
    seed: int | None = None
    model: str | None = None
    dataset: str | None = None
    num_classes: int | None = None
    input_shape: list[int] | None = None  # (C, H, W)
    train_images: int | None = None
    val_images: int | None = None
    test_images: int | None = None
    git_revision: str | None = None  # the code that trained, read when the run started
    stages: list[StageRow]
    final_test_acc: float | None = None  # the network the run ends with (greedy: the last stage, or fine-tuned)
    finetune: FineTune | None = None
    critical: dict | None = None  # greedy: the criterion's record (lwt.training.curriculum.CriticalLayer.decision)
    seconds: float | None = None
    run_dir: str | None = None
    per_layer: list[LayerRow] | None = None  # analysis.per_layer
    selected_depth: int | None = None  # the depth validation picks (e2e: the last)
    selected_val_acc: float | None = None
    selected_test_acc: float | None = None
    ensemble_test_acc: float | None = None  # greedy, dgl: at the last stage
    train_flops: int | None = None  # every phase's training FLOPs, fine-tuning included (lwt/training/flops.py)
    # trainer.match_flops_of (lwt/training/matched.py): {"run": the source folder, "train_flops": its FLOPs,
    # "epochs": the budget chosen, "flops": that budget's training FLOPs}
    flops_matched_to: dict | None = None
    # where and how it computed (lwt/training/compute.py provenance)
    precision: str | None = None  # trainer.precision resolved: bf16-mixed, 32-true, ...
    device: str | None = None  # "cpu: <model name>" or "cuda: <GPU name>"
    cpu_isa: str | None = None  # the host CPU's vector ISA: AVX2, AVX-512, AVX-512-BF16, AMX (+ ATen's if lower)
    torch_version: str | None = None
    threads: int | None = None  # torch.get_num_threads() of the main process

    @property
    def depths(self) -> list[int]:
        """The depths that were trained (a greedy curriculum may stop before the last block)."""
        return [row.depth for row in self.stages]

    @property
    def last(self) -> StageRow:
        return self.stages[-1]

    @classmethod
    def from_json(cls, d) -> RunResult:
        """ValueError saying what is missing when ``d`` is not a complete lwt result."""
        if not isinstance(d, dict):
            raise ValueError(f"it holds a {type(d).__name__}, not an lwt result")
        stages = d.get("stages")
        if not isinstance(stages, list) or not stages:
            raise ValueError("it has no stages")
        if not all(isinstance(s, dict) and isinstance(s.get("test_acc"), (int, float)) for s in stages):
            raise ValueError("a stage has no test accuracy")
        cls.check(d)
        return super().from_json(d)

    @classmethod
    def read(cls, path: Path) -> RunResult:
        """A complete run's result.json (a plain file, never read through a link), or one LwtError saying what is
        wrong with it."""
        data = read_data(path, "json", top=None, follow=False, what="a finished lwt run's result")
        try:
            return cls.from_json(data)
        except (ValueError, TypeError) as e:
            raise LwtError(f"{path} is not a complete lwt run's result: {e}") from None


STAGE_COLUMNS = [("stage", "{:d}"), ("train_acc", "{:.4f}"), ("val_acc", "{:.4f}"), ("test_acc", "{:.4f}"),
           ("ensemble_test_acc", "{:.4f}"), ("epochs", "{:d}"), ("seconds", "{:.1f}"), ("images_per_s", "{:.1f}")]


def stage_table(result: RunResult) -> str:
    """The per-stage table of one result, with a title line naming mode and model."""
    out = [format_table([row.to_json() for row in result.stages], STAGE_COLUMNS, f"{result.mode} {result.model} on "
                        f"{result.dataset} ({result.train_images} train images, seed {result.seed})")]
    if result.selected_depth is not None and result.mode != "e2e":
        out.append(f"last stage {result.last.depth}: test acc {result.last.test_acc:.4f}; selected on validation: "
                   f"stage {result.selected_depth} (val acc {result.selected_val_acc:.4f}, test acc "
                   f"{result.selected_test_acc:.4f})")
    crit = result.critical
    if crit and crit.get("fired"):
        acc = crit.get("reference_val_acc", crit.get("best_val_acc"))  # the critical stage's (older runs: the best)
        out.append(f"critical layer: stage {crit['critical_layer']} (val acc {acc:.4f})")
    ft = result.finetune
    if ft:
        out.append(f"fine-tuned end to end ({ft.epochs} epochs): test acc {ft.test_acc_before:.4f} -> "
                   f"{ft.test_acc_after:.4f}")
    return "\n".join(out)

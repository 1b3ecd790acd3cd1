"""Per-image outputs of a run (``per_image.npz``): the predicted class of every validation and test image at
every evaluated depth, so that two depths, methods or seeds can be compared on the same images (paired
tests such as McNemar's).

What a run writes, and when (lwt/training/train.py):

- greedy: stage k's row, from the stage's own final validation and test passes (the weights, inputs and
  precision that gave its ``StageRow.val_acc`` / ``test_acc``), as soon as the stage ends and before it is
  recorded as finished, so ``read_per_image(run_dir)`` right after a stage holds stages 1..k; a resumed run
  rewrites only the stages it (re)trains and ends with the same file as an uninterrupted one;
- e2e, dgl: a row per depth from the phase's last validation pass and its test pass;
- fine-tuning: a row per depth of the fine-tuned network (``finetune_*``);
- greedy, dgl: at the end, Belilovsky's ensemble at each depth (``*_ensemble_pred``, lwt/training/evaluate.py).

On disk: an .npz (a zip of .npy members, deflated, with fixed timestamps so equal content gives equal bytes),
written atomically. Labels are stored as the smallest unsigned type that holds ``num_classes``; a prediction
is stored as its offset from the label, ``(pred - label) mod num_classes``, which is 0 for a correct
prediction, so the file compresses to about what the errors need (for 5,000 validation and 10,000 test images:
about 4 KB per depth at 75 % accuracy, 8 KB for the labels, 10 KB for the validation images' positions).
``val_index`` / ``test_index`` are the images' positions in the dataset's own training / test split, in the
order of the arrays (an increasing one is stored as its steps): two runs are compared on the same images only
where these agree. The arrays come back as the dataclass below, predictions as int16 (D, N), one row per depth
in ``depths`` order.

``lwt results`` copies the file of each archived run to ``results/NAME_per_image/`` and names it in the
run's ``NAME_runs.jsonl`` line (``per_image``); ``read_archive`` reads it back (None for runs archived
without one).
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from lwt.errors import LwtError
from lwt.run.dir import atomic_write_bytes

FILE = "per_image.npz"
FORMAT = 1
SPLITS = ("val", "test")
# (D, N) prediction arrays besides the stage / depth rows: their depths are ``depths`` (ensemble) or
# ``finetune_depths``
EXTRA = ("val_ensemble_pred", "test_ensemble_pred", "finetune_val_pred", "finetune_test_pred")


@dataclass
class PerImage:
    """Predicted classes of one run, per depth, on its validation and test images."""

    num_classes: int
    depths: list[int]  # the rows of val_pred / test_pred (greedy: the stages done so far)
    val_labels: np.ndarray  # (N_val,) int16
    test_labels: np.ndarray  # (N_test,) int16
    val_pred: np.ndarray  # (D, N_val) int16
    test_pred: np.ndarray  # (D, N_test) int16
    val_index: np.ndarray | None = None  # (N_val,) int32: position in the dataset's training split
    test_index: np.ndarray | None = None  # (N_test,) int32: position in the dataset's test split
    val_ensemble_pred: np.ndarray | None = None  # (D, N_val), greedy and dgl: the ensemble up to each depth
    test_ensemble_pred: np.ndarray | None = None
    finetune_depths: list[int] = field(default_factory=list)  # greedy + finetune.epochs: the tuned network
    finetune_val_pred: np.ndarray | None = None  # (D', N_val)
    finetune_test_pred: np.ndarray | None = None

    @classmethod
    def empty(cls, num_classes: int, val_labels, test_labels, val_index=None, test_index=None) -> PerImage:
        """No depth yet: the labels (and image positions) the rows will be read against."""
        val_labels, test_labels = _int16(val_labels), _int16(test_labels)
        return cls(num_classes=num_classes, depths=[], val_labels=val_labels, test_labels=test_labels,
                   val_pred=np.zeros((0, len(val_labels)), np.int16),
                   test_pred=np.zeros((0, len(test_labels)), np.int16),
                   val_index=None if val_index is None else np.asarray(val_index).astype(np.int32),
                   test_index=None if test_index is None else np.asarray(test_index).astype(np.int32))

    @property
    def val_correct(self) -> np.ndarray:
        """(D, N_val) bool: each depth's prediction is the label."""
        return self.val_pred == self.val_labels

    @property
    def test_correct(self) -> np.ndarray:
        return self.test_pred == self.test_labels

    def correct(self, split: str, depth: int, kind: str = "pred") -> np.ndarray:
        """(N,) bool at ``depth`` for ``split`` (val, test); ``kind``: pred (the stage / depth readout),
        ensemble_pred or finetune (the fine-tuned network's readout)."""
        preds = getattr(self, f"finetune_{split}_pred" if kind == "finetune" else f"{split}_{kind}")
        depths = self.finetune_depths if kind == "finetune" else self.depths
        if preds is None or depth not in depths:
            raise LwtError(f"no {kind} predictions at depth {depth} (depths: {depths if preds is not None else []})")
        return preds[depths.index(depth)] == getattr(self, f"{split}_labels")

    def accuracy(self, split: str, kind: str = "pred") -> dict[int, float]:
        """Depth -> fraction correct (float64; a run's logged accuracy is the float32 of the same ratio)."""
        depths = self.finetune_depths if kind == "finetune" else self.depths
        return {d: float(self.correct(split, d, kind).mean()) for d in depths}

    def below(self, depth: int) -> PerImage:
        """The rows of the depths below ``depth``; no ensemble or fine-tuning (they belong to the network
        that the later rows change)."""
        keep = [i for i, d in enumerate(self.depths) if d < depth]
        return replace(self, depths=[self.depths[i] for i in keep], val_pred=self.val_pred[keep],
                       test_pred=self.test_pred[keep], val_ensemble_pred=None, test_ensemble_pred=None,
                       finetune_depths=[], finetune_val_pred=None, finetune_test_pred=None)

    def with_rows(self, depths: list[int], val_pred, test_pred) -> PerImage:
        """The rows below ``min(depths)`` kept, then these: (D, N) predictions, a row per depth of ``depths``."""
        kept = self.below(min(depths))
        return replace(kept, depths=kept.depths + list(depths),
                       val_pred=np.concatenate([kept.val_pred, _int16(val_pred)]),
                       test_pred=np.concatenate([kept.test_pred, _int16(test_pred)]))

    def check(self) -> None:
        """ValueError unless every array has the shape its depths and labels say."""
        n = {s: len(getattr(self, f"{s}_labels")) for s in SPLITS}
        for s in SPLITS:
            if getattr(self, f"{s}_pred").shape != (len(self.depths), n[s]):
                raise ValueError(f"{s}_pred has shape {getattr(self, f'{s}_pred').shape}, not "
                                 f"({len(self.depths)}, {n[s]})")
            index = getattr(self, f"{s}_index")
            if index is not None and index.shape != (n[s],):
                raise ValueError(f"{s}_index has shape {index.shape}, not ({n[s]},)")
        for name in EXTRA:
            a, split = getattr(self, name), "val" if "val_" in name else "test"
            rows = len(self.finetune_depths if name.startswith("finetune") else self.depths)
            if a is not None and a.shape != (rows, n[split]):
                raise ValueError(f"{name} has shape {a.shape}, not ({rows}, {n[split]})")


def _int16(a) -> np.ndarray:
    return np.asarray(a).astype(np.int16)


def _store_type(num_classes: int):
    return np.uint8 if num_classes <= 256 else np.uint16 if num_classes <= 65536 else np.uint32


def _index_arrays(name: str, index: np.ndarray) -> dict[str, np.ndarray]:
    """An increasing index (the whole test split: 0, 1, 2, ...) as its steps, which compress to almost nothing;
    another (a seeded validation sample) as it is; both in the smallest unsigned type that holds them."""
    steps = np.diff(index, prepend=0)
    if len(index) and steps.min() >= 0:
        return {f"{name}_steps": steps.astype(_store_type(int(steps.max()) + 1))}
    return {name: index.astype(_store_type(int(index.max(initial=0)) + 1))}


def to_bytes(p: PerImage) -> bytes:
    """The .npz of ``p``: predictions as offsets from the labels, fixed zip timestamps (equal content, equal bytes)."""
    p.check()
    c, kind = p.num_classes, _store_type(p.num_classes)
    arrays = {"format": np.array(FORMAT, np.int16), "num_classes": np.array(c, np.int64),
              "depths": np.array(p.depths, np.int16), "finetune_depths": np.array(p.finetune_depths, np.int16)}
    for s in SPLITS:
        labels = getattr(p, f"{s}_labels").astype(np.int64)
        arrays[f"{s}_labels"] = labels.astype(kind)
        if getattr(p, f"{s}_index") is not None:
            arrays.update(_index_arrays(f"{s}_index", getattr(p, f"{s}_index").astype(np.int64)))
        for name in (f"{s}_pred", *(e for e in EXTRA if f"{s}_" in e)):
            if getattr(p, name) is not None:
                arrays[name] = ((getattr(p, name).astype(np.int64) - labels) % c).astype(kind)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, a in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(a, order="C"), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            z.writestr(info, member.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buf.getvalue()


def from_bytes(data: bytes) -> PerImage:
    """ValueError (or another error numpy / zipfile raise) when ``data`` is not a per-image file of this format."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    if int(a.pop("format")) != FORMAT:
        raise ValueError("an unknown format version")
    c = int(a.pop("num_classes"))
    out = {"num_classes": c, "depths": [int(d) for d in a.pop("depths")],
           "finetune_depths": [int(d) for d in a.pop("finetune_depths")]}
    for s in SPLITS:
        labels = a.pop(f"{s}_labels").astype(np.int64)
        out[f"{s}_labels"] = labels.astype(np.int16)
        for name in [k for k in a if k.startswith(f"{s}_") or k.startswith(f"finetune_{s}_")]:
            if name.endswith("_index"):
                out[name] = a.pop(name).astype(np.int32)
            elif name.endswith("_index_steps"):
                out[name.removesuffix("_steps")] = np.cumsum(a.pop(name).astype(np.int64)).astype(np.int32)
            else:
                out[name] = ((a.pop(name).astype(np.int64) + labels) % c).astype(np.int16)
    if a:
        raise ValueError(f"unknown arrays {sorted(a)}")
    p = PerImage(**out)
    p.check()
    return p


def write_per_image(run_dir: Path | str, p: PerImage) -> None:
    """``run_dir/per_image.npz`` holds ``p`` (atomically: the old file or the new one, never a part)."""
    atomic_write_bytes(Path(run_dir) / FILE, to_bytes(p))


def read_file(path: Path | str) -> PerImage:
    """The per-image file at ``path``, or one LwtError naming it."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise LwtError(f"{path} cannot be read ({e.strerror}); it holds a run's per-image predictions, written "
                       "when a stage or phase ends") from None
    try:
        return from_bytes(data)
    except Exception as e:  # numpy and zipfile raise many types for a damaged archive
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        raise LwtError(f"{path} is not a per-image file lwt wrote ({reason}); it is rewritten atomically, so it "
                       "was damaged or edited outside lwt") from None


def read_per_image(run_dir: Path | str) -> PerImage:
    """The run's per-image predictions so far (a greedy run: the stages done), or one LwtError."""
    return read_file(Path(run_dir) / FILE)


def has_per_image(run_dir: Path | str) -> bool:
    return (Path(run_dir) / FILE).is_file()


# ---------------------------------------------------------------- results/NAME_per_image/


def archive_folder(jsonl: Path) -> Path:
    """``results/NAME_runs.jsonl`` -> ``results/NAME_per_image/``."""
    jsonl = Path(jsonl)
    return jsonl.with_name(jsonl.name.removesuffix("_runs.jsonl").removesuffix(".jsonl") + "_per_image")


def archive_name(key: tuple) -> str:
    """A file name for the run ``(sweep, experiment, run_name)``: its set parts joined by ``__``, characters
    other than letters, digits, ``.``, ``-`` and ``_`` replaced by ``_``."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", "__".join(str(k) for k in key if k)) + ".npz"


def archive_run(jsonl: Path, key: tuple, run_dir: Path | str) -> str | None:
    """Copy ``run_dir``'s per-image file next to the archive ``jsonl``; returns its path relative to the
    archive's folder (what the run's archive line records), or None when the run has none."""
    source = Path(run_dir) / FILE
    if not source.is_file():
        return None
    read_file(source)  # a damaged file is named now, not copied
    target = archive_folder(jsonl) / archive_name(key)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = source.read_bytes()
    if not target.is_file() or target.read_bytes() != data:
        atomic_write_bytes(target, data)
    return f"{target.parent.name}/{target.name}"


def prune_archive(jsonl: Path, kept: set[str]) -> None:
    """Delete the per-image files in ``jsonl``'s folder that no archive line names any more."""
    folder = archive_folder(jsonl)
    if folder.is_dir():
        for path in folder.glob("*.npz"):
            if f"{folder.name}/{path.name}" not in kept:
                path.unlink()


def read_archived(jsonl: Path | str, record: dict) -> PerImage | None:
    """The per-image predictions of one archive line (a dict with ``per_image``: a path relative to the
    archive's folder), or None for a run archived without them; one LwtError if the file is missing or bad."""
    name = record.get("per_image")
    return None if not name else read_file(Path(jsonl).parent / name)


def read_archive(jsonl: Path | str) -> dict[tuple, PerImage | None]:
    """Every run of ``results/NAME_runs.jsonl``, keyed ``(sweep, experiment, run_name)`` as lwt results keys
    runs, to its per-image predictions (None for runs archived without them, e.g. every run archived before
    lwt recorded them)."""
    out = {}
    path = Path(jsonl)
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise LwtError(f"{path} cannot be read ({e.strerror})") from None
    for n, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            result, config = record["result"], record.get("config") or {}
            key = (result.get("sweep") or config.get("sweep"), result.get("experiment") or config.get("experiment"),
                   result.get("run_name") or Path(record["run_dir"]).name)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise LwtError(f"{path}, line {n}: not an lwt results archive record ({e})") from None
        out[key] = read_archived(path, record)
    return out

"""experiments/claims.yaml as pydantic models: the thresholds of the verdict rules and one entry per claim (its
type, table, effect and sides); ``load_claims`` turns anything wrong in the file into one line naming the key."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lwt.config import load_yaml
from lwt.config.files import experiments_dir
from lwt.errors import LwtError

ClaimType = Literal["universal", "existential", "interaction", "ranking", "saturation", "dose_response",
                    "descriptive"]


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class Thresholds(_Entry):
    min_n: int = Field(ge=2)
    min_epochs: int = Field(ge=1)
    equiv: float = Field(ge=0)  # accuracy fraction: the band of effects too small to matter
    equiv_layers: float = Field(ge=0)
    sesoi: float = Field(gt=0)  # accuracy fraction: the smallest effect of interest, for power
    sesoi_layers: float = Field(gt=0)
    alpha: float = Field(gt=0, lt=1)
    power: float = Field(gt=0, lt=1)


Side = dict[str, list[str]]  # column -> the values a row of one side holds in it (as the CSV writes them)


class Contrast(_Entry):
    name: str
    a: Side
    b: Side
    adjacent: bool = True  # a ranking's rule uses its adjacent contrasts; the others are shown


class Claim(_Entry):
    """One entry of experiments/claims.yaml (its header says what each key means)."""

    text: str
    type: ClaimType
    table: str
    effect: str
    unit: Literal["points", "layers"]
    metric: str
    cell: list[str]
    a: Side | None = None
    b: Side | None = None
    contrasts: list[Contrast] = []
    across: str | None = None
    arms: bool = False
    factor: str | None = None
    per_depth: str | None = None
    dose: str | None = None
    probes: str | None = None
    margin: float | None = Field(default=None, gt=0)
    test: Literal["t", "sign"] = "t"
    caveat: str | None = None
    figure: str
    command: str

    @model_validator(mode="after")
    def _shape(self):
        sides = (self.a is not None) + (self.b is not None)
        if not ((sides == 2 and not self.contrasts) or (sides == 0 and self.contrasts)):
            raise ValueError("give either both sides a and b, or contrasts (each with a name, a and b)")
        needs = {"ranking": ("contrasts",), "existential": ("arms",), "interaction": ("factor", "per_depth"),
                 "saturation": ("per_depth",), "dose_response": ("dose",)}.get(self.type, ())
        missing = [k for k in needs if not getattr(self, k)]
        if missing:
            raise ValueError(f"a claim of type {self.type} needs {' and '.join(missing)}")
        return self

    def comparisons(self) -> list[Contrast]:
        return self.contrasts or [Contrast(name="", a=self.a, b=self.b)]


class ClaimsFile(_Entry):
    thresholds: Thresholds
    claims: dict[str, Claim]


def load_claims(path: Path | None = None) -> ClaimsFile:
    """The claims file (default: lwt's experiments/claims.yaml, in a checkout or installed); one LwtError line
    naming the file and the key for anything wrong in it."""
    path = Path(path) if path is not None else experiments_dir() / "claims.yaml"
    try:
        return ClaimsFile.model_validate(load_yaml(path.read_text()))
    except OSError as e:
        raise LwtError(f"cannot read the claims file {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise LwtError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    except ValidationError as e:
        error = e.errors()[0]
        key = ".".join(str(p) for p in error["loc"]) or "the top level"
        raise LwtError(f"{path}: {key}: {error['msg']}") from None

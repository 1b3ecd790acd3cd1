"""One claim's verdict: its table read, its type's rule applied."""

from __future__ import annotations

from pathlib import Path

from .common import NOT_TESTED, Result
from .depth import descriptive, dose_response, interaction, saturation
from .rules import existential, ranking, universal
from .source import load_table
from .spec import Claim, Thresholds

TYPES = {"universal": universal, "ranking": ranking, "existential": existential, "interaction": interaction,
         "saturation": saturation, "dose_response": dose_response}


def evaluate(claim: Claim, results: Path, t: Thresholds) -> Result:
    """The claim's verdict, its statistics table and its family tests, on the tables in ``results``."""
    table = load_table(results, claim, t.min_epochs)
    if claim.type == "descriptive":
        result = descriptive(claim, table, t, results)
    elif table is None:
        return Result(NOT_TESTED, why=f"no table results/{claim.table}.csv yet")
    else:
        result = TYPES[claim.type](claim, table, t)
        if not result.lines and not result.why:  # a table that holds none of the claim's runs yet
            result.verdict, result.why = NOT_TESTED, f"no run of results/{claim.table}.csv is on its sides a and b yet"
    result.table = table
    return result

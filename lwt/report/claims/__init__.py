"""``lwt claims``: a verdict per thesis claim, from the committed result tables alone -> docs/thesis_claims.md.

The claims are data, experiments/claims.yaml (``spec``): each names its table, its effect, its sides and its
type, and the type names the verdict rule (``rules``: universal, ranking, existential; ``depth``: interaction,
saturation, dose_response, descriptive). The command reads only what ``lwt results`` and ``lwt probe`` write
(``source``), never a run folder, so a fresh clone rebuilds the same document byte for byte (``render``).

Every effect is a difference paired by seed (``lwt.report.paired.by_seed``), and its interval carries the test
set's sampling noise as well as the seeds' (``lwt.report.stats.Effect``).
"""

from __future__ import annotations

from pathlib import Path

from lwt.run.dir import atomic_write_text

from .evaluate import evaluate
from .render import render
from .spec import ClaimsFile, load_claims


def run(args) -> int:
    text = render(Path(args.results), load_claims(args.claims))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(Path(args.out), text)
    print(f"wrote {args.out}")
    return 0


def add_subparser(sub) -> None:
    p = sub.add_parser("claims", help="a verdict per thesis claim from the committed tables -> docs/thesis_claims.md")
    p.add_argument("--results", default="results", help="folder of `lwt results` tables (default results)")
    p.add_argument("--claims", help="claims file (default: lwt's experiments/claims.yaml)")
    p.add_argument("--out", default="docs/thesis_claims.md", help="document to write (default docs/thesis_claims.md)")
    p.set_defaults(func=run)


__all__ = ["ClaimsFile", "evaluate", "load_claims", "render", "run"]

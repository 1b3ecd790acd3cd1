"""lwt claims: the claims file, the document (byte for byte, and the committed one from the committed tables),
tables with more columns than today's, and the pairing of remedies and critical layers; the rule of each claim
type is in test_claim_rules.py, the statistics in test_claim_stats.py."""

import csv
import json
import shutil
from pathlib import Path

import pytest
from claim_tables import run, write

from lwt.cli import main
from lwt.report.claims import evaluate, load_claims, render

ROOT = Path(__file__).resolve().parents[2]
CLAIMS_FILE = ROOT / "experiments" / "claims.yaml"
SPEC = load_claims(CLAIMS_FILE)
T = SPEC.thresholds


def _remedies(folder: Path, diffs=(0.10, 0.12, 0.11), **kw) -> None:
    runs = [run("net_greedy", "greedy", s, 0.5) for s in range(len(diffs))]
    runs += [run("net_ft", "greedy", s, 0.5 + d, config={"finetune.epochs": 10}) for s, d in enumerate(diffs)]
    write(folder, "remedies_cpu", runs, **kw)


@pytest.mark.parametrize("diffs, kw, expected", [
    ((0.10, 0.12, 0.11), {}, "supported"),
    ((-0.10, -0.12, -0.11), {}, "not supported"),
    ((0.10, 0.12), {}, "not tested"),                                   # n < 3
    ((0.10, 0.12, 0.11), {"stage_end": "plateau"}, "not tested"),       # stopped before the schedule annealed
    ((0.10, 0.12, 0.11), {"epochs": 3}, "not tested"),                  # pre-protocol budget
    ((0.10, 0.12, 0.11), {"test_subset": 2000}, "not tested"),          # not the full test set
])
def test_protocol_and_seeds_gate_every_verdict(tmp_path, diffs, kw, expected):
    _remedies(tmp_path, diffs, **kw)
    (x,) = evaluate(SPEC.claims["C4"], tmp_path, T).lines
    assert x.verdict == expected and x.effect.n == len(diffs)
    assert x.effect.mean == pytest.approx(sum(diffs) / len(diffs))


def test_a_greedy_run_stopped_by_the_online_rule_leaves_the_claim_untested(tmp_path):
    """Claim runs train every stage: one greedy run of the table stopped by curriculum.critical_patience gates
    every comparison of the claim, with the reason."""
    runs = [run("net_greedy", "greedy", s, 0.5) for s in range(3)]
    runs += [run("net_ft", "greedy", s, 0.6, config={"finetune.epochs": 10, "curriculum.critical_patience": 2})
             for s in range(3)]
    write(tmp_path, "remedies_cpu", runs)
    (x,) = evaluate(SPEC.claims["C4"], tmp_path, T).lines
    assert x.verdict == "not tested" and "curriculum.critical_patience" in x.why


def test_document_regenerates_byte_for_byte(tmp_path):
    _remedies(tmp_path)
    out1, out2 = tmp_path / "a.md", tmp_path / "b.md"
    assert main(["claims", "--results", str(tmp_path), "--claims", str(CLAIMS_FILE), "--out", str(out1)]) == 0
    assert main(["claims", "--results", str(tmp_path), "--claims", str(CLAIMS_FILE), "--out", str(out2)]) == 0
    text = out1.read_text()
    assert text == out2.read_text() == render(tmp_path, SPEC)
    assert "| C4: " in text and "| existential |" in text and "+11.00" in text
    assert "no table results/gap_cpu.csv yet" in text  # the other claims: not tested, with their commands


def test_a_table_without_the_claims_runs_leaves_it_untested_with_the_reason(tmp_path):
    """C3-full's swap arms are not in a table that holds only other runs: not tested, and the document says why
    instead of printing an empty statistics table."""
    config = {"curriculum.init_blocks": None, "model.aux.k": 2, "data.train_subset": 45000}
    runs = [run("simple_cnn_greedy", "greedy", s, 0.5, config=config) for s in range(3)]
    runs += [run("simple_cnn_e2e", "e2e", s, 0.6, config=config) for s in range(3)]
    write(tmp_path, "full_scale_cpu", runs)
    r = evaluate(SPEC.claims["C3-full"], tmp_path, T)
    assert r.verdict == "not tested" and not r.lines
    assert r.why == "no run of results/full_scale_cpu.csv is on its sides a and b yet"
    assert f"Not tested: {r.why}." in render(tmp_path, SPEC)


def test_committed_document_matches_committed_tables():
    assert render(ROOT / "results", SPEC) == (ROOT / "docs" / "thesis_claims.md").read_text()


def test_committed_document_says_each_claims_type_statistic_n_power_and_scale():
    text = (ROOT / "docs" / "thesis_claims.md").read_text()
    summary = [line for line in text.splitlines() if line.startswith("| ") and ": " in line.split("|")[1]]
    assert len(summary) == len(SPEC.claims)
    for key, claim in SPEC.claims.items():
        row = next(line for line in summary if line.startswith(f"| {key}: "))
        assert f"| {claim.type} |" in row and f"`{claim.command}`" in row
        assert f"### {key}: " in text
    assert "seeds needed" in text and "underpowered" in text and "train / 10,000 test images" in text
    assert "Holm" in text and "TOST" in text and "F(3, 8)" in text and "runs: 32-true on cpu: " in text
    assert all(f"> **Caveat.** {c.caveat}" in text for c in SPEC.claims.values() if c.caveat)
    assert "slope of the effect on curriculum.init_blocks" in text and "24, 24, 24, 24, 120" in text  # I2 steps


@pytest.mark.slow  # renders the committed tables twice
def test_tables_with_more_columns_read_the_same(tmp_path):
    """The tables of the next protocol will carry more columns (per-image outputs, the test-set size, new config
    keys at their defaults): the document is the same."""
    results = tmp_path / "results"
    shutil.copytree(ROOT / "results", results)
    for path in sorted(results.glob("*_cpu.csv")):
        archive = {json.loads(line)["run_dir"]: json.loads(line) for line in
                   path.with_name(path.stem + "_runs.jsonl").read_text().splitlines()}
        with path.open(newline="") as f:
            reader = csv.DictReader(f)
            rows, columns = list(reader), list(reader.fieldnames)
        at = columns.index("seed")
        columns = [*columns[:at], "trainer.new_option", *columns[at:], "test_images", "per_image", "critical_paired"]
        for r in rows:
            r.update({"trainer.new_option": "", "test_images": archive[r["run_dir"]]["result"]["test_images"],
                      "per_image": f"{r['run_dir']}/per_image.npz", "critical_paired": ""})
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    assert render(results, SPEC) == render(ROOT / "results", SPEC)


def test_malformed_table_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "remedies_cpu.csv").write_text("experiment,mode,model\nx,greedy,net\n")
    assert main(["claims", "--results", str(tmp_path), "--claims", str(CLAIMS_FILE),
                 "--out", str(tmp_path / "c.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "remedies_cpu.csv: missing column(s)" in err and "final_test_acc" in err


def _cut_csv(text: str) -> str:
    lines = text.splitlines(keepends=True)
    return "".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2] + "\n"  # the last row torn mid-way


def _long_row(text: str) -> str:
    lines = text.splitlines(keepends=True)
    lines[2] = lines[2].rstrip("\n") + ",0.5,extra\n"
    return "".join(lines)


def _bad_number(text: str) -> str:
    header, *rows = text.splitlines(keepends=True)
    cells = rows[1].split(",")
    cells[header.split(",").index("final_test_acc")] = "0.5x"
    return "".join([header, rows[0], ",".join(cells), *rows[2:]])


@pytest.mark.parametrize("name, edit, fragments", [
    ("remedies_cpu.csv", _cut_csv, ["remedies_cpu.csv, line 7:", "field(s) where the header has", "lwt results"]),
    ("remedies_cpu.csv", _long_row, ["remedies_cpu.csv, line 3:", "field(s) where the header has"]),
    ("remedies_cpu.csv", _bad_number, ["remedies_cpu.csv, line 3: column final_test_acc holds '0.5x'",
                                       "valid: a number or empty"]),
    ("remedies_cpu.csv", lambda t: t.replace("final_test_acc", "final_acc", 1),
     ["remedies_cpu.csv: missing column(s) final_test_acc"]),
    ("remedies_cpu_runs.jsonl", lambda t: t.replace("\n", "\n{\"run_dir\": \"x\", \"conf", 1),
     ["remedies_cpu_runs.jsonl, line 2: not JSON"]),
    ("remedies_cpu_runs.jsonl", lambda t: t + "[1, 2]\n", ["remedies_cpu_runs.jsonl, line 7: not a run record"]),
])
def test_a_damaged_table_is_refused_naming_the_file_and_line(tmp_path, capsys, name, edit, fragments):
    """A torn, padded or hand-edited table (or its archive) is one line naming the file, the line and what is
    wrong, never a verdict computed without the rows it lost; the document is left as it was."""
    _remedies(tmp_path)
    path = tmp_path / name
    path.write_text(edit(path.read_text()))
    out = tmp_path / "claims.md"
    out.write_text("before\n")
    assert main(["claims", "--results", str(tmp_path), "--claims", str(CLAIMS_FILE), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lwt: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert all(f in err for f in fragments), err
    assert out.read_text() == "before\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "claims.md", "remedies_cpu.csv", "remedies_cpu_runs.jsonl"]


def test_the_claims_file_is_found_by_default():
    """lwt's own experiments/claims.yaml, in a checkout as in a wheel (where experiments/ is package data)."""
    assert load_claims() == SPEC
    assert list(SPEC.claims) == ["K", "C1", "C1-compute", "C2", "C2-compute", "C3", "C3-probes", "C3b", "C3b-gap", "C4",
                                 "I1", "I2", "C2-full", "C2-compute-full", "C3-full", "C3-probes-full",
                                 "C3b-full", "C3b-gap-full", "K-full", "C1-full"]
    types = {"K": "ranking", "C1": "interaction", "C1-compute": "interaction", "C2": "saturation",
             "C2-compute": "saturation", "C3": "dose_response", "C3-probes": "descriptive", "C3b": "universal",
             "C3b-gap": "interaction", "C4": "existential", "I1": "existential", "I2": "existential"}
    assert {k: c.type for k, c in SPEC.claims.items()} == {
        **types, **{f"{k}-full": types[k] for k in ("C2", "C2-compute", "C3", "C3-probes", "C3b", "C3b-gap", "K",
                                                          "C1")}}
    # a claim at full scale reads the full-scale table alone: scales are never pooled in one verdict
    assert {c.table for k, c in SPEC.claims.items() if k.endswith("-full")} == {"full_scale_cpu"}
    assert not any(c.table.startswith("full_scale") for k, c in SPEC.claims.items() if not k.endswith("-full"))


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("    unit: layers", "    unit: percent"),
     "claims.C3b.unit: Input should be 'points' or 'layers'"),
    (lambda t: t.replace("  C1:\n", "  C1:\n    colour: red\n"), "claims.C1.colour: Extra inputs are not permitted"),
    (lambda t: t.replace("    table: gap_cpu\n", ""), "claims.C1.table: Field required"),
    (lambda t: t.replace("  min_n: 3", "  min_n: three"), "thresholds.min_n: Input should be a valid integer"),
    (lambda t: t.replace("    a: {experiment: [belilovsky_k2_e2e, resnet20_e2e, simple_cnn_e2e, vgg11_e2e]}\n", "", 1),
     "claims.C1: Value error, give either both sides a and b"),
    (lambda t: t.replace("claims:\n", "claims:\n  C1: {}\n"), "is not valid YAML: key 'C1' appears twice"),
    (lambda t: t.replace("    type: interaction\n", "    type: anecdotal\n"), "claims.C1.type: Input should be"),
    (lambda t: t.replace("    factor: model\n", ""),
     "claims.C1: Value error, a claim of type interaction needs factor"),
    (lambda t: t.replace("  sesoi: 0.02\n", ""), "thresholds.sesoi: Field required"),
])
def test_a_bad_claims_file_is_one_line_naming_the_file_and_the_key(tmp_path, capsys, edit, message):
    bad = tmp_path / "claims.yaml"
    bad.write_text(edit(CLAIMS_FILE.read_text()))
    assert main(["claims", "--claims", str(bad), "--out", str(tmp_path / "c.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and message in err, err
    assert not (tmp_path / "c.md").exists()


def test_remedies_pair_with_the_plain_greedy_baseline_at_schema_defaults(tmp_path):
    """A fine-tune arm puts finetune.epochs in the table; the plain baseline's 0 (the default) is no remedy."""
    runs = []
    for seed in range(3):
        runs += [run("net_greedy", "greedy", seed, 0.40, config={"finetune.epochs": 0}),
                 run("net_greedy_ft", "greedy", seed, 0.45 + seed / 100, config={"finetune.epochs": 10}),
                 run("net_greedy_lr", "greedy", seed, 0.40, config={"finetune.epochs": 0,
                                                                     "optim.stage_lr_gamma": 0.8})]
    write(tmp_path, "remedies_cpu", runs, test_images=10**8)
    rows = {x.label: x for x in evaluate(SPEC.claims["C4"], tmp_path, T).lines}
    assert set(rows) == {"net / cifar10 / net_greedy_ft finetune.epochs=10",
                         "net / cifar10 / net_greedy_lr optim.stage_lr_gamma=0.8"}
    ft = rows["net / cifar10 / net_greedy_ft finetune.epochs=10"]
    assert ft.effect.n == 3 and ft.effect.mean == pytest.approx(0.06) and ft.verdict == "supported"
    assert rows["net / cifar10 / net_greedy_lr optim.stage_lr_gamma=0.8"].verdict == "not supported"


def test_critical_layer_moves_with_size_largest_against_smallest(tmp_path):
    """C3b: greedy's critical layer at the largest training set minus at the smallest, per aux k, paired by
    seed, in layers; the middle size is not used, and a run that trained all 8 stages without saturating counts
    as 9 (a lower bound). E2E rows have no critical layer and take no part."""
    critical = {500: [3, 4, 4], 1000: [5, 5, 5], 4000: [6, None, 7]}  # None: saturated nowhere in 8 stages
    runs = []
    for size, layers in critical.items():
        cfg = {"data.train_subset": size, "model.aux.k": 2}
        for seed, c in enumerate(layers):
            stages = 8 if c is None else min(8, c + 2)  # critical_patience 2: two more stages, then stop
            runs += [run("g", "greedy", seed, 0.4, stages=[0.4] * stages, critical=c, config=cfg),
                     run("e", "e2e", seed, 0.5, stages=[0.5] * 8, config=cfg)]
    write(tmp_path, "early_overfitting_all_stages_cpu", runs)
    (x,) = evaluate(SPEC.claims["C3b"], tmp_path, T).lines
    assert x.label == "net / cifar10 / 2 / data.train_subset 4000 - 500"
    assert x.effect.n == 3 and x.effect.mean == pytest.approx(((6 - 3) + (9 - 4) + (7 - 4)) / 3)
    assert x.verdict == "supported" and x.effect.test_var == 0  # chosen on the validation set: no test term
    assert "| +3.67 |" in render(tmp_path, SPEC)  # in layers, not x 100 like accuracy points


def test_a_column_every_run_shares_is_read_from_the_archive(tmp_path, capsys):
    """`lwt results` leaves out the config keys its runs do not vary: a full-scale table of one training-set size
    and one aux k has no data.train_subset or model.aux.k column, yet C2-full selects and splits by them; their
    values come from each run's archived config. A column the archive does not hold either is one clear line."""
    runs = []
    for seed in range(3):
        runs += [run("simple_cnn_greedy", "greedy", seed, 0.80, model="simple_cnn", stages=[0.6, 0.7, 0.8, 0.8],
                     critical=3),
                 run("simple_cnn_e2e", "e2e", seed, 0.85, model="simple_cnn", stages=[0.6, 0.7, 0.8, 0.85])]
    write(tmp_path, "full_scale_cpu", runs)
    header = (tmp_path / "full_scale_cpu.csv").read_text().splitlines()[0]
    assert "data.train_subset" not in header and "model.aux.k" not in header
    archive = tmp_path / "full_scale_cpu_runs.jsonl"
    records = [json.loads(line) for line in archive.read_text().splitlines()]
    for r in records:
        r["config"].update({"data.train_subset": 45000, "model.aux.k": 2})
    archive.write_text("".join(json.dumps(r) + "\n" for r in records))
    (line,) = evaluate(SPEC.claims["C2-full"], tmp_path, T).lines
    assert line.label == "simple_cnn / cifar10 / 45000 / 2" and line.effect.n == 3
    for r in records:
        del r["config"]["model.aux.k"]
    archive.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert main(["claims", "--results", str(tmp_path), "--out", str(tmp_path / "c.md")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing column model.aux.k" in err and "full_scale_cpu_runs.jsonl" in err

"""lwt claims: the claims file, the verdict rule on tiny tables in the format `lwt results` writes, and
byte-for-byte output."""

import json
from pathlib import Path

import pytest

from lwt.cli import main
from lwt.report.claims import cells, combine, load_claims, render, verdict

ROOT = Path(__file__).resolve().parents[2]
CLAIMS_FILE = ROOT / "experiments" / "claims.yaml"
SPEC = load_claims(CLAIMS_FILE)

HEADER = "experiment,mode,model,dataset,seed,run_name,final_test_acc,best_val_acc,critical_layer\n"


def _write(d, name, diffs, stage_end="fixed", epochs=20, test_subset=None):
    """A gap table: per seed, greedy at 0.5 and E2E at 0.5 + diff (E2E - greedy = diff)."""
    lines, archive = [HEADER], []
    for seed, diff in enumerate(diffs):
        for mode, acc in (("greedy", 0.5), ("e2e", 0.5 + diff)):
            lines.append(f"net_{mode},{mode},net,cifar10,{seed},r{seed},{acc},{acc},\n")
            archive.append(json.dumps({"config": {"mode": mode, "seed": seed, "data.test_subset": test_subset,
                                                  "curriculum.stage_end": stage_end,
                                                  "curriculum.epochs_per_stage": epochs}}))
    (d / f"{name}.csv").write_text("".join(lines))
    (d / f"{name}_runs.jsonl").write_text("\n".join(archive) + "\n")


@pytest.mark.parametrize("diffs,kw,expected", [
    ([0.10, 0.12, 0.11], {}, "supported"),
    ([-0.10, -0.12, -0.11], {}, "not supported"),
    ([0.001, -0.001, 0.0005], {}, "not supported"),     # inside +-1 point with confidence
    ([0.10, -0.08, 0.02], {}, "inconclusive"),
    ([0.10, 0.12], {}, "not tested"),                     # n < 3
    ([0.10, 0.12, 0.11], {"stage_end": "plateau"}, "not tested"),   # stopped before the schedule annealed
    ([0.10, 0.12, 0.11], {"epochs": 3}, "not tested"),                # pre-protocol budget
    ([0.10, 0.12, 0.11], {"test_subset": 2000}, "not tested"),
])
def test_rule_on_gap_tables(tmp_path, diffs, kw, expected):
    _write(tmp_path, "gap_cpu", diffs, **kw)
    (row,) = cells(SPEC.claims["C1"], tmp_path, SPEC.thresholds)
    assert row["n"] == len(diffs) and row["verdict"] == expected
    assert row["mean"] == pytest.approx(sum(diffs) / len(diffs))


def test_verdict_edges():
    assert verdict(3, 0.001, 0.2, 3, 0.01) == "supported" and verdict(3, -0.2, -0.001, 3, 0.01) == "not supported"
    assert verdict(5, -0.02, 0.2, 3, 0.01) == "inconclusive" and verdict(1, None, None, 3, 0.01) == "not tested"
    assert verdict(3, -0.02, 0.02, 3, 0.01) == "inconclusive" and verdict(3, -0.02, 0.02, 3, 0.05) == "not supported"


def test_document_regenerates_byte_for_byte(tmp_path):
    _write(tmp_path, "gap_cpu", [0.10, 0.12, 0.11])
    out1, out2 = tmp_path / "a.md", tmp_path / "b.md"
    assert main(["claims", "--results", str(tmp_path), "--claims", str(CLAIMS_FILE), "--out", str(out1)]) == 0
    assert main(["claims", "--results", str(tmp_path), "--claims", str(CLAIMS_FILE), "--out", str(out2)]) == 0
    text = out1.read_text()
    assert text == out2.read_text() == render(tmp_path, SPEC)
    assert "| C1: " in text and "**supported**" in text and "+11.00" in text


def test_malformed_table_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "gap_cpu.csv").write_text("experiment,mode,model\nx,greedy,net\n")
    assert main(["claims", "--results", str(tmp_path), "--claims", str(CLAIMS_FILE),
                 "--out", str(tmp_path / "c.md")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "gap_cpu.csv: missing column(s)" in err and "final_test_acc" in err


def test_committed_document_matches_committed_tables():
    assert render(ROOT / "results", SPEC) == (ROOT / "docs" / "thesis_claims.md").read_text()


def test_the_claims_file_is_found_by_default():
    """lwt's own experiments/claims.yaml, in a checkout as in a wheel (where experiments/ is package data)."""
    assert load_claims() == SPEC and list(SPEC.claims) == ["K", "C1", "C2", "C3", "C3b", "C4", "I"]


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace("    unit: layers", "    unit: percent"),
     "claims.C3b.unit: Input should be 'points' or 'layers'"),
    (lambda t: t.replace("  C1:\n", "  C1:\n    colour: red\n"), "claims.C1.colour: Extra inputs are not permitted"),
    (lambda t: t.replace("    table: gap_cpu\n", ""), "claims.C1.table: Field required"),
    (lambda t: t.replace("  min_n: 3", "  min_n: three"), "thresholds.min_n: Input should be a valid integer"),
    (lambda t: t.replace("    a: {mode: [e2e]}\n", "", 1), "claims.C1: Value error, give either both sides a and b"),
    (lambda t: t.replace("claims:\n", "claims:\n  C1: {}\n"), "is not valid YAML: key 'C1' appears twice"),
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
    lines = ["experiment,mode,model,dataset,seed,run_name,final_test_acc,best_val_acc,critical_layer,"
             "finetune.epochs,optim.stage_lr_gamma\n"]
    for seed in range(3):
        lines += [f"net_greedy,greedy,net,cifar10,{seed},s{seed},0.40,0.40,,0,\n",
                  f"net_greedy_ft,greedy,net,cifar10,{seed},s{seed},{0.45 + seed / 100},0.45,,10,\n",
                  f"net_greedy_lr,greedy,net,cifar10,{seed},s{seed},0.40,0.40,,0,0.8\n"]
    (tmp_path / "remedies_cpu.csv").write_text("".join(lines))
    (tmp_path / "remedies_cpu_runs.jsonl").write_text(json.dumps({"config": {
        "mode": "greedy", "curriculum.stage_end": "fixed", "curriculum.epochs_per_stage": 15}}) + "\n")
    rows = {r["label"]: r for r in cells(SPEC.claims["C4"], tmp_path, SPEC.thresholds)}
    assert set(rows) == {"net / cifar10 / net_greedy_ft finetune.epochs=10",
                         "net / cifar10 / net_greedy_lr optim.stage_lr_gamma=0.8"}
    ft = rows["net / cifar10 / net_greedy_ft finetune.epochs=10"]
    assert ft["n"] == 3 and ft["mean"] == pytest.approx(0.06) and ft["verdict"] == "supported"
    assert rows["net / cifar10 / net_greedy_lr optim.stage_lr_gamma=0.8"]["verdict"] == "not supported"


def test_belilovsky_ranking_is_each_adjacent_pair_by_seed(tmp_path):
    """K tests k=2 - k=1 and k=3 - k=2 (and k=3 - k=1), each paired by seed; the ranking holds only when every
    contrast does, so k=3 ahead of k=1 with k=2 between them but not clearly is inconclusive."""
    acc = {1: [0.40, 0.41, 0.42], 2: [0.45, 0.47, 0.46], 3: [0.46, 0.46, 0.48]}
    lines = [HEADER] + [f"b,greedy,belilovsky_k{k},cifar10,{seed},s{seed},{a},{a},\n"
                        for k, accs in acc.items() for seed, a in enumerate(accs)]
    (tmp_path / "belilovsky_cifar10_cpu.csv").write_text("".join(lines))
    (tmp_path / "belilovsky_cifar10_cpu_runs.jsonl").write_text(json.dumps({"config": {
        "mode": "greedy", "curriculum.stage_end": "fixed", "curriculum.epochs_per_stage": 10}}) + "\n")
    rows = {r["label"]: r for r in cells(SPEC.claims["K"], tmp_path, SPEC.thresholds)}
    assert set(rows) == {"cifar10 / k=2 - k=1", "cifar10 / k=3 - k=2", "cifar10 / k=3 - k=1"}
    assert rows["cifar10 / k=2 - k=1"]["mean"] == pytest.approx(0.05) and rows["cifar10 / k=2 - k=1"]["n"] == 3
    assert rows["cifar10 / k=2 - k=1"]["verdict"] == rows["cifar10 / k=3 - k=1"]["verdict"] == "supported"
    assert rows["cifar10 / k=3 - k=2"]["mean"] == pytest.approx(0.02 / 3)  # +1, -1, +2 points: not clear
    assert rows["cifar10 / k=3 - k=2"]["verdict"] == "inconclusive"
    assert combine([r["verdict"] for r in rows.values()]) == "inconclusive"


def test_critical_layer_moves_with_size_largest_against_smallest(tmp_path):
    """C3b: greedy's critical layer at the largest training set minus at the smallest, per aux k, paired by
    seed, in layers; the middle size is not used, and a run that trained all 8 stages without saturating counts
    as 9 (a lower bound). E2E rows have no critical layer and take no part."""
    head = "experiment,mode,model,dataset,data.train_subset,model.aux.k,seed,run_name,final_test_acc,best_val_acc," \
           "critical_layer,gap_depth1," + ",".join(f"test_acc_stage{d}" for d in range(1, 9)) + "\n"
    lines = [head]
    critical = {500: [3, 4, 4], 1000: [5, 5, 5], 4000: [6, None, 7]}  # None: saturated nowhere in 8 stages
    for size, layers in critical.items():
        for seed, c in enumerate(layers):
            stages = 8 if c is None else min(8, c + 2)  # critical_patience 2: two more stages, then stop
            accs = ",".join("0.4" if d <= stages else "" for d in range(1, 9))
            lines.append(f"g,greedy,net,cifar10,{size},2,{seed},r,0.4,0.4,{'' if c is None else c},0.05,{accs}\n")
            lines.append(f"e,e2e,net,cifar10,{size},2,{seed},r,0.5,0.5,,0.04,{','.join(['0.5'] * 8)}\n")
    (tmp_path / "early_overfitting_cpu.csv").write_text("".join(lines))
    (tmp_path / "early_overfitting_cpu_runs.jsonl").write_text(json.dumps({"config": {
        "mode": "greedy", "curriculum.stage_end": "fixed", "curriculum.epochs_per_stage": 15}}) + "\n")
    (row,) = cells(SPEC.claims["C3b"], tmp_path, SPEC.thresholds)
    assert row["label"] == "net / cifar10 / 2 / data.train_subset 4000 - 500"
    assert row["n"] == 3 and row["mean"] == pytest.approx(((6 - 3) + (9 - 4) + (7 - 4)) / 3)
    assert row["verdict"] == "supported"
    assert "| +3.67 |" in render(tmp_path, SPEC)  # in layers, not x 100 like accuracy points

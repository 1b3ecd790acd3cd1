"""The schema: experiment files load, overrides apply, bad input fails with one clear message."""

from __future__ import annotations

import pytest

from lwt.config import check_stage_lists, load_config, parse_overrides
from lwt.errors import LwtError

from conftest import EXPERIMENTS

GREEDY = EXPERIMENTS / "cifar10" / "belilovsky_k2_greedy.yaml"


# sweeps/: test_sweep; claims.yaml (not in a folder): test_claims
EXPERIMENT_FILES = sorted(p for p in EXPERIMENTS.glob("*/*.yaml") if "sweeps" not in p.parts)


@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=lambda p: str(p.relative_to(EXPERIMENTS)))
def test_every_experiment_file_loads_and_validates(path):
    cfg = load_config(path)
    assert cfg.experiment == path.stem
    assert cfg.mode in ("greedy", "e2e")


def test_every_experiment_file_starts_with_a_comment():
    for path in EXPERIMENTS.rglob("*.yaml"):
        assert path.read_text().startswith("#"), f"{path} must begin with a comment (command, hardware, number)"


def test_overrides_are_typed_and_nested():
    cfg = load_config(GREEDY, ["data.train_subset=10000", "curriculum.epochs_per_stage=3", "seed=7",
                               "optim.lr=1", "model.aux.width=32", "data.root=/x"])
    assert cfg.data.train_subset == 10000 and cfg.curriculum.epochs_per_stage == 3 and cfg.seed == 7
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)  # int accepted where float expected
    assert cfg.model.aux.width == 32 and cfg.data.root == "/x"
    assert cfg.run_name == "train_subset-10000_epochs_per_stage-3_lr-1_width-32_seed7"  # data.root: where, not what


def test_file_defaults_and_schema_defaults():
    cfg = load_config(GREEDY)
    assert cfg.model.name == "belilovsky_k2" and cfg.curriculum.epochs_per_stage == 50
    assert cfg.logging.wandb == "offline"  # W&B offline unless asked
    assert cfg.data.val_size == 5000 and cfg.data.train_subset is None


def test_e2e_budget_defaults_to_the_greedy_total():
    cfg = load_config(GREEDY, ["curriculum.epochs_per_stage=3"])
    assert cfg.e2e_epochs(num_stages=4) == 12
    cfg = load_config(GREEDY, ["trainer.max_epochs=5"])
    assert cfg.e2e_epochs(num_stages=4) == 5


@pytest.mark.parametrize("override, fragments", [
    ("foo.bar=1", ["unknown config key 'foo'", "valid keys in the top level", "data", "model"]),
    ("data.nope=1", ["unknown config key 'data.nope'", "train_subset", "val_size"]),
    ("mode=sideways", ["mode='sideways'", "greedy", "e2e"]),
    ("data.name=mnist", ["data.name='mnist'", "cifar10", "cifar100"]),
    ("data.train_subset=lots", ["data.train_subset='lots'", "int"]),
    ("data.augment=3", ["data.augment=3", "bool"]),
    ("data.train_subset=0", ["data.train_subset=0 must be at least 1"]),
    ("optim.stage_lr_mult=[1, 0, 1, 1]", ["optim.stage_lr_mult=[1.0, 0.0, 1.0, 1.0]: every entry must be positive"]),
    ("curriculum.critical_patience=0", ["curriculum.critical_patience=0 must be at least 1"]),  # int | null
    ("curriculum.critical_patience=x", ["curriculum.critical_patience='x' has the wrong type; expected int"]),
    ("curriculum.critical_alpha=1", ["curriculum.critical_alpha=1.0 must be in (0, 1)"]),
    ("curriculum.critical_min_gain=0.01", ["not a config key any more", "curriculum.critical_alpha"]),
    ("logging.wandb=maybe", ["offline", "online", "disabled"]),
    ("seed", ["must look like key=value"]),
    ("data=3", ["'data' must be a mapping"]),
])
def test_bad_input_names_what_is_wrong_and_what_is_valid(override, fragments):
    with pytest.raises(LwtError) as err:
        load_config(GREEDY, [override])
    message = str(err.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(LwtError, match="experiment file not found"):
        load_config(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(LwtError, match="not valid YAML"):
        load_config(bad)


@pytest.mark.parametrize("override, fragments", [
    ("model.widths=[]", ["model.widths=[] gives no block", "at least one width"]),
    ("data.classes=x.txt", ["data.classes='x.txt' is an imagefolder key", "data.name=cifar10 does not take it"]),
    ("data.path=tree", ["data.path='tree' is an imagefolder key", "data.name=cifar10"]),
    ("logging.out_dir=''", ["logging.out_dir=''", "an empty out_dir would write into the working directory"]),
    ("logging.out_dir=' '", ["an empty out_dir would write into the working directory"]),
])
def test_values_that_would_be_ignored_or_misread_are_errors(override, fragments):
    with pytest.raises(LwtError) as err:
        load_config(GREEDY, [override])
    assert "\n" not in str(err.value) and all(f in str(err.value) for f in fragments), str(err.value)


def test_imagefolder_keys_belong_to_data_name_imagefolder(tmp_path):
    assert load_config(GREEDY, ["data.name=imagefolder", "data.path=tree", "data.classes=c.txt"]).data.path == "tree"
    with pytest.raises(LwtError, match="data.name=cifar100 does not take it"):
        load_config(GREEDY, ["data.name=cifar100", "data.path=tree"])


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n", "{}\n"])
def test_an_empty_experiment_file_is_an_error(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(LwtError) as err:
        load_config(path)
    assert str(err.value) == f"{path} is empty; an experiment file sets at least mode and model, e.g. mode: greedy " \
                             "and model: {name: belilovsky_k2}"


def test_max_stages_above_the_network_depth_is_an_error():
    cfg = load_config(GREEDY, ["curriculum.max_stages=5"])
    with pytest.raises(LwtError) as err:
        check_stage_lists(cfg, 4)
    assert "curriculum.max_stages=5 is more than the 4 blocks" in str(err.value) and "valid: 1 to 4" in str(err.value)
    check_stage_lists(load_config(GREEDY, ["curriculum.max_stages=4"]), 4)


def test_parse_overrides_reads_yaml_scalars():
    assert parse_overrides(["a.b=1", "a.c=null", "d=true", "e=[1, 2]", "f=x"]) == {
        "a": {"b": 1, "c": None}, "d": True, "e": [1, 2], "f": "x"}


def test_demo_trains_both_modes_on_the_same_data_each_to_its_annealed_budget():
    from lwt.cli import DEMO_MODES, DEMO_NET, DEMO_OVERRIDES

    greedy, e2e = (load_config(EXPERIMENTS / "cifar10" / f"{DEMO_NET}_{m}.yaml", DEMO_OVERRIDES + DEMO_MODES[m])
                   for m in ("greedy", "e2e"))
    assert greedy.data == e2e.data and greedy.model == e2e.model and greedy.seed == e2e.seed
    assert greedy.mode == "greedy" and e2e.mode == "e2e"
    # docs/protocol.md: every greedy stage trains its whole budget, annealed; E2E anneals over its own
    assert greedy.curriculum.stage_end == "fixed" and greedy.curriculum.critical_patience is None
    assert greedy.optim.schedule == e2e.optim.schedule == "cosine"
    assert e2e.e2e_epochs(4) == 16 and greedy.stage_epochs(1) == 8


def test_every_key_has_a_type_default_meaning_and_an_identity_flag():
    from lwt.config import SECTIONS, Config, flatten, schema_lines, to_dict

    lines = [line for line in schema_lines() if line.startswith("  ")]
    assert [line.split(":")[0].strip() for line in lines] == list(flatten(to_dict(Config())))  # one per key
    for line in lines:
        key, _, rest = line.strip().partition(": ")
        assert " = " in rest and rest.split("  ", 1)[1].strip(), f"{key} lacks a type, default or meaning"
    assert "data.eval_batch_size: int = 500 (at least 1) [how]" in "\n".join(lines)
    assert any(line.startswith("trainer:") for line in schema_lines())
    assert all(line.strip().startswith("data.") for line in schema_lines("data"))
    with pytest.raises(LwtError, match="not a section; choose one of: data, model"):
        schema_lines("nope")
    assert "model.aux" in SECTIONS


def test_identity_decides_the_run_name_and_the_checks_that_compare_runs():
    from lwt.config import identity_differences, is_identity
    from lwt.report.tables import varying_keys

    how = ["data.eval_batch_size=250", "trainer.checkpoint_every_n_epochs=2", "trainer.progress_bar=false",
           "logging.out_dir=elsewhere", "trainer.accelerator=cpu", "analysis.probe_epochs=3", "data.on_device=true"]
    assert load_config(GREEDY, ["seed=2", *how]).run_name == "seed2"  # how-keys: the same folder
    assert not any(is_identity(o.partition("=")[0]) for o in how)
    # identity overrides name the run, in the order given, then the seed
    assert load_config(GREEDY, ["model.width=32", "trainer.devices=2", "optim.lr=1"]).run_name == \
        "width-32_devices-2_lr-1_seed0"
    assert is_identity("trainer.extra.gradient_clip_val") and is_identity("not.a.key")  # unknown: compared
    a, b = {"optim.lr": 0.1, "data.eval_batch_size": 500}, {"optim.lr": 0.2, "data.eval_batch_size": 250}
    assert identity_differences(a, b) == ["optim.lr"]
    runs = [{"config": a}, {"config": b}]
    assert varying_keys(runs) == ["optim.lr"]


def test_config_show_and_schema_on_the_command_line(capsys):
    import yaml

    from lwt.cli import main

    assert main(["config", "show", str(GREEDY), "seed=3", "data.train_subset=100"]) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["seed"] == 3 and shown["data"]["train_subset"] == 100 and shown["run_name"] == "train_subset-100_seed3"
    assert main(["config", "schema", "trainer"]) == 0
    out = capsys.readouterr().out
    assert "trainer.devices: str | list[int] = \"auto\"" in out and "[how]" in out
    assert main(["config", "show", str(GREEDY), "optim.lr=0"]) == 2
    assert "optim.lr=0.0 must be positive" in capsys.readouterr().err

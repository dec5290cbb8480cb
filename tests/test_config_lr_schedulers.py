"""sd-scripts' learning-rate schedulers beyond diffusers' first set: cosine_with_min_lr, warmup_stable_decay and
inverse_sqrt (transformers) and piecewise_constant (diffusers), with their parameters under sd-scripts' names
(lr_scheduler_min_lr_ratio, lr_decay_steps: steps or, below 1, a share of the run, lr_scheduler_timescale,
lr_scheduler_args step_rules=...). sd-scripts TOML, SD-Trainer and kohya_ss JSON files that set them import; a
parameter set beside a scheduler that does not read it is named."""

from __future__ import annotations

import ast
import json

import pytest

from tests.test_config_kohya import SD_SCRIPTS_ARGS
from trainer.config import ConfigError, check, config_from_dict, errors_of, load_config
from trainer.config.kohya import export_kohya, import_kohya

NEW = ("cosine_with_min_lr", "warmup_stable_decay", "inverse_sqrt", "piecewise_constant")
SCHEDULE = ("lr_scheduler", "lr_warmup_steps", "lr_warmup_ratio", "lr_scheduler_num_cycles", "lr_decay_steps",
            "lr_decay_ratio", "lr_scheduler_min_lr_ratio", "lr_scheduler_timescale")


def _load(tmp_path, text: str, name: str = "sd-scripts.toml"):
    (tmp_path / name).write_text(text, encoding="utf-8")
    return load_config(tmp_path / name)


def _findings(optimizer: dict, field: str):
    hits = [f for f in check(config_from_dict({"optimizer": optimizer}), for_training=False) if f.field == field]
    assert all(f.en and f.zh for f in hits)
    return hits


def test_an_sd_scripts_toml_with_warmup_stable_decay_and_a_share_of_the_run_imports(tmp_path):
    cfg = _load(tmp_path, 'lr_scheduler = "warmup_stable_decay"\nlr_warmup_steps = 10\nlr_decay_steps = 0.25\n'
                          "lr_scheduler_min_lr_ratio = 0.1\nnetwork_dim = 8\n")
    o = cfg.optimizer
    assert (o.lr_scheduler, o.lr_warmup_steps, o.lr_decay_steps, o.lr_decay_ratio) == ("warmup_stable_decay", 10, 0,
                                                                                      0.25)
    assert o.lr_scheduler_min_lr_ratio == 0.1 and not errors_of(check(cfg, for_training=False))
    steps = _load(tmp_path, 'lr_scheduler = "warmup_stable_decay"\nlr_decay_steps = 200\n').optimizer
    assert (steps.lr_decay_steps, steps.lr_decay_ratio) == (200, 0.0)


def test_sd_scripts_tomls_with_the_other_schedulers_import(tmp_path):
    o = _load(tmp_path, 'lr_scheduler = "cosine_with_min_lr"\nlr_scheduler_min_lr_ratio = 0.05\n'
                        "lr_scheduler_num_cycles = 1\n").optimizer
    assert (o.lr_scheduler, o.lr_scheduler_min_lr_ratio) == ("cosine_with_min_lr", 0.05)
    o = _load(tmp_path, 'lr_scheduler = "inverse_sqrt"\nlr_warmup_steps = 50\nlr_scheduler_timescale = 500\n').optimizer
    assert (o.lr_scheduler, o.lr_scheduler_timescale) == ("inverse_sqrt", 500)
    # sd-scripts reads each lr_scheduler_args value with ast.literal_eval: the rules come quoted
    cfg = _load(tmp_path, 'lr_scheduler = "piecewise_constant"\nlr_scheduler_args = ["step_rules=\'1:10,0.1:20,0.01\'"]\n')
    assert cfg.optimizer.lr_scheduler == "piecewise_constant"
    assert not errors_of(check(cfg, for_training=False)), errors_of(check(cfg, for_training=False))


def test_a_file_that_leaves_them_out_gets_sd_scripts_defaults(tmp_path):
    o = _load(tmp_path, 'lr_scheduler = "cosine"\nnetwork_dim = 8\n').optimizer
    assert (o.lr_decay_steps, o.lr_decay_ratio, o.lr_scheduler_min_lr_ratio, o.lr_scheduler_timescale) == (0, 0.0, 0.0,
                                                                                                           None)


def test_a_kohya_ss_save_with_the_new_scheduler_and_its_flags_imports(tmp_path):
    from tests.test_config_kohya_ss_json import LOCON

    gui = {**LOCON, "lr_scheduler": "warmup_stable_decay",
           "additional_parameters": "--lr_decay_steps 0.2 --lr_scheduler_min_lr_ratio 0.05"}
    (tmp_path / "lora.json").write_text(json.dumps(gui), encoding="utf-8")
    o = load_config(tmp_path / "lora.json").optimizer
    assert (o.lr_scheduler, o.lr_decay_ratio, o.lr_scheduler_min_lr_ratio) == ("warmup_stable_decay", 0.2, 0.05)
    gui = {**LOCON, "lr_scheduler": "piecewise_constant", "lr_scheduler_args": 'step_rules="1:100,0.5"'}
    (tmp_path / "lora.json").write_text(json.dumps(gui), encoding="utf-8")
    cfg = load_config(tmp_path / "lora.json")
    assert cfg.optimizer.lr_scheduler_args == ["step_rules=1:100,0.5"] and not errors_of(check(cfg))


@pytest.mark.parametrize("optimizer", [
    {"lr_scheduler": "warmup_stable_decay", "lr_decay_ratio": 0.3, "lr_scheduler_min_lr_ratio": 0.1,
     "lr_scheduler_num_cycles": 2},
    {"lr_scheduler": "warmup_stable_decay", "lr_decay_steps": 40},
    {"lr_scheduler": "cosine_with_min_lr", "lr_scheduler_min_lr_ratio": 0.1},
    {"lr_scheduler": "inverse_sqrt", "lr_warmup_steps": 10, "lr_scheduler_timescale": 30},
    {"lr_scheduler": "piecewise_constant", "lr_scheduler_args": ["step_rules=1:10,0.5:20,0.1"]},
])
def test_export_writes_sd_scripts_names_and_imports_back(optimizer):
    cfg = config_from_dict({"optimizer": optimizer})
    out = export_kohya(cfg)
    assert set(out) <= SD_SCRIPTS_ARGS, set(out) - SD_SCRIPTS_ARGS
    back = import_kohya(out)
    assert [getattr(back.optimizer, n) for n in SCHEDULE] == [getattr(cfg.optimizer, n) for n in SCHEDULE]
    assert not errors_of(check(back, for_training=False))


def test_export_writes_what_sd_scripts_needs_to_read_them():
    out = export_kohya(config_from_dict({"optimizer": {"lr_scheduler": "warmup_stable_decay", "lr_decay_ratio": 0.3}}))
    assert out["lr_decay_steps"] == 0.3  # sd-scripts: a float is a share of the run
    # sd-scripts refuses cosine_with_min_lr without the ratio, so a 0 is written, not left out as "off"
    out = export_kohya(config_from_dict({"optimizer": {"lr_scheduler": "cosine_with_min_lr"}}))
    assert out["lr_scheduler_min_lr_ratio"] == 0.0
    assert "lr_scheduler_min_lr_ratio" not in export_kohya(config_from_dict({"optimizer": {"lr_scheduler": "cosine"}}))
    out = export_kohya(config_from_dict({"optimizer": {"lr_scheduler": "piecewise_constant",
                                                       "lr_scheduler_args": ["step_rules=1:10,0.5:20,0.1"]}}))
    (item,) = out["lr_scheduler_args"]
    key, value = item.split("=", 1)  # as sd-scripts splits and evaluates it
    assert key == "step_rules" and ast.literal_eval(value) == "1:10,0.5:20,0.1"


@pytest.mark.parametrize("optimizer, field, readers", [
    ({"lr_scheduler": "cosine", "lr_scheduler_min_lr_ratio": 0.1}, "optimizer.lr_scheduler_min_lr_ratio",
     "cosine_with_min_lr"),
    ({"lr_scheduler": "cosine", "lr_decay_steps": 100}, "optimizer.lr_decay_steps", "warmup_stable_decay"),
    ({"lr_scheduler": "linear", "lr_decay_ratio": 0.2}, "optimizer.lr_decay_ratio", "warmup_stable_decay"),
    ({"lr_scheduler": "constant_with_warmup", "lr_scheduler_timescale": 100}, "optimizer.lr_scheduler_timescale",
     "inverse_sqrt"),
    ({"lr_scheduler": "inverse_sqrt", "lr_scheduler_num_cycles": 2}, "optimizer.lr_scheduler_num_cycles",
     "cosine_with_restarts"),
    ({"lr_scheduler": "piecewise_constant", "lr_scheduler_args": ["step_rules=1:10,0.1"], "lr_warmup_steps": 5},
     "optimizer.lr_warmup_steps", "piecewise_constant"),
])
def test_a_parameter_set_beside_a_scheduler_that_does_not_read_it_is_warned(optimizer, field, readers):
    (f,) = _findings(optimizer, field)
    assert f.level == "warning" and readers in f.en and optimizer["lr_scheduler"] in f.en


@pytest.mark.parametrize("optimizer, field", [
    ({"lr_scheduler": "cosine_with_min_lr", "lr_scheduler_min_lr_ratio": 0.1}, "optimizer.lr_scheduler_min_lr_ratio"),
    ({"lr_scheduler": "warmup_stable_decay", "lr_decay_steps": 10, "lr_scheduler_min_lr_ratio": 0.1},
     "optimizer.lr_scheduler_min_lr_ratio"),
    ({"lr_scheduler": "warmup_stable_decay", "lr_decay_steps": 10}, "optimizer.lr_decay_steps"),
    ({"lr_scheduler": "warmup_stable_decay", "lr_decay_ratio": 0.2}, "optimizer.lr_decay_ratio"),
    ({"lr_scheduler": "inverse_sqrt", "lr_scheduler_timescale": 100}, "optimizer.lr_scheduler_timescale"),
    ({"lr_scheduler": "cosine_with_min_lr", "lr_scheduler_min_lr_ratio": 0.1, "lr_scheduler_num_cycles": 2},
     "optimizer.lr_scheduler_num_cycles"),
    ({"lr_scheduler": "warmup_stable_decay", "lr_decay_steps": 10, "lr_scheduler_num_cycles": 2},
     "optimizer.lr_scheduler_num_cycles"),
    ({"lr_scheduler": "piecewise_constant", "lr_scheduler_args": ["step_rules='1:10,0.1'"]},
     "optimizer.lr_scheduler_args"),
])
def test_the_same_parameters_with_their_scheduler_are_clean(optimizer, field):
    assert not _findings(optimizer, field)


def test_settings_that_leave_a_scheduler_without_its_curve_are_named():
    (f,) = _findings({"lr_scheduler": "warmup_stable_decay"}, "optimizer.lr_decay_steps")
    assert f.level == "warning" and "never decays" in f.en
    (f,) = _findings({"lr_scheduler": "cosine_with_min_lr"}, "optimizer.lr_scheduler_min_lr_ratio")
    assert f.level == "warning" and "cosine" in f.en
    (f,) = _findings({"lr_scheduler": "warmup_stable_decay", "lr_decay_steps": 10, "lr_decay_ratio": 0.2},
                     "optimizer.lr_decay_ratio")
    assert f.level == "error" and "lr_decay_steps" in f.en


@pytest.mark.parametrize("args, says", [
    ([], "step_rules"),
    (["step_rules=1:x,0.1"], "1:x"),
    (["step_rules=1:10"], "last"),
    (["step_rules=1:10,0.1", "gamma=0.5"], "gamma"),
])
def test_piecewise_constant_needs_rules_diffusers_can_read(args, says):
    (f,) = _findings({"lr_scheduler": "piecewise_constant", "lr_scheduler_args": args}, "optimizer.lr_scheduler_args")
    assert f.level == "error" and says in f.en


def test_the_new_parameters_have_ranges():
    for bad in ({"lr_scheduler_min_lr_ratio": 1.5}, {"lr_decay_ratio": 1.5}, {"lr_decay_steps": -1},
                {"lr_scheduler_timescale": 0}, {"lr_scheduler": "cosine_annealing"}):
        with pytest.raises(ConfigError):
            config_from_dict({"optimizer": bad})
    for name in NEW:
        assert config_from_dict({"optimizer": {"lr_scheduler": name}}).optimizer.lr_scheduler == name

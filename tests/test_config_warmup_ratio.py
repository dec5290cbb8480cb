"""Warm-up as a share of the run's steps: sd-scripts reads lr_warmup_steps below 1 as that (0.1: the first 10 %),
and the kohya_ss GUI turns its lr_warmup percent into it. Before, such a TOML failed to import ("should be a valid
integer") and a kohya_ss config with lr_warmup could not be imported at all."""

from __future__ import annotations

import json

import pytest

from trainer.config import ConfigError, check, config_from_dict, errors_of, load_config
from trainer.config.kohya import export_kohya
from trainer.engine.build import warmup_steps


def test_a_fraction_in_an_sd_scripts_file_is_the_ratio(tmp_path):
    (tmp_path / "a.toml").write_text('pretrained_model_name_or_path = "m"\nlr_warmup_steps = 0.1\n', encoding="utf-8")
    cfg = load_config(tmp_path / "a.toml")
    assert cfg.optimizer.lr_warmup_ratio == 0.1 and cfg.optimizer.lr_warmup_steps == 0
    assert export_kohya(cfg)["lr_warmup_steps"] == 0.1  # and back, as sd-scripts writes it


def test_the_kohya_ss_percent_is_the_ratio(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"LoRA_type": "Standard", "lr_warmup": 8, "epoch": 4}),
                                     encoding="utf-8")
    assert load_config(tmp_path / "a.json").optimizer.lr_warmup_ratio == 0.08


def test_the_run_warms_up_for_that_share_of_its_steps():
    o = config_from_dict({"optimizer": {"lr_warmup_ratio": 0.1, "lr_scheduler": "cosine"}}).optimizer
    assert warmup_steps(o, 1000) == 100 and warmup_steps(o, 15) == 1  # sd-scripts: int(ratio * steps)
    o = config_from_dict({"optimizer": {"lr_warmup_steps": 30}}).optimizer
    assert warmup_steps(o, 1000) == 30


def test_steps_and_ratio_together_are_an_error():
    findings = check(config_from_dict({"optimizer": {"lr_warmup_steps": 30, "lr_warmup_ratio": 0.1}}))
    assert "optimizer.lr_warmup_ratio" in [f.field for f in errors_of(findings)]
    with pytest.raises(ConfigError):
        config_from_dict({"optimizer": {"lr_warmup_ratio": 1.0}})  # a share, below 1

"""`check` catches at check time what would only fail (or crash) later: absurd resolutions, malformed
optimizer_args, sample prompts with bad numbers, TOML nested deep enough to overflow the parser."""

from __future__ import annotations

import subprocess
import sys

import pytest

from trainer.config import ConfigError, TrainConfig, apply_overlay, check, errors_of
from trainer.config.toml_io import parse_toml_text

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def errors(overlay: dict) -> list[str]:
    cfg = apply_overlay(TrainConfig(), overlay)
    return [f.text() for f in errors_of(check(cfg, for_training=False))]


def test_absurd_resolution_is_an_error():
    found = errors({"dataset": {"resolution": "100000000,100000000"}})
    assert any(f.startswith("dataset.resolution") and "at most" in f for f in found), found
    assert not errors({"dataset": {"resolution": "1024,1024"}})


@pytest.mark.parametrize("bad", ["=", "a=b=c", "=0.1", "weight decay=0.1", "betas"])
def test_malformed_optimizer_args_are_errors(bad):
    found = errors({"optimizer": {"optimizer_args": [bad]}})
    assert any(f.startswith("optimizer.optimizer_args") and repr(bad) in f for f in found), found


def test_good_optimizer_args_pass():
    assert not errors({"optimizer": {"optimizer_args": ["weight_decay=0.01", "betas=0.9,0.99", "name='a=b'"]}})


@pytest.mark.parametrize("line", ["a cat --w abc", "a cat --h 1e9", "a cat --s 0", "a cat --s 100000",
                                  "a cat --w 100 --h 64", "a cat --l nan"])
def test_bad_sample_prompts_are_errors(line):
    found = errors({"sampling": {"sample_prompts": line, "sample_every_n_epochs": 1}})
    assert any(f.startswith("sampling.sample_prompts") for f in found), found


def test_good_sample_prompts_pass():
    assert not errors({"sampling": {"sample_prompts": "a cat --w 512 --h 768 --s 20 --l 7 --d 1 --n ugly",
                                    "sample_every_n_epochs": 1}})


def test_deeply_nested_toml_is_a_clear_error():
    deep = "a = " + "[" * 1000 + "]" * 1000
    with pytest.raises(ConfigError, match="nested"):
        parse_toml_text(deep, "deep.toml")
    table = "x = " + "{a = " * 600 + "1" + "}" * 600
    with pytest.raises(ConfigError, match="nested"):
        parse_toml_text(table, "deep.toml")


def test_check_cli_reports_a_deep_toml_without_a_traceback(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text("a = " + "[" * 5000 + "]" * 5000, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "trainer", "check", "--config", str(path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout and "nested" in proc.stderr + proc.stdout

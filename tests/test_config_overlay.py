"""Layering settings: `--set key=value`, the custom TOML field, presets, and the CLI verbs as subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.config import (
    ConfigError,
    TrainConfig,
    all_params,
    apply_overlay,
    apply_sets,
    config_from_dict,
    effective_config,
)
from trainer.config.overlay import parse_set
from trainer.config.presets import apply_presets, get_preset

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("item,path,value", [
    ("network.network_dim=16", "network.network_dim", 16),
    ("network_dim = 16", "network.network_dim", 16),
    ("learning_rate=1e-4", "optimizer.learning_rate", 1e-4),
    ("noise_offset=0.05", "noise.noise_offset", 0.05),
    ("shuffle_caption=true", "caption.shuffle_caption", True),
    ("flip_aug=false", "augment.flip_aug", False),
    ("optimizer_args=[\"weight_decay=0.1\", \"betas=0.9,0.99\"]", "optimizer.optimizer_args",
     ["weight_decay=0.1", "betas=0.9,0.99"]),
    ("optimizer_args=weight_decay=0.1", "optimizer.optimizer_args", ["weight_decay=0.1"]),
    ("base_weights_multiplier=[0.5, 1]", "network.base_weights_multiplier", [0.5, 1]),
    ("optimizer_type=Prodigy", "optimizer.optimizer_type", "Prodigy"),
    ("output_name=123", "save.output_name", "123"),
    ("output_name=\"my lora\"", "save.output_name", "my lora"),
    ("resolution=768,512", "dataset.resolution", "768,512"),
    ("base_model=C:\\models\\a b.safetensors", "model.base_model", "C:\\models\\a b.safetensors"),
    ("unet_lr=none", "optimizer.unet_lr", None),
    ("max_token_length=150", "caption.max_token_length", 150),
])
def test_set_parses_values(item, path, value):
    assert parse_set(item) == (path, value)


def test_set_applies_and_validates():
    cfg = apply_sets(TrainConfig(), ["network_dim=16", "shuffle_caption=true", "resolution=768,512",
                                     "optimizer_args=[\"weight_decay=0.1\"]", "unet_lr=2e-4"])
    assert cfg.network.network_dim == 16 and cfg.caption.shuffle_caption is True
    assert cfg.dataset.resolution == "768,512" and cfg.optimizer.optimizer_args == ["weight_decay=0.1"]
    assert cfg.optimizer.unet_lr == 2e-4
    assert apply_sets(cfg, ["unet_lr="]).optimizer.unet_lr is None
    with pytest.raises(ConfigError) as exc:
        apply_sets(TrainConfig(), ["network_dim=0"])
    assert exc.value.findings[0].field == "network.network_dim"


def test_set_names_an_unknown_key_with_a_suggestion():
    with pytest.raises(ConfigError) as exc:
        parse_set("network.network_dimm=16")
    (f,) = exc.value.findings
    assert f.field == "network.network_dimm" and "network.network_dim" in f.en and "network" in f.zh
    with pytest.raises(ConfigError, match="key=value"):
        parse_set("network_dim")


def test_custom_toml_overrides_apply_and_are_validated():
    cfg = config_from_dict({"other": {"custom_toml": "[noise]\nnoise_offset = 0.07\n[network]\nnetwork_dim = 12\n"}})
    assert cfg.noise.noise_offset == 0.0  # the stored settings keep their own values ...
    eff = effective_config(cfg)
    assert eff.noise.noise_offset == 0.07 and eff.network.network_dim == 12  # ... the run uses the overrides
    assert effective_config(eff) == eff
    flat = config_from_dict({"other": {"custom_toml": "network_dim = 8\npretrained_model_name_or_path = 'm'"}})
    assert effective_config(flat).network.network_dim == 8 and effective_config(flat).model.base_model == "m"
    for text, field in (("[network]\nnetwork_dimm = 8", "network.network_dimm"),
                        ("[network]\nnetwork_dim = 0", "network.network_dim"),
                        ("[other]\ncustom_toml = 'x'", "other.custom_toml"),
                        ("what = ", "")):
        with pytest.raises(ConfigError) as exc:
            effective_config(config_from_dict({"other": {"custom_toml": text}}))
        assert exc.value.findings[0].field == field, text


def test_overlay_is_sparse_and_keeps_the_rest():
    base = config_from_dict({"network": {"network_dim": 64}, "caption": {"trigger_word": "zk"}})
    cfg = apply_overlay(base, {"schema_version": 1, "network": {"network_alpha": 8.0}})
    assert (cfg.network.network_dim, cfg.network.network_alpha, cfg.caption.trigger_word) == (64, 8.0, "zk")
    assert base.network.network_alpha == 16.0  # not mutated


def test_presets_stack_in_order_and_unknown_names_are_errors():
    cfg = apply_presets(["novice-character", "memory-6gb"])
    assert cfg.caption.shuffle_caption is True and cfg.speed.mixed_precision == "fp16"
    assert cfg.training.train_batch_size == 1  # the later preset wins
    assert get_preset("memory-8gb").label("zh") == "8 GB 显存"
    with pytest.raises(ConfigError, match="does not exist"):
        get_preset("memory-7gb")


def test_a_preset_with_a_typo_is_an_error_naming_the_key(tmp_path):
    from trainer.config.presets import list_presets

    (tmp_path / "bad.toml").write_text(
        'schema_version = 1\n[preset]\nkind = "memory"\ntitle = {en = "x", zh = "显存"}\n'
        'about = {en = "x", zh = "显存"}\n[training]\ntrain_bach_size = 2\n', encoding="utf-8")
    (preset,) = list_presets(directory=tmp_path)
    with pytest.raises(ConfigError) as exc:
        apply_overlay(TrainConfig(), preset.overlay)
    assert exc.value.findings[0].field == "training.train_bach_size"
    assert "train_batch_size" in exc.value.findings[0].en


def run_cli(*commands: list[str]) -> list[tuple[int, str, str]]:
    """Run `python -m trainer ...` for each command at once (in parallel): (exit code, stdout, stderr)."""
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8"}
    procs = [subprocess.Popen([sys.executable, "-m", "trainer", *c], cwd=ROOT, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, encoding="utf-8") for c in commands]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        results.append((proc.returncode, out, err))
    return results


def test_cli_verbs_as_subprocesses(tmp_path):
    good = tmp_path / "good.toml"
    good.write_text('schema_version = 1\n[model]\nbase_model = "m"\n[dataset]\ntrain_data_dir = "d"\n'
                    '[network]\nnetwork_dim = 8\nnetwork_alpha = 16.0\n', encoding="utf-8")
    ok, bad, broken, schema = run_cli(
        ["check", "--config", str(good), "--set", "caption.keep_tokens=2"],
        ["check", "--config", str(good), "--set", "noise_offset=0.1", "--set", "multires_noise_iterations=6"],
        ["check", "--config", str(good), "--set", "network_dimm=4"],
        ["schema"],
    )
    assert ok[0] == 0, ok[2]
    assert "is larger than network_dim" in ok[1]  # the warning is printed ...
    assert "keep_tokens = 2" in ok[1] and "[network]" in ok[1]  # ... with the effective config
    assert bad[0] == 1 and "noise.multires_noise_iterations" in bad[1]
    assert broken[0] == 2 and "network_dimm" in broken[2] and "'network_dim'" in broken[2]
    assert schema[0] == 0, schema[2]
    props = {name for d in json.loads(schema[1])["$defs"].values() for name in d.get("properties", {})}
    assert {p.name for p in all_params()} <= props


def test_cli_check_in_chinese_and_without_paths(tmp_path, capsys):
    from trainer.__main__ import main

    cfg = tmp_path / "c.toml"
    cfg.write_text("schema_version = 1\n[network]\nnetwork_dim = 8\nnetwork_alpha = 16.0\n", encoding="utf-8")
    assert main(["check", "--config", str(cfg), "--lang", "zh"]) == 1  # base model and dataset missing
    assert "大于 network_dim" in capsys.readouterr().out
    assert main(["check", "--config", str(cfg), "--no-paths"]) == 0
    assert "0 error(s), 1 warning(s)" in capsys.readouterr().out
    assert main(["check", "--config", str(tmp_path / "nope.toml"), "--lang", "zh"]) == 2
    assert "文件不存在" in capsys.readouterr().err

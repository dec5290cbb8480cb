"""Danlu TOML files: encodings, round trips, migrations and errors that name the key."""

from __future__ import annotations

import codecs
import tomllib

import pytest

from trainer.config import (
    ConfigError,
    TrainConfig,
    all_params,
    config_from_dict,
    dump_config,
    load_config,
    save_config,
    toml_io,
)
from trainer.config.schema import SCHEMA_VERSION

TRICKY = 'a "quoted" path\\with\\backslashes, 角色 and a tab\there'
MULTILINE = "first line, 1girl --n bad --w 512\n# a comment\n\nthird line 中文 \"q\" \\ end\n"


def changed_value(p):
    """A valid value of parameter p that differs from its default."""
    if p.kind == "bool":
        return not p.default
    if p.kind == "choice":
        return next(c for c in p.choices if c != p.default)
    if p.kind == "int":
        if p.default is None:  # optional: "not set" -> a value
            return int(p.ge or 0) + 1
        return p.default + 1 if p.le is None or p.default + 1 <= p.le else p.default - 1
    if p.kind == "float":
        lo = p.ge if p.ge is not None else 0.0
        hi = p.le if p.le is not None else lo + 8.0
        if p.default is None:
            return lo + (hi - lo) / 4
        return (p.default + hi) / 2 if p.default < hi else (p.default + lo) / 2
    if p.kind == "list_str":
        return ["conv_dim=4", 'path with "quotes" 路径']
    if p.kind == "list_float":
        return [0.5, 1.25]
    if p.kind == "float_or_list":  # one number per part (text_encoder_lr = [te1, te2])
        return [5e-5, 2e-5]
    return MULTILINE if p.widget == "textarea" else TRICKY


def everything_changed() -> TrainConfig:
    tables: dict = {}
    for p in all_params():
        tables.setdefault(p.group, {})[p.name] = changed_value(p)
    return config_from_dict(tables)


def test_every_field_really_changed():
    cfg, default = everything_changed(), TrainConfig()
    for p in all_params():
        assert getattr(getattr(cfg, p.group), p.name) != getattr(getattr(default, p.group), p.name), p.path


@pytest.mark.parametrize("make", [TrainConfig, everything_changed], ids=["defaults", "everything-changed"])
@pytest.mark.parametrize("sparse", [False, True], ids=["full", "sparse"])
def test_round_trip_is_identity(make, sparse, tmp_path):
    cfg = make()
    text = dump_config(cfg, sparse=sparse)
    back = config_from_dict(tomllib.loads(text))
    assert back == cfg
    assert dump_config(back, sparse=sparse) == text
    path = save_config(cfg, tmp_path / "run.toml", sparse=sparse)
    assert load_config(path) == cfg


def test_full_dump_names_every_parameter_and_version():
    data = tomllib.loads(dump_config(everything_changed()))
    assert data["schema_version"] == SCHEMA_VERSION
    for p in all_params():
        assert p.name in data[p.group], p.path


def test_optional_none_is_left_out_and_reads_back_as_none():
    cfg = config_from_dict({"optimizer": {"unet_lr": 2e-4}})
    data = tomllib.loads(dump_config(cfg))
    assert data["optimizer"]["unet_lr"] == 2e-4 and "text_encoder_lr" not in data["optimizer"]
    assert config_from_dict(data).optimizer.text_encoder_lr is None


CHINESE_CONFIG = """schema_version = 1
# 角色训练配置
[save]
output_name = "角色-明日香"
[caption]
trigger_word = "明日香"
"""


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-16", "utf-8"])
def test_non_utf8_and_bom_files_load(encoding, tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_bytes(CHINESE_CONFIG.encode(encoding))
    if encoding == "utf-8-sig":
        assert path.read_bytes().startswith(codecs.BOM_UTF8)
    cfg = load_config(path)
    assert cfg.save.output_name == "角色-明日香"
    assert cfg.caption.trigger_word == "明日香"


def test_missing_file_and_broken_toml_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("schema_version = 1\n[network\nnetwork_dim = 4\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML") as exc:
        load_config(bad)
    assert str(bad) in str(exc.value)


def test_typo_is_an_error_naming_the_key_with_a_suggestion():
    with pytest.raises(ConfigError) as exc:
        config_from_dict({"schema_version": 1, "network": {"network_dimm": 16}})
    (f,) = exc.value.findings
    assert f.field == "network.network_dimm"
    assert "network_dim" in f.en and "network_dim" in f.zh


def test_typo_of_a_key_from_another_table_names_that_table():
    with pytest.raises(ConfigError) as exc:
        config_from_dict({"schema_version": 1, "dataset": {"noise_ofset": 0.1}})
    assert "noise_offset" in exc.value.findings[0].en and "[noise]" in exc.value.findings[0].en


def test_unknown_table_gets_a_suggestion():
    with pytest.raises(ConfigError) as exc:
        config_from_dict({"schema_version": 1, "netwrok": {"network_dim": 16}})
    assert exc.value.findings[0].field == "netwrok" and "'network'" in exc.value.findings[0].en


def test_key_in_the_wrong_table_says_where_it_belongs(tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_text("schema_version = 1\n[training]\nnoise_offset = 0.1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    (f,) = exc.value.findings
    assert f.field == "training.noise_offset" and "[noise]" in f.en and "[noise]" in f.zh
    with pytest.raises(ConfigError) as exc:
        config_from_dict({"schema_version": 1, "network_dim": 8})
    assert "[network]" in exc.value.findings[0].en


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as exc:
        config_from_dict({"network": {"network_dim": 0, "network_alpah": 1}, "noise": {"foo": 1}})
    fields = {f.field for f in exc.value.findings}
    assert fields == {"network.network_alpah", "noise.foo"}  # unknown keys first, values after they are fixed
    with pytest.raises(ConfigError) as exc:
        config_from_dict({"network": {"network_dim": 0}, "training": {"train_batch_size": "many"}})
    assert {f.field for f in exc.value.findings} == {"network.network_dim", "training.train_batch_size"}


def test_a_table_that_is_not_a_table_is_an_error():
    with pytest.raises(ConfigError) as exc:
        config_from_dict({"schema_version": 1, "network": 5})
    assert exc.value.findings[0].field == "network"


def test_newer_and_malformed_schema_versions_are_errors():
    for version in (SCHEMA_VERSION + 1, 0, "one", True):
        with pytest.raises(ConfigError) as exc:
            config_from_dict({"schema_version": version})
        assert exc.value.findings[0].field == "schema_version"


def test_migration_hook_upgrades_old_files(monkeypatch, tmp_path):
    # pretend version 2 renamed [network] network_rank to network_dim
    def v1_to_v2(data):
        data = dict(data)
        net = dict(data.get("network", {}))
        if "network_rank" in net:
            net["network_dim"] = net.pop("network_rank")
        data["network"] = net
        return data

    monkeypatch.setattr(toml_io, "SCHEMA_VERSION", 2)
    monkeypatch.setattr(toml_io, "MIGRATIONS", {1: v1_to_v2})
    path = tmp_path / "old.toml"
    path.write_text("schema_version = 1\n[network]\nnetwork_rank = 12\n", encoding="utf-8")
    cfg = load_config(path)
    assert cfg.network.network_dim == 12
    assert toml_io.to_toml_dict(cfg)["schema_version"] == 2
    with pytest.raises(ConfigError, match="newer"):
        config_from_dict({"schema_version": 3})


def test_a_file_without_schema_version_but_with_danlu_tables_is_danlu(tmp_path):
    path = tmp_path / "cfg.toml"
    path.write_text("[network]\nnetwork_dim = 12\n[caption]\ntrigger_word = 'zk'\n", encoding="utf-8")
    cfg = load_config(path)
    assert cfg.network.network_dim == 12 and cfg.caption.trigger_word == "zk"

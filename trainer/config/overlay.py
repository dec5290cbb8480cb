"""Layering partial settings onto a config: presets, `--set` overrides and the custom TOML field."""

from __future__ import annotations

import copy
import tomllib
from typing import Any

from trainer.config.errors import ConfigError, error, suggest, suggest_zh
from trainer.config.schema import TrainConfig, all_params, params_by_name, params_by_path
from trainer.config.toml_io import config_from_dict, parse_toml_text


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overlay(cfg: TrainConfig, overlay: dict[str, Any], source: str = "") -> TrainConfig:
    """A new config with the tables of `overlay` (nested, sparse) laid over `cfg`."""
    overlay = {k: v for k, v in overlay.items() if k != "schema_version"}
    return config_from_dict(deep_merge(cfg.model_dump(mode="python"), overlay), source)


def parse_value(text: str) -> Any:
    """A --set value: anything TOML can read as a value (1e-4, true, [\"a\"]), else the plain string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_set(item: str) -> tuple[str, Any]:
    """'network.network_dim=16' or 'network_dim=16' -> ('network.network_dim', 16)."""
    key, sep, value = item.partition("=")
    key = key.strip()
    if not sep:
        raise ConfigError([error(key, "needs a value: write key=value", "缺少取值：请写成 key=value")], "--set")
    info = params_by_path().get(key) or params_by_name().get(key)
    if info is None:
        names = list(params_by_path()) + list(params_by_name())
        raise ConfigError([error(key, "is not a known setting." + suggest(key, names),
                                 "不是已知的设置项。" + suggest_zh(key, names))], "--set")
    value = value.strip()
    if info.optional and value.lower() in ("", "none", "null"):
        return info.path, None
    parsed = parse_value(value)
    if info.kind == "str" and not isinstance(parsed, str):
        parsed = value  # output_name=123 is the text "123"; quotes may still be used for spaces
    elif info.kind.startswith("list_") and not isinstance(parsed, list):
        parsed = [parsed]
    return info.path, parsed


def apply_sets(cfg: TrainConfig, items: list[str]) -> TrainConfig:
    overlay: dict[str, Any] = {}
    for item in items:
        path, value = parse_set(item)
        group, name = path.split(".", 1)
        overlay.setdefault(group, {})[name] = value
    return apply_overlay(cfg, overlay, "--set")


def effective_config(cfg: TrainConfig) -> TrainConfig:
    """The config a run uses: `other.custom_toml` (TOML text) applied on top of everything else."""
    text = cfg.other.custom_toml.strip()
    if not text:
        return cfg
    overlay = _nest_bare_keys(parse_toml_text(text, "other.custom_toml"))
    if "custom_toml" in overlay.get("other", {}):
        raise ConfigError([error("other.custom_toml", "cannot set itself", "不能设置自身")])
    return apply_overlay(cfg, overlay, "other.custom_toml")


def _nest_bare_keys(overlay: dict[str, Any]) -> dict[str, Any]:
    """Custom TOML may also be flat (`noise_offset = 0.05`, as SD-Trainer's custom params are): a bare
    parameter name, ours or sd-scripts', goes into its table. Anything else is left for validation to name."""
    by_key = {p.kohya_key: p for p in all_params() if p.kohya_key} | params_by_name()
    out: dict[str, Any] = {}
    for key, value in overlay.items():
        info = None if isinstance(value, dict) else by_key.get(key)
        if info is None:
            out[key] = deep_merge(out.get(key, {}), value) if isinstance(value, dict) else value
        else:
            out.setdefault(info.group, {})[info.name] = value
    return out

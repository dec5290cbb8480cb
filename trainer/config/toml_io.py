"""Reading and writing Danlu TOML configs, with migrations and errors that name the key."""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from pydantic import ValidationError

from trainer.config.errors import ConfigError, Finding, error, suggest, suggest_zh
from trainer.config.retired import drop_from_v1
from trainer.config.schema import GROUP_NAMES, SCHEMA_VERSION, TrainConfig, params_by_name
from trainer.textio import atomic_write_text, read_text

# MIGRATIONS[n] turns a version-n dict into a version-(n+1) dict. Add one whenever a key is renamed or moved.
MIGRATIONS: dict[int, Any] = {1: drop_from_v1}  # xformers, lowram, v2 retired (trainer/config/retired.py)


def migrate(data: dict[str, Any], source: str = "") -> dict[str, Any]:
    raw = data.get("schema_version", SCHEMA_VERSION)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise ConfigError([error("schema_version", f"must be a whole number from 1 to {SCHEMA_VERSION} (got {raw!r})",
                                 f"必须是 1 到 {SCHEMA_VERSION} 之间的整数（当前为 {raw!r}）")], source)
    version = raw
    if version > SCHEMA_VERSION:
        raise ConfigError([error("schema_version", f"{version} was written by a newer Danlu (this one reads up to "
                                 f"{SCHEMA_VERSION}); update Danlu", f"{version} 由更新版本的丹炉写出（本版本最高支持 "
                                 f"{SCHEMA_VERSION}）；请升级丹炉")], source)
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
    data["schema_version"] = SCHEMA_VERSION
    return data


def _unknown_key_findings(data: dict[str, Any]) -> list[Finding]:
    out = []
    for key, value in data.items():
        if key == "schema_version":
            continue
        if key not in GROUP_NAMES:
            home = params_by_name().get(key)
            if home is not None:
                out.append(error(key, f"belongs in the [{home.group}] table", f"应放在 [{home.group}] 表中"))
            else:
                out.append(error(key, "is not a Danlu setting." + suggest(key, list(GROUP_NAMES)),
                                 "不是丹炉的设置项。" + suggest_zh(key, list(GROUP_NAMES))))
            continue
        if not isinstance(value, dict):
            out.append(error(key, "must be a table ([" + key + "])", "必须是一个表（[" + key + "]）"))
            continue
        fields = list(TrainConfig.model_fields[key].annotation.model_fields)
        for name in value:
            if name in fields:
                continue
            home = params_by_name().get(name)
            if home is not None:
                out.append(error(f"{key}.{name}", f"belongs in [{home.group}], not [{key}]",
                                 f"应放在 [{home.group}] 中，而不是 [{key}]"))
            else:
                en, zh = _suggestion(name, fields)
                out.append(error(f"{key}.{name}", "is not a known setting." + en, "不是已知的设置项。" + zh))
    return out


def _suggestion(name: str, fields: list[str]) -> tuple[str, str]:
    """A close match in the same table, else a close match anywhere with the table it lives in."""
    en = suggest(name, fields)
    if en:
        return en, suggest_zh(name, fields)
    close = difflib.get_close_matches(name, list(params_by_name()), n=1, cutoff=0.6)
    if not close:
        return "", ""
    group = params_by_name()[close[0]].group
    return f" Did you mean '{close[0]}' (in [{group}])?", f"是否想写 [{group}] 中的 '{close[0]}'？"


def _validation_findings(exc: ValidationError) -> list[Finding]:
    out = []
    for e in exc.errors():
        path = ".".join(str(p) for p in e["loc"])
        out.append(error(path, f"{e['msg']} (got {e.get('input')!r})", f"取值无效：{e['msg']}（当前为 {e.get('input')!r}）"))
    return out


def config_from_dict(data: dict[str, Any], source: str = "") -> TrainConfig:
    """Build a config from nested tables, reporting every unknown key and bad value at once."""
    data = migrate(dict(data), source)
    unknown = _unknown_key_findings(data)
    if unknown:
        raise ConfigError(unknown, source)
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_validation_findings(exc), source) from None


MAX_TOML_DEPTH = 64  # far beyond any real config; a deeper file is an accident or an attack


def parse_toml_text(text: str, source: str = "") -> dict[str, Any]:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([error("", f"is not valid TOML: {exc}", f"不是有效的 TOML：{exc}")], source) from None
    except RecursionError:  # tomllib recurses once per level of [ or {
        data = None
    if data is None or _depth(data) > MAX_TOML_DEPTH:
        raise ConfigError([error("", f"is nested more than {MAX_TOML_DEPTH} levels deep (arrays or tables inside "
                                 "each other); a config never needs that", f"嵌套超过 {MAX_TOML_DEPTH} 层"
                                 "（数组或表层层相套）；正常配置不需要这样")], source)
    return data


def _depth(value: Any) -> int:
    """How deeply lists and dicts nest in `value`, counted without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_TOML_DEPTH:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def read_toml_file(path: str | Path) -> dict[str, Any]:
    """Read any TOML file (UTF-8, UTF-8 with BOM, UTF-16 or GBK) into a dict."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError([error("", "does not exist; check the path", "文件不存在；请检查路径")], str(path))
    try:
        text, _ = read_text(path)
    except OSError as exc:  # unreadable, or a FIFO / device that read_text refuses
        raise ConfigError([error("", f"cannot be read ({exc.strerror or exc})", f"无法读取（{exc.strerror or exc}）")],
                          str(path)) from None
    return parse_toml_text(text, str(path))


def looks_like_danlu(data: dict[str, Any]) -> bool:
    """A Danlu file has schema_version, or only Danlu tables holding only their own keys. sd-scripts files
    may also use [model], [dataset], [training] ... sections, but with sd-scripts' key names in them."""
    if "schema_version" in data:
        return True
    if not data or not all(k in GROUP_NAMES and isinstance(v, dict) for k, v in data.items()):
        return False
    return all(name in TrainConfig.model_fields[k].annotation.model_fields for k, v in data.items() for name in v)


def load_config(path: str | Path, family: str | None = None, filled: list | None = None,
                warnings: list | None = None) -> TrainConfig:
    """Load a Danlu TOML, or import a kohya sd-scripts / SD-Trainer TOML when that is what the file is (its
    omitted options then take sd-scripts' defaults, listed into `filled` when given; a Danlu file keeps Danlu's;
    values the import had to change are listed into `warnings`)."""
    from trainer.config.kohya_ss import from_kohya_ss, is_json_config, read_kohya_ss_json

    notes: list = []
    if is_json_config(path):  # the kohya_ss GUI's saves, as the sd-scripts settings it would train them with
        data = from_kohya_ss(read_kohya_ss_json(Path(path)), str(path), notes)
    else:
        data = read_toml_file(path)
        if looks_like_danlu(data):
            return config_from_dict(data, str(path))
    from trainer.config.kohya import import_kohya

    cfg = import_kohya(data, family=family, source=str(path), base_dir=Path(path).parent, filled=filled,
                       warnings=warnings)
    if warnings is not None:
        warnings.extend(notes)
    return cfg


def to_toml_dict(cfg: TrainConfig, sparse: bool = False) -> dict[str, Any]:
    """Nested dict ready for TOML: None values are left out (TOML has no null; absent means default None)."""
    full = cfg.model_dump(mode="json")
    defaults = TrainConfig().model_dump(mode="json") if sparse else None
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    for group in GROUP_NAMES:
        table = {k: v for k, v in full[group].items() if v is not None and not (sparse and defaults[group][k] == v)}
        if table:
            out[group] = table
    return out


def dump_config(cfg: TrainConfig, sparse: bool = False) -> str:
    return tomli_w.dumps(to_toml_dict(cfg, sparse=sparse), multiline_strings=True)


def save_config(cfg: TrainConfig, path: str | Path, sparse: bool = False) -> Path:
    path = Path(path)
    atomic_write_text(path, dump_config(cfg, sparse=sparse))
    return path

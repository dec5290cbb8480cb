"""Presets: sparse TOML overlays on the schema defaults, in presets/<name>.toml.

Each file has a [preset] table (kind: novice | expert | memory | demo | dreambooth | speed, an optional family, title
and about in both languages) and otherwise the same tables as a config file. They are validated by the schema like
any config. A speed preset is cut to what the detected GPU runs safely (trainer/config/fastest.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.config.errors import ConfigError, error
from trainer.config.fastest import for_gpu
from trainer.config.overlay import apply_overlay
from trainer.config.rules import check, errors_of
from trainer.config.schema import TrainConfig
from trainer.config.toml_io import read_toml_file

PRESETS_DIR = Path(__file__).resolve().parents[2] / "presets"
DEMO_DATASET = PRESETS_DIR.parent / "assets" / "demo_dataset"  # what a demo preset trains on by default
DETECT = object()  # apply_presets: look at this machine's GPU
KINDS = ("novice", "expert", "memory", "demo", "dreambooth", "speed")


@dataclass(frozen=True)
class Preset:
    name: str
    kind: str
    family: str | None
    title: dict[str, str]
    about: dict[str, str]
    overlay: dict[str, Any]

    def label(self, lang: str) -> str:
        return self.title.get(lang) or self.title["en"]


def load_preset_file(path: Path) -> Preset:
    data = read_toml_file(path)
    head = data.pop("preset", None)
    if not isinstance(head, dict) or head.get("kind") not in KINDS:
        raise ConfigError([error("preset.kind", f"must be one of {KINDS}", f"必须是 {KINDS} 之一")], str(path))
    for key in ("title", "about"):
        if not isinstance(head.get(key), dict) or not {"en", "zh"} <= set(head[key]):
            raise ConfigError([error(f"preset.{key}", "needs en and zh", "需要 en 与 zh 两种语言")], str(path))
    return Preset(path.stem, head["kind"], head.get("family"), head["title"], head["about"], data)


def list_presets(kind: str | None = None, directory: Path = PRESETS_DIR) -> list[Preset]:
    presets = [load_preset_file(p) for p in sorted(directory.glob("*.toml"))]
    return [p for p in presets if kind is None or p.kind == kind]


def get_preset(name: str, directory: Path = PRESETS_DIR) -> Preset:
    path = directory / f"{name}.toml"
    if not path.is_file():
        names = [p.stem for p in sorted(directory.glob("*.toml"))]
        raise ConfigError([error("preset", f"'{name}' does not exist; one of {names}", f"不存在 '{name}'；可选 {names}")])
    return load_preset_file(path)


def apply_presets(names: list[str], base: TrainConfig | None = None, gpu=DETECT) -> TrainConfig:
    """Lay the named presets over `base` (default: schema defaults), in order. A speed preset is first cut to
    what `gpu` (a GpuInfo, None for no GPU; by default this machine's) runs safely."""
    cfg = base or TrainConfig()
    for name in names:
        preset, source = get_preset(name), f"presets/{name}.toml"
        overlay = preset.overlay
        if preset.kind == "speed":
            overlay = _for_config(for_gpu(overlay, _detected_gpu() if gpu is DETECT else gpu), cfg, source)
        cfg = apply_overlay(cfg, overlay, source)
    return cfg


def _for_config(overlay: dict, cfg: TrainConfig, source: str) -> dict:
    """A speed preset holds switches of every family and precision: keep each one that the config's rules accept
    (channels_last is a U-Net switch; fp8_base cannot be compiled; full_fp16/full_bf16 and fused_backward_pass tie
    mixed_precision), so applying it never turns a valid config into one the rules refuse."""
    before = _errors(cfg)

    def accepted(group: str, key: str, value: Any) -> bool:
        return _errors(apply_overlay(cfg, {group: {key: value}}, source)) <= before  # an unknown key raises here

    return {group: {k: v for k, v in table.items() if accepted(group, k, v)} if isinstance(table, dict) else table
            for group, table in overlay.items()}


def _errors(cfg: TrainConfig) -> set:
    return {(f.field, f.en) for f in errors_of(check(cfg, for_training=False))}


def _detected_gpu():
    from trainer.engine.speed import detect_gpu  # imports torch: only when a speed preset is applied

    return detect_gpu()

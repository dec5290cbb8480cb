"""The whole training configuration, and read-only views of its parameters for forms, docs and tools."""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from trainer.config.groups_core import DatasetGroup, ModelGroup, SaveGroup, TrainingGroup
from trainer.config.groups_data import AugmentGroup, CaptionGroup, NoiseGroup, SamplingGroup
from trainer.config.groups_misc import (
    DreamboothGroup,
    FluxGroup,
    LoggingGroup,
    OtherGroup,
    SpeedGroup,
    ValidationGroup,
)
from trainer.config.groups_network import NetworkGroup
from trainer.config.groups_optim import OptimizerGroup
from trainer.config.groups_publish import PublishGroup
from trainer.config.spec import META_KEY, GroupInfo

SCHEMA_VERSION = 2


class TrainConfig(BaseModel):
    """One training run. Every table of the TOML file is one group."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    schema_version: int = SCHEMA_VERSION
    model: ModelGroup = ModelGroup()
    dataset: DatasetGroup = DatasetGroup()
    save: SaveGroup = SaveGroup()
    publish: PublishGroup = PublishGroup()
    training: TrainingGroup = TrainingGroup()
    optimizer: OptimizerGroup = OptimizerGroup()
    network: NetworkGroup = NetworkGroup()
    caption: CaptionGroup = CaptionGroup()
    noise: NoiseGroup = NoiseGroup()
    augment: AugmentGroup = AugmentGroup()
    sampling: SamplingGroup = SamplingGroup()
    logging: LoggingGroup = LoggingGroup()
    speed: SpeedGroup = SpeedGroup()
    flux: FluxGroup = FluxGroup()
    dreambooth: DreamboothGroup = DreamboothGroup()
    validation: ValidationGroup = ValidationGroup()
    other: OtherGroup = OtherGroup()


GROUP_NAMES: tuple[str, ...] = tuple(n for n in TrainConfig.model_fields if n != "schema_version")


@dataclass(frozen=True)
class ParamInfo:
    """Everything the schema says about one parameter, flattened for consumers."""

    group: str
    name: str
    kind: str  # bool | int | float | str | choice | list_str | list_float | float_or_list
    default: Any
    optional: bool
    choices: tuple[Any, ...]
    en: str
    zh: str
    label_zh: str  # short Chinese label; the English one is humanised from `name`
    level: str
    families: tuple[str, ...]
    networks: tuple[str, ...]  # network types it belongs to; empty: every type
    ge: float | None
    le: float | None
    unit: str | None
    kohya_key: str | None  # None: sd-scripts has no such key
    planned: bool
    planned_choices: tuple[Any, ...]
    widget: str | None
    step: float | None
    picks: str | None  # "models" / "datasets": the workspace list a form offers beside this path field

    @property
    def path(self) -> str:
        return f"{self.group}.{self.name}"

    def help(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en

    def available_choices(self) -> tuple[Any, ...]:
        return tuple(c for c in self.choices if c not in self.planned_choices)


def group_info(group: str) -> GroupInfo:
    return TrainConfig.model_fields[group].annotation.INFO


def _kind(annotation: Any) -> tuple[str, bool, tuple[Any, ...]]:
    """Map a field annotation to (kind, optional, choices)."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        if args == [float, list[float]]:  # one number, or one per part (text_encoder_lr per encoder)
            return "float_or_list", optional, ()
        annotation = args[0]
        origin = typing.get_origin(annotation)
    if origin is Literal:
        return "choice", optional, typing.get_args(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        return f"list_{item.__name__}", optional, ()
    return annotation.__name__, optional, ()


def _bounds(field) -> tuple[float | None, float | None]:
    ge = le = None
    for m in field.metadata:
        ge = getattr(m, "ge", ge)
        le = getattr(m, "le", le)
    return ge, le


@lru_cache(maxsize=1)
def all_params() -> tuple[ParamInfo, ...]:
    out = []
    for group in GROUP_NAMES:
        cls = TrainConfig.model_fields[group].annotation
        for name, field in cls.model_fields.items():
            meta = field.json_schema_extra[META_KEY]
            kind, optional, choices = _kind(field.annotation)
            ge, le = _bounds(field)
            kohya = meta["kohya"]
            out.append(ParamInfo(
                group=group, name=name, kind=kind, default=field.default, optional=optional, choices=choices,
                en=field.description, zh=meta["zh"], label_zh=meta["label_zh"], level=meta["level"],
                families=tuple(meta["families"]), networks=tuple(meta.get("networks", ())),
                ge=ge, le=le, unit=meta["unit"], kohya_key=name if kohya is None else (kohya or None),
                planned=meta["planned"], planned_choices=tuple(meta["planned_choices"]), widget=meta["widget"],
                step=meta["step"], picks=meta["picks"],
            ))
    return tuple(out)


@lru_cache(maxsize=1)
def params_by_path() -> dict[str, ParamInfo]:
    return {p.path: p for p in all_params()}


@lru_cache(maxsize=1)
def params_by_name() -> dict[str, ParamInfo]:
    """Parameter names are unique across groups, so a bare name also finds its parameter."""
    return {p.name: p for p in all_params()}


def get_value(cfg: TrainConfig, path: str) -> Any:
    group, name = path.split(".", 1)
    return getattr(getattr(cfg, group), name)


def to_nested(cfg: TrainConfig) -> dict[str, Any]:
    return cfg.model_dump(mode="python")


def json_schema() -> dict[str, Any]:
    return TrainConfig.model_json_schema()

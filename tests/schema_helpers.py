"""A schema with made-up parameters, for tests of what the schema drives (forms, rules) that must not depend on
which real parameters exist: e.g. planned ones, of which the real schema has none left."""

from __future__ import annotations

import contextlib
from typing import ClassVar, Literal

from pydantic import create_model

from trainer.config import TrainConfig, schema
from trainer.config.groups_data import NoiseGroup
from trainer.config.spec import param


class PlannedNoise(NoiseGroup):
    """The noise group with a planned switch and a parameter with a planned choice."""

    INFO: ClassVar = NoiseGroup.INFO
    pyramid_wobble: bool = param(False, "Wobble the pyramid.", "摆动金字塔。", planned=True, label_zh="金字塔摆动")
    pyramid_shape: Literal["square", "round", "star"] = param(
        "square", "Shape of the pyramid's base.", "金字塔底面的形状。", planned_choices=("star",), label_zh="金字塔形状")


@contextlib.contextmanager
def noise_group(monkeypatch, group):
    """The schema with `group` (a NoiseGroup with more fields) as its noise group, for the `with` body; yields
    the patched TrainConfig class."""
    patched = create_model("TrainConfig", __base__=TrainConfig, noise=(group, group()))
    monkeypatch.setattr(schema, "TrainConfig", patched)
    _clear_caches()
    try:
        yield patched
    finally:
        monkeypatch.undo()
        _clear_caches()


def _clear_caches() -> None:
    """Every parameter list the schema caches, so none outlives the patch (params_by_name kept a made-up one)."""
    for cached in (schema.all_params, schema.params_by_path, schema.params_by_name):
        cached.cache_clear()

"""How one training parameter is declared: `param(...)` wraps pydantic's Field with Danlu's metadata.

Every parameter is declared once, in one of the groups_*.py modules, with its type (the annotation),
default, range, help in English and Chinese, short Chinese label, level, families, and its kohya sd-scripts
key. Forms, presets, TOML io, kohya import/export, CLI overrides and docs all read this metadata; nothing
repeats it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import Field

# The families a config may name: those trainer.families trains (a test keeps the two equal; importing the registry
# here would import trainer.memory, which imports this package)
FAMILIES = ("sd15", "sdxl", "flux")
LEVELS = ("novice", "expert")
PICKS = (None, "models", "datasets")  # workspace lists a path field can offer (ui.components.dataset_picker)
META_KEY = "danlu"


def param(
    default: Any,
    en: str,
    zh: str,
    *,
    label_zh: str,
    ge: float | None = None,
    le: float | None = None,
    level: str = "expert",
    families: tuple[str, ...] = FAMILIES,
    networks: tuple[str, ...] = (),
    unit: str | None = None,
    kohya: str | None = None,
    planned: bool = False,
    planned_choices: tuple[str, ...] = (),
    widget: str | None = None,
    step: float | None = None,
    picks: str | None = None,
) -> Any:
    """Declare a parameter. `label_zh` is its short Simplified Chinese form label (required: the English
    label is humanised from the name, a Chinese one cannot be). `kohya` is its sd-scripts key when that
    differs from ours (None: same name; "" : sd-scripts has no such key). `planned` marks a parameter the
    engine does not implement yet: setting it to anything but its default is an error, and the UI hides it.
    `planned_choices` does the same for single choices of a Literal. `widget` overrides the form's widget
    ("textarea", "path"). `networks` names the network types (network.network_module values) the parameter
    belongs to; empty: every type. Forms show it only while one of them is chosen. `picks` ("models" or
    "datasets", path fields only) puts a list of that kind of workspace entry beside the field."""
    assert level in LEVELS, level
    assert label_zh.strip(), "every parameter needs a Chinese label (label_zh)"
    assert all(f in FAMILIES for f in families), families
    assert picks in PICKS and (picks is None or widget == "path"), picks
    meta = {
        "zh": zh,
        "label_zh": label_zh,
        "level": level,
        "families": list(families),
        "networks": list(networks),
        "unit": unit,
        "kohya": kohya,
        "planned": planned,
        "planned_choices": list(planned_choices),
        "widget": widget,
        "step": step,
        "picks": picks,
    }
    return Field(default=default, ge=ge, le=le, description=en, json_schema_extra={META_KEY: meta})


@dataclass(frozen=True)
class GroupInfo:
    """A group's title and blurb, shown as a collapsible section in the expert form."""

    en: str
    zh: str
    families: tuple[str, ...] = FAMILIES

"""Model families (SD1.5, SDXL, Flux, ...): one package each, trainer/families/<name>/.

A family's package `__init__` holds its `SPEC` (trainer.families.spec.FamilySpec, no torch): the names,
sd-scripts' LoRA key naming and the memory-estimate figures. Its `engine` module holds the object behind
the small interface in `base.Family` that the engine asks for everything else: loading the parts, turning
captions into conditioning, extra U-Net inputs, the training target and the preview pipeline. Adding a
family is adding a package and its name below.
"""

from __future__ import annotations

from importlib import import_module

FAMILIES = ("sd15", "sd2", "sdxl", "flux")


def get_spec(name: str):
    """The family's FamilySpec (imports no torch: the UI and the config may call it)."""
    if name not in FAMILIES:
        raise ValueError(f"model family {name!r} is not one Danlu knows; choose one of {', '.join(FAMILIES)}")
    return import_module(f"{__name__}.{name}").SPEC


def all_specs() -> list:
    return [get_spec(name) for name in FAMILIES]


def trained_families() -> tuple[str, ...]:
    """The families the engine trains (those with an engine module)."""
    return tuple(spec.name for spec in all_specs() if spec.engine)


def get_family(name: str):
    """The family object for `name` (imports torch and diffusers: call it from the engine, not the config)."""
    engine = get_spec(name).engine if name in FAMILIES else None
    if engine is None:
        raise ValueError(f"model.family {name!r} has no training engine yet; choose one of "
                         f"{', '.join(trained_families())}")
    return import_module(engine).FAMILY

"""Model families (SD1.5, SDXL, ...): one module each, behind the small interface in `base.Family`.

The engine asks `get_family(cfg.model.family)` for everything family-specific: loading the parts, the
adapter key names, turning captions into conditioning, extra U-Net inputs, the training target, the
preview pipeline and `ss_base_model_version`. Adding a family is adding a module and one line below.
"""

from __future__ import annotations

from importlib import import_module

MODULES = {"sd15": "trainer.families.sd15", "sdxl": "trainer.families.sdxl", "flux": "trainer.families.flux"}


def get_family(name: str):
    """The family object for `name` (imports torch and diffusers: call it from the engine, not the config)."""
    if name not in MODULES:
        raise ValueError(f"model.family {name!r} has no training engine yet; choose one of {sorted(MODULES)}")
    return import_module(MODULES[name]).FAMILY

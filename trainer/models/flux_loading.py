"""Loading a Flux.1 base model for training: a diffusers folder or hub id (the whole pipeline)."""

from __future__ import annotations

from pathlib import Path

import torch


def load_flux_parts(model_cfg, *, cache_dir: Path, progress=None):
    """FluxParts for `model.base_model`. Separate ae/clip_l/t5xxl files are not read yet: say so."""
    from trainer.models.loading import load_flux

    spec = model_cfg.base_model
    separate = [name for name in ("ae", "clip_l", "t5xxl") if getattr(model_cfg, name, "")]
    if separate or Path(spec).expanduser().is_file():
        raise ValueError(f"model.base_model {spec}: a single Flux transformer file with separate ae/clip_l/t5xxl "
                         "files is not supported yet; use a diffusers Flux folder or hub id "
                         "(e.g. black-forest-labs/FLUX.1-dev)")
    return load_flux(spec, cache_dir=cache_dir, dtype=torch.float32, progress=progress)

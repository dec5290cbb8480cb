"""Loading a Flux.1 base model for training: a diffusers folder or hub id (the whole pipeline), or a single BFL
transformer file with separate ae/clip_l/t5xxl files (trainer.models.flux_single_file)."""

from __future__ import annotations

from pathlib import Path

import torch


def load_flux_parts(model_cfg, *, cache_dir: Path, progress=None, dtype: torch.dtype = torch.float32,
                    vae_dtype: torch.dtype | None = None):
    """FluxParts for `model.base_model` (and model.ae/clip_l/t5xxl when it is a single transformer file), the
    transformer and text encoders read straight into `dtype` and the VAE into `vae_dtype` (default `dtype`):
    a 12B transformer read in float32 first would take 48 GB of memory before any cast."""
    from trainer.models.loading import load_flux

    spec = model_cfg.base_model
    if Path(spec).expanduser().is_file():
        from trainer.models.flux_single_file import load_flux_files

        return load_flux_files(model_cfg, dtype=dtype, vae_dtype=vae_dtype, progress=progress)
    separate = [f"model.{name}" for name in ("ae", "clip_l", "t5xxl") if getattr(model_cfg, name, "")]
    if separate:
        raise ValueError(f"{', '.join(separate)} apply only to a single Flux transformer file in model.base_model; "
                         f"{spec} is a folder or hub id that has its own parts: clear them")
    return load_flux(spec, cache_dir=cache_dir, dtype=dtype, vae_dtype=vae_dtype, progress=progress)

"""Base models for the benchmarks, built offline: the tiny test models, or full-size SD1.5 / SDXL / Flux
architectures with random weights from the configs in assets/model_configs (nothing is downloaded).

Random weights train at the same speed as real ones: speed depends on shapes, not values.
"""

from __future__ import annotations

from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "assets" / "model_configs"


def random_models(folder: Path, device: str, dtype: torch.dtype, seed: int, **parts) -> dict:
    """Each part (name=model class) built from its config in `folder`/name with random weights, in `dtype`; cast
    one at a time, so a full-size float32 copy of only one part exists at once."""
    torch.manual_seed(seed)
    out = {}
    with torch.device(device):
        for name, cls in parts.items():
            if hasattr(cls, "load_config"):  # a diffusers model
                model = cls.from_config(cls.load_config(folder / name))
            else:  # a transformers model
                model = cls(cls.config_class.from_pretrained(folder / name))
            out[name] = model.to(dtype)
    return out


def full_sd15_pipeline(device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0):
    """SD1.5's real architecture (860M U-Net, CLIP-L, VAE) with random weights."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    cfg = CONFIGS / "sd15"
    parts = random_models(cfg, device, dtype, seed, unet=UNet2DConditionModel, vae=AutoencoderKL,
                         text_encoder=CLIPTextModel)
    return StableDiffusionPipeline(**parts, tokenizer=CLIPTokenizer.from_pretrained(cfg / "tokenizer"),
                                   scheduler=PNDMScheduler.from_pretrained(cfg / "scheduler"),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def full_sdxl_pipeline(device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0):
    """SDXL base's real architecture (2.6B U-Net, CLIP-L + bigG, VAE) with random weights."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    cfg = CONFIGS / "sdxl"
    parts = random_models(cfg, device, dtype, seed, unet=UNet2DConditionModel, vae=AutoencoderKL,
                         text_encoder=CLIPTextModel, text_encoder_2=CLIPTextModelWithProjection)
    return StableDiffusionXLPipeline(**parts, tokenizer=CLIPTokenizer.from_pretrained(cfg / "tokenizer"),
                                     tokenizer_2=CLIPTokenizer.from_pretrained(cfg / "tokenizer_2"),
                                     scheduler=EulerDiscreteScheduler.from_pretrained(cfg / "scheduler"),
                                     add_watermarker=False)


def full_flux_pipeline(device: str = "cpu", dtype: torch.dtype = torch.bfloat16, seed: int = 0):
    """FLUX.1-dev's real architecture (12B transformer, CLIP-L, T5-XXL, AE) with random weights."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel, CLIPTokenizer, T5EncoderModel, T5TokenizerFast

    from trainer.models.flux_single_file import CLIP_TOKENIZER, CONFIG_ROOT, T5_TOKENIZER

    # the shipped Flux configs name the variant (transformer_dev, scheduler_dev); the rest is laid out as above
    parts = random_models(CONFIG_ROOT, device, dtype, seed, transformer_dev=FluxTransformer2DModel,
                         vae=AutoencoderKL, text_encoder=CLIPTextModel, text_encoder_2=T5EncoderModel)
    return FluxPipeline(transformer=parts.pop("transformer_dev"), **parts,
                        tokenizer=CLIPTokenizer.from_pretrained(CLIP_TOKENIZER),
                        tokenizer_2=T5TokenizerFast.from_pretrained(T5_TOKENIZER),
                        scheduler=FlowMatchEulerDiscreteScheduler.from_pretrained(CONFIG_ROOT / "scheduler_dev"))


def save_model(out: Path, family: str = "sd15", size: str = "tiny", device: str = "cpu",
               dtype: torch.dtype = torch.float32) -> Path:
    """A diffusers folder at `out` holding the model the benchmark trains (`size` tiny or full)."""
    from trainer.models.tiny import build_tiny_flux, build_tiny_sd15, build_tiny_sdxl

    if size == "tiny":
        tiny = {"sd15": lambda: build_tiny_sd15(0, four_level=True), "sdxl": lambda: build_tiny_sdxl(0, real_layout=True),
                "flux": lambda: build_tiny_flux(0, dev=True, vae_8x=True)}
        pipe = tiny[family]()
    else:
        build = {"sd15": full_sd15_pipeline, "sdxl": full_sdxl_pipeline, "flux": full_flux_pipeline}[family]
        pipe = build(device, dtype)
    pipe.save_pretrained(out)
    del pipe
    return out

"""Base models for the benchmarks, built offline: the tiny test models, or full-size SD1.5 / SDXL / Flux
architectures with random weights from the configs in assets/model_configs (nothing is downloaded).

Random weights train at the same speed as real ones: speed depends on shapes, not values.
"""

from __future__ import annotations

from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "assets" / "model_configs"


def full_sd15_pipeline(device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0):
    """SD1.5's real architecture (860M U-Net, CLIP-L, VAE) with random weights."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    cfg = CONFIGS / "sd15"
    torch.manual_seed(seed)
    with torch.device(device):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(cfg / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(cfg / "vae"))
        te = CLIPTextModel(CLIPTextConfig.from_pretrained(cfg / "text_encoder"))
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=CLIPTokenizer.from_pretrained(cfg / "tokenizer"),
                                   unet=unet, scheduler=PNDMScheduler.from_pretrained(cfg / "scheduler"),
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return pipe.to(dtype)


def full_sdxl_pipeline(device: str = "cpu", dtype: torch.dtype = torch.float32, seed: int = 0):
    """SDXL base's real architecture (2.6B U-Net, CLIP-L + bigG, VAE) with random weights."""
    from diffusers import (
        AutoencoderKL,
        EulerDiscreteScheduler,
        StableDiffusionXLPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    cfg = CONFIGS / "sdxl"
    torch.manual_seed(seed)
    with torch.device(device):
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(cfg / "unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(cfg / "vae"))
        te = CLIPTextModel(CLIPTextConfig.from_pretrained(cfg / "text_encoder"))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(cfg / "text_encoder_2"))
    pipe = StableDiffusionXLPipeline(
        vae=vae, text_encoder=te, text_encoder_2=te2, tokenizer=CLIPTokenizer.from_pretrained(cfg / "tokenizer"),
        tokenizer_2=CLIPTokenizer.from_pretrained(cfg / "tokenizer_2"), unet=unet,
        scheduler=EulerDiscreteScheduler.from_pretrained(cfg / "scheduler"), add_watermarker=False)
    return pipe.to(dtype)


def full_flux_pipeline(device: str = "cpu", dtype: torch.dtype = torch.bfloat16, seed: int = 0):
    """FLUX.1-dev's real architecture (12B transformer, CLIP-L, T5-XXL, AE) with random weights."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import (
        CLIPTextConfig,
        CLIPTextModel,
        CLIPTokenizer,
        T5Config,
        T5EncoderModel,
        T5TokenizerFast,
    )

    from trainer.models.flux_single_file import CLIP_TOKENIZER, CONFIG_ROOT, T5_TOKENIZER

    cfg = CONFIG_ROOT  # the shipped Flux configs name the variant: transformer_dev, scheduler_dev
    torch.manual_seed(seed)
    with torch.device(device):
        tr = FluxTransformer2DModel.from_config(FluxTransformer2DModel.load_config(cfg / "transformer_dev")).to(dtype)
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(cfg / "vae")).to(dtype)
        te = CLIPTextModel(CLIPTextConfig.from_pretrained(cfg / "text_encoder")).to(dtype)
        t5 = T5EncoderModel(T5Config.from_pretrained(cfg / "text_encoder_2")).to(dtype)
    return FluxPipeline(transformer=tr, vae=vae, text_encoder=te, text_encoder_2=t5,
                        tokenizer=CLIPTokenizer.from_pretrained(CLIP_TOKENIZER),
                        tokenizer_2=T5TokenizerFast.from_pretrained(T5_TOKENIZER),
                        scheduler=FlowMatchEulerDiscreteScheduler.from_pretrained(cfg / "scheduler_dev"))


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

"""Load the parts of a base model that training needs, from a hub id, a diffusers folder or a single file.

Each loader returns a plain dataclass of the components; the training loop decides devices, freezing and
precision. The noise scheduler is always the training one (DDPM for SD, flow matching for Flux) made from
the model's own scheduler config, whatever sampler the model ships with.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler
from diffusers.loaders.single_file_utils import SingleFileComponentError

from trainer.models.detect import ModelFormatError, detect_family
from trainer.models.hub import ModelSourceError, Progress, download_files, resolve_base_model

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "model_configs"
SD15_CONFIG = ASSETS / "sd15"
# SDXL base 1.0's configs and both tokenizers (CLIP's BPE; bigG's pads with "!"), for single-file checkpoints.
SDXL_CONFIG = ASSETS / "sdxl"
CLIP_L_REPO = "openai/clip-vit-large-patch14"
CLIP_TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json")

# What to tell someone who gave a model of one family to a run of another.
WHERE_TO_TRAIN = {
    "sd15": "an SD1.5 model: train it with the SD1.5 model type (Novice or Expert tab)",
    "sdxl": "an SDXL model: choose the SDXL model type in the Expert tab",
    "flux": "a Flux model: train it in the Flux tab",
    "sd2": "an SD 2.x model, which Danlu does not train yet: pick an SD1.5, SDXL or Flux base model",
    "lora": ("a LoRA, not a base model: pick a base model here, and put the LoRA under network_weights "
             "(to continue training it) or in the comparison grid"),
}


class WrongModelError(ValueError):
    """The model exists but cannot be used for this run; the message says what to do instead."""


@dataclass
class SD15Parts:
    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    noise_scheduler: DDPMScheduler
    source_path: Path
    family: str = "sd15"


@dataclass
class SDXLParts:
    unet: Any
    vae: Any
    text_encoder: Any
    text_encoder_2: Any
    tokenizer: Any
    tokenizer_2: Any
    noise_scheduler: DDPMScheduler
    source_path: Path
    family: str = "sdxl"


@dataclass
class FluxParts:
    transformer: Any
    vae: Any  # Flux's "ae"
    text_encoder: Any  # CLIP-L
    tokenizer: Any
    text_encoder_2: Any  # T5
    tokenizer_2: Any
    noise_scheduler: FlowMatchEulerDiscreteScheduler
    source_path: Path
    family: str = "flux"


def load_sd15(spec: str, *, vae: str | None = None, cache_dir: Path, dtype: torch.dtype = torch.float32,
              progress: Progress | None = None, config: str | Path | None = None) -> SD15Parts:
    """Load an SD1.5 base model. `config` is the diffusers-layout folder of json configs (and tokenizer)
    used for single files; it defaults to Danlu's assets/model_configs/sd15 (the real SD1.5 architecture)."""
    path = _resolve(spec, "sd15", cache_dir, progress)
    with _loading(path):
        pipe = _sd15_pipeline(path, dtype, config, cache_dir, progress)
    vae_model = load_vae(vae, cache_dir=cache_dir, dtype=dtype, config=config, progress=progress) if vae else pipe.vae
    return SD15Parts(unet=pipe.unet, vae=vae_model, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer,
                     noise_scheduler=DDPMScheduler.from_config(pipe.scheduler.config), source_path=path)


def _sd15_pipeline(path: Path, dtype: torch.dtype, config: str | Path | None, cache_dir: Path,
                   progress: Progress | None):
    from diffusers import StableDiffusionPipeline

    if path.is_dir():
        return StableDiffusionPipeline.from_pretrained(path, dtype=dtype, safety_checker=None,
                                                       feature_extractor=None, requires_safety_checker=False)
    config_dir = Path(config) if config else SD15_CONFIG
    return StableDiffusionPipeline.from_single_file(
        str(path), config=str(config_dir), local_files_only=True, dtype=dtype,
        tokenizer=_clip_tokenizer(config_dir, cache_dir, progress), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False)


def load_sdxl(spec: str, *, vae: str | None = None, cache_dir: Path, dtype: torch.dtype = torch.float32,
              progress: Progress | None = None, config: str | Path | None = None) -> SDXLParts:
    """Load an SDXL base model from a diffusers folder, a hub id, or a single SGM-layout file (Illustrious, Pony,
    ...). `config` is the diffusers-layout folder of configs and tokenizers used for single files; it defaults
    to Danlu's assets/model_configs/sdxl, so a local file loads without any download."""
    path = _resolve(spec, "sdxl", cache_dir, progress)
    config_dir = Path(config) if config else SDXL_CONFIG
    with _loading(path):
        pipe = _sdxl_pipeline(path, dtype, config_dir)
    vae_model = load_vae(vae, cache_dir=cache_dir, dtype=dtype, config=config_dir, progress=progress) if vae \
        else pipe.vae
    return SDXLParts(unet=pipe.unet, vae=vae_model, text_encoder=pipe.text_encoder,
                     text_encoder_2=pipe.text_encoder_2, tokenizer=pipe.tokenizer, tokenizer_2=pipe.tokenizer_2,
                     noise_scheduler=DDPMScheduler.from_config(pipe.scheduler.config), source_path=path)


def _sdxl_pipeline(path: Path, dtype: torch.dtype, config_dir: Path):
    from diffusers import StableDiffusionXLPipeline
    from transformers import CLIPTokenizer

    if path.is_dir():
        return StableDiffusionXLPipeline.from_pretrained(path, dtype=dtype, add_watermarker=False)
    tokenizers = {name: CLIPTokenizer.from_pretrained(str(config_dir / name)) for name in ("tokenizer", "tokenizer_2")}
    return StableDiffusionXLPipeline.from_single_file(str(path), config=str(config_dir), local_files_only=True,
                                                      dtype=dtype, add_watermarker=False, **tokenizers)


def load_flux(spec: str, *, cache_dir: Path, dtype: torch.dtype = torch.float32,
              vae_dtype: torch.dtype | None = None, progress: Progress | None = None) -> FluxParts:
    """Load a Flux base model (transformer, ae, CLIP-L, T5) from a diffusers folder or hub id, the VAE in
    `vae_dtype` (default `dtype`) and the rest in `dtype`."""
    path = _resolve(spec, "flux", cache_dir, progress)
    _require_folder(path, "Flux", "black-forest-labs/FLUX.1-dev")
    from diffusers import FluxPipeline

    with _loading(path):
        pipe = FluxPipeline.from_pretrained(path, dtype={"default": dtype, "vae": vae_dtype or dtype})
    return FluxParts(transformer=pipe.transformer, vae=pipe.vae, text_encoder=pipe.text_encoder,
                     tokenizer=pipe.tokenizer, text_encoder_2=pipe.text_encoder_2, tokenizer_2=pipe.tokenizer_2,
                     noise_scheduler=FlowMatchEulerDiscreteScheduler.from_config(pipe.scheduler.config),
                     source_path=path)


def load_vae(spec: str, *, cache_dir: Path, dtype: torch.dtype = torch.float32, config: str | Path | None = None,
             progress: Progress | None = None):
    """An AutoencoderKL from a diffusers VAE folder (or a pipeline folder's vae/), a hub id, or a single VAE
    file (original layout, with or without the `first_stage_model.` prefix)."""
    from diffusers import AutoencoderKL

    path = resolve_base_model(spec, cache_dir, progress)
    if path.is_dir():
        sub = "vae" if (path / "vae" / "config.json").is_file() else None
        if sub is None and not (path / "config.json").is_file():
            raise WrongModelError(f"VAE folder {path} has no config.json (nor vae/config.json): "
                                  f"point at a diffusers VAE folder or a single VAE file.")
        with _loading(path):
            return AutoencoderKL.from_pretrained(path, subfolder=sub, dtype=dtype)
    config_dir = Path(config) if config else SD15_CONFIG
    with _loading(path):
        return AutoencoderKL.from_single_file(str(path), config=str(config_dir), subfolder="vae",
                                              local_files_only=True, dtype=dtype)


@contextmanager
def _loading(path: Path):
    """Turn the libraries' load failures (missing or torn weight files, mismatched shapes) into one error
    that names the model and the likely fix."""
    try:
        yield
    except (OSError, ValueError, KeyError, RuntimeError, SingleFileComponentError) as exc:
        if isinstance(exc, (ModelFormatError, ModelSourceError, WrongModelError)):
            raise
        raise ModelFormatError(f"{path}: could not load the model ({type(exc).__name__}: {exc}). Files may be "
                               f"missing or incomplete: download the model again, or pick another.") from exc


def _resolve(spec: str, wanted: str, cache_dir: Path, progress: Progress | None) -> Path:
    path = resolve_base_model(spec, cache_dir, progress)
    family = detect_family(path)
    if family != wanted:
        raise WrongModelError(f"{path} is {WHERE_TO_TRAIN[family]}.")
    return path


def _require_folder(path: Path, name: str, example: str) -> None:
    if not path.is_dir():
        raise WrongModelError(
            f"{path}: single-file {name} checkpoints are not supported yet. Use the diffusers version of the "
            f"model: a folder with model_index.json, or its Hugging Face id (e.g. {example}).")


def _clip_tokenizer(config_dir: Path, cache_dir: Path, progress: Progress | None):
    """SD1.5's CLIP-L tokenizer: from the config folder if it has one, else only those files from the hub."""
    from transformers import CLIPTokenizer

    if (config_dir / "tokenizer" / "tokenizer_config.json").is_file():
        return CLIPTokenizer.from_pretrained(str(config_dir / "tokenizer"))
    folder = download_files(CLIP_L_REPO, list(CLIP_TOKENIZER_FILES), cache_dir, progress)
    return CLIPTokenizer.from_pretrained(str(folder))

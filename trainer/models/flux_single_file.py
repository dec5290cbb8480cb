"""Flux.1 from the files people download: one transformer file in BFL's layout (flux1-dev.safetensors,
flux1-schnell.safetensors, also fp8-stored) plus separate `ae`, `clip_l` and `t5xxl` files.

The transformer and AE are read by diffusers' own single-file loaders, given local diffusers-layout configs
(assets/model_configs/flux: transformer_dev/_schnell, vae, scheduler_dev/_schnell, text_encoder(_2)) so nothing
is fetched; the CLIP-L tokenizer is SD1.5's (assets/model_configs/sd15/tokenizer) and T5's is shipped in
assets/model_configs/flux/tokenizer_2 (see its README for origin and licence); CLIP-L and T5 files already use
transformers' key names and load through `from_pretrained(None, config=..., state_dict=...)`. dev and schnell
are told apart by the guidance embedder (`guidance_in`) only dev's file has. fp8-stored weights are cast to
the loading dtype as they are read.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from trainer.models.detect import ModelFormatError, detect_family

CONFIG_ROOT = Path(__file__).resolve().parents[2] / "assets" / "model_configs" / "flux"
PARTS = {"ae": "the Flux autoencoder (ae.safetensors)", "clip_l": "the CLIP-L text encoder (clip_l.safetensors)",
         "t5xxl": "the T5-XXL text encoder (t5xxl_fp16.safetensors or an fp8 one)"}
CLIP_TOKENIZER = CONFIG_ROOT.parent / "sd15" / "tokenizer"  # the same CLIP-L BPE
T5_TOKENIZER = CONFIG_ROOT / "tokenizer_2"  # google/t5-v1_1-xxl's vocabulary, shipped: no hub call


def variant_of(transformer_file: Path) -> str:
    """"dev" (guidance-distilled: has guidance_in) or "schnell"."""
    with safe_open(str(transformer_file), "pt") as f:
        return "dev" if any("guidance_in." in k for k in f.keys()) else "schnell"


def check_files(model_cfg) -> dict[str, Path]:
    """The transformer file and the three separate files, each checked: present, and of the right kind."""
    transformer = Path(model_cfg.base_model).expanduser()
    found = detect_family(transformer)
    if found != "flux":
        raise ModelFormatError(f"model.base_model {transformer}: this is {found!r} model, not a Flux transformer; "
                               "choose the model family that matches it, or a Flux file such as flux1-dev.safetensors")
    files = {"transformer": transformer}
    for name, what in PARTS.items():
        value = getattr(model_cfg, name, "")
        if not value:
            raise ModelFormatError(f"model.{name} is empty: a single Flux transformer file needs {what} beside it; "
                                   f"set model.{name} to that file (or use a diffusers Flux folder instead)")
        path = Path(value).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"model.{name}: {path} does not exist; it should be {what}")
        files[name] = path
    return files


def _text_encoder(cls, path: Path, config_folder: Path, dtype: torch.dtype, prefix: str = ""):
    state = load_file(str(path))
    for k in list(state):  # converted one tensor at a time, so the file's copy never sits beside a whole second one
        state[prefix + k if prefix and not k.startswith(prefix) else k] = state.pop(k).to(dtype)
    config = cls.config_class.from_pretrained(config_folder)
    try:
        return cls.from_pretrained(None, config=config, state_dict=state, dtype=dtype)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ModelFormatError(f"{path}: not a {cls.__name__} file of this size ({exc})") from None


def load_flux_files(model_cfg, *, dtype: torch.dtype = torch.float32, vae_dtype: torch.dtype | None = None,
                    config_root: Path = CONFIG_ROOT, progress=None):
    """FluxParts from a BFL transformer file and the ae/clip_l/t5xxl files named in the model config (the ae read
    in `vae_dtype`, default `dtype`, the rest in `dtype`)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import AutoTokenizer, CLIPTextModel, CLIPTokenizer, T5EncoderModel

    from trainer.models.loading import FluxParts

    files = check_files(model_cfg)
    variant = variant_of(files["transformer"])
    root = str(config_root)
    if progress:
        progress(f"loading the Flux transformer (FLUX.1-{variant}) from {files['transformer'].name}")
    transformer = FluxTransformer2DModel.from_single_file(str(files["transformer"]), config=root,
                                                          subfolder=f"transformer_{variant}", torch_dtype=dtype,
                                                          local_files_only=True)
    vae = AutoencoderKL.from_single_file(str(files["ae"]), config=root, subfolder="vae",
                                         torch_dtype=vae_dtype or dtype,
                                         local_files_only=True)
    clip = _text_encoder(CLIPTextModel, files["clip_l"], config_root / "text_encoder", dtype, prefix="text_model.")
    t5 = _text_encoder(T5EncoderModel, files["t5xxl"], config_root / "text_encoder_2", dtype)
    tok1, tok2 = config_root / "tokenizer", config_root / "tokenizer_2"
    return FluxParts(
        transformer=transformer, vae=vae, text_encoder=clip,
        tokenizer=CLIPTokenizer.from_pretrained(tok1 if tok1.is_dir() else CLIP_TOKENIZER), text_encoder_2=t5,
        tokenizer_2=AutoTokenizer.from_pretrained(tok2 if tok2.is_dir() else T5_TOKENIZER),
        noise_scheduler=FlowMatchEulerDiscreteScheduler.from_pretrained(root, subfolder=f"scheduler_{variant}"),
        source_path=files["transformer"])

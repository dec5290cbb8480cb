"""Tell which model family a checkpoint or diffusers folder is, without loading its weights."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors import safe_open

from trainer.families import FAMILIES, get_spec

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin")

PIPELINE_FAMILY = {"StableDiffusionXLPipeline": "sdxl", "FluxPipeline": "flux"}
# A key of the second cross-attention of the first attention block: its input width is the text width
# (768 for SD1.x's CLIP-L, 1024 for SD2's OpenCLIP-H).
SD_ATTN2_KEY = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
LORA_MARKERS = (".lora_down.", ".lora_up.", ".lora_A.", ".lora_B.", ".lora.down.", ".lora.up.", ".hada_w1_a",
                ".lokr_w1", ".oft_blocks", ".oft_diag")


class ModelFormatError(ValueError):
    """The file or folder is not a model Danlu can recognise; the message says what to do."""


def detect_family(path: str | Path) -> str:
    """Return "sd15" | "sd2" | "sdxl" | "flux" | "lora" for a single checkpoint file or a diffusers folder."""
    path = Path(path).expanduser()
    if path.is_dir():
        return _family_of_folder(path)
    if path.is_file():
        return family_from_keys(_read_shapes(path), path)
    raise FileNotFoundError(f"model not found: {path}. Check the path (it must be a .safetensors/.ckpt file "
                            f"or a diffusers folder with model_index.json).")


def family_from_keys(shapes: dict[str, tuple[int, ...]], source: Path | str = "checkpoint") -> str:
    """Family of a state dict given its key -> shape map (original LDM/SGM/BFL layouts and LoRA files)."""
    keys = shapes.keys()
    if any(k.startswith(("lora_", "lycoris_")) or any(m in k for m in LORA_MARKERS) for k in keys):
        return "lora"
    if any("double_blocks.0.img_attn.qkv.weight" in k for k in keys):
        return "flux"
    if any(k.startswith(("conditioner.embedders.", "model.diffusion_model.label_emb.")) for k in keys):
        return "sdxl"  # SGM text conditioners, or the size/crop embedding that only SDXL's U-Net has
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        return "sd2"  # OpenCLIP text encoder
    if SD_ATTN2_KEY in shapes:
        return "sd2" if shapes[SD_ATTN2_KEY][-1] == 1024 else "sd15"
    if any(k.startswith("model.diffusion_model.input_blocks.") for k in keys):
        return "sd15"
    if any(k.startswith(("encoder.conv_in.", "first_stage_model.encoder.", "encoder.down.")) for k in keys):
        raise ModelFormatError(f"{source} is a VAE, not a base model: pick it in the VAE field instead.")
    raise ModelFormatError(f"{source}: unknown model layout ({len(shapes)} tensors, e.g. {sorted(keys)[:3]}). "
                           f"Use an SD1.5, SDXL or Flux checkpoint, or a diffusers folder.")


def _read_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
        raise ModelFormatError(f"{path}: not a model file; expected one of {', '.join(SINGLE_FILE_SUFFIXES)}.")
    if path.suffix.lower() == ".safetensors":
        try:
            # safe_open reads only the JSON header; get_slice gives shapes without reading the tensors.
            with safe_open(str(path), framework="pt") as fh:
                return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
        except Exception as exc:
            raise ModelFormatError(f"{path}: not a readable safetensors file ({exc}). "
                                   f"The download may be incomplete: download it again.") from exc
    return _read_pickle_shapes(path)


def _read_pickle_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    import torch

    try:
        # weights_only refuses code in the pickle; mmap avoids reading gigabytes just to see the keys.
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except Exception as exc:
        raise ModelFormatError(f"{path}: cannot be read as a PyTorch checkpoint ({exc}). Convert it to "
                               f".safetensors, or download it again if it may be incomplete.") from exc
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise ModelFormatError(f"{path}: holds no state dict.")
    return {k: tuple(v.shape) for k, v in state.items() if hasattr(v, "shape")}


def _family_of_folder(path: Path) -> str:
    index = path / "model_index.json"
    if index.is_file():
        cls = _json(index).get("_class_name", "")
        if cls in PIPELINE_FAMILY:
            return PIPELINE_FAMILY[cls]
        if cls.startswith("StableDiffusion") and "XL" not in cls:
            unet = _json(path / "unet" / "config.json") if (path / "unet" / "config.json").is_file() else {}
            return "sd2" if unet.get("cross_attention_dim") == 1024 else "sd15"
        raise ModelFormatError(f"{path}: pipeline {cls!r} is not supported; use an SD1.5, SDXL or Flux model.")
    config = path / "transformer" / "config.json"
    if config.is_file() and _json(config).get("_class_name") == "FluxTransformer2DModel":
        return "flux"
    weights = [p for p in path.iterdir() if p.suffix == ".safetensors"]
    if len(weights) == 1 and "lora" in weights[0].name.lower():
        return "lora"  # a diffusers-saved LoRA folder (pytorch_lora_weights.safetensors)
    raise ModelFormatError(f"{path}: a folder, but not a diffusers model (no model_index.json). Point at the "
                           f"folder that holds model_index.json, or at a single .safetensors file.")


def native_resolution(path: str | Path) -> int | None:
    """The image side a base model makes best (and fastest) images at: a diffusers folder's U-Net sample size
    times its VAE's downscale (64 for the tiny demo model), else its family's; None when it cannot be told
    (a hub id, a missing file)."""
    path = Path(path).expanduser()
    unet, vae = path / "unet" / "config.json", path / "vae" / "config.json"
    try:
        if unet.is_file() and vae.is_file():
            sample, blocks = _json(unet).get("sample_size"), _json(vae).get("block_out_channels")
            if isinstance(sample, int) and blocks:
                return sample * 2 ** (len(blocks) - 1)
        family = detect_family(path) if path.exists() else None
        return get_spec(family).resolution if family in FAMILIES else None  # the size it was trained at
    except (ModelFormatError, OSError):
        return None


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: unreadable JSON ({exc}); the download may be incomplete.") from exc

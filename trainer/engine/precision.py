"""Device, mixed precision and weight dtypes for a run, with a warning whenever a choice must change."""

from __future__ import annotations

from dataclasses import dataclass

import torch

DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


@dataclass(frozen=True)
class Precision:
    device: str  # "cuda" | "cpu" | "mps"
    mixed: str  # what accelerate gets: "no" | "fp16" | "bf16"
    weight_dtype: torch.dtype  # frozen base weights
    adapter_dtype: torch.dtype  # trained LoRA weights (float32 unless full_fp16/full_bf16)
    vae_dtype: torch.dtype


def pick_device() -> str:
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"


def resolve_precision(mixed: str, *, full_fp16: bool, full_bf16: bool, no_half_vae: bool,
                      device: str, warn) -> Precision:
    """Half precision needs a GPU here; on the CPU training runs in float32 and says so."""
    if device == "cpu" and mixed != "no":
        warn(f"mixed_precision {mixed} needs a GPU; this run uses float32 on the CPU",
             "Set speed.mixed_precision = no to silence this on a CPU-only machine.")
        mixed, full_fp16, full_bf16 = "no", False, False
    if device == "cuda" and mixed == "bf16" and not torch.cuda.is_bf16_supported():
        warn("this GPU does not support bf16; using fp16", "Set speed.mixed_precision = fp16.")
        mixed, full_bf16 = "fp16", False
    weight = DTYPES[mixed]
    adapter = torch.float16 if full_fp16 else torch.bfloat16 if full_bf16 else torch.float32
    vae = torch.float32 if no_half_vae else weight
    return Precision(device, mixed, weight, adapter, vae)

"""Writing and reading LoRA safetensors files, atomically, in the precision the user asked for."""

from __future__ import annotations

import os
from pathlib import Path

import safetensors.torch
import torch
from safetensors import safe_open

from trainer.networks.hashes import addnet_hashes
from trainer.textio import atomic_write_bytes

PRECISIONS = {"fp16": torch.float16, "bf16": torch.bfloat16, "float": torch.float32, "fp32": torch.float32}


def cast_for_save(state_dict: dict[str, torch.Tensor], precision: str) -> dict[str, torch.Tensor]:
    """Weights in `precision`, on the CPU, contiguous; `.alpha` scalars always float32 (loaders expect it)."""
    if precision not in PRECISIONS:
        raise ValueError(f"save precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
    dtype = PRECISIONS[precision]
    out = {}
    for key, tensor in state_dict.items():
        target = torch.float32 if key.endswith(".alpha") else dtype
        out[key] = tensor.detach().to("cpu", dtype=target).contiguous()
    return out


def save_lora(path: str | os.PathLike, state_dict: dict[str, torch.Tensor], metadata: dict[str, str],
              precision: str = "fp16") -> Path:
    """Write a kohya LoRA file; adds `sshs_model_hash` and `sshs_legacy_hash`. A crash mid-save leaves any old
    file untouched."""
    tensors = cast_for_save(state_dict, precision)
    header = {str(k): str(v) for k, v in metadata.items()}
    header["sshs_model_hash"], header["sshs_legacy_hash"] = addnet_hashes(tensors, header)
    path = Path(path)
    # Serialise in memory, then temp file + fsync + os.replace: `path` is either the old file or the new one.
    atomic_write_bytes(path, safetensors.torch.save(tensors, metadata=header))
    return path


def read_lora(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, header metadata) of a LoRA safetensors file."""
    with safe_open(str(path), framework="pt", device="cpu") as f:
        metadata = dict(f.metadata() or {})
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    return tensors, metadata

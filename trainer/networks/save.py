"""Writing and reading LoRA files, atomically, in the precision the user asked for.

`.safetensors` is the format every tool loads safely. `.ckpt`/`.pt` (save.save_model_as) are what sd-scripts
writes for those names: a torch pickle of the same state dict, without the header metadata. Reading one back
uses torch.load(weights_only=True), which refuses anything but tensors and plain containers.
"""

from __future__ import annotations

import os
from pathlib import Path

import safetensors.torch
import torch
from safetensors import SafetensorError, safe_open

from trainer.networks.hashes import addnet_hashes
from trainer.textio import atomic_write_bytes, atomic_write_via

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
    path = Path(path)
    if is_pickle(path):  # sd-scripts: torch.save(state_dict), the metadata (and so its hashes) is not stored
        atomic_write_via(path, lambda tmp: torch.save(tensors, tmp))
        return path
    header = {str(k): str(v) for k, v in metadata.items()}
    header["sshs_model_hash"], header["sshs_legacy_hash"] = addnet_hashes(tensors, header)
    # Serialise in memory, then temp file + fsync + os.replace: `path` is either the old file or the new one.
    atomic_write_bytes(path, safetensors.torch.save(tensors, metadata=header))
    return path


def is_pickle(path: str | os.PathLike) -> bool:
    """A torch pickle (.ckpt, .pt, .pth, .bin) rather than a safetensors file."""
    return Path(path).suffix.lower() != ".safetensors"


def load_pickled_tensors(path: str | os.PathLike) -> dict:
    """A .ckpt/.pt file's content, loaded without running any code it may hold (weights_only)."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # an unpickling refusal or a torn file: name the file either way
        raise ValueError(f"{path}: not a plain tensor file that loads safely ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''}). Use a .safetensors file.") from None


def read_lora(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, header metadata) of a LoRA file; a .ckpt/.pt one has no metadata."""
    if is_pickle(path):
        state = load_pickled_tensors(path)
        if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ValueError(f"{path}: not a LoRA state dict (a mapping of names to tensors)")
        return state, {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as exc:  # empty, cut short by a failed copy/download, or another format
        raise ValueError(f"{path}: not a readable .safetensors file ({exc}); it may be incomplete: copy or "
                         "download it again") from None
    return tensors, metadata

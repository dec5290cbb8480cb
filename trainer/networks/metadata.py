"""The `ss_*` training metadata sd-scripts writes into a LoRA's safetensors header, and its model hash.

Header values must be strings. Numbers are written with str(), dicts/lists as JSON, unset values as
"None" (as sd-scripts does), so WebUI's and Forge's metadata viewers show what they expect.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
from typing import Any

import safetensors.torch
import torch

_JSON_KEYS = ("ss_network_args", "ss_tag_frequency", "ss_bucket_info", "ss_dataset_dirs")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def build_metadata(
    *,
    network_dim: int,
    network_alpha: float,
    base_model_version: str,
    network_module: str = "networks.lora",
    network_args: dict[str, Any] | None = None,
    output_name: str = "",
    resolution: tuple[int, int] | None = None,
    num_train_images: int | None = None,
    num_epochs: int | None = None,
    steps: int | None = None,
    learning_rate: float | None = None,
    unet_lr: float | None = None,
    text_encoder_lr: float | None = None,
    optimizer: str | None = None,
    lr_scheduler: str | None = None,
    tag_frequency: dict[str, dict[str, int]] | None = None,
    bucket_info: dict[str, Any] | None = None,
    training_started_at: float | None = None,
    training_finished_at: float | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, str]:
    """Header metadata for a kohya LoRA file; every value a string.

    Times are seconds since the epoch (time.time()), as sd-scripts writes them; `training_finished_at`
    defaults to now. `extra` adds further keys (their names are kept as given). `sshs_model_hash` is
    added by save_lora, which knows the tensor bytes.
    """
    facts = {
        "ss_network_module": network_module,
        "ss_network_dim": int(network_dim),
        "ss_network_alpha": float(network_alpha),
        "ss_network_args": dict(network_args or {}),
        "ss_base_model_version": base_model_version,
        "ss_output_name": output_name,
        "ss_resolution": tuple(resolution) if resolution is not None else None,
        "ss_num_train_images": num_train_images,
        "ss_num_epochs": num_epochs,
        "ss_steps": steps,
        "ss_learning_rate": learning_rate,
        "ss_unet_lr": unet_lr,
        "ss_text_encoder_lr": text_encoder_lr,
        "ss_optimizer": optimizer,
        "ss_lr_scheduler": lr_scheduler,
        "ss_tag_frequency": tag_frequency or {},
        "ss_bucket_info": bucket_info,
        "ss_training_started_at": training_started_at,
        "ss_training_finished_at": training_finished_at if training_finished_at is not None else time.time(),
        **(extra or {}),
    }
    # JSON keys stay JSON even when empty/unset, so readers can always json.loads them.
    return {k: (json.dumps(v) if k in _JSON_KEYS and v is None else _text(v)) for k, v in facts.items()}


def hash_after_header(data: bytes) -> str:
    """sha256 (hex) of a safetensors file's bytes after its header: the tensor data only.

    This is the `sshs_model_hash` of sd-scripts and the WebUI additional-networks extension: a safetensors
    file starts with an 8-byte little-endian header length n, then n bytes of JSON header; everything from
    byte 8 + n on is hashed, so editing the metadata never changes the hash.
    """
    (header_len,) = struct.unpack("<Q", data[:8])
    return hashlib.sha256(data[8 + header_len:]).hexdigest()


def model_hash(tensors: dict[str, torch.Tensor]) -> str:
    """`sshs_model_hash` of the file these exact tensors (dtype included) will be saved as."""
    return hash_after_header(safetensors.torch.save(tensors))

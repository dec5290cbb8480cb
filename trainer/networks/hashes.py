"""The model hashes WebUI (A1111/Forge) and its additional-networks extension show, computed as they compute them.

- A base model's old hash: the first 8 hex digits of the sha256 of the 0x10000 bytes at offset 0x100000
  (`ss_sd_model_hash`), and its new hash: the sha256 of the whole file (`ss_new_sd_model_hash`).
- A LoRA's additional-networks hashes (`sshs_model_hash`, `sshs_legacy_hash`): the file serialised with only its
  `ss_*` metadata, then the sha256 of the bytes after the header and the old 8-hex hash of that byte string.
  Only `ss_*` keys count because they never change after training; editing a title or thumbnail later must not
  change a LoRA's identity.
"""

from __future__ import annotations

import hashlib
import io
import struct
from pathlib import Path
from typing import BinaryIO

import safetensors.torch
import torch

from trainer.doctor.hashing import file_digest

LEGACY_OFFSET, LEGACY_LENGTH = 0x100000, 0x10000
FOLDER = "IsADirectory"


def legacy_hash(stream: BinaryIO) -> str:
    """A1111's old 8-hex model hash of an open binary stream (short files hash the empty string, as there)."""
    stream.seek(LEGACY_OFFSET)
    return hashlib.sha256(stream.read(LEGACY_LENGTH)).hexdigest()[:8]


def hash_after_header(data: bytes) -> str:
    """sha256 (hex) of a safetensors byte string after its header: an 8-byte little-endian length n, then n bytes
    of JSON; everything from byte 8 + n on is the tensor data."""
    (header_len,) = struct.unpack("<Q", data[:8])
    return hashlib.sha256(data[8 + header_len:]).hexdigest()


def addnet_hashes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> tuple[str, str]:
    """(sshs_model_hash, sshs_legacy_hash) of a LoRA whose tensors (dtype included) and header are these."""
    data = safetensors.torch.save(tensors, metadata={k: v for k, v in metadata.items() if k.startswith("ss_")})
    return hash_after_header(data), legacy_hash(io.BytesIO(data))


def base_model_identity(base_model: str) -> dict[str, str]:
    """ss_sd_model_name, and for a model that exists locally its old and new hashes, as sd-scripts writes them:
    a hub id is named as given and not hashed; a diffusers folder is named by its folder and both hashes read
    "IsADirectory" (sd-scripts' own value there: tools that list the keys find them, none mistakes it for a hash)."""
    path = Path(base_model)
    if not path.exists():
        return {"ss_sd_model_name": base_model}
    if not path.is_file():
        return {"ss_sd_model_name": path.name, "ss_sd_model_hash": FOLDER, "ss_new_sd_model_hash": FOLDER}
    with open(path, "rb") as fh:
        old = legacy_hash(fh)
    return {"ss_sd_model_name": path.name, "ss_sd_model_hash": old, "ss_new_sd_model_hash": file_digest(path)}


def vae_identity(vae: str) -> dict[str, str]:
    """ss_vae_name and, for a file, ss_vae_hash / ss_new_vae_hash (sd-scripts writes these when --vae is set)."""
    if not vae:
        return {}
    found = base_model_identity(vae)
    return {k.replace("_sd_model_", "_vae_"): v for k, v in found.items()}

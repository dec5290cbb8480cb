"""Cached text-encoder outputs keyed by caption text and an encoder fingerprint, in memory or on disk.

Only valid when the caption the encoder sees is the same every step (no shuffle, no dropout): the
config rules refuse the other combinations, this module just stores and finds tensors.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from trainer.textio import atomic_write_bytes


class TensorCache:
    """get/put a dict of tensors per text. mode "disk" stores `<folder>/<sha256>.safetensors`."""

    def __init__(self, mode: str, fingerprint: str, folder=None):
        if mode not in ("memory", "disk"):
            raise ValueError(f"text-encoder cache mode {mode!r}: use 'memory' or 'disk'")
        if mode == "disk" and folder is None:
            raise ValueError("a disk text-encoder cache needs a folder")
        self.mode = mode
        self.fingerprint = fingerprint
        self.folder = Path(folder) if folder is not None else None
        self._memory: dict[str, dict[str, torch.Tensor]] = {}

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self.fingerprint}\0{text}".encode("utf-8")).hexdigest()

    def path(self, text: str) -> Path:
        return self.folder / f"{self.key(text)}.safetensors"

    def get(self, text: str) -> dict[str, torch.Tensor] | None:
        if self.mode == "memory":
            return self._memory.get(self.key(text))
        file = self.path(text)
        try:  # one memory-mapped open: the header is checked, then the tensors are copied out of the map
            with safe_open(str(file), framework="pt") as f:
                meta = f.metadata() or {}
                if meta.get("fingerprint") != self.fingerprint or meta.get("text") != text:
                    return None  # a hash collision or a foreign file: never return the wrong tensors
                return {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open is no dict)
        except Exception:  # missing or torn file: recompute
            return None

    def put(self, text: str, tensors: dict[str, torch.Tensor]) -> None:
        own = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
        if self.mode == "memory":
            self._memory[self.key(text)] = own
            return
        data = save(own, metadata={"fingerprint": self.fingerprint, "text": text})
        atomic_write_bytes(self.path(text), data)

"""Writing a full checkpoint: the family's original layout, the chosen precision, a free-space check first and
an atomic write (a kill or a full disk leaves the old file or none, never a torn one). `.safetensors` carries a
modelspec header; `.ckpt`/`.pt` hold {"state_dict": ...} without one, as sd-scripts and A1111 write them."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from trainer.engine.errors import EngineError
from trainer.networks.save import PRECISIONS, is_pickle
from trainer.textio import atomic_write_via

HEADROOM = 64 * 2**20  # the header and the file system's own overhead


def original_layout(family: str, unet, vae, text_encoders: list) -> dict[str, torch.Tensor]:
    """Every weight of the model under the key names the WebUIs load, as the family writes them
    (Family.original_layout: LDM for SD1.x, SGM for SDXL)."""
    from trainer.families import get_family

    layout = get_family(family).original_layout(unet, vae, text_encoders)
    if layout is None:
        raise EngineError(f"model.family {family!r}: saving a full checkpoint is not supported yet",
                          "Train a LoRA for this family instead (model.training_type = \"lora\").")
    return layout


def cast(state: dict[str, torch.Tensor], precision: str) -> dict[str, torch.Tensor]:
    dtype = PRECISIONS[precision]
    return {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}


def ensure_free_space(path: Path, size: int) -> None:
    """Fail, naming `path`, before writing `size` bytes there when the disk has less free."""
    need = size + HEADROOM
    free = shutil.disk_usage(path.parent).free
    if free < need:
        raise EngineError(
            f"not enough disk space to save {path.name}: it needs {need / 2**30:.2f} GiB, {path.parent} has "
            f"{free / 2**30:.2f} GiB free",
            "Free some space (old checkpoints, caches), save fewer files (save.save_last_n_epochs), or point "
            "save.output_dir at a larger disk. Nothing was written.")


def write_checkpoint(path: Path, state: dict[str, torch.Tensor], precision: str, metadata: dict[str, str]) -> Path:
    tensors = cast(state, precision)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ensure_free_space(path, sum(t.numel() * t.element_size() for t in tensors.values()))
    if is_pickle(path):  # .ckpt/.pt: the layout A1111 and sd-scripts use, weights under "state_dict"
        atomic_write_via(path, lambda tmp: torch.save({"state_dict": tensors}, tmp))
        return path
    header = {"format": "pt", **{str(k): str(v) for k, v in metadata.items()}}
    atomic_write_via(path, lambda tmp: save_file(tensors, tmp, metadata=header))
    return path

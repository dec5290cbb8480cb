"""A Dreambooth checkpoint also as a diffusers folder (dreambooth.save_diffusers): the family's pipeline of the
trained model, written by diffusers' own save_pretrained, then its weight files cast to the save precision so
the folder holds the same numbers as the single file. Written into a temp folder and swapped in, so a kill
leaves the old folder or none."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from trainer.checkpoints.write import cast, ensure_free_space
from trainer.engine.checkpoint import swap_in


def save_diffusers_folder(models, folder: Path, precision: str) -> Path:
    weights = sum(p.numel() * p.element_size() for m in (models.unet, models.vae, *models.text_encoders)
                  for p in m.parameters())
    folder.parent.mkdir(parents=True, exist_ok=True)
    ensure_free_space(folder, weights)
    tmp = folder.with_name(f"{folder.name}.tmp{int(time.time() * 1000)}")
    try:
        pipe = models.family.preview_pipeline(models, models.noise_scheduler)
        pipe.save_pretrained(tmp, safe_serialization=True)
        for file in tmp.rglob("*.safetensors"):
            _cast_file(file, precision)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return swap_in(tmp, folder)


def _cast_file(file: Path, precision: str) -> None:
    with safe_open(str(file), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    cast_tensors = cast(tensors, precision)
    if any(cast_tensors[k] is not tensors[k] for k in tensors):  # already in that precision: the file stands
        save_file(cast_tensors, str(file), metadata=metadata)

"""Prior preservation's class images: before training, the base model draws the ones the class folder lacks.

The folder is dataset.reg_data_dir, or (when that is empty) one in the workspace named for the base model, the
prompt and the resolution, so a later run with the same settings finds them and generates nothing. Images go
into a `1_<class>` sub-folder (the kohya layout the dataset scan reads) with the prompt as caption; each file is
written atomically, so a stop or a kill mid-way leaves only whole images, and the next run tops them up.
"""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import torch

from trainer.config import parse_resolution
from trainer.data.scan import IMAGE_EXTENSIONS
from trainer.engine.errors import StopRequested
from trainer.engine.sampler import make_scheduler
from trainer.textio import atomic_write_bytes, atomic_write_text


def class_root(cfg, workspace_models: Path) -> Path:
    if cfg.dataset.reg_data_dir:
        return Path(cfg.dataset.reg_data_dir)
    d = cfg.dreambooth
    key = "|".join([cfg.model.family, cfg.model.base_model, d.class_prompt, cfg.dataset.resolution])
    return workspace_models / "class-images" / f"{_slug(d.class_prompt)}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def _slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_")[:40] or "class"


def count_images(root: Path) -> int:
    if not root.is_dir():
        return 0
    return sum(1 for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def ensure_class_images(cfg, models, workspace_models: Path, reporter, stop) -> Path | None:
    """Fill the class folder up to num_class_images; return the folder (None when none is wanted)."""
    d = cfg.dreambooth
    if not d.num_class_images:
        return None
    root = class_root(cfg, workspace_models)
    have = count_images(root)
    missing = d.num_class_images - have
    if missing <= 0:
        reporter.status(f"class images: {have} in {root}, none to generate")
        return root
    folder = root / f"1_{_slug(d.class_prompt)}"
    folder.mkdir(parents=True, exist_ok=True)
    reporter.status(f"generating {missing} class images into {folder}")
    for n, image in enumerate(_draw(cfg, models, start=have, count=missing, stop=stop), 1):
        name = f"class_{have + n:05d}"
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        atomic_write_text(folder / f"{name}{cfg.caption.caption_extension}", d.class_prompt)
        atomic_write_bytes(folder / f"{name}.png", buffer.getvalue())
        reporter.status(f"generating class images {n}/{missing}")
    return root


def _draw(cfg, models, *, start: int, count: int, stop):
    """Images from the untrained base model, one seed each (training seed + index), leaving the global RNG as
    it was so that a run with generation trains exactly like one without."""
    family, s = models.family, cfg.sampling
    # With buckets the resolution may be off the 64 grid (it is then only an area); the model draws on the grid.
    width, height = (max(64, side // 64 * 64) for side in parse_resolution(cfg.dataset.resolution))
    pipe = family.preview_pipeline(models, make_scheduler(s.sample_sampler, models.noise_scheduler.config))
    pipe.set_progress_bar_config(disable=True)
    modules = [models.unet, *models.text_encoders]
    was_training = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            inputs = family.preview_inputs(models, cfg, cfg.dreambooth.class_prompt, s.sample_negative_prompt)
            for i in range(start, start + count):
                if stop():
                    raise StopRequested
                generator = torch.Generator(device="cpu").manual_seed(cfg.training.seed + i)
                yield pipe(**inputs, width=width, height=height, num_inference_steps=s.sample_steps,
                           guidance_scale=s.sample_cfg, generator=generator).images[0]
    finally:
        for m, training in zip(modules, was_training, strict=True):
            m.train(training)

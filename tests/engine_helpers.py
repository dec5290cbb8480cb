"""Shared builders for engine tests: a tiny SD1.5 model folder, a small dataset, a fast config."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from trainer.config import TrainConfig, config_from_dict

COLOURS = [(220, 40, 40), (40, 160, 60), (40, 80, 220), (230, 200, 40), (160, 60, 200), (30, 30, 30)]


def make_dataset(root: Path, n: int = 6, folder: str = "5_zk", size=(64, 64)) -> Path:
    sub = root / folder
    sub.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = Image.new("RGB", size, COLOURS[(i + 3) % len(COLOURS)])
        ImageDraw.Draw(img).ellipse((8, 8, size[0] - 8, size[1] - 8), fill=COLOURS[i % len(COLOURS)])
        img.save(sub / f"{i:03d}.png")
        (sub / f"{i:03d}.txt").write_text(f"zk, circle, colour {i}", encoding="utf-8")
    return root


def save_tiny_sd15(path: Path) -> Path:
    """The four-level tiny SD1.5 as a diffusers folder: its VAE downsamples 8x like the real one, so 64 px
    images train on 8x8 latents, which is fast."""
    from trainer.models.tiny import build_tiny_sd15

    build_tiny_sd15(seed=0, four_level=True).save_pretrained(path)
    return path


def save_tiny_sdxl(path: Path) -> Path:
    """The tiny SDXL in SDXL's own U-Net layout with an 8x VAE, as a diffusers folder (64 px -> 8x8 latents)."""
    from trainer.models.tiny import build_tiny_sdxl

    build_tiny_sdxl(seed=0, real_layout=True).save_pretrained(path)
    return path


def tiny_config(model: Path, data: Path, **overrides) -> TrainConfig:
    base = {
        "model": {"base_model": str(model)},
        "dataset": {"train_data_dir": str(data), "resolution": "64,64", "min_bucket_reso": 64,
                    "max_bucket_reso": 128},
        "training": {"max_train_epochs": 2, "train_batch_size": 2, "seed": 7},
        "optimizer": {"optimizer_type": "AdamW", "learning_rate": 1e-3, "lr_scheduler": "constant"},
        "network": {"network_dim": 4, "network_alpha": 2.0},
        "speed": {"mixed_precision": "no"},
        "save": {"output_name": "t", "save_precision": "float"},
    }
    for path, value in overrides.items():
        group, name = path.split("__")
        base.setdefault(group, {})[name] = value
    return config_from_dict(base)


def flux_config(model: Path, data: Path, **overrides) -> TrainConfig:
    """tiny_config for the tiny Flux (64 T5 tokens)."""
    return tiny_config(model, data, **{"model__family": "flux", "flux__t5xxl_max_token_length": 64, **overrides})


def short_flux_config(model: Path, data: Path, **overrides) -> TrainConfig:
    """A 3-step run of the tiny Flux (64 T5 tokens) on `data`."""
    return flux_config(model, data, **{"training__max_train_steps": 3, **overrides})


def save_tiny_flux(path: Path, dev: bool = True, blocks: tuple[int, int] = (1, 1)) -> Path:
    """The tiny Flux (dev: with a guidance input; `blocks` double and single blocks) with an 8x AE, as a diffusers
    folder (64 px -> 8x8 latents)."""
    from trainer.models.tiny import build_tiny_flux

    build_tiny_flux(seed=0, dev=dev, vae_8x=True, blocks=blocks).save_pretrained(path)
    return path


def losses(run_dir: Path) -> list[float]:
    """The loss of every progress event of a run, in order."""
    from trainer.events import read_events

    return [e["loss"] for e in read_events(run_dir)[0] if e["type"] == "progress"]


def lora_modules(tensors) -> set[str]:
    """The module names of a kohya-format state dict (keys without .lora_down/.lora_up/.alpha)."""
    return {k.split(".")[0] for k in tensors}


def render_tiny_flux(transformer):
    """The tiny Flux transformer's output for fixed random inputs (16 image and 8 text tokens, width 32)."""
    import torch

    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        return transformer(hidden_states=torch.randn(1, 16, 4, generator=g),
                           encoder_hidden_states=torch.randn(1, 8, 32, generator=g),
                           pooled_projections=torch.randn(1, 32, generator=g), timestep=torch.tensor([0.5]),
                           img_ids=torch.zeros(16, 3), txt_ids=torch.zeros(8, 3)).sample

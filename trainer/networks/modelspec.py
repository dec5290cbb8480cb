"""Stability AI's model-spec header keys (`modelspec.*`, spec 1.0.1) for a LoRA, in the form sd-scripts writes.

Civitai's uploader and LoRA managers read the architecture, title, resolution and thumbnail from here.
"""

from __future__ import annotations

import base64
import datetime
import io
from pathlib import Path

SPEC_VERSION = "1.0.1"
# The architecture id of each family's original model; a LoRA appends "/lora".
ARCHITECTURE = {"sd15": "stable-diffusion-v1", "sdxl": "stable-diffusion-xl-v1-base", "flux": "flux-1-dev"}
# Whose module layout the LoRA keys follow: sd-scripts names SD1.x LoRAs after diffusers' modules, SDXL LoRAs
# after Stability AI's (sgm) code, Flux LoRAs after Black Forest Labs' code.
IMPLEMENTATION = {"sd15": "diffusers", "sdxl": "https://github.com/Stability-AI/generative-models",
                  "flux": "https://github.com/black-forest-labs/flux"}
THUMBNAIL_SIZE = 256  # pixels on the long side: small enough for a header every tool reads whole


def modelspec(*, family: str, title: str, resolution: tuple[int, int], v_prediction: bool, timestamp: float,
              implementation_version: str, clip_skip: int | None = None,
              optional: dict[str, str] | None = None) -> dict[str, str]:
    """The modelspec.* keys. `resolution` is (width, height); `optional` holds the spec's optional texts
    (trigger_phrase, description, author, license, tags, thumbnail), of which empty ones are left out."""
    spec = {
        "modelspec.sai_model_spec": SPEC_VERSION,
        "modelspec.architecture": f"{ARCHITECTURE[family]}/lora",
        "modelspec.implementation": IMPLEMENTATION[family],
        "modelspec.title": title,
        "modelspec.resolution": f"{resolution[0]}x{resolution[1]}",
        # sd-scripts: the local time of the run, whole seconds, ISO 8601 without a zone.
        "modelspec.date": datetime.datetime.fromtimestamp(int(timestamp)).isoformat(),
        "modelspec.implementation_version": implementation_version,
    }
    if family != "flux":  # flow matching has no epsilon/v prediction type
        spec["modelspec.prediction_type"] = "v" if v_prediction else "epsilon"
    if clip_skip and clip_skip > 1:
        spec["modelspec.encoder_layer"] = str(clip_skip)
    spec.update({f"modelspec.{k}": v for k, v in (optional or {}).items() if v})
    return spec


def thumbnail_data_url(image_path: str | Path) -> str:
    """A sample image as a small PNG data URL (the model-spec thumbnail form); "" when it cannot be read."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(image_path) as img:
            img = img.convert("RGB")
            img.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
            buf = io.BytesIO()
            img.save(buf, format="PNG")
    except (OSError, UnidentifiedImageError):
        return ""
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")

"""Stability AI's model-spec header keys (`modelspec.*`, spec 1.0.1) for a LoRA, in the form sd-scripts writes.

Civitai's uploader and LoRA managers read the architecture, title, resolution and thumbnail from here.
"""

from __future__ import annotations

import base64
import datetime
import io
from pathlib import Path

SPEC_VERSION = "1.0.1"
THUMBNAIL_SIZE = 256  # pixels on the long side: small enough for a header every tool reads whole


def modelspec(*, architecture: str, implementation: str, title: str, resolution: tuple[int, int],
              prediction_type: str | None, timestamp: float, implementation_version: str,
              clip_skip: int | None = None, optional: dict[str, str] | None = None) -> dict[str, str]:
    """The modelspec.* keys of a LoRA for a base of `architecture` (the family's, trainer.families). `resolution`
    is (width, height); `optional` holds the spec's optional texts (trigger_phrase, description, author, license,
    tags, thumbnail), of which empty ones are left out."""
    spec = {
        "modelspec.sai_model_spec": SPEC_VERSION,
        "modelspec.architecture": f"{architecture}/lora",
        "modelspec.implementation": implementation,
        "modelspec.title": title,
        "modelspec.resolution": f"{resolution[0]}x{resolution[1]}",
        # sd-scripts: the local time of the run, whole seconds, ISO 8601 without a zone.
        "modelspec.date": datetime.datetime.fromtimestamp(int(timestamp)).isoformat(),
        "modelspec.implementation_version": implementation_version,
    }
    if prediction_type:
        spec["modelspec.prediction_type"] = prediction_type
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

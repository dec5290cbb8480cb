"""Turn an image into the array the WD taggers were trained on.

Alpha composited onto white, padded to a centred white square, bicubic-resized to the model's size, then
float32 0..255 (no normalisation) in BGR channel order, HWC (the batch axis is added by the pipeline).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from trainer.data.folder_images import folder_images
from trainer.textio import open_regular

WHITE = (255, 255, 255)


def has_alpha(img: Image.Image) -> bool:
    # Palette and grayscale images can carry transparency in `info` instead of an alpha band.
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info


def flatten_on_white(img: Image.Image) -> Image.Image:
    """RGB image; transparent pixels become white, as in the tagger's training data."""
    if has_alpha(img):
        rgba = img.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, WHITE + (255,)), rgba).convert("RGB")
    return img.convert("RGB")


def pad_to_square(img: Image.Image) -> Image.Image:
    width, height = img.size
    side = max(width, height)
    if width == height:
        return img
    canvas = Image.new("RGB", (side, side), WHITE)
    canvas.paste(img, ((side - width) // 2, (side - height) // 2))
    return canvas


def preprocess(img: Image.Image, size: int) -> np.ndarray:
    """[size, size, 3] float32 BGR array for one image."""
    square = pad_to_square(flatten_on_white(img))
    if square.size != (size, size):
        square = square.resize((size, size), Image.Resampling.BICUBIC)
    rgb = np.asarray(square, dtype=np.float32)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def load_preprocessed(path: str | Path, size: int) -> np.ndarray:
    """Decode and preprocess one file; raises (OSError, ValueError, ...) for a corrupt or non-image file."""
    with open_regular(path) as fh, Image.open(fh) as img:
        img.load()
        return preprocess(img, size)


def list_images(folder: str | Path, recursive: bool = False, exclude: Path | None = None) -> list[Path]:
    """Image files in `folder` (and its sub-folders when recursive; a training folder's `<repeats>_<name>`
    sub-folders always), sorted; hidden folders are skipped. None is a ValueError saying what to pass instead,
    never a silent "0 written"."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"image folder '{root}' does not exist or is not a folder")
    # exclude: never tag the images' own caption backups
    return sorted(Path(p) for p in folder_images(root, recursive, exclude=exclude).files)

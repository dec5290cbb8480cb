"""Loss masks as pictures of their own (dataset.conditioning_data_dir, sd-scripts' masked_loss with a
conditioning_data_dir): the mask of a training image is the picture with its file name stem in the mask folder, and
its red channel is the mask, as sd-scripts reads it (255 trains, 0 does not)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from trainer.data.images import load_image, resize
from trainer.data.scan import IMAGE_EXTENSIONS


def mask_path(image_path, mask_dir: str) -> Path | None:
    """The mask picture of `image_path` in `mask_dir`, any image extension; None when there is none."""
    stem = Path(image_path).stem
    return next((p for ext in IMAGE_EXTENSIONS if (p := Path(mask_dir) / f"{stem}{ext}").is_file()), None)


def mask_picture(image_path, mask_dir: str, size: tuple[int, int]) -> Image.Image | None:
    """The mask of `image_path` as an upright "L" picture of the image's `size` (w, h), in place of its alpha
    channel; None without a mask picture. One of another size is scaled to the image's."""
    path = mask_path(image_path, mask_dir)
    if path is None:
        return None
    red = load_image(path).getchannel("R")
    return red if red.size == tuple(size) else resize(red, size)

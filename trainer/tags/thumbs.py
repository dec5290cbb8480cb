"""Small JPEG thumbnails of dataset images, cached on disk so a gallery page never sends full images.

The cache key is the image's absolute path, mtime and size (and the thumbnail size), so an edited image
gets a new thumbnail and an unchanged one is never decoded again.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from PIL import Image, ImageOps

from trainer.textio import open_regular

THUMB_SIZE = 256


def thumb_path(image: str | Path, cache_dir: Path, size: int = THUMB_SIZE) -> Path:
    st = os.stat(image)
    key = f"{os.path.abspath(image)}|{st.st_mtime_ns}|{st.st_size}|{size}".encode()
    digest = hashlib.sha1(key).hexdigest()
    return Path(cache_dir) / digest[:2] / f"{digest}_{size}.jpg"


def thumbnail(image: str | Path, cache_dir: Path, size: int = THUMB_SIZE) -> Path:
    """Path of a cached thumbnail (made now if missing). A broken image raises ValueError naming it."""
    out = thumb_path(image, cache_dir, size)
    if out.exists():
        return out
    try:
        with open_regular(image) as fh, Image.open(fh) as im:  # never blocks on a FIFO
            im.draft("RGB", (size, size))  # JPEG decodes at reduced scale: much faster for big photos
            im = ImageOps.exif_transpose(im)
            im.thumbnail((size, size), Image.Resampling.LANCZOS)
            rgb = _flatten(im)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:  # bomb: a huge claimed size
        raise ValueError(f"{image}: cannot read this image ({exc}); replace or remove the file") from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    rgb.save(tmp, "JPEG", quality=85)
    os.replace(tmp, out)  # concurrent sessions may race on one thumbnail; each writes a whole file
    return out


def _flatten(im: Image.Image) -> Image.Image:
    """RGB on white, so transparent PNGs look as they do in an image viewer."""
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        bg = Image.new("RGB", im.size, (255, 255, 255))
        bg.paste(im, mask=im.getchannel("A"))
        return bg
    return im.convert("RGB")


def thumbnails(images: list[str | Path], cache_dir: Path, size: int = THUMB_SIZE) -> list[Path | None]:
    """Thumbnails for a gallery page; an unreadable image gives None instead of failing the page."""
    out: list[Path | None] = []
    for image in images:
        try:
            out.append(thumbnail(image, cache_dir, size))
        except (ValueError, OSError):
            out.append(None)
    return out

"""Image fixes for a dataset, each a pure function from one image file to what it should become.

A tool's `change(path, options)` returns None when the file is fine as it is, else a Change: the new picture
(or None for a pure rename), the path it will have, and a one-line description for the preview. The edits
module applies them with backups. Geometry uses the trainer's own bucket rules (trainer.data.buckets).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from trainer.data.buckets import assign_bucket, make_buckets
from trainer.data.images import to_rgb
from trainer.data.scan import IMAGE_EXTENSIONS

# Formats the trainer reads as they are; anything else is converted to PNG.
_SAVE_FORMAT = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP"}
_EXIF_ORIENTATION = 0x0112
HEIC_HINT = "HEIC/HEIF photos need the pillow-heif package (pip install pillow-heif), or export them as JPEG"

try:  # iPhone photos: Pillow reads HEIC only through this plugin (AVIF it reads itself)
    import pillow_heif

    pillow_heif.register_heif_opener()
except ImportError:
    pass


@dataclass
class Change:
    path: Path
    new_path: Path
    image: Image.Image | None  # None: only the name changes (bytes kept)
    detail: str


@dataclass(frozen=True)
class Options:
    aspect: tuple[int, int] = (1, 1)  # crop_aspect: width:height
    focus: tuple[float, float] = (0.5, 0.5)  # where the subject is, as fractions of width and height
    resolution: tuple[int, int] = (512, 512)  # crop_bucket: the training resolution and bucket range
    min_reso: int = 256
    max_reso: int = 1024
    step: int = 64
    max_side: int = 2048  # downscale: longest side allowed


def open_first_frame(path: Path) -> Image.Image:
    """The decoded picture (first frame of an animation), loaded so the file can be replaced."""
    with Image.open(path) as img:
        img.seek(0)
        img.load()
        return img.copy()


def crop_box(size: tuple[int, int], aspect: tuple[int, int], focus: tuple[float, float]) -> tuple[int, int, int, int]:
    """The largest box of ratio `aspect` inside `size`, centred on `focus` as far as the borders allow."""
    w, h = size
    target = aspect[0] / aspect[1]
    cw, ch = (w, round(w / target)) if w / h <= target else (round(h * target), h)
    cw, ch = min(cw, w), min(ch, h)
    left = min(max(0, round(focus[0] * w - cw / 2)), w - cw)
    top = min(max(0, round(focus[1] * h - ch / 2)), h - ch)
    return left, top, left + cw, top + ch


def _upright(path: Path) -> Image.Image:
    return ImageOps.exif_transpose(open_first_frame(path))


def _cropped(path: Path, aspect: tuple[int, int], focus, label: str) -> Change | None:
    img = _upright(path)
    box = crop_box(img.size, aspect, focus)
    if (box[2] - box[0], box[3] - box[1]) == img.size:
        return None
    out = img.crop(box)
    return Change(path, path, out, f"{img.width}x{img.height} → {out.width}x{out.height} ({label})")


def crop_aspect(path: Path, o: Options) -> Change | None:
    return _cropped(path, o.aspect, o.focus, f"{o.aspect[0]}:{o.aspect[1]}")


def crop_bucket(path: Path, o: Options) -> Change | None:
    """Crop to the ratio of the bucket the trainer will put the image in, so training crops nothing more."""
    img = _upright(path)
    bucket = assign_bucket(img.size, make_buckets(o.resolution, o.min_reso, o.max_reso, o.step))
    return _cropped(path, bucket, o.focus, f"bucket {bucket[0]}x{bucket[1]}")


def downscale(path: Path, o: Options) -> Change | None:
    img = _upright(path)
    if max(img.size) <= o.max_side:
        return None
    out = img.copy()
    out.thumbnail((o.max_side, o.max_side), Image.Resampling.LANCZOS)
    return Change(path, path, out, f"{img.width}x{img.height} → {out.width}x{out.height}")


def convert(path: Path, o: Options) -> Change | None:
    """CMYK, 16-bit, palette, alpha (on white) to 8-bit RGB; formats the trainer cannot read to PNG."""
    with Image.open(path) as probe:
        mode, frames = probe.mode, getattr(probe, "n_frames", 1)
    suffix = path.suffix.lower()
    if mode == "RGB" and suffix in IMAGE_EXTENSIONS and frames == 1:
        return None
    out = to_rgb(_upright(path))
    new_path = path if suffix in IMAGE_EXTENSIONS else path.with_suffix(".png")
    what = f"{mode}{' ' + str(frames) + ' frames' if frames > 1 else ''} {suffix} → RGB {new_path.suffix}"
    return Change(path, new_path, out, what)


def fix_exif_rotation(path: Path, o: Options) -> Change | None:
    """Turn the pixels upright and drop the rotation tag, so every tool sees the same picture."""
    with Image.open(path) as img:
        orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
    if orientation in (0, 1):
        return None
    out = _upright(path)
    return Change(path, path, out, f"EXIF orientation {orientation} → upright {out.width}x{out.height}")


def safe_stem(stem: str) -> str:
    """ASCII letters, digits, '_', '-' and '.' only (what every tool and file system accepts)."""
    ascii_ = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_).strip("._") or "image"


def rename_safe(path: Path, o: Options) -> Change | None:
    stem = safe_stem(path.stem)
    suffix = path.suffix.lower()
    if stem == path.stem and suffix == path.suffix:
        return None
    return Change(path, path.with_name(stem + suffix), None, f"{path.name} → {stem}{suffix}")


TOOLS = {"crop_aspect": crop_aspect, "crop_bucket": crop_bucket, "downscale": downscale, "convert": convert,
         "exif": fix_exif_rotation, "rename": rename_safe}


def save(image: Image.Image, path: Path) -> None:
    """Write `image` in the format its extension names (JPEG at quality 95: a crop should not look worse)."""
    fmt = _SAVE_FORMAT.get(path.suffix.lower(), "PNG")
    rgb = image if image.mode in ("RGB", "L") or fmt == "PNG" else to_rgb(image)  # alpha onto white, not black
    extra = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    rgb.save(path, fmt, **extra)
